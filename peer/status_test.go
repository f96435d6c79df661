package peer

import (
	"context"
	"errors"
	"strings"
	"testing"

	"lanchat/identity"
	"lanchat/transport"
)

// Bug 3 of issue 17: names are one per person. A name that a connected,
// reconnecting or known peer holds is refused, whatever its case.
func TestNickToAHeldNameIsRefused(t *testing.T) {
	alice, carol, dave := startNode(t, "alice"), startNode(t, "carol"), startNode(t, "dave")
	connected(t, carol, alice)
	connected(t, carol, dave)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	dave.Leave(ctx, "quit") // gone, but pinned in carol's known peers
	next(t, carol, func(e PeerDown) bool { return e.Peer.ID == dave.ID() })
	for _, tc := range []struct{ name, want string }{
		{"alice", "connected now"},
		{"Alice", "connected now"},
		{"dave", "known peer"},
		{"two words", "space"},
	} {
		err := carol.SetName(tc.name)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("/nick %s: %v, want an error saying %q", tc.name, err, tc.want)
		}
		if carol.Name() != "carol" {
			t.Fatalf("/nick %s was refused, but the name is now %q", tc.name, carol.Name())
		}
	}
	if err := carol.SetName("Carol"); err != nil {
		t.Fatalf("a new case of one's own name: %v", err)
	}
}

// Bug 3 of issue 17, as reported: a peer that takes this node's own name
// anyway (an older version, or a node started under it) is marked, never
// pinned to that name, and /msg with the name does not pick it.
func TestOwnNameIsNeverPinnedToAnother(t *testing.T) {
	alice, carol := startNode(t, "alice"), startNode(t, "carol")
	connected(t, alice, carol)
	// As an older carol would: tell alice its new name without asking.
	l, err := carol.lookupLive("alice")
	if err != nil {
		t.Fatal(err)
	}
	l.conn.Send(transport.Nick{Name: "Alice"})
	next(t, alice, func(e Nick) bool { return e.ID == carol.ID() })
	w := next(t, alice, func(e Warning) bool { return true })
	if !strings.Contains(w.Text, "your own name") || !strings.Contains(w.Text, identity.Grouped(carol.ID())) {
		t.Fatalf("warning %q", w.Text)
	}
	if id, ok := alice.known.PinnedID("Alice"); ok {
		t.Fatalf("alice's own name pinned to %s", id)
	}
	if p, err := alice.Resolve(carol.ID()); err != nil || p.Trust != identity.Conflict {
		t.Fatalf("carol as alice: %+v, %v", p, err)
	}
	if _, err := alice.Tell("alice", "to myself?"); err == nil || !strings.Contains(err.Error(), "your own name") {
		t.Fatalf("/msg alice on alice: %v", err)
	}
	if _, err := carol.Say("i am alice"); err != nil {
		t.Fatal(err)
	}
	if m := next(t, alice, func(e Chat) bool { return e.Text == "i am alice" }); m.From.Trust != identity.Conflict {
		t.Fatalf("the line is not marked: %+v", m.From)
	}

	// A node started under alice's name is treated alike.
	twin := startNode(t, "alice")
	connected(t, twin, alice)
	if _, ok := alice.known.PinnedID("alice"); ok {
		t.Fatal("alice's own name pinned to a node of that name")
	}
}

// Names are compared without case.
func TestResolveByNameAnyCase(t *testing.T) {
	a, bob := startNode(t, "alice"), startNode(t, "Bob")
	connected(t, a, bob)
	if p, err := a.Resolve("bob"); err != nil || p.ID != bob.ID() {
		t.Fatalf("bob: %+v, %v", p, err)
	}
	if _, err := a.Tell("BOB", "any case"); err != nil {
		t.Fatal(err)
	}
	next(t, bob, func(e Chat) bool { return e.Text == "any case" })
}

// A node that comes back under another name is shown with the name it
// had: from the table, or from memory once it had left.
func TestPeerUpSaysTheNameBefore(t *testing.T) {
	a := startNode(t, "alice")
	key, err := identity.New()
	if err != nil {
		t.Fatal(err)
	}
	dave := startNodeWith(t, Config{Name: "dave", Identity: key})
	connected(t, a, dave)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	dave.Leave(ctx, "quit")
	next(t, a, func(e PeerDown) bool { return e.Peer.ID == key.ID })

	piper := startNodeWith(t, Config{Name: "piper", Identity: key})
	if _, err := a.Connect(context.Background(), piper.addr(), ViaManual, ""); err != nil {
		t.Fatal(err)
	}
	up := next(t, a, func(e PeerUp) bool { return e.Peer.ID == key.ID })
	if up.Peer.Name != "piper" || up.Was != "dave" {
		t.Fatalf("after a quit: %q was %q, want piper was dave", up.Peer.Name, up.Was)
	}

	// A restart while connected (the old connection is replaced).
	pat := startNodeWith(t, Config{Name: "pat", Identity: key})
	if _, err := a.Connect(context.Background(), pat.addr(), ViaManual, ""); err != nil {
		t.Fatal(err)
	}
	up = next(t, a, func(e PeerUp) bool { return e.Peer.ID == key.ID && e.Peer.Name == "pat" })
	if up.Was != "piper" {
		t.Fatalf("after a restart: pat was %q, want piper", up.Was)
	}
	if up.Peer.Listen != pat.addr() {
		t.Fatalf("listen address %q, want %q", up.Peer.Listen, pat.addr())
	}
}

