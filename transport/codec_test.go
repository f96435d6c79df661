package transport

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

var roundTrips = []Message{
	Hello{Version: ProtocolVersion, ID: "abc123", Name: "alice@h1", UDPPort: 4242, Session: 1 << 60, Via: 1, TCPPort: 4243},
	Ack{Upto: 77},
	PeerList{Peers: []PeerRef{{ID: "A", Addr: "10.0.0.1:4000"}, {ID: "B", Addr: "[fd00::2]:4001"}}},
	Beat{},
	Welcome{Status: WelcomeDuplicate, Reason: "dup"},
	Chat{MsgID: 7, Direct: true, Sent: 1700000000123456789, Text: "héllo\tworld"},
	Chat{MsgID: 8, Text: ""},
	Nick{Name: "bob"},
	Bye{Reason: "quit"},
	TimeReq{ReqID: 99, T1: -5},
	TimeResp{ReqID: 99, T1: 1, T2: 2, T3: 3, Zone: "CET", ZoneOffset: 3600},
	TimeResp{ReqID: 1, Zone: "", ZoneOffset: -12 * 3600},
	Echo{ReqID: 5, Payload: []byte("ping")},
	Echo{Reply: true, ReqID: 6, Payload: bytes.Repeat([]byte{0, 0xff}, 1000)},
	Probe{Nonce: 12},
	Probe{Ack: true, Nonce: 13},
}

func TestFrameRoundTrip(t *testing.T) {
	for _, m := range roundTrips {
		t.Run(m.Type().String(), func(t *testing.T) {
			f, err := AppendFrame(nil, m)
			if err != nil {
				t.Fatal(err)
			}
			typ, p, _, err := ReadFrame(bytes.NewReader(f), nil)
			if err != nil {
				t.Fatal(err)
			}
			if typ != m.Type() {
				t.Fatalf("type %v, want %v", typ, m.Type())
			}
			got, err := Decode(typ, p)
			if err != nil {
				t.Fatal(err)
			}
			if !equalMsg(got, m) {
				t.Fatalf("got %#v, want %#v", got, m)
			}
		})
	}
}

// equalMsg compares messages treating nil and empty payloads alike.
func equalMsg(a, b Message) bool {
	if ea, ok := a.(Echo); ok {
		eb := b.(Echo)
		return ea.Reply == eb.Reply && ea.ReqID == eb.ReqID && bytes.Equal(ea.Payload, eb.Payload)
	}
	return reflect.DeepEqual(a, b)
}

func TestReadFrameErrors(t *testing.T) {
	chat, _ := AppendFrame(nil, Chat{Text: "hi"})
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty input", nil, io.EOF},
		{"short header", []byte{0, 0}, io.ErrUnexpectedEOF},
		{"zero length", []byte{0, 0, 0, 0}, ErrMalformed},
		{"4 GiB promised", []byte{0xff, 0xff, 0xff, 0xff, 1}, ErrTooLong},
		{"just over the limit", []byte{0, 1, 0, 1}, ErrTooLong},
		{"cut short", chat[:len(chat)-1], io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, err := ReadFrame(bytes.NewReader(tt.in), nil)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestAppendFrameTooLarge(t *testing.T) {
	_, err := AppendFrame(nil, Echo{Payload: make([]byte, MaxFrame)})
	if !errors.Is(err, ErrTooLong) {
		t.Fatalf("err = %v, want ErrTooLong", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	hello := Hello{Version: ProtocolVersion, ID: "x", Name: "n"}.Append(nil)
	tests := []struct {
		name string
		typ  Type
		in   []byte
		want error
	}{
		{"hello without magic", TypeHello, []byte("HTTP/1.1 200 OK"), ErrMalformed},
		{"hello of another version", TypeHello, Hello{Version: 9, ID: "x", Name: "n"}.Append(nil), ErrVersion},
		{"hello cut short", TypeHello, hello[:len(hello)-3], ErrMalformed},
		{"hello with empty id", TypeHello, Hello{Version: ProtocolVersion, Name: "n"}.Append(nil), ErrMalformed},
		{"hello with a space in the name", TypeHello, Hello{Version: ProtocolVersion, ID: "x", Name: "a b"}.Append(nil), ErrMalformed},
		{"chat with escape codes", TypeChat, Chat{Text: "\x1b[2J"}.Append(nil), ErrMalformed},
		{"chat too long", TypeChat, Chat{Text: strings.Repeat("a", MaxText+1)}.Append(nil), ErrTooLong},
		{"chat with bad bool", TypeChat, []byte{0, 0, 0, 0, 0, 0, 0, 1, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0}, ErrMalformed},
		{"string length beyond the input", TypeNick, []byte{50, 'a'}, ErrMalformed},
		{"huge varint length", TypeNick, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, ErrMalformed},
		{"time response zone offset out of range", TypeTimeResp, TimeResp{ZoneOffset: 99 * 3600}.Append(nil), ErrMalformed},
		{"unknown type", Type(200), nil, ErrUnknownType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.typ, tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// Trailing bytes are room for fields a later version adds.
func TestDecodeIgnoresTrailingFields(t *testing.T) {
	p := append(Nick{Name: "bob"}.Append(nil), 1, 2, 3)
	m, err := DecodeNick(p)
	if err != nil || m.Name != "bob" {
		t.Fatalf("got %v, %v", m, err)
	}
}

func TestCheckName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"alice", true}, {"alice@h1", true}, {"zoë", true},
		{"", false}, {"a b", false}, {"/nick", false}, {"a\x1b", false}, {strings.Repeat("x", MaxNameLen+1), false},
	}
	for _, tt := range tests {
		if err := CheckName(tt.name); (err == nil) != tt.ok {
			t.Errorf("CheckName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}
