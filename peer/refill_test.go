package peer

import (
	"slices"
	"testing"
)

// TestRefillRace: a message that becomes durable while refill reads the
// store, and that the pump therefore leaves on disk, is loaded all the
// same: otherwise the next message would go in its place, and its
// cumulative acknowledgement would remove the skipped one unsent.
func TestRefillRace(t *testing.T) {
	ha, hb := newHost(t, "alice"), newHost(t, "bob")
	a, b := ha.start(t), hb.start(t)
	connected(t, a, b)
	b.stop()
	next(t, a, func(e PeerDown) bool { return e.Peer.ID == hb.id.ID })
	one, err := a.Tell("bob", "one")
	if err != nil {
		t.Fatal(err)
	}
	next(t, a, func(e Stored) bool { return e.MsgID == one.MsgID })
	a.mu.Lock()
	p := a.peers[hb.id.ID]
	a.mu.Unlock()
	// As after a restart: the window is empty, everything is on disk.
	p.mu.Lock()
	p.outbox, p.windowBytes, p.lastLoaded, p.sent, p.spilled = nil, 0, 0, 0, true
	p.mu.Unlock()
	var two Sent
	testHookRefillRead = func() {
		testHookRefillRead = nil
		if two, err = a.Tell("bob", "two"); err != nil {
			t.Error(err)
			return
		}
		// The pump has offered it: it found the peer spilled.
		next(t, a, func(e Stored) bool { return e.MsgID == two.MsgID })
	}
	defer func() { testHookRefillRead = nil }()
	a.refill(p)
	p.mu.Lock()
	var ids []uint64
	for _, m := range p.outbox {
		ids = append(ids, m.msg.MsgID)
	}
	p.mu.Unlock()
	if want := []uint64{one.MsgID, two.MsgID}; !slices.Equal(ids, want) {
		t.Fatalf("window after refill: %v, want %v", ids, want)
	}
}
