package discovery

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"lanchat/identity"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// freeUDPPort finds a UDP port free on the loopback broadcast address.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// loopbackAs describes the host's loopback as if addr were its address:
// beacons then go to 127.255.255.255 and carry addr.
func loopbackAs(addr string) func() []iface {
	return func() []iface {
		return []iface{{name: "lo", up: true, loopback: true, broadcast: true,
			prefixes: []netip.Prefix{netip.PrefixFrom(netip.MustParseAddr(addr), 8)}}}
	}
}

type sightings struct {
	mu sync.Mutex
	es []Entry
	ch chan struct{}
}

func (s *sightings) add(e Entry) {
	s.mu.Lock()
	s.es = append(s.es, e)
	s.mu.Unlock()
	select {
	case s.ch <- struct{}{}:
	default:
	}
}

// TestBeaconsOnLoopback runs two services on one host's loopback, each
// pretending to have its own address: each hears the other's beacon and
// hands over a sighting with the other's id, ports and address.
func TestBeaconsOnLoopback(t *testing.T) {
	port := freeUDPPort(t)
	start := func(addr string, tcp int, found func(Entry)) (*Beacons, *identity.Identity) {
		id, err := identity.New()
		if err != nil {
			t.Fatal(err)
		}
		b, err := StartBeacons(context.Background(), BeaconConfig{
			Identity: id, Name: "n" + addr, Port: tcp, UDPPort: tcp + 1,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			port:   port, gap: 20 * time.Millisecond, startMin: time.Millisecond, spread: 10 * time.Millisecond,
			aloneFirst: 50 * time.Millisecond, everyMin: time.Second, everyMax: 2 * time.Second,
			interfaces: loopbackAs(addr), loopbackOK: true,
		}, found)
		if err != nil {
			t.Skipf("no beacons on this host's loopback: %v", err)
		}
		return b, id
	}
	var sa, sb sightings
	sa.ch, sb.ch = make(chan struct{}, 1), make(chan struct{}, 1)
	a, ida := start("127.0.0.2", 4000, sa.add)
	defer a.Close()
	b, idb := start("127.0.0.3", 5000, sb.add)
	defer b.Close()
	wait := func(s *sightings, want *identity.Identity, addr string, tcp int) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			s.mu.Lock()
			for _, e := range s.es {
				if e.ID == want.ID {
					s.mu.Unlock()
					if len(e.Addrs) != 1 || e.Addrs[0] != net.JoinHostPort(addr, strconv.Itoa(tcp)) || e.UDPPort != tcp+1 {
						t.Fatalf("sighting %+v, want %s:%d", e, addr, tcp)
					}
					return
				}
			}
			s.mu.Unlock()
			select {
			case <-s.ch:
			case <-deadline:
				t.Fatalf("no sighting of %s; stats %+v", identity.Short(want.ID), a.Stats())
			}
		}
	}
	wait(&sa, idb, "127.0.0.3", 5000)
	wait(&sb, ida, "127.0.0.2", 4000)
	st := a.Stats()
	if st.Sent == 0 || st.Heard == 0 || st.Found == 0 {
		t.Fatalf("stats %+v", st)
	}
	a.Close() // twice is fine
}
