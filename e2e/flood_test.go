package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grandcat/zeroconf"

	"lanchat/identity"
	"lanchat/transport"
)

// floodSizes are the sizes of the floods of TestFloodBounds: smaller in
// CI (race-enabled binaries on two shared CPUs), the issue's own with
// LANCHAT_E2E_FLOODS=full.
type floodSizes struct {
	records, lists, conns, handshakesPerSec int
	handshakeFor                            time.Duration
}

func sizes() floodSizes {
	if os.Getenv("LANCHAT_E2E_FLOODS") == "full" {
		return floodSizes{records: 200, lists: 50, conns: 15000, handshakesPerSec: 500, handshakeFor: 5 * time.Second}
	}
	return floodSizes{records: 60, lists: 20, conns: 3000, handshakesPerSec: 100, handshakeFor: 3 * time.Second}
}

// usage is the resident memory and open files of a node at one moment.
type usage struct {
	label string
	rss   int64
	fds   int
}

func (n *Node) usage(label string) usage {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", n.cmd.Process.Pid))
	fds := -1
	if err == nil {
		fds = len(ents)
	}
	return usage{label, n.RSS(), fds}
}

// TestFloodBounds floods alice in turn with forged mDNS records, forged
// peer lists from an authenticated peer, thousands of connections that
// never speak, and a burst of TLS handshakes. Throughout, bob and alice
// keep chatting, and alice's open files stay under 1024; her memory is
// reported (it is asserted only loosely here: race-enabled binaries
// carry shadow memory; BENCHMARKS.md has the figures of a plain build).
func TestFloodBounds(t *testing.T) {
	needNft(t)
	lan := newLAN(t, 3)
	sz := sizes()
	attacker := lan.Host(3)

	// 1. Forged mDNS records, up before alice starts, so that her first
	// browse gets them all: valid ids at addresses where nothing
	// listens, and ids that bob's address cannot prove.
	var servers []*zeroconf.Server
	t.Cleanup(func() {
		for _, s := range servers {
			s.Shutdown()
		}
	})
	ip := strings.TrimSuffix(attacker.IP4, ".3")
	err := attacker.Do(func() error {
		for i := range sz.records {
			id, err := identity.New()
			if err != nil {
				return err
			}
			host, port := fmt.Sprintf("%s.%d", ip, 100+i%100), 40000+i
			if i%4 == 0 {
				host = lan.Host(2).IP4 // bob's, for an id he cannot prove
			}
			s, err := zeroconf.RegisterProxy(fmt.Sprintf("forged-%d", i), "_lanchat._tcp", "local.", port,
				fmt.Sprintf("forged%d.local.", i), []string{host},
				[]string{"v=" + strconv.Itoa(transport.ProtocolVersion), "id=" + id.ID, fmt.Sprintf("name=forged%d", i), "udp=9"}, nil)
			if err != nil {
				return err
			}
			servers = append(servers, s)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("forged mDNS records: %v", err)
	}
	bob := startNode(t, lan.Host(2), "--name", "bob")
	alice := startNode(t, lan.Host(1), "--name", "alice")
	meshUp(t, alice, bob)
	samples := []usage{alice.usage("meshed")}
	seq := 0
	chat := func(during string) {
		t.Helper()
		seq++
		text := fmt.Sprintf("still here %d, %s", seq, during)
		mark := alice.Mark()
		bob.Send(t, text)
		alice.WaitFrom(t, mark, "bob's line "+during, eventTimeout, is("chat", "text", text))
		samples = append(samples, alice.usage(during))
	}
	time.Sleep(3 * time.Second) // the dials to the forged records
	chat("forged mDNS records")

	// 2. Forged peer lists from an authenticated peer, on alice's host.
	hp, err := dialHostile(t, lan.Host(1), alice.TCPPort, alice.ID, "lister", hostileOpts{})
	if err != nil {
		t.Fatal(err)
	}
	for l := range sz.lists {
		var pl transport.PeerList
		for i := range transport.MaxPeerList {
			id, err := identity.New()
			if err != nil {
				t.Fatal(err)
			}
			pl.Peers = append(pl.Peers, transport.PeerRef{ID: id.ID, Addr: fmt.Sprintf("%s.%d:%d", ip, 100+(l+i)%100, 40000+i)})
		}
		if err := hp.Send(pl); err != nil {
			t.Fatalf("peer list %d: %v", l, err)
		}
	}
	chat("forged peer lists")
	hp.Close()

	// 3. Connections that never speak.
	addr := net.JoinHostPort(alice.Host.IP4, strconv.Itoa(alice.TCPPort))
	var conns []net.Conn
	err = attacker.Do(func() error {
		for range sz.conns {
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				return err
			}
			conns = append(conns, c)
		}
		return nil
	})
	chat(fmt.Sprintf("%d silent connections", len(conns)))
	for _, c := range conns {
		c.Close()
	}
	if err != nil {
		t.Logf("opened %d silent connections of %d: %v", len(conns), sz.conns, err)
	}

	// 4. A burst of TLS handshakes, each with a fresh key, that then
	// hang up.
	id, err := identity.New()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := id.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true,
		NextProtos: []string{fmt.Sprintf("lanchat/%d", transport.ProtocolVersion)}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	done, failed := 0, 0
	stop := time.Now().Add(sz.handshakeFor)
	tick := time.NewTicker(time.Second / time.Duration(sz.handshakesPerSec))
	for time.Now().Before(stop) {
		<-tick.C
		wg.Add(1)
		go func() {
			defer wg.Done()
			var raw net.Conn
			err := attacker.Do(func() (err error) {
				raw, err = net.DialTimeout("tcp", addr, 5*time.Second)
				return err
			})
			if err == nil {
				tc := tls.Client(raw, conf)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err = tc.HandshakeContext(ctx)
				cancel()
				raw.Close()
			}
			mu.Lock()
			if err == nil {
				done++
			} else {
				failed++
			}
			mu.Unlock()
		}()
	}
	tick.Stop()
	chat(fmt.Sprintf("%d handshakes a second", sz.handshakesPerSec))
	wg.Wait()

	var rep []string
	maxRSS, maxFDs := int64(0), 0
	for _, s := range samples {
		rep = append(rep, fmt.Sprintf("%s: %d MiB, %d files", s.label, s.rss>>20, s.fds))
		maxRSS, maxFDs = max(maxRSS, s.rss), max(maxFDs, s.fds)
	}
	mark := alice.Mark()
	alice.Send(t, "/peers")
	ev := alice.WaitFrom(t, mark, "peers", eventTimeout, is("peers"))
	t.Logf("alice under floods (%+v; handshakes done %d, failed %d): %s; counters %v %v",
		sz, done, failed, strings.Join(rep, "; "), ev["refused"], ev["discovery"])
	if maxFDs > 1024 {
		t.Errorf("alice held %d open files under the floods, bound 1024", maxFDs)
	}
	noPanics(t, alice, bob)
}
