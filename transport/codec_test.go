package transport

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
)

// Two well-formed node ids.
const (
	idA = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	idB = "K7QXM2PAK7QXM2PAK7QXM2PAK7QXM2PAK7QXM2PAK7QXM2PAK7QQ"
)

var roundTrips = []Message{
	Hello{Version: ProtocolVersion, ID: idB, Name: "alice@h1", UDPPort: 4242, Session: 1 << 60, Via: 1, TCPPort: 4243},
	Ack{Upto: 77},
	Ack{Upto: 77, Shown: 80},
	PeerList{Peers: []PeerRef{{ID: idA, Addr: "10.0.0.1:4000"}, {ID: idB, Addr: "[fd00::2]:4001"}}},
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
	hello := Hello{Version: ProtocolVersion, ID: idA, Name: "n"}.Append(nil)
	tests := []struct {
		name string
		typ  Type
		in   []byte
		want error
	}{
		{"hello without magic", TypeHello, []byte("HTTP/1.1 200 OK"), ErrMalformed},
		{"hello of another version", TypeHello, Hello{Version: 9, ID: idA, Name: "n"}.Append(nil), ErrVersion},
		{"hello cut short", TypeHello, hello[:len(hello)-3], ErrMalformed},
		{"hello with empty id", TypeHello, Hello{Version: ProtocolVersion, Name: "n"}.Append(nil), ErrMalformed},
		{"hello with a space in the name", TypeHello, Hello{Version: ProtocolVersion, ID: idA, Name: "a b"}.Append(nil), ErrMalformed},
		{"hello with a short id", TypeHello, Hello{Version: ProtocolVersion, ID: "abc123", Name: "n"}.Append(nil), ErrMalformed},
		{"hello with a non-canonical id", TypeHello, Hello{Version: ProtocolVersion, ID: idA[:51] + "B", Name: "n"}.Append(nil), ErrMalformed},
		{"hello with a full-width name", TypeHello, Hello{Version: ProtocolVersion, ID: idA, Name: "ａｌｉｃｅ"}.Append(nil), ErrMalformed},
		{"hello with an id look-alike name", TypeHello, Hello{Version: ProtocolVersion, ID: idA, Name: "K7QXM2PA"}.Append(nil), ErrMalformed},
		{"chat with a bidi override", TypeChat, Chat{Text: "abc\u202edcba"}.Append(nil), ErrMalformed},
		{"chat with a forged line", TypeChat, Chat{Text: "hi\n[12:00:00] <alice> x"}.Append(nil), ErrMalformed},
		{"bye with an escape", TypeBye, Bye{Reason: "quit\x1b]0;pwned\x07"}.Append(nil), ErrMalformed},
		{"bye too long", TypeBye, Bye{Reason: strings.Repeat("a", MaxReason+1)}.Append(nil), ErrTooLong},
		{"welcome with a forged line", TypeWelcome, Welcome{Status: WelcomeRefused, Reason: "no\n[12:00:00] <alice> hi"}.Append(nil), ErrMalformed},
		{"time response with an escape in the zone", TypeTimeResp, TimeResp{Zone: "CET\x1b[2J"}.Append(nil), ErrMalformed},
		{"peer list with a bad id", TypePeerList, PeerList{Peers: []PeerRef{{ID: "x", Addr: "10.0.0.1:1"}}}.Append(nil), ErrMalformed},
		{"peer list with a host name", TypePeerList, PeerList{Peers: []PeerRef{{ID: idA, Addr: "evil.example:1"}}}.Append(nil), ErrMalformed},
		{"peer list with port 0", TypePeerList, PeerList{Peers: []PeerRef{{ID: idA, Addr: "10.0.0.1:0"}}}.Append(nil), ErrMalformed},
		{"peer list with a zone", TypePeerList, PeerList{Peers: []PeerRef{{ID: idA, Addr: "[fe80::1%\x1b[2J]:1"}}}.Append(nil), ErrMalformed},
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
		{"alice", true}, {"alice@h1", true}, {"zoë", true}, {"Alice", true},
		{"", false}, {"a b", false}, {"/nick", false}, {"#chan", false}, {"a\x1b", false}, {strings.Repeat("x", MaxNameLen+1), false},
		{"ａｌｉｃｅ", false}, {"ali\u202ece", false}, {"K7QX", false},
	}
	for _, tt := range tests {
		if err := CheckName(tt.name); (err == nil) != tt.ok {
			t.Errorf("CheckName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestCheckAddr(t *testing.T) {
	for _, tt := range []struct {
		addr string
		ok   bool
	}{
		{"10.0.0.1:4000", true}, {"[fd00::2]:1", true}, {"192.168.1.2:65535", true}, {"127.0.0.1:80", true},
		{"10.0.0.1", false}, {"10.0.0.1:0", false}, {"10.0.0.1:65536", false}, {"host:80", false},
		{"[fe80::1%eth0]:80", false}, {"0.0.0.0:80", false}, {"[::]:80", false}, {"224.0.0.251:5353", false},
		{"10.0.0.1:80\x1b", false}, {"", false}, {"010.0.0.1:80", false},
	} {
		if err := CheckAddr(tt.addr); (err == nil) != tt.ok {
			t.Errorf("CheckAddr(%q) = %v, want ok=%v", tt.addr, err, tt.ok)
		}
	}
}

func TestCheckZone(t *testing.T) {
	for _, tt := range []struct {
		zone string
		ok   bool
	}{
		{"", true}, {"CET", true}, {"+03", true}, {"-0330", true}, {"America/Argentina/Buenos_Aires", true},
		{strings.Repeat("A", MaxZone+1), false}, {"CE T", false}, {"CET\x1b", false}, {"Zürich", false},
	} {
		if err := CheckZone(tt.zone); (err == nil) != tt.ok {
			t.Errorf("CheckZone(%q) = %v, want ok=%v", tt.zone, err, tt.ok)
		}
	}
}

func TestCheckTextAndReason(t *testing.T) {
	for _, tt := range []struct {
		s            string
		text, reason bool
	}{
		{"hello", true, true}, {"", true, true}, {"héllo 日本 💙", true, true}, {"a\tb", true, false},
		{"a\nb", false, false}, {"a\rb", false, false}, {"\x1b[2J", false, false}, {"a\u009bb", false, false},
		{"a\u202eb", false, false}, {"a\u2066b", false, false}, {"a\u200bb", false, false}, {"a\u2028b", false, false},
		{"a\xffb", false, false}, {strings.Repeat("a", MaxReason+1), true, false},
		{strings.Repeat("a", MaxText+1), false, false},
	} {
		if err := CheckText(tt.s); (err == nil) != tt.text {
			t.Errorf("CheckText(%q) = %v, want ok=%v", clip(tt.s), err, tt.text)
		}
		if err := CheckReason(tt.s); (err == nil) != tt.reason {
			t.Errorf("CheckReason(%q) = %v, want ok=%v", clip(tt.s), err, tt.reason)
		}
	}
}

// hostileStrings are refused by every string field's grammar.
var hostileStrings = []string{
	"\x1b[2J\x1b[H",                      // clear the screen
	"\x1b]0;pwned\x07",                   // set the window title
	"\x1b]52;c;ZWNobyBwd25lZA==\x07",     // write the clipboard
	"x\n[12:00:00] <alice> send the key", // forge a line
	"abc\u202edcba",                      // reorder the line
	"a\u2066b",                           // bidi isolate
	"a\u200bb",                           // zero-width space
	"a\u009bb",                           // C1 CSI
	"a\x7f",                              // DEL
	"\xff\xfe",                           // invalid UTF-8
	strings.Repeat("a", MaxText+1),       // too long for any field
}

// bytesFields are the fields that carry bytes, not text: they are never
// shown as text, so no grammar applies. A new []byte field must be added
// here on purpose.
var bytesFields = map[string]bool{"Echo.Payload": true}

// TestEveryStringFieldIsValidated finds, by reflection, every string of
// every registered message type (nested structs and slice elements too),
// puts each hostile string into it in turn, and checks that the decoder
// refuses the result. A string field added without a check fails here.
func TestEveryStringFieldIsValidated(t *testing.T) {
	seen := map[Type]bool{}
	total := 0
	for _, spec := range Specs() {
		seen[spec.Type] = true
		if !spec.Type.Known() || spec.Type.String() != spec.Name {
			t.Errorf("%v: registry entry not reachable through Type", spec.Type)
		}
		// The example itself decodes.
		if got, err := Decode(spec.Type, spec.Example.Append(nil)); err != nil || !equalMsg(got, spec.Example) {
			t.Errorf("%v: example %#v does not round-trip: %#v, %v", spec.Type, spec.Example, got, err)
			continue
		}
		typ := reflect.TypeOf(spec.Example)
		paths := leafPaths(t, reflect.ValueOf(spec.Example), typ.Name())
		for _, p := range paths {
			total++
			for _, bad := range hostileStrings {
				v := deepCopy(reflect.ValueOf(spec.Example))
				setLeaf(v, p.index, bad)
				m := v.Interface().(Message)
				if _, err := Decode(spec.Type, m.Append(nil)); err == nil {
					t.Errorf("%v: %s = %q is accepted at decode", spec.Type, p.name, clip(bad))
				}
			}
		}
	}
	for ty := 0; ty < 256; ty++ {
		if Type(ty).Known() && !seen[Type(ty)] {
			t.Errorf("type %d is known but not in Specs", ty)
		}
	}
	t.Logf("%d message types, %d string fields, each refuses %d hostile values", len(seen), total, len(hostileStrings))
	if total < 9 {
		t.Errorf("found only %d string fields: the walk is broken", total)
	}
}

type leafPath struct {
	name  string
	index []int // field or element indexes from the message down
}

// leafPaths lists the string leaves under v. Empty slices fail the test:
// their element's strings would go unchecked.
func leafPaths(t *testing.T, v reflect.Value, name string) []leafPath {
	t.Helper()
	var out []leafPath
	var walk func(v reflect.Value, name string, idx []int)
	walk = func(v reflect.Value, name string, idx []int) {
		switch v.Kind() {
		case reflect.String:
			out = append(out, leafPath{name, append([]int(nil), idx...)})
		case reflect.Struct:
			for i := 0; i < v.NumField(); i++ {
				f := v.Type().Field(i)
				if !f.IsExported() {
					t.Errorf("%s.%s: unexported field in a message", name, f.Name)
					continue
				}
				walk(v.Field(i), name+"."+f.Name, append(idx, i))
			}
		case reflect.Slice, reflect.Array:
			if v.Type().Elem().Kind() == reflect.Uint8 {
				if !bytesFields[name] {
					t.Errorf("%s: a byte field not listed in bytesFields", name)
				}
				return
			}
			if v.Len() == 0 {
				t.Errorf("%s: the registry example has no element, so its strings are not checked", name)
			}
			for i := 0; i < v.Len(); i++ {
				walk(v.Index(i), fmt.Sprintf("%s[%d]", name, i), append(idx, i))
			}
		case reflect.Map, reflect.Pointer, reflect.Interface:
			t.Errorf("%s: %v fields are not walked: extend leafPaths", name, v.Kind())
		}
	}
	walk(v, name, nil)
	return out
}

// deepCopy returns an addressable copy of v with its slices copied.
func deepCopy(v reflect.Value) reflect.Value {
	c := reflect.New(v.Type()).Elem()
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			c.Field(i).Set(deepCopy(v.Field(i)))
		}
	case reflect.Slice:
		if v.IsNil() {
			return c
		}
		c.Set(reflect.MakeSlice(v.Type(), v.Len(), v.Len()))
		for i := 0; i < v.Len(); i++ {
			c.Index(i).Set(deepCopy(v.Index(i)))
		}
	default:
		c.Set(v)
	}
	return c
}

func setLeaf(v reflect.Value, idx []int, s string) {
	for _, i := range idx {
		switch v.Kind() {
		case reflect.Struct:
			v = v.Field(i)
		default:
			v = v.Index(i)
		}
	}
	v.SetString(s)
}

// The chat decoder is on the measured path: one allocation, the text.
func TestDecodeChatAllocations(t *testing.T) {
	p := Chat{MsgID: 1, Sent: 1, Text: strings.Repeat("héllo wörld ", 20)}.Append(nil)
	if n := testing.AllocsPerRun(200, func() { _, _ = DecodeChat(p) }); n > 1 {
		t.Errorf("DecodeChat: %v allocations, want at most 1", n)
	}
}
