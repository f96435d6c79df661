package transport

import (
	"bytes"
	"testing"
)

// FuzzReadFrame feeds arbitrary streams to the frame reader and the
// decoders behind it: no input may panic, and whatever decodes must encode
// back to a frame that decodes the same.
func FuzzReadFrame(f *testing.F) {
	for _, m := range roundTrips {
		b, _ := AppendFrame(nil, m)
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
