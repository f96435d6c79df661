package peer

import (
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"lanchat/store"
)

// commitGate is a store's BeforeCommit hook: while held, its commits wait;
// fail makes them fail.
type commitGate struct {
	mu   sync.Mutex
	open chan struct{} // nil: commits pass
	fail error
}

func (g *commitGate) hook() error {
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	if open != nil {
		select {
		case <-open:
		case <-time.After(wait):
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.fail
}

// hold makes the next commits wait for release.
func (g *commitGate) hold() {
	g.mu.Lock()
	g.open = make(chan struct{})
	g.mu.Unlock()
}

// release lets the commits go, failing them with fail when not nil.
func (g *commitGate) release(fail error) {
	g.mu.Lock()
	if g.open != nil {
		close(g.open)
		g.open = nil
	}
	g.fail = fail
	g.mu.Unlock()
}

// startGated runs a node of h whose store's commits go through g.
func (h *host) startGated(t *testing.T, g *commitGate, confirm bool) *testNode {
	t.Helper()
	st, err := store.Open(h.path, store.Options{BeforeCommit: g.hook})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.release(nil) }) // before the store closes
	return startNodeWith(t, Config{Name: h.name, Identity: h.id, Known: h.known, Store: st, ConfirmShown: confirm})
}

// quiet checks that n emits no event that bad accepts within d: used only
// while what would cause one is held back (a commit at a gate), so that
// its absence says nothing of speed.
func quiet[E Event](t *testing.T, n *testNode, d time.Duration, bad func(E) bool) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case e := <-n.events:
			if ev, ok := e.(E); ok && (bad == nil || bad(ev)) {
				t.Fatalf("%s: %T %+v while its cause is held back", n.Name(), ev, ev)
			}
		case <-deadline:
			return
		}
	}
}

// TestSentWhileCommitting: a message goes to its peer while the sender's
// commit runs, and the receiver shows it while its own runs; Stored waits
// for the sender's commit, the acknowledgement for the receiver's, and
// Delivered never comes before Stored.
func TestSentWhileCommitting(t *testing.T) {
	tests := []struct {
		name string
		// held: whose commits are held while the message goes.
		held string
	}{
		{"sender's commit held", "alice"},
		{"receiver's commit held", "bob"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ga, gb commitGate
			a := newHost(t, "alice").startGated(t, &ga, false)
			b := newHost(t, "bob").startGated(t, &gb, true)
			connected(t, a, b)
			g := &ga
			if tt.held == "bob" {
				g = &gb
			}
			g.hold()
			s, err := a.Say("while committing")
			if err != nil {
				t.Fatal(err)
			}
			m := next(t, b, func(e Chat) bool { return e.MsgID == s.MsgID })
			m.Shown(m.MsgID)
			// Held: alice may not report it stored (her commit), nor
			// delivered (either commit).
			if tt.held == "alice" {
				quiet(t, a, 300*time.Millisecond, func(e Stored) bool { return e.MsgID == s.MsgID })
			} else {
				quiet(t, a, 300*time.Millisecond, func(e Delivered) bool { return e.MsgID == s.MsgID })
				if n := a.PendingCount(); n != 1 {
					t.Errorf("%d pending while bob's commit is held, want 1", n)
				}
			}
			g.release(nil)
			order := events(t, a, s.MsgID)
			if tt.held == "alice" && order != "stored delivered" {
				t.Errorf("alice reported %q, want stored then delivered", order)
			}
		})
	}
}

// events waits for the Stored and Delivered events of message id (one of
// them may have come already) and names them in the order they came.
func events(t *testing.T, n *testNode, id uint64) string {
	t.Helper()
	var got []string
	deadline := time.After(wait)
	for {
		select {
		case e := <-n.events:
			switch e := e.(type) {
			case Stored:
				if e.MsgID == id {
					got = append(got, "stored")
				}
			case Delivered:
				if e.MsgID == id {
					got = append(got, "delivered")
					return strings.Join(got, " ")
				}
			}
		case <-deadline:
			t.Fatalf("%s: only %v of message %d within %v", n.Name(), got, id, wait)
		}
	}
}

