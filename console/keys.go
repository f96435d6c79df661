package console

import (
	"bytes"
	"io"
)

// Keys readline does not know, translated to the control characters it
// does: Home and End as tmux and screen send them (and rxvt). readline
// itself handles ESC [ H, ESC [ F, ESC O H and ESC O F.
var keyMap = []struct{ seq, key []byte }{
	{[]byte("\x1b[1~"), []byte{0x01}}, // Home: Ctrl-A
	{[]byte("\x1b[7~"), []byte{0x01}},
	{[]byte("\x1b[4~"), []byte{0x05}}, // End: Ctrl-E
	{[]byte("\x1b[8~"), []byte{0x05}},
}

// keyFilter translates keyMap's sequences in what it reads from r. A
// sequence split across reads is held back until it is complete or
// cannot be one; readline would wait for the rest of an escape sequence
// too, so nothing is delayed that readline would have acted on.
type keyFilter struct {
	r   io.ReadCloser
	buf []byte // read from r, not yet returned
	out []byte // translated, not yet returned
	err error
}

func newKeyFilter(r io.ReadCloser) *keyFilter { return &keyFilter{r: r} }

func (f *keyFilter) Read(p []byte) (int, error) {
	for len(f.out) == 0 {
		if f.err != nil {
			if len(f.buf) > 0 { // an incomplete sequence at the end
				f.out, f.buf = f.buf, nil
				break
			}
			return 0, f.err
		}
		var chunk [256]byte
		n, err := f.r.Read(chunk[:])
		f.buf = append(f.buf, chunk[:n]...)
		f.err = err
		f.translate()
	}
	n := copy(p, f.out)
	f.out = f.out[n:]
	return n, nil
}

// translate moves what is decided from buf to out, keeping in buf only a
// tail that may still become a sequence of keyMap.
func (f *keyFilter) translate() {
	b := f.buf
	for len(b) > 0 {
		i := bytes.IndexByte(b, 0x1b)
		if i < 0 {
			f.out = append(f.out, b...)
			b = nil
			break
		}
		f.out = append(f.out, b[:i]...)
		b = b[i:]
		matched, partial := false, false
		for _, k := range keyMap {
			switch {
			case bytes.HasPrefix(b, k.seq):
				f.out = append(f.out, k.key...)
				b = b[len(k.seq):]
				matched = true
			case bytes.HasPrefix(k.seq, b):
				partial = true
			}
			if matched {
				break
			}
		}
		if matched {
			continue
		}
		if partial {
			break // wait for the rest
		}
		f.out = append(f.out, b[0])
		b = b[1:]
	}
	f.buf = append(f.buf[:0], b...)
}

func (f *keyFilter) Close() error { return f.r.Close() }
