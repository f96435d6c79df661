package peer

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"lanchat/identity"
	"lanchat/store"
	"lanchat/transport"
)

// host is what a node keeps between runs: its key, known peers and store.
type host struct {
	name  string
	id    *identity.Identity
	known *identity.Known
	path  string
}

func newHost(t *testing.T, name string) *host {
	t.Helper()
	id, err := identity.New()
	if err != nil {
		t.Fatal(err)
	}
	known, _ := identity.LoadKnown("")
	return &host{name: name, id: id, known: known, path: filepath.Join(t.TempDir(), "store.db")}
}

// start runs a node of h with its store.
func (h *host) start(t *testing.T) *testNode {
	t.Helper()
	return h.startWith(t, false)
}

// startWith runs a node of h with its store; confirm sets ConfirmShown
// (the test then calls Chat.Shown, as the console does).
func (h *host) startWith(t *testing.T, confirm bool) *testNode {
	t.Helper()
	st, err := store.Open(h.path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return startNodeWith(t, Config{Name: h.name, Identity: h.id, Known: h.known, Store: st, ConfirmShown: confirm})
}

// chats collects n's chat events from sender id until it has count of
// them, failing on a duplicate or one out of order.
func chats(t *testing.T, n *testNode, from string, want []string) {
	t.Helper()
	for i, w := range want {
		m := next(t, n, func(e Chat) bool { return e.From.ID == from })
		if m.Text != w {
			t.Fatalf("%s: message %d from %s is %q, want %q", n.Name(), i, ShortID(from), m.Text, w)
		}
	}
}

func texts(prefix string, n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("%s %04d", prefix, i))
	}
	return out
}

// TestStoredDelivery: with stores, every message is reported stored, then
// delivered, and shown once in order.
func TestStoredDelivery(t *testing.T) {
	a, b := newHost(t, "alice").start(t), newHost(t, "bob").start(t)
	connected(t, a, b)
	want := texts("m", 300)
	for _, w := range want {
		if _, err := a.Say(w); err != nil {
			t.Fatal(err)
		}
	}
	chats(t, b, a.ID(), want)
	stored, delivered := 0, 0
	deadline := time.After(wait)
	for stored < len(want) || delivered < len(want) {
		select {
		case e := <-a.events:
			switch e.(type) {
			case Stored:
				stored++
			case Delivered:
				delivered++
			}
		case <-deadline:
			t.Fatalf("%d stored, %d delivered of %d", stored, delivered, len(want))
		}
	}
	if n := a.PendingCount(); n != 0 {
		t.Errorf("%d pending after every delivery", n)
	}
}

// TestStoredAcrossRestarts: alice writes to bob while bob is not running,
// alice restarts, then bob comes: every message arrives once, in order,
// and none is shown again after bob restarts.
func TestStoredAcrossRestarts(t *testing.T) {
	ha, hb := newHost(t, "alice"), newHost(t, "bob")
	a, b := ha.start(t), hb.start(t)
	connected(t, a, b)
	b.stop()
	next(t, a, func(e PeerDown) bool { return e.Peer.ID == b.ID() })
	want := texts("while away", 200)
	for _, w := range want {
		if _, err := a.Tell("bob", w); err != nil {
			t.Fatal(err)
		}
	}
	for range want {
		next[Stored](t, a, nil)
	}
	a.stop()

	a = ha.start(t)
	if n := a.PendingCount(); n != len(want) {
		t.Fatalf("after restarting, alice has %d messages waiting, want %d", n, len(want))
	}
	// A peer known from an earlier session, by name.
	if _, err := a.Tell("bob", "one more"); err != nil {
		t.Fatalf("direct message to bob, known but not seen this session: %v", err)
	}
	want = append(want, "one more")
	b = hb.start(t)
	connected(t, b, a)
	chats(t, b, a.ID(), want)
	for range want {
		next(t, a, func(e Delivered) bool { return e.Peer.ID == hb.id.ID })
	}
	// bob restarts: nothing is shown twice (alice resends nothing: all
	// was acknowledged; and what she would resend is known to bob).
	b.stop()
	b = hb.start(t)
	connected(t, b, a)
	if _, err := a.Tell("bob", "after"); err != nil {
		t.Fatal(err)
	}
	if m := next(t, b, func(e Chat) bool { return e.From.ID == a.ID() }); m.Text != "after" {
		t.Fatalf("bob after his restart got %q first", m.Text)
	}
}

