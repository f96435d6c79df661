package console

import (
	"testing"
	"time"

	"lanchat/store"
	"lanchat/transport"
)

// fakeHistory answers /history and /search with fixed lines.
type fakeHistory []store.Line

func (h fakeHistory) History(string, int) ([]store.Line, error)        { return h, nil }
func (h fakeHistory) Search(string, string, int) ([]store.Line, error) { return h, nil }

// /history and /search show actions (/me) as they were shown live.
func TestHistoryShowsActions(t *testing.T) {
	bob := testPeer("bob")
	f := newFake("alice", bob)
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.Local)
	h := fakeHistory{
		{In: true, Peer: bob.ID, PeerName: "bob", Text: "waves", Flags: transport.ChatAction, Sent: at, At: at},
		{In: true, Peer: bob.ID, PeerName: "bob", Text: "hello", Sent: at, At: at},
		{Peer: bob.ID, PeerName: "bob", Direct: true, Text: "nods", Flags: transport.ChatAction, Sent: at, At: at,
			To: []store.Delivery{{Peer: bob.ID, Name: "bob", State: store.StateDelivered}}},
	}
	r := runConsole(t, f, Config{History: h})
	want := "[2026-03-04 05:06:07] * bob waves\n" +
		"[2026-03-04 05:06:07] <bob> hello\n" +
		"[2026-03-04 05:06:07] * alice (to bob) nods\n"
	r.send(t, "/history")
	r.out.wait(t, want)
	r.send(t, "/search o")
	r.out.wait(t, want+want)
}
