package peer

import (
	"testing"
	"time"
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
