package peer

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"lanchat/identity"
	"lanchat/transport"
)

// TestUsable: discovered addresses are dialled only on this host's
// networks, never loopback, its own listening address, unspecified or
// multicast; another port on its own address is (a second user's node).
func TestUsable(t *testing.T) {
	tr, err := transport.Listen(0)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	n := &Node{net: tr}
	port := uint16(tr.TCPPort())
	tests := []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:4000", false},
		{"[::1]:4000", false},
		{"0.0.0.0:4000", false},
		{"224.0.0.251:5353", false},
		{"203.0.113.7:4000", false}, // TEST-NET-3: on no interface here
		{"10.0.0.1", false},
		{"not an address", false},
		{"[fe80::1]:4000", false},          // link-local without a zone
		{"[fe80::1%nosuchif]:4000", false}, // on no interface
	}
	// This host's own addresses, and a neighbour on the same network.
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			ip, _ := netip.AddrFromSlice(ipn.IP)
			if !ok || i.Flags&net.FlagUp == 0 || ip.Unmap().IsLoopback() || !ip.Unmap().Is4() {
				continue
			}
			ip = ip.Unmap()
			tests = append(tests, struct {
				addr string
				ok   bool
			}{netip.AddrPortFrom(ip, port).String(), false})
			tests = append(tests, struct {
				addr string
				ok   bool
			}{netip.AddrPortFrom(ip, port-1).String(), true})
			if ones, bits := ipn.Mask.Size(); bits-ones >= 2 {
				next := ip.Next()
				if p, _ := ip.Prefix(ones); p.Contains(next) && next != ip {
					tests = append(tests, struct {
						addr string
						ok   bool
					}{netip.AddrPortFrom(next, 4000).String(), true})
				}
			}
		}
	}
	for _, tt := range tests {
		if got := n.usable(tt.addr); got != tt.ok {
			t.Errorf("usable(%q) = %v, want %v", tt.addr, got, tt.ok)
		}
	}
}

// countingNet counts dials, and the most under way at once.
type countingNet struct {
	*transport.Transport
	mu        sync.Mutex
	now, most int
	total     atomic.Int64
	perAddr   map[string]int
	slow      time.Duration
}

func (c *countingNet) Dial(ctx context.Context, addr string, timeout time.Duration) (net.Conn, error) {
	c.mu.Lock()
	c.now++
	c.most = max(c.most, c.now)
	c.perAddr[addr]++
	c.mu.Unlock()
	c.total.Add(1)
	defer func() {
		c.mu.Lock()
		c.now--
		c.mu.Unlock()
	}()
	select {
	case <-time.After(c.slow):
	case <-ctx.Done():
	}
	return c.Transport.Dial(ctx, addr, timeout)
}

// TestDiscoveryFlood: hundreds of forged sightings (random ids, dead
// addresses, a real node's address under ids it cannot prove) make the
// node dial at most maxDialsAtOnce at a time, never the same failed
// address again soon, and warn a handful of times, not hundreds; an
// honest peer still connects.
func TestDiscoveryFlood(t *testing.T) {
	tr, err := transport.Listen(0)
	if err != nil {
		t.Fatal(err)
	}
	cn := &countingNet{Transport: tr, perAddr: map[string]int{}, slow: 20 * time.Millisecond}
	victim := startNodeWith(t, Config{Name: "alice", Network: cn})
	honest := startNode(t, "bob")
	ids := make([]string, 300)
	for i := range ids {
		id, err := identity.New()
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id.ID
	}
	dead := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", 1+i%50) } // nothing listens
	for round := range 2 {
		for i, id := range ids {
			addr := dead(i)
			if i%3 == 0 {
				addr = honest.addr() // bob, who cannot prove these ids
			}
			victim.Discovered(Found{Instance: fmt.Sprint("forged ", round, i), ID: id, Addrs: []string{addr}})
		}
		// Malformed ids are refused at once.
		victim.Discovered(Found{Instance: "bad id", ID: "not-an-id", Addrs: []string{dead(0)}})
		deadline := time.Now().Add(3 * wait)
		for {
			victim.mu.Lock()
			dialing := len(victim.dialing)
			victim.mu.Unlock()
			if dialing == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("still %d dials under way", dialing)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if _, err := victim.Connect(context.Background(), honest.addr(), ViaManual, honest.ID()); err != nil {
		t.Fatalf("the honest peer after the flood: %v", err)
	}
	warnings := 0
	for drained := false; !drained; {
		select {
		case e := <-victim.events:
			if w, ok := e.(Warning); ok && strings.Contains(w.Text, "identity mismatch") {
				warnings++
			}
		default:
			drained = true
		}
	}
	cn.mu.Lock()
	most, total := cn.most, cn.total.Load()
	cn.mu.Unlock()
	st := victim.Stats()
	t.Logf("%d forged sightings twice: %d dials, at most %d at once; %d warnings shown, %d held; %d sightings refused",
		len(ids), total, most, warnings, st.AlarmsHeld, st.SightingsRefused)
	if most > maxDialsAtOnce+1 { // +1: the honest Connect above
		t.Errorf("%d dials at once, bound %d", most, maxDialsAtOnce)
	}
	if total > int64(len(ids))+2 {
		t.Errorf("%d dials for %d forged sightings seen twice: failures are not remembered", total, len(ids))
	}
	if warnings > alarmBurst {
		t.Errorf("%d impostor warnings shown for one flood, bound %d", warnings, alarmBurst)
	}
	if st.SightingsRefused < 2 {
		t.Errorf("malformed ids not refused: %+v", st)
	}
}
