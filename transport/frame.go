package transport

import (
	"encoding/binary"
	"fmt"
	"io"
)

// MaxFrame is the largest frame body (type byte plus payload) accepted.
const MaxFrame = 64 << 10

const frameHeader = 4

// AppendFrame appends m as a complete frame (length, type, payload) to b.
func AppendFrame(b []byte, m Message) ([]byte, error) {
	start := len(b)
	b = append(b, 0, 0, 0, 0, byte(m.Type()))
	b = m.Append(b)
	n := len(b) - start - frameHeader
	if n > MaxFrame {
		return b[:start], fmt.Errorf("%v frame of %d bytes: %w (limit %d)", m.Type(), n, ErrTooLong, MaxFrame)
	}
	binary.BigEndian.PutUint32(b[start:], uint32(n))
	return b, nil
}

// ReadFrame reads one frame from r into buf (grown as needed) and returns
// its type and payload; the payload aliases buf and is valid until the next
// call. A length of zero or above MaxFrame is an error, and nothing more is
// read, so a header promising gigabytes costs nothing.
func ReadFrame(r io.Reader, buf []byte) (Type, []byte, []byte, error) {
	// The header is read into buf too: a local array would escape
	// through r and cost an allocation per frame.
	if cap(buf) < frameHeader {
		buf = make([]byte, frameHeader, 512)
	}
	if _, err := io.ReadFull(r, buf[:frameHeader]); err != nil {
		return 0, nil, buf, err
	}
	n := binary.BigEndian.Uint32(buf[:frameHeader])
	if n == 0 {
		return 0, nil, buf, fmt.Errorf("%w: empty frame", ErrMalformed)
	}
	if n > MaxFrame {
		return 0, nil, buf, fmt.Errorf("frame header announces %d bytes: %w (limit %d)", n, ErrTooLong, MaxFrame)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, buf, fmt.Errorf("frame of %d bytes cut short: %w", n, err)
	}
	return Type(buf[0]), buf[1:], buf, nil
}
