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

// FuzzDecodeDatagram: any datagram either fails to decode or round-trips.
func FuzzDecodeDatagram(f *testing.F) {
	for _, m := range roundTrips {
		if b, err := AppendDatagram(nil, "seed-sender", m); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("LC"))
	f.Add([]byte{'L', 'C', 1, 10, 0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		dg, err := DecodeDatagram(data)
		if err != nil {
			return
		}
		b, err := AppendDatagram(nil, dg.Sender, dg.Msg)
		if err != nil {
			t.Fatalf("decoded datagram does not encode: %v", err)
		}
		dg2, err := DecodeDatagram(b)
		if err != nil || dg2.Sender != dg.Sender || !equalMsg(dg.Msg, dg2.Msg) {
			t.Fatalf("round trip differs: %#v vs %#v (%v)", dg, dg2, err)
		}
	})
}