// TestWindowRefill: more messages than a peer's window wait on disk and
// go, in order, once it is connected; /drop discards what waits.
func TestWindowRefill(t *testing.T) {
	ha, hb := newHost(t, "alice"), newHost(t, "bob")
	a, b := ha.start(t), hb.start(t)
	connected(t, a, b)
	b.stop()
	next(t, a, func(e PeerDown) bool { return e.Peer.ID == b.ID() })
	want := texts("bulk", 2*windowMessages+7)
	// In slices that alice's events can hold while nobody reads them.
	for i, w := range want {
		if _, err := a.Tell("bob", w); err != nil {
			t.Fatal(err)
		}
		if i%500 == 499 || i == len(want)-1 {
			for range i%500 + 1 {
				next[Stored](t, a, nil)
			}
		}
	}
	a.mu.Lock()
	p := a.peers[hb.id.ID]
	a.mu.Unlock()
	if p != nil {
		p.mu.Lock()
		held := len(p.outbox)
		p.mu.Unlock()
		if held > windowMessages {
			t.Errorf("alice holds %d messages for bob in memory, window %d", held, windowMessages)
		}
	}
	b = hb.start(t)
	connected(t, b, a)
	// alice's events are read meanwhile (a node whose events nobody reads
	// stops), up to bob's last acknowledgement.
	delivered, quit := make(chan int, 1), make(chan struct{})
	defer close(quit)
	go func() {
		n := 0
		for n < len(want) {
			select {
			case e := <-a.events:
				if d, ok := e.(Delivered); ok && d.Peer.ID == hb.id.ID {
					n++
				}
			case <-quit:
				delivered <- n
				return
			}
		}
		delivered <- n
	}()
	chats(t, b, a.ID(), want)
	select {
	case <-delivered:
	case <-time.After(wait):
		t.Fatalf("not all %d messages reported delivered within %v", len(want), wait)
	}
	if n := a.PendingCount(); n != 0 {
		t.Fatalf("%d still pending after bob acknowledged everything", n)
	}

	// /drop: what waits for a peer not connected is discarded, counted.
	b.stop()
	next(t, a, func(e PeerDown) bool { return e.Peer.ID == hb.id.ID })
	for i := range 5 {
		if _, err := a.Tell("bob", fmt.Sprint("dropped ", i)); err != nil {
			t.Fatal(err)
		}
		next[Stored](t, a, nil)
	}
	if _, n, err := a.Drop("bob"); err != nil || n != 5 {
		t.Fatalf("drop: %d, %v; want 5", n, err)
	}
	if n := a.PendingCount(); n != 0 {
		t.Errorf("%d pending after /drop", n)
	}
}

// TestStoreFullRefused: a peer over its bound gets an error naming it;
// nothing is silently dropped, and the others still get the message.
func TestStoreFullRefused(t *testing.T) {
	ha, hb, hc := newHost(t, "alice"), newHost(t, "bob"), newHost(t, "carol")
	st, err := store.Open(ha.path, store.Options{PeerMessages: 10})
	if err != nil {
		t.Fatal(err)
	}
	a := startNodeWith(t, Config{Name: "alice", Identity: ha.id, Known: ha.known, Store: st})
	b, c := hb.start(t), hc.start(t)
	connected(t, a, b)
	connected(t, a, c)
	b.stop()
	next(t, a, func(e PeerDown) bool { return e.Peer.ID == hb.id.ID })
	for i := range 10 {
		if _, err := a.Say(fmt.Sprint("fits ", i)); err != nil {
			t.Fatal(err)
		}
	}
	for range 10 {
		next(t, a, func(e Delivered) bool { return e.Peer.ID == c.ID() })
	}
	sent, err := a.Say("too many")
	if !errors.Is(err, store.ErrFull) {
		t.Fatalf("11th message to away bob: %v, want store.ErrFull", err)
	}
	if len(sent.To) != 1 || sent.To[0].ID != c.ID() {
		t.Fatalf("the message went to %+v, want carol alone", sent.To)
	}
	chats(t, c, a.ID(), []string{"fits 0", "fits 1", "fits 2", "fits 3", "fits 4", "fits 5", "fits 6", "fits 7", "fits 8", "fits 9", "too many"})
	next(t, a, func(e Delivered) bool { return e.Peer.ID == c.ID() && e.MsgID == sent.MsgID })
	if n := a.PendingCount(); n != 10 {
		t.Errorf("%d pending, want bob's 10", n)
	}
}

// TestAckAfterShown: with ConfirmShown, a stored message is acknowledged
// only once the events' reader says it showed it.
func TestAckAfterShown(t *testing.T) {
	ha, hb := newHost(t, "alice"), newHost(t, "bob")
	a := ha.start(t)
	b := hb.startWith(t, true)
	connected(t, a, b)
	if _, err := a.Say("show me first"); err != nil {
		t.Fatal(err)
	}
	m := next(t, b, func(e Chat) bool { return e.Text == "show me first" })
	if m.Shown == nil {
		t.Fatal("no Shown in a chat event with ConfirmShown")
	}
	time.Sleep(shownWait + 500*time.Millisecond)
	if n := a.PendingCount(); n != 1 {
		t.Fatalf("acknowledged before it was shown: %d pending", n)
	}
	m.Shown(m.MsgID)
	next(t, a, func(e Delivered) bool { return e.MsgID == m.MsgID })
}