// TestCommitFailsAfterSent: the sender's commit fails after the message
// went: the Problem says it may have reached the peer and will not be sent
// again, it is not reported stored, and it is not sent again, not even on
// a new connection to a receiver that lost it too (its own commit failed,
// so it was never acknowledged).
func TestCommitFailsAfterSent(t *testing.T) {
	var ga, gb commitGate
	ha, hb := newHost(t, "alice"), newHost(t, "bob")
	a := ha.startGated(t, &ga, false)
	b := hb.startGated(t, &gb, false)
	connected(t, a, b)
	ga.hold()
	gb.hold()
	s, err := a.Say("lost on disk")
	if err != nil {
		t.Fatal(err)
	}
	next(t, b, func(e Chat) bool { return e.MsgID == s.MsgID })
	ga.release(syscall.ENOSPC)
	p := next(t, a, func(e Problem) bool { return strings.Contains(e.Err.Error(), "lost on disk") })
	for _, want := range []string{"not stored on disk", "may have reached bob", "will not be sent again", "disk full"} {
		if !strings.Contains(p.Err.Error(), want) {
			t.Errorf("problem %q does not say %q", p.Err, want)
		}
	}
	ga.release(nil)
	if n := a.PendingCount(); n != 0 {
		t.Errorf("%d pending after the failed commit, want 0", n)
	}
	// Bob's commit fails too: he closes the connection, unacknowledged,
	// and alice reconnects.
	gb.release(syscall.EIO)
	next(t, b, func(e Problem) bool { return strings.Contains(e.Err.Error(), "could not be stored") })
	gb.release(nil)
	next(t, a, func(e PeerUp) bool { return e.Peer.ID == hb.id.ID })
	last, err := a.Say("last")
	if err != nil {
		t.Fatal(err)
	}
	if m := next(t, b, func(e Chat) bool { return e.From.ID == a.ID() }); m.MsgID != last.MsgID {
		t.Errorf("bob got %q (%d) after reconnecting, want only %q", m.Text, m.MsgID, "last")
	}
	if got := events(t, a, last.MsgID); got != "stored delivered" {
		t.Errorf("the next message: %q", got)
	}
}

// TestShownNotShownAgain: a receiver that showed a message and lost it
// before it was stored (its commit failed, as a kill would lose it) gets
// it again marked shown: it stores it and does not show it twice; the
// sender then sees it delivered.
func TestShownNotShownAgain(t *testing.T) {
	var gb commitGate
	ha, hb := newHost(t, "alice"), newHost(t, "bob")
	a := ha.start(t)
	b := hb.startGated(t, &gb, true)
	connected(t, a, b)
	gb.hold()
	s, err := a.Say("shown, then lost")
	if err != nil {
		t.Fatal(err)
	}
	m := next(t, b, func(e Chat) bool { return e.MsgID == s.MsgID })
	m.Shown(m.MsgID)
	a.mu.Lock()
	p := a.peers[hb.id.ID]
	a.mu.Unlock()
	for deadline := time.Now().Add(wait); ; time.Sleep(5 * time.Millisecond) {
		p.mu.Lock()
		told := p.shownUpto >= s.MsgID
		p.mu.Unlock()
		if told {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice not told that bob showed %d", s.MsgID)
		}
	}
	gb.release(syscall.EIO)
	next(t, b, func(e Problem) bool { return strings.Contains(e.Err.Error(), "could not be stored") })
	gb.release(nil)
	next(t, a, func(e PeerUp) bool { return e.Peer.ID == hb.id.ID })
	after, err := a.Say("after")
	if err != nil {
		t.Fatal(err)
	}
	n := next(t, b, func(e Chat) bool { return e.From.ID == a.ID() })
	if n.MsgID != after.MsgID {
		t.Fatalf("bob showed %q (%d) again, want only %q", n.Text, n.MsgID, "after")
	}
	n.Shown(n.MsgID)
	next(t, a, func(e Delivered) bool { return e.MsgID == after.MsgID })
	if got := a.PendingCount(); got != 0 {
		t.Errorf("%d pending once bob acknowledged both", got)
	}
	lines, err := b.store.History("", 10)
	if err != nil || len(lines) != 2 || lines[0].Text != "shown, then lost" {
		t.Errorf("bob's history: %+v, %v; want both lines", lines, err)
	}
}
