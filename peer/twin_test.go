package peer

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"lanchat/identity"
	"lanchat/transport"
)

// fromAddr is a transport whose outgoing connections leave from another
// loopback address, as from another machine.
type fromAddr struct {
	*transport.Transport
	local string
}

func (f fromAddr) Dial(ctx context.Context, addr string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(f.local)}}
	return d.DialContext(ctx, "tcp", addr)
}

// TestTwinIdentity: a second process with the same key (a copied key
// file) connecting from another address is refused while the first is
// connected, and both sides are told once, without the first connection
// ever being replaced. Repeated for fresh keys, so that either end of the
// pair decides.
func TestTwinIdentity(t *testing.T) {
	for range 4 {
		a := startNode(t, "alice")
		key, err := identity.New()
		if err != nil {
			t.Fatal(err)
		}
		first := startNodeWith(t, Config{Name: "bob", Identity: key})
		second := startNodeWith(t, Config{Name: "bob", Identity: key}, "127.0.0.2")
		connected(t, a, first)
		for range 3 {
			_, err := second.Connect(context.Background(), a.addr(), ViaManual, a.ID())
			if !errors.Is(err, ErrTwin) && !errors.Is(err, ErrDuplicate) && err == nil {
				t.Fatalf("second process with bob's key connected: %v", err)
			}
		}
		if w := next(t, a, func(e Warning) bool { return strings.Contains(e.Text, "SAME IDENTITY") }); !strings.Contains(w.Text, identity.Grouped(key.ID)) {
			t.Errorf("alice's warning does not name the id: %q", w.Text)
		}
		next(t, second, func(e Warning) bool { return strings.Contains(e.Text, "SAME IDENTITY") })
		time.Sleep(100 * time.Millisecond)
		for _, n := range []*testNode{a, second} {
		drain:
			for {
				select {
				case e := <-n.events:
					switch e := e.(type) {
					case Warning:
						t.Errorf("%s warned again: %q", n.Name(), e.Text)
					case PeerDown:
						t.Errorf("%s: %s went down: %s", n.Name(), e.Peer.Name, e.Reason)
					case PeerUp:
						t.Errorf("%s: %s came up (%s)", n.Name(), e.Peer.Name, e.Peer.Addr)
					}
				default:
					break drain
				}
			}
		}
		if ps := a.Peers(); len(ps) != 1 || ps[0].State != Up || !strings.HasPrefix(ps[0].Addr, "127.0.0.1:") {
			t.Fatalf("alice's peers after the twin tried: %+v", ps)
		}
		if _, err := a.Tell("bob", "still you"); err != nil {
			t.Fatal(err)
		}
		next(t, first, func(e Chat) bool { return e.Text == "still you" })
	}
}

// TestStrangersCapped: connections that never complete a handshake are
// bounded; over the bound they are closed at once and counted.
func TestStrangersCapped(t *testing.T) {
	a, b := startNode(t, "alice"), startNodeWith(t, Config{Name: "bob"}, "127.0.0.3")
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// Loopback is this machine, not a stranger: over the total bound.
	for range maxStrangers + 20 {
		c, err := net.Dial("tcp", a.addr())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// The ones over the bound are closed at once: reading them ends
	// well before the handshake timeout.
	deadline := time.Now().Add(wait)
	for a.Stats().StrangersRefused < 20 {
		if time.Now().After(deadline) {
			t.Fatalf("refused %d, want 20: %+v", a.Stats().StrangersRefused, a.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	closed := 0
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				closed++
			}
		}
	}
	if closed < 20 {
		t.Errorf("%d connections closed at once, want at least 20", closed)
	}
	// Once they are gone, a peer connects as before. (The per-address
	// bound, which keeps one host from holding the others up, does not
	// apply to loopback: TestStrangersCapped in e2e covers it.)
	for _, c := range conns {
		c.Close()
	}
	connected(t, b, a)
	if _, err := b.Say("through the crowd"); err != nil {
		t.Fatal(err)
	}
	next(t, a, func(e Chat) bool { return e.Text == "through the crowd" })
}
