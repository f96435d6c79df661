package peer

import (
	"crypto/tls"
	"errors"
	"fmt"
	"testing"
	"time"

	"lanchat/identity"
	"lanchat/transport"
)

// TestReplacedLinkKeepsOrder: a peer's connection is replaced by a newer
// one (the peer restarted, or gave up on a stalled connection and dialled
// again) while bob's reader of the old one still holds messages, because
// bob's events are not being read and his delivery queue is full. The
// old link takes no more, the new one gets everything again, and bob
// shows every message once and in order: nothing the new link reads is
// shown before what the old one took. Whether a wrong order shows
// depends on how the two links' delivery goroutines are scheduled, so
// the test runs a few rounds.
func TestReplacedLinkKeepsOrder(t *testing.T) {
	for round := range 3 {
		t.Run(fmt.Sprint("round ", round+1), replacedLinkKeepsOrder)
	}
}

func replacedLinkKeepsOrder(t *testing.T) {
	b := newHost(t, "bob").start(t)
	id, err := identity.New()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := id.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	// dial connects as id, with one epoch (one store: its message ids
	// are one sequence) and session (a new session replaces the old).
	dial := func(session uint64) *transport.Conn {
		t.Helper()
		tc, err := tls.Dial("tcp", b.addr(), tlsConfig(cert))
		if err != nil {
			t.Fatal(err)
		}
		c := transport.NewConn(tc, transport.ConnOptions{})
		t.Cleanup(func() { c.Close(); c.Wait() })
		c.Send(transport.Hello{Version: transport.ProtocolVersion, ID: id.ID, Name: "handmade", UDPPort: 1,
			Session: session, Epoch: 7})
		if typ, _, err := c.Read(time.Now().Add(wait)); err != nil || typ != transport.TypeHello {
			t.Fatalf("no hello: %v %v", typ, err)
		}
		if id.ID < b.ID() {
			c.Send(transport.Welcome{Status: transport.WelcomeOK})
		} else if typ, _, err := c.Read(time.Now().Add(wait)); err != nil || typ != transport.TypeWelcome {
			t.Fatalf("no welcome: %v %v", typ, err)
		}
		// Acknowledgements are read and dropped, so that bob's writes
		// never wait on this end.
		go func() {
			for {
				if _, _, err := c.Read(time.Now().Add(time.Minute)); err != nil {
					return
				}
			}
		}()
		return c
	}
	// send sends messages from..to as the test peer's sender would.
	send := func(c *transport.Conn, from, to int) {
		t.Helper()
		for i := from; i <= to; i++ {
			m := transport.Chat{MsgID: uint64(i), Sent: time.Now().UnixNano(), Text: fmt.Sprintf("m %05d", i)}
			for {
				err := c.Send(m)
				if err == nil {
					break
				}
				if !errors.Is(err, transport.ErrQueueFull) {
					t.Fatalf("sending %d: %v", i, err)
				}
				time.Sleep(time.Millisecond)
			}
		}
	}
	// linkOf returns bob's current link to the test peer, if any.
	linkOf := func() *link {
		p := b.peerFor(id.ID)
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.link
	}

	// More than the events' buffers and a full delivery queue hold.
	const first, total = 8000, 8500
	old := dial(1)
	send(old, 1, first)
	var l1 *link
	for deadline := time.Now().Add(wait); ; time.Sleep(5 * time.Millisecond) {
		if l1 = linkOf(); l1 != nil {
			l1.rmu.Lock()
			full := l1.waiting()+l1.settling >= maxArrivals
			l1.rmu.Unlock()
			if full {
				break // its reader waits for room, holding a message
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("bob's delivery queue never filled")
		}
	}

	// The peer comes back on a new connection and sends again everything
	// that was not acknowledged (bob acknowledged nothing: he showed
	// nothing yet), then more.
	fresh := dial(2)
	for deadline := time.Now().Add(wait); linkOf() == l1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the new connection never replaced the old one")
		}
	}
	send(fresh, 1, total)
	var want []string
	for i := 1; i <= total; i++ {
		want = append(want, fmt.Sprintf("m %05d", i))
	}
	chats(t, b, id.ID, want)
	// And nothing more: a duplicate would come right after.
	for quiet := time.After(500 * time.Millisecond); ; {
		select {
		case e := <-b.events:
			if m, ok := e.(Chat); ok {
				t.Fatalf("shown again: %q", m.Text)
			}
		case <-quiet:
			return
		}
	}
}
