package peer

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"lanchat/store"
)

// TestHeldAcks: acknowledgements that come before their message was
// reported stored are held, and the pump gets them once it reports the
// message, in id order (in the order they came for one id), those of a
// failed commit left out, whatever order the peers' acknowledgements
// interleave in.
func TestHeldAcks(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, b := Ref{ID: "A", Name: "a"}, Ref{ID: "B", Name: "b"}
	// Each step is an acknowledgement of ids by peer (hold returns
	// those reported already), or, with peer nil, the pump reporting
	// ids[0] (reported returns the acknowledgements due).
	steps := []struct {
		peer   *Ref
		ids    []uint64
		failed bool
		want   string
	}{
		{peer: &a, ids: []uint64{5, 6, 7}, want: "[]"},
		{peer: &b, ids: []uint64{3, 6}, want: "[]"},
		{peer: &b, ids: []uint64{8}, want: "[]"},
		{ids: []uint64{2}, want: "[]"},
		{ids: []uint64{4}, want: "[b3]"},
		{ids: []uint64{6}, want: "[a5 a6 b6]"},
		{ids: []uint64{7}, failed: true, want: "[]"},
		{peer: &a, ids: []uint64{7, 9}, want: "[7]"}, // 7 was reported (failed): not held
		{ids: []uint64{9}, want: "[b8 a9]"},
	}
	n := &Node{store: st}
	for i, s := range steps {
		var got string
		if s.peer != nil {
			got = fmt.Sprint(n.hold(*s.peer, slices.Clone(s.ids)))
		} else {
			names := []string{}
			for _, d := range n.reported(s.ids[0], s.failed) {
				names = append(names, fmt.Sprintf("%s%d", d.Peer.Name, d.MsgID))
			}
			got = fmt.Sprint(names)
		}
		if got != s.want {
			t.Errorf("step %d: got %s, want %s", i, got, s.want)
		}
	}
	if len(n.held.held) != 0 {
		t.Errorf("%d acknowledgements still held", len(n.held.held))
	}
}
