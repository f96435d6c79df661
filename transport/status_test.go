package transport

import (
	"errors"
	"strings"
	"testing"
)

// The messages of issue 17 join the round trips, and so the seeds of
// FuzzReadFrame and FuzzOpenDatagram.
func init() {
	roundTrips = append(roundTrips,
		Chat{MsgID: 9, Sent: 5, Text: "waves", Flags: ChatAction},
		Away{Away: true, Text: "lunch"},
		Away{Away: true},
		Away{},
		UDPChat{Sent: 1700000000123456789, Text: "over udp"},
		UDPChat{Flags: ChatAction, Text: "waves over udp"},
	)
}

func TestDecodeStatusMessages(t *testing.T) {
	enc := func(m Message) []byte { return m.Append(nil) }
	// A chat from a sender that predates the flags byte.
	old := Chat{MsgID: 3, Text: "old"}.Append(nil)
	old = old[:len(old)-1]
	tests := []struct {
		name string
		typ  Type
		in   []byte
		want Message
		err  error
	}{
		{"chat without flags byte", TypeChat, old, Chat{MsgID: 3, Text: "old"}, nil},
		{"chat with unknown flag bits", TypeChat, enc(Chat{MsgID: 3, Text: "x", Flags: 0x81}), Chat{MsgID: 3, Text: "x", Flags: 0x81}, nil},
		{"away", TypeAway, enc(Away{Away: true, Text: "at lunch"}), Away{Away: true, Text: "at lunch"}, nil},
		{"back", TypeAway, enc(Away{}), Away{}, nil},
		{"back with a text", TypeAway, enc(Away{Text: "x"}), nil, ErrMalformed},
		{"away text too long", TypeAway, enc(Away{Away: true, Text: strings.Repeat("a", MaxAwayText+1)}), nil, ErrMalformed},
		{"away text with escape", TypeAway, enc(Away{Away: true, Text: "\x1b[2J"}), nil, ErrMalformed},
		{"away bad bool", TypeAway, []byte{2, 0}, nil, ErrMalformed},
		{"away truncated", TypeAway, []byte{1, 5, 'a'}, nil, ErrMalformed},
		{"udp chat", TypeUDPChat, enc(UDPChat{Sent: 1, Text: "hi"}), UDPChat{Sent: 1, Text: "hi"}, nil},
		{"udp chat at the limit", TypeUDPChat, enc(UDPChat{Text: strings.Repeat("a", MaxUDPText)}), UDPChat{Text: strings.Repeat("a", MaxUDPText)}, nil},
		{"udp chat too long", TypeUDPChat, enc(UDPChat{Text: strings.Repeat("a", MaxUDPText+1)}), nil, ErrMalformed},
		{"udp chat control", TypeUDPChat, enc(UDPChat{Text: "a\rb"}), nil, ErrMalformed},
		{"udp chat invalid utf-8", TypeUDPChat, enc(UDPChat{Text: "\xff"}), nil, ErrMalformed},
		{"udp chat truncated", TypeUDPChat, []byte{0, 0, 0}, nil, ErrMalformed},
		{"udp chat huge length", TypeUDPChat, append(make([]byte, 9), 0xff, 0xff, 0xff, 0xff, 0x0f), nil, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode(tt.typ, tt.in)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("got %#v, %v; want %v", got, err, tt.err)
				}
				return
			}
			if err != nil || !equalMsg(got, tt.want) {
				t.Fatalf("got %#v, %v; want %#v", got, err, tt.want)
			}
		})
	}
}

// UDP chat is the one chat message a datagram may carry; TCP chat never.
func TestUDPChatOverDatagrams(t *testing.T) {
	a, b := testChannels(t)
	for _, tt := range []struct {
		m  Message
		ok bool
	}{
		{UDPChat{Sent: 1, Text: "hi"}, true},
		{Chat{MsgID: 1, Text: "hi"}, false},
		{Away{Away: true}, false},
	} {
		p, err := a.Seal(nil, exampleID, tt.m)
		if err != nil {
			t.Fatal(err)
		}
		h, err := ParseHeader(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := b.Open(h)
		if tt.ok != (err == nil) {
			t.Fatalf("%v over udp: %#v, %v", tt.m.Type(), got, err)
		}
		if tt.ok && !equalMsg(got, tt.m) {
			t.Fatalf("got %#v, want %#v", got, tt.m)
		}
	}
	// The longest text fits a datagram the smallest IPv6 MTU carries
	// whole (1280 bytes, less 40 of IPv6 and 8 of UDP headers).
	p, err := a.Seal(nil, strings.Repeat("A", 52), UDPChat{Sent: -1, Flags: 0xff, Text: strings.Repeat("é", MaxUDPText/2)})
	if err != nil {
		t.Fatal(err)
	}
	if len(p) > 1280-48 {
		t.Fatalf("a full udp chat datagram is %d bytes", len(p))
	}
}
