package peer

import (
	"slices"
	"testing"
	"time"

	"lanchat/transport"
)

// TestListResent: a peer is sent the list of peers again when peers were
// added since its last one, so that a pair that missed each other is
// introduced later. alice and carol miss each other: alice met bob before
// carol did, and carol does not dial alice (her address failed lately),
// so only bob's later list tells alice of carol.
func TestListResent(t *testing.T) {
	a, b, c := startNode(t, "alice"), startNode(t, "bob"), startNode(t, "carol")
	c.dialFailed(a.ID(), a.addr())
	connected(t, a, b)
	connected(t, b, c)
	deadline := time.After(listResend + 2*wait)
	for {
		select {
		case e := <-a.events:
			if up, ok := e.(PeerUp); ok && up.Peer.ID == c.ID() {
				if up.Peer.Via != ViaIntroduced {
					t.Errorf("alice found carol via %v, want introduced", up.Peer.Via)
				}
				return
			}
		case <-deadline:
			t.Fatalf("alice was never introduced to carol (lists sent again after %v)", listResend)
		}
	}
}

// TestListDelta: sent again, a peer list holds only the peers attached
// since the last one sent, which listed the others.
func TestListDelta(t *testing.T) {
	a, b, c, d := startNode(t, "alice"), startNode(t, "bob"), startNode(t, "carol"), startNode(t, "dave")
	connected(t, b, a)
	connected(t, b, c)
	afterCarol := b.peersGen.Load()
	connected(t, b, d)
	ids := func(pl transport.PeerList) []string {
		var out []string
		for _, r := range pl.Peers {
			out = append(out, r.ID)
		}
		slices.Sort(out)
		return out
	}
	sorted := func(s ...string) []string { slices.Sort(s); return s }
	tests := []struct {
		name   string
		except string
		since  uint64
		want   []string
	}{
		{"first list to alice: every other peer", a.ID(), 0, sorted(c.ID(), d.ID())},
		{"to alice again after carol: dave only", a.ID(), afterCarol, []string{d.ID()}},
		{"to dave after his own attach: nothing", d.ID(), b.peersGen.Load(), nil},
	}
	for _, tt := range tests {
		if got := ids(b.announcement(tt.except, tt.since)); !slices.Equal(got, tt.want) {
			t.Errorf("%s: listed %v, want %v", tt.name, got, tt.want)
		}
	}
}
