package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("malformed message")

// maxString bounds any length-prefixed field; the frame limit bounds it too,
// but checking early gives a clearer error.
const maxString = MaxFrame

// encoder appends fields to a byte slice.
type encoder struct{ b []byte }

func (e *encoder) u8(v uint8)   { e.b = append(e.b, v) }
func (e *encoder) u16(v uint16) { e.b = binary.BigEndian.AppendUint16(e.b, v) }
func (e *encoder) u32(v uint32) { e.b = binary.BigEndian.AppendUint32(e.b, v) }
func (e *encoder) u64(v uint64) { e.b = binary.BigEndian.AppendUint64(e.b, v) }
func (e *encoder) i64(v int64)  { e.u64(uint64(v)) }
func (e *encoder) str(s string) {
	e.b = binary.AppendUvarint(e.b, uint64(len(s)))
	e.b = append(e.b, s...)
}
func (e *encoder) bytes(p []byte) {
	e.b = binary.AppendUvarint(e.b, uint64(len(p)))
	e.b = append(e.b, p...)
}
func (e *encoder) boolean(v bool) {
	if v {
		e.u8(1)
	} else {
		e.u8(0)
	}
}

// decoder reads fields from a byte slice; the first error sticks and every
// later read returns zero values, so callers check err once at the end.
type decoder struct {
	b    []byte
	what string
	err  error
}

func (d *decoder) fail(field string, need int) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s: %s needs %d bytes, %d left", ErrMalformed, d.what, field, need, len(d.b))
	}
}

func (d *decoder) take(field string, n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || len(d.b) < n {
		d.fail(field, n)
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) u8(field string) uint8 {
	if p := d.take(field, 1); p != nil {
		return p[0]
	}
	return 0
}
func (d *decoder) u16(field string) uint16 {
	if p := d.take(field, 2); p != nil {
		return binary.BigEndian.Uint16(p)
	}
	return 0
}
func (d *decoder) u32(field string) uint32 {
	if p := d.take(field, 4); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}
func (d *decoder) u64(field string) uint64 {
	if p := d.take(field, 8); p != nil {
		return binary.BigEndian.Uint64(p)
	}
	return 0
}
func (d *decoder) i64(field string) int64 { return int64(d.u64(field)) }
func (d *decoder) boolean(field string) bool {
	switch v := d.u8(field); v {
	case 0:
		return false
	case 1:
		return true
	default:
		if d.err == nil {
			d.err = fmt.Errorf("%w: %s: %s is %d, want 0 or 1", ErrMalformed, d.what, field, v)
		}
		return false
	}
}

func (d *decoder) length(field string) int {
	if d.err != nil {
		return 0
	}
	n, k := binary.Uvarint(d.b)
	if k <= 0 {
		d.err = fmt.Errorf("%w: %s: bad length of %s", ErrMalformed, d.what, field)
		return 0
	}
	if n > maxString {
		d.err = fmt.Errorf("%w: %s: %s claims %d bytes, limit %d", ErrMalformed, d.what, field, n, maxString)
		return 0
	}
	d.b = d.b[k:]
	return int(n)
}

func (d *decoder) str(field string) string { return string(d.take(field, d.length(field))) }

// view returns the field in place: valid only as long as the read buffer.
func (d *decoder) view(field string) []byte { return d.take(field, d.length(field)) }

// bytes returns a copy, so the result outlives the read buffer.
func (d *decoder) bytes(field string) []byte {
	p := d.take(field, d.length(field))
	if p == nil {
		return nil
	}
	return append([]byte{}, p...)
}