// TestAckUpToShown: with ConfirmShown, what was shown is acknowledged
// while a later message waits to be shown.
func TestAckUpToShown(t *testing.T) {
	ha, hb := newHost(t, "alice"), newHost(t, "bob")
	a := ha.start(t)
	b := hb.startWith(t, true)
	connected(t, a, b)
	for _, text := range []string{"one", "two"} {
		if _, err := a.Say(text); err != nil {
			t.Fatal(err)
		}
	}
	one := next(t, b, func(e Chat) bool { return e.Text == "one" })
	two := next(t, b, func(e Chat) bool { return e.Text == "two" })
	one.Shown(one.MsgID)
	next(t, a, func(e Delivered) bool { return e.MsgID == one.MsgID })
	time.Sleep(shownWait + 500*time.Millisecond)
	if n := a.PendingCount(); n != 1 {
		t.Fatalf("%d pending while the second message is not shown, want 1", n)
	}
	two.Shown(two.MsgID)
	next(t, a, func(e Delivered) bool { return e.MsgID == two.MsgID })
}

// TestActionResentFromDisk: an action (/me) written while its recipient is
// away is still an action when it is sent from disk after the sender
// restarted, and in the history of both.
func TestActionResentFromDisk(t *testing.T) {
	ha, hb := newHost(t, "alice"), newHost(t, "bob")
	a, b := ha.start(t), hb.start(t)
	connected(t, a, b)
	b.stop()
	next(t, a, func(e PeerDown) bool { return e.Peer.ID == b.ID() })
	for _, send := range []func() (Sent, error){
		func() (Sent, error) { return a.ActTo("bob", "waves") },
		func() (Sent, error) { return a.Tell("bob", "says hi") },
	} {
		s, err := send()
		if err != nil {
			t.Fatal(err)
		}
		next(t, a, func(e Stored) bool { return e.MsgID == s.MsgID })
	}
	a.stop()
	a = ha.start(t)
	b = hb.start(t)
	connected(t, b, a)
	for _, want := range []struct {
		text   string
		action bool
	}{{"waves", true}, {"says hi", false}} {
		m := next(t, b, func(e Chat) bool { return e.From.ID == a.ID() })
		if m.Text != want.text || m.Action != want.action {
			t.Fatalf("bob got %q, action %v; want %q, action %v", m.Text, m.Action, want.text, want.action)
		}
	}
	for _, st := range []*store.Store{a.store, b.store} {
		// A message is shown while its commit runs: wait for it.
		var lines []store.Line
		var err error
		for deadline := time.Now().Add(wait); ; time.Sleep(10 * time.Millisecond) {
			lines, err = st.History("", 2)
			if err != nil || len(lines) == 2 || time.Now().After(deadline) {
				break
			}
		}
		if err != nil || len(lines) != 2 {
			t.Fatalf("history: %d lines, %v", len(lines), err)
		}
		if lines[0].Flags != transport.ChatAction || lines[1].Flags != 0 {
			t.Errorf("history flags %#x, %#x; want the action first", lines[0].Flags, lines[1].Flags)
		}
	}
}

// TestShownAfterKill: a message stored but never shown (the process died
// between the two) is not acknowledged, and is shown when its sender
// sends it again to the restarted node.
func TestShownAfterKill(t *testing.T) {
	ha, hb := newHost(t, "alice"), newHost(t, "bob")
	a := ha.start(t)
	b := hb.startWith(t, true)
	connected(t, a, b)
	if _, err := a.Say("stored, never shown"); err != nil {
		t.Fatal(err)
	}
	// Handed to the events' reader, which never confirms it shown.
	next(t, b, func(e Chat) bool { return e.Text == "stored, never shown" })
	time.Sleep(shownWait + 500*time.Millisecond)
	if n := a.PendingCount(); n != 1 {
		t.Fatalf("%d pending while bob has not shown the message, want 1", n)
	}
	b.stop()
	next(t, a, func(e PeerDown) bool { return e.Peer.ID == hb.id.ID })
	b = hb.startWith(t, true)
	connected(t, b, a)
	m := next(t, b, func(e Chat) bool { return e.Text == "stored, never shown" })
	m.Shown(m.MsgID)
	next(t, a, func(e Delivered) bool { return e.MsgID == m.MsgID })
}
