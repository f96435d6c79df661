package transport

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func testChannels(t testing.TB) (a, b *Channel) {
	k1, k2 := bytes.Repeat([]byte{1}, KeySize), bytes.Repeat([]byte{2}, KeySize)
	a, err := NewChannel(k1, k2)
	if err != nil {
		t.Fatal(err)
	}
	b, err = NewChannel(k2, k1)
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

func open(c *Channel, p []byte) (Message, error) {
	h, err := ParseHeader(p)
	if err != nil {
		return nil, err
	}
	return c.Open(h)
}

func TestSealRoundTrip(t *testing.T) {
	a, b := testChannels(t)
	for _, m := range roundTrips {
		switch m.Type() {
		case TypeTimeReq, TypeTimeResp, TypeEchoReq, TypeEchoResp, TypeProbe, TypeProbeAck:
		default:
			continue
		}
		p, err := a.Seal(nil, aliceID, m)
		if err != nil {
			t.Fatal(err)
		}
		h, err := ParseHeader(p)
		if err != nil || h.Sender() != aliceID {
			t.Fatalf("%v: header %+v, %v", m.Type(), h, err)
		}
		got, err := b.Open(h)
		if err != nil {
			t.Fatalf("%v: %v", m.Type(), err)
		}
		if !equalMsg(got, m) {
			t.Fatalf("%v: got %#v", m.Type(), got)
		}
	}
}

func TestSealedDatagramIsNotCleartext(t *testing.T) {
	a, _ := testChannels(t)
	p, err := a.Seal(nil, aliceID, Echo{ReqID: 1, Payload: []byte("top secret payload")})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(p, []byte("top secret")) {
		t.Fatal("payload visible in the sealed datagram")
	}
}

func TestOpenRejects(t *testing.T) {
	a, b := testChannels(t)
	good, _ := a.Seal(nil, aliceID, Echo{ReqID: 7, Payload: []byte("x")})
	flipped := bytes.Clone(good)
	flipped[len(flipped)-3] ^= 0x10
	hdrFlip := bytes.Clone(good)
	hdrFlip[4] ^= 0x01                                  // in the sender id: authenticated as additional data
	wrongDir, _ := b.Seal(nil, aliceID, Echo{ReqID: 8}) // b's send key is not a's
	chat, _ := a.Seal(nil, aliceID, Chat{Text: "tcp only"})
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"bit flipped in ciphertext", flipped, ErrAuth},
		{"bit flipped in header", hdrFlip, ErrAuth},
		{"sealed with the other direction's key", wrongDir, ErrAuth},
		{"empty", nil, ErrMalformed},
		{"bad magic", []byte("GET / HTTP/1.0"), ErrMalformed},
		{"truncated header", good[:5], ErrMalformed},
		{"TCP-only type", chat, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := open(b, tt.in); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := open(b, good); err != nil {
		t.Fatalf("good datagram after the bad ones: %v", err)
	}
	if _, err := open(b, good); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay: err = %v", err)
	}
}

func TestReplayWindow(t *testing.T) {
	var w replayWindow
	steps := []struct {
		n    uint64
		want bool
	}{
		{0, false}, {1, true}, {1, false}, {3, true}, {2, true}, {2, false},
		{5000, true}, {3, false}, {5000 - windowSize, false}, {5000 - windowSize + 1, true},
		{4999, true}, {4999, false}, {4000, true}, {5001, true}, {4000, false},
		{5000 + 3*windowSize, true}, {5001, false}, {5000 + 3*windowSize - 1, true},
	}
	for i, s := range steps {
		if got := w.accept(s.n); got != s.want {
			t.Fatalf("step %d: accept(%d) = %v, want %v", i, s.n, got, s.want)
		}
	}
}

func TestNewChannelKeySize(t *testing.T) {
	if _, err := NewChannel(make([]byte, 16), make([]byte, KeySize)); err == nil {
		t.Fatal("short key accepted")
	}
}

// aliceID has the shape of a node id; a bit flipped in its first letter
// leaves it one (C becomes B), so a tampered header fails authentication.
var aliceID = "C" + strings.Repeat("A", 51)
