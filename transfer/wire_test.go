package transfer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
)

var h32 = bytes.Repeat([]byte{0xab}, hashSize)

// samples has a message of every type.
var samples = []message{
	offerMsg{ID: "abcdefgh", Hash: hashBLAKE3, Entries: []entry{{Path: "d", Dir: true}, {Path: "d/f", Size: 12}, {Path: "g"}}},
	offerMsg{ID: "z2", Hash: hashSHA256, Entries: []entry{{Path: "x", Size: maxFileSize}}},
	acceptMsg{Next: 3, Offset: 4096, Prefix: h32},
	acceptMsg{},
	rejectMsg{ID: "abc", Code: codeRejected, Reason: "no thanks"},
	dataMsg{Index: 1, Offset: 1 << 40, Data: []byte("hello")},
	fileEndMsg{Index: 7, Hash: h32},
	ackMsg{Next: 2, Offset: 77},
	doneMsg{ID: "abcdefgh"},
	cancelMsg{ID: "abcdefgh", Reason: "changed my mind"},
	errorMsg{ID: "abcdefgh", Code: codeNoSpace, Reason: "disk full"},
	pingMsg{},
	resumeMsg{ID: "q"},
}

func TestRoundTrip(t *testing.T) {
	var stream []byte
	for _, m := range samples {
		b, err := appendFrame(nil, m)
		if err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		stream = append(stream, b...)
	}
	r := bytes.NewReader(stream)
	var buf []byte
	for _, want := range samples {
		got, nb, err := readMessage(r, buf)
		buf = nb
		if err != nil {
			t.Fatalf("%T: %v", want, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %#v, want %#v", got, want)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	frame := func(typ byte, p []byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(len(p)+1))
		return append(append(b, typ), p...)
	}
	offer := func(count uint64, rest ...byte) []byte {
		p := appendStr(nil, "abc")
		p = append(p, byte(hashBLAKE3))
		p = binary.AppendUvarint(p, count)
		return append(p, rest...)
	}
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty frame", []byte{0, 0, 0, 0}},
		{"huge control frame", []byte{0, 1, 0, 0, typeAck}},
		{"huge offer", binary.BigEndian.AppendUint32(nil, maxOfferFrame+1)},
		{"huge data", append(binary.BigEndian.AppendUint32(nil, 1+dataHeader+ChunkSize+1), typeData)},
		{"unknown type", frame(99, nil)},
		{"trailing bytes", frame(typePing, []byte{1})},
		{"short ack", frame(typeAck, []byte{0, 0, 0, 1})},
		{"bad id", frame(typeDone, appendStr(nil, "ABC"))},
		{"long id", frame(typeDone, appendStr(nil, strings.Repeat("a", 17)))},
		{"empty id", frame(typeDone, appendStr(nil, ""))},
		{"short hash", frame(typeFileEnd, append([]byte{0, 0, 0, 0}, appendStr(nil, "abc")...))},
		{"prefix without offset", frame(typeAccept, append(make([]byte, 12), appendStr(nil, string(h32))...))},
		{"offset without prefix", frame(typeAccept, append([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 0))},
		{"offset past the limit", frame(typeAck, []byte{0, 0, 0, 0, 0xff, 0, 0, 0, 0, 0, 0, 0})},
		{"unknown code", frame(typeError, append(appendStr(nil, "abc"), 200, 0))},
		{"data without bytes", frame(typeData, make([]byte, 12))},
		{"offer of no entries", frame(typeOffer, offer(0))},
		{"offer of a billion entries", frame(typeOffer, offer(1e9))},
		{"offer claims more than it holds", frame(typeOffer, offer(1000, 0, 1, 'a', 0, 0, 0, 0, 0, 0, 0, 0))},
		{"offer of a symlink kind", frame(typeOffer, offer(1, 2, 1, 'a'))},
		{"offer with unknown hash", frame(typeOffer, append(appendStr(nil, "abc"), 9, 1, 1, 1, 'a'))},
		{"offer with a huge size", frame(typeOffer, offer(1, 0, 1, 'a', 0x7f, 0, 0, 0, 0, 0, 0, 0))},
		{"offer path too long", frame(typeOffer, offer(1, append([]byte{1}, binary.AppendUvarint(nil, maxPathLen+1)...)...))},
		{"cut short", frame(typeAck, make([]byte, 12))[:10]},
	} {
		_, _, err := readMessage(bytes.NewReader(tc.b), nil)
		if err == nil {
			t.Errorf("%s: decoded", tc.name)
		} else if !errors.Is(err, ErrMalformed) && !strings.Contains(err.Error(), "cut short") && !strings.Contains(err.Error(), "EOF") {
			t.Errorf("%s: %v does not wrap ErrMalformed", tc.name, err)
		}
	}
}

// FuzzReadMessage feeds arbitrary streams to the frame reader and every
// message decoder: nothing may panic or allocate beyond the bytes given,
// and what decodes encodes back to the same message. Offers go through
// checkOffer too.
func FuzzReadMessage(f *testing.F) {
	for _, m := range samples {
		b, _ := appendFrame(nil, m)
		f.Add(b)
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, typeOffer})
	f.Add([]byte{0, 0, 0, 5, typeOffer, 1, 'a', 2, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		var buf []byte
		for range 8 {
			m, nb, err := readMessage(r, buf)
			buf = nb
			if err != nil {
				return
			}
			if o, ok := m.(offerMsg); ok {
				checkOffer(o.Entries, limits{maxFiles: maxOfferEntries})
			}
			again, err := appendFrame(nil, m)
			if err != nil {
				t.Fatalf("decoded %#v does not encode: %v", m, err)
			}
			m2, _, err := readMessage(bytes.NewReader(again), nil)
			if err != nil || !reflect.DeepEqual(m, m2) {
				t.Fatalf("re-encoded %#v decodes as %#v (%v)", m, m2, err)
			}
		}
	})
}

// FuzzDecode gives each decoder arbitrary payloads directly.
func FuzzDecode(f *testing.F) {
	for _, m := range samples {
		b, _ := appendFrame(nil, m)
		f.Add(b[4], b[5:])
	}
	f.Fuzz(func(t *testing.T, typ byte, p []byte) {
		m, err := decode(typ, p)
		if err != nil {
			return
		}
		if o, ok := m.(offerMsg); ok {
			checkOffer(o.Entries, limits{maxFiles: maxOfferEntries})
		}
	})
}
