package console

import (
	"testing"
	"time"

	"lanchat/peer"
)

// TestOwnLinesEarlierRun: acknowledgements of ids below the run's first
// (an earlier run's messages, resent from the store) are reported at
// once; those of ids not registered yet are held, and reported when
// stale, with next saying when.
func TestOwnLinesEarlierRun(t *testing.T) {
	bob := peer.Ref{ID: "BOB", Name: "bob"}
	now := time.Unix(1000, 0)
	tests := []struct {
		name     string
		first    uint64
		id       uint64
		wantHeld bool
	}{
		{"earlier run", 500, 200, false},
		{"just below the first", 500, 499, false},
		{"this run, not registered yet", 500, 500, true},
		{"no store", 0, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newOwnLines(tt.first)
			l, all, held := o.acked(bob, tt.id, now)
			if l != nil || all || held != tt.wantHeld {
				t.Fatalf("acked(%d) with first %d = (%v, %v, held %v), want held %v", tt.id, tt.first, l, all, held, tt.wantHeld)
			}
			if !tt.wantHeld {
				if !o.next().IsZero() {
					t.Errorf("next = %v with nothing held", o.next())
				}
				return
			}
			if got, want := o.next(), now.Add(earlyKeep); !got.Equal(want) {
				t.Errorf("next = %v, want %v (when the held ack is stale)", got, want)
			}
			if acks := o.stale(now.Add(earlyKeep/2), false); len(acks) != 0 {
				t.Errorf("stale before earlyKeep returned %v", acks)
			}
			acks := o.stale(now.Add(earlyKeep), false)
			if len(acks) != 1 || acks[0].msgID != tt.id {
				t.Fatalf("stale after earlyKeep = %v, want the ack of %d", acks, tt.id)
			}
			if !o.next().IsZero() {
				t.Errorf("next = %v after the held ack was reported", o.next())
			}
		})
	}
}
