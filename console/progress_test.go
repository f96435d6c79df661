package console

import (
	"strings"
	"testing"

	"lanchat/transfer"
)

// TestProgressYielding: a transfer slowed for chat says so, in plain
// lines and in JSON; one at full speed says nothing of it.
func TestProgressYielding(t *testing.T) {
	for _, tc := range []struct {
		name     string
		json     bool
		yielding bool
		want     string
		not      string
	}{
		{"plain, yielding", false, true, "(yielding to chat)", ""},
		{"plain, full speed", false, false, "↑ 25%", "yielding"},
		{"json, yielding", true, true, `"yielding":true`, ""},
		{"json, full speed", true, false, `"event":"transfer_progress"`, "yielding"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			scr := &screen{}
			c := New(Config{Node: newFake("alice"), Out: scr, JSON: tc.json})
			c.showProgress(transfer.Progress{ID: "k3xqk3xq", Peer: "BOB", Dir: transfer.Send,
				Bytes: 1 << 20, Total: 4 << 20, Rate: 1 << 20, Yielding: tc.yielding})
			out := scr.String()
			if !strings.Contains(out, tc.want) || tc.not != "" && strings.Contains(out, tc.not) {
				t.Errorf("output %q: want %q, not %q", out, tc.want, tc.not)
			}
		})
	}
}
