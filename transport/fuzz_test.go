package transport

import (
	"bytes"
	"reflect"
	"testing"
	"unicode/utf8"

	"lanchat/termtext"
)

// hostileSeeds are frames of every registered type with each hostile
// string in each string field, for the fuzzers' corpus.
func hostileSeeds() [][]byte {
	var out [][]byte
	for _, spec := range Specs() {
		b, _ := AppendFrame(nil, spec.Example)
		out = append(out, b)
		v := reflect.ValueOf(spec.Example)
		var idxs [][]int
		var walk func(v reflect.Value, idx []int)
		walk = func(v reflect.Value, idx []int) {
			switch v.Kind() {
			case reflect.String:
				idxs = append(idxs, append([]int(nil), idx...))
			case reflect.Struct:
				for i := 0; i < v.NumField(); i++ {
					walk(v.Field(i), append(idx, i))
				}
			case reflect.Slice:
				if v.Type().Elem().Kind() != reflect.Uint8 {
					for i := 0; i < v.Len(); i++ {
						walk(v.Index(i), append(idx, i))
					}
				}
			}
		}
		walk(v, nil)
		for _, idx := range idxs {
			for _, bad := range hostileStrings[:len(hostileStrings)-1] {
				c := deepCopy(v)
				setLeaf(c, idx, bad)
				if b, err := AppendFrame(nil, c.Interface().(Message)); err == nil {
					out = append(out, b)
				}
			}
		}
	}
	return out
}

// checkDecodedStrings fails if a decoded message holds a string a
// terminal would act on: decoders must have refused it.
func checkDecodedStrings(t *testing.T, m Message) {
	t.Helper()
	var walk func(v reflect.Value, name string)
	walk = func(v reflect.Value, name string) {
		switch v.Kind() {
		case reflect.String:
			s := v.String()
			if !utf8.ValidString(s) {
				t.Fatalf("%s: decoded %q is not valid UTF-8", name, s)
			}
			for _, r := range s {
				if termtext.Unsafe(r) && !(r == '\t' && name == "Chat.Text") {
					t.Fatalf("%s: decoded %q holds %U", name, s, r)
				}
			}
		case reflect.Struct:
			for i := 0; i < v.NumField(); i++ {
				walk(v.Field(i), name+"."+v.Type().Field(i).Name)
			}
		case reflect.Slice:
			if v.Type().Elem().Kind() != reflect.Uint8 {
				for i := 0; i < v.Len(); i++ {
					walk(v.Index(i), name)
				}
			}
		}
	}
	walk(reflect.ValueOf(m), reflect.TypeOf(m).Name())
}

// FuzzReadFrame feeds arbitrary streams to the frame reader and the
// decoders behind it: no input may panic, and whatever decodes must encode
// back to a frame that decodes the same.
func FuzzReadFrame(f *testing.F) {
	for _, m := range roundTrips {
		b, _ := AppendFrame(nil, m)
		f.Add(b)
	}
	for _, b := range hostileSeeds() {
		f.Add(b)
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 1, 200})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		var buf []byte
		for i := 0; i < 16; i++ {
			typ, p, nb, err := ReadFrame(r, buf)
			buf = nb
			if err != nil {
				return
			}
			if len(p)+1 > MaxFrame {
				t.Fatalf("frame of %d bytes passed the limit", len(p)+1)
			}
			m, err := Decode(typ, p)
			if err != nil {
				continue
			}
			checkDecodedStrings(t, m)
			again, err := AppendFrame(nil, m)
			if err != nil {
				t.Fatalf("decoded %v does not encode: %v", typ, err)
			}
			typ2, p2, _, err := ReadFrame(bytes.NewReader(again), nil)
			if err != nil || typ2 != typ {
				t.Fatalf("re-encoded %v does not read back: %v", typ, err)
			}
			if m2, err := Decode(typ2, p2); err != nil || !equalMsg(m, m2) {
				t.Fatalf("re-encoded %v decodes differently: %#v vs %#v (%v)", typ, m, m2, err)
			}
		}
	})
}

// FuzzOpenDatagram: any datagram either fails to open or decodes to a
// message that seals and opens again the same.
func FuzzOpenDatagram(f *testing.F) {
	a, _ := testChannels(f)
	for _, m := range roundTrips {
		if b, err := a.Seal(nil, "seed-sender", m); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("LC"))
	f.Add([]byte{'L', 'C', ProtocolVersion, 0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		a, b := testChannels(t)
		h, err := ParseHeader(data)
		if err != nil {
			return
		}
		m, err := b.Open(h)
		if err != nil {
			return
		}
		checkDecodedStrings(t, m)
		p, err := a.Seal(nil, h.Sender(), m)
		if err != nil {
			t.Fatalf("opened datagram does not seal: %v", err)
		}
		m2, err := open(b, p)
		if err != nil || !equalMsg(m, m2) {
			t.Fatalf("round trip differs: %#v vs %#v (%v)", m, m2, err)
		}
		// Opened in place (as the node's datagram loop does), the same
		// datagram gives the same message; echoes decode in place too.
		p, _ = a.Seal(nil, h.Sender(), m)
		h3, err := ParseHeader(p)
		if err != nil {
			t.Fatal(err)
		}
		typ, payload, err := b.OpenInPlace(h3)
		if err != nil {
			t.Fatalf("in place: %v", err)
		}
		if m3, err := Decode(typ, payload); err != nil || !equalMsg(m, m3) {
			t.Fatalf("in place differs: %#v vs %#v (%v)", m, m3, err)
		}
		if typ == TypeEchoReq || typ == TypeEchoResp {
			if e, err := DecodeEchoInPlace(typ, payload); err != nil || !equalMsg(m, e) {
				t.Fatalf("echo in place differs: %#v vs %#v (%v)", m, e, err)
			}
		}
	})
}
