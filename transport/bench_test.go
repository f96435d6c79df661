package transport

import (
	"bytes"
	"testing"
)

// Hot paths of the codec: every chat message is framed and read once,
// every datagram sealed and opened once.

func BenchmarkAppendFrameChat(b *testing.B) {
	m := Chat{MsgID: 1, Sent: 1, Text: string(bytes.Repeat([]byte("x"), 64))}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf, _ = AppendFrame(buf[:0], m)
	}
}

func BenchmarkReadFrameChat(b *testing.B) {
	f, _ := AppendFrame(nil, Chat{MsgID: 1, Sent: 1, Text: string(bytes.Repeat([]byte("x"), 64))})
	r := bytes.NewReader(f)
	var buf []byte
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		r.Reset(f)
		t, p, nb, err := ReadFrame(r, buf)
		buf = nb
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Decode(t, p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSealOpenEcho64(b *testing.B) {
	a, c := testChannels(b)
	m := Echo{ReqID: 1, Payload: make([]byte, 64)}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		var err error
		buf, err = a.Seal(buf[:0], "sender-id", m)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := open(c, buf); err != nil {
			b.Fatal(err)
		}
	}
}