// /away and /back reach every peer, those connecting later too, and show
// in the peer's Info.
func TestAwayStatus(t *testing.T) {
	a, b := startNode(t, "alice"), startNode(t, "bob")
	connected(t, a, b)
	if err := a.SetAway(true, "at lunch"); err != nil {
		t.Fatal(err)
	}
	s := next(t, b, func(e Status) bool { return e.Peer.ID == a.ID() })
	if !s.Away || s.Text != "at lunch" {
		t.Fatalf("status %+v", s)
	}
	if p, _ := b.Resolve("alice"); !p.UserAway || p.AwayText != "at lunch" {
		t.Fatalf("info %+v", p)
	}
	c := startNode(t, "carol")
	connected(t, c, a)
	if s := next(t, c, func(e Status) bool { return e.Peer.ID == a.ID() }); !s.Away || s.Text != "at lunch" {
		t.Fatalf("a later peer got %+v", s)
	}
	if err := a.SetAway(false, ""); err != nil {
		t.Fatal(err)
	}
	if s := next(t, b, func(e Status) bool { return e.Peer.ID == a.ID() }); s.Away || s.Text != "" {
		t.Fatalf("back: %+v", s)
	}
	for _, bad := range []struct {
		away bool
		text string
	}{{false, "x"}, {true, strings.Repeat("x", transport.MaxAwayText+1)}, {true, "\x07"}} {
		if err := a.SetAway(bad.away, bad.text); err == nil {
			t.Errorf("SetAway(%v, %q) accepted", bad.away, bad.text)
		}
	}
}

// /msg -udp: one datagram, shown as direct and udp, no message id.
func TestTellUDP(t *testing.T) {
	a, b := startNode(t, "alice"), startNode(t, "bob")
	connected(t, a, b)
	if _, err := a.TellUDP("bob", "over udp", false); err != nil {
		t.Fatal(err)
	}
	m := next(t, b, func(e Chat) bool { return e.UDP })
	if m.Text != "over udp" || !m.Direct || m.MsgID != 0 || m.Action || m.From.ID != a.ID() {
		t.Fatalf("chat %+v", m)
	}
	if _, err := a.TellUDP("bob", "waves", true); err != nil {
		t.Fatal(err)
	}
	if m := next(t, b, func(e Chat) bool { return e.UDP }); !m.Action || m.Text != "waves" {
		t.Fatalf("action %+v", m)
	}
	_, err := a.TellUDP("bob", strings.Repeat("x", transport.MaxUDPText+1), false)
	if !errors.Is(err, transport.ErrTooLong) || !strings.Contains(err.Error(), "without -udp") {
		t.Fatalf("too long: %v", err)
	}
	if _, err := a.TellUDP("nobody", "x", false); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("unknown peer: %v", err)
	}
}

// /me travels as a chat message with the action flag, delivered as any.
func TestActions(t *testing.T) {
	a, b := startNode(t, "alice"), startNode(t, "bob")
	connected(t, a, b)
	if _, err := a.Act("waves"); err != nil {
		t.Fatal(err)
	}
	if m := next(t, b, func(e Chat) bool { return true }); !m.Action || m.Direct || m.Text != "waves" {
		t.Fatalf("group action %+v", m)
	}
	if _, err := a.ActTo("bob", "nods"); err != nil {
		t.Fatal(err)
	}
	if m := next(t, b, func(e Chat) bool { return true }); !m.Action || !m.Direct || m.Text != "nods" {
		t.Fatalf("direct action %+v", m)
	}
}

// /me through the store: the action goes with the message on this run's
// connection, and the sent event says it.
func TestActionsStored(t *testing.T) {
	a, b := newHost(t, "alice").start(t), newHost(t, "bob").start(t)
	connected(t, a, b)
	if _, err := a.Act("waves"); err != nil {
		t.Fatal(err)
	}
	if s := next(t, a, func(e Stored) bool { return true }); !s.Action || s.Text != "waves" {
		t.Fatalf("stored %+v", s)
	}
	if m := next(t, b, func(e Chat) bool { return true }); !m.Action || m.Text != "waves" {
		t.Fatalf("stored action arrived as %+v", m)
	}
}
