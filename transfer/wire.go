package transfer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// ALPN is the protocol name a transfer stream negotiates in its TLS
// handshake; the chat connection uses "lanchat/2".
const ALPN = "lanchat-transfer/1"

// ErrMalformed is wrapped by every decoding error: the peer sent bytes
// that are not this protocol.
var ErrMalformed = errors.New("malformed transfer message")

// Message types.
const (
	typeOffer   byte = 1
	typeAccept  byte = 2
	typeReject  byte = 3
	typeData    byte = 4
	typeFileEnd byte = 5
	typeAck     byte = 6
	typeDone    byte = 7
	typeCancel  byte = 8
	typeError   byte = 9
	typePing    byte = 10
	typeResume  byte = 11
)

// Wire limits. A frame is a 4-byte big-endian length N (1 ≤ N), one type
// byte and N-1 payload bytes; N is bounded per type before any payload is
// read.
const (
	frameHeader = 5
	// ChunkSize is the most file data one data frame carries.
	ChunkSize = 256 << 10
	// dataHeader is the part of a data frame's payload before the file
	// bytes: index u32, offset u64.
	dataHeader = 12
	// maxOfferFrame bounds an offer (path names dominate it).
	maxOfferFrame = 16 << 20
	// maxControlFrame bounds every other message.
	maxControlFrame = 4 << 10
	// maxOfferEntries is the decoder's hard cap on an offer's entries;
	// Options.MaxFiles is usually lower.
	maxOfferEntries = 1 << 20
	// maxReason bounds the text of a reject, cancel or error.
	maxReason = 1024
	// maxIDLen bounds a transfer id.
	maxIDLen = 16
	// maxFileSize bounds one file's size (1 PiB), so sums cannot overflow.
	maxFileSize = 1 << 50
)

func frameLimit(t byte) int {
	switch t {
	case typeOffer:
		return maxOfferFrame
	case typeData:
		return 1 + dataHeader + ChunkSize
	default:
		return maxControlFrame
	}
}

// Error codes carried by reject and error messages.
type code uint8

const (
	codeOther         code = 0
	codeRejected      code = 1 // the user said no
	codeExpired       code = 2 // not answered in time
	codeInvalid       code = 3 // the offer breaks a safety rule
	codeNoSpace       code = 4 // not enough free space (up front, or disk full)
	codeProtocol      code = 5 // a message that breaks the protocol
	codeHashMismatch  code = 6
	codeSourceChanged code = 7
	codeIO            code = 8 // a read or write error on either side
	codeUnknown       code = 9 // no such transfer
	codeBusy          code = 10
	maxCode                = codeBusy
)

// entry is one file or directory of an offer. Path is relative, with "/"
// between components; a directory precedes everything inside it.
type entry struct {
	Path string
	Dir  bool
	Size int64 // 0 for directories
}

type message interface{ typ() byte }

type offerMsg struct {
	ID      string
	Hash    hashAlg
	Entries []entry
}

type acceptMsg struct {
	// Next is the first entry not yet complete on the receiver; Offset is
	// how much of it is verified there; Prefix is the hash of those bytes
	// (empty when Offset is 0).
	Next   uint32
	Offset int64
	Prefix []byte
}

type rejectMsg struct {
	ID     string
	Code   code
	Reason string
}

// dataMsg is decoded in place by the receiver; this form is for tests.
type dataMsg struct {
	Index  uint32
	Offset int64
	Data   []byte
}

type fileEndMsg struct {
	Index uint32
	Hash  []byte
}

type ackMsg struct {
	Next   uint32
	Offset int64
}

type doneMsg struct{ ID string }

type cancelMsg struct {
	ID     string
	Reason string
}

type errorMsg struct {
	ID     string
	Code   code
	Reason string
}

type pingMsg struct{}

type resumeMsg struct{ ID string }

func (offerMsg) typ() byte   { return typeOffer }
func (acceptMsg) typ() byte  { return typeAccept }
func (rejectMsg) typ() byte  { return typeReject }
func (dataMsg) typ() byte    { return typeData }
func (fileEndMsg) typ() byte { return typeFileEnd }
func (ackMsg) typ() byte     { return typeAck }
func (doneMsg) typ() byte    { return typeDone }
func (cancelMsg) typ() byte  { return typeCancel }
func (errorMsg) typ() byte   { return typeError }
func (pingMsg) typ() byte    { return typePing }
func (resumeMsg) typ() byte  { return typeResume }

// appendFrame appends m as a whole frame to b.
func appendFrame(b []byte, m message) ([]byte, error) {
	start := len(b)
	b = append(b, 0, 0, 0, 0, m.typ())
	switch m := m.(type) {
	case offerMsg:
		b = appendStr(b, m.ID)
		b = append(b, byte(m.Hash))
		b = binary.AppendUvarint(b, uint64(len(m.Entries)))
		for _, e := range m.Entries {
			if e.Dir {
				b = append(b, 1)
				b = appendStr(b, e.Path)
			} else {
				b = append(b, 0)
				b = appendStr(b, e.Path)
				b = binary.BigEndian.AppendUint64(b, uint64(e.Size))
			}
		}
	case acceptMsg:
		b = binary.BigEndian.AppendUint32(b, m.Next)
		b = binary.BigEndian.AppendUint64(b, uint64(m.Offset))
		b = appendStr(b, string(m.Prefix))
	case rejectMsg:
		b = appendStr(b, m.ID)
		b = append(b, byte(m.Code))
		b = appendStr(b, cleanText(m.Reason))
	case dataMsg:
		b = binary.BigEndian.AppendUint32(b, m.Index)
		b = binary.BigEndian.AppendUint64(b, uint64(m.Offset))
		b = append(b, m.Data...)
	case fileEndMsg:
		b = binary.BigEndian.AppendUint32(b, m.Index)
		b = appendStr(b, string(m.Hash))
	case ackMsg:
		b = binary.BigEndian.AppendUint32(b, m.Next)
		b = binary.BigEndian.AppendUint64(b, uint64(m.Offset))
	case doneMsg:
		b = appendStr(b, m.ID)
	case cancelMsg:
		b = appendStr(b, m.ID)
		b = appendStr(b, cleanText(m.Reason))
	case errorMsg:
		b = appendStr(b, m.ID)
		b = append(b, byte(m.Code))
		b = appendStr(b, cleanText(m.Reason))
	case pingMsg:
	case resumeMsg:
		b = appendStr(b, m.ID)
	default:
		return b[:start], fmt.Errorf("encode %T: unknown message", m)
	}
	n := len(b) - start - 4
	if n > frameLimit(m.typ()) {
		return b[:start], fmt.Errorf("encode message type %d: %d bytes, limit %d", m.typ(), n, frameLimit(m.typ()))
	}
	binary.BigEndian.PutUint32(b[start:], uint32(n))
	return b, nil
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// putDataHeader writes a data frame's header into the first
// frameHeader+dataHeader bytes of b, for n bytes of file data after it.
func putDataHeader(b []byte, index uint32, offset int64, n int) {
	binary.BigEndian.PutUint32(b, uint32(1+dataHeader+n))
	b[4] = typeData
	binary.BigEndian.PutUint32(b[5:], index)
	binary.BigEndian.PutUint64(b[9:], uint64(offset))
}

// readHeader reads a frame header and checks its length against the
// type's limit; nothing of the payload is read.
func readHeader(r io.Reader, hdr []byte) (typ byte, n int, err error) {
	if _, err := io.ReadFull(r, hdr[:frameHeader]); err != nil {
		return 0, 0, err
	}
	l := binary.BigEndian.Uint32(hdr)
	typ = hdr[4]
	if l == 0 {
		return 0, 0, fmt.Errorf("%w: empty frame", ErrMalformed)
	}
	if l > uint32(frameLimit(typ)) {
		return 0, 0, fmt.Errorf("%w: frame of type %d announces %d bytes, limit %d", ErrMalformed, typ, l, frameLimit(typ))
	}
	return typ, int(l) - 1, nil
}

// readPayload reads n payload bytes into buf, grown as needed. It grows
// in steps as bytes arrive, so a header that promises megabytes and sends
// nothing costs little.
func readPayload(r io.Reader, buf []byte, n int) ([]byte, error) {
	buf = buf[:0]
	for len(buf) < n {
		step := min(n-len(buf), 64<<10)
		if cap(buf)-len(buf) < step {
			nb := make([]byte, len(buf), max(2*cap(buf), len(buf)+step))
			copy(nb, buf)
			buf = nb
		}
		k, err := io.ReadFull(r, buf[len(buf):len(buf)+step])
		buf = buf[:len(buf)+k]
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return buf, fmt.Errorf("frame of %d bytes cut short: %w", n, err)
		}
	}
	return buf, nil
}

// readMessage reads one whole frame and decodes it. Data frames are
// decoded with their bytes aliasing buf.
func readMessage(r io.Reader, buf []byte) (message, []byte, error) {
	var hdr [frameHeader]byte
	typ, n, err := readHeader(r, hdr[:])
	if err != nil {
		return nil, buf, err
	}
	buf, err = readPayload(r, buf, n)
	if err != nil {
		return nil, buf, err
	}
	m, err := decode(typ, buf)
	return m, buf, err
}

// decoder reads fields; the first error sticks.
type decoder struct {
	b    []byte
	what string
	err  error
}

func (d *decoder) failf(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s: %s", ErrMalformed, d.what, fmt.Sprintf(format, args...))
	}
}

func (d *decoder) take(field string, n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || len(d.b) < n {
		d.failf("%s needs %d bytes, %d left", field, n, len(d.b))
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) u8(field string) uint8 {
	if p := d.take(field, 1); p != nil {
		return p[0]
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

func (d *decoder) uvarint(field string) uint64 {
	if d.err != nil {
		return 0
	}
	v, k := binary.Uvarint(d.b)
	if k <= 0 {
		d.failf("bad %s", field)
		return 0
	}
	d.b = d.b[k:]
	return v
}

// str reads a length-prefixed string of at most limit bytes.
func (d *decoder) str(field string, limit int) string {
	n := d.uvarint(field + " length")
	if d.err != nil {
		return ""
	}
	if n > uint64(limit) {
		d.failf("%s of %d bytes, limit %d", field, n, limit)
		return ""
	}
	return string(d.take(field, int(n)))
}

// offset reads a non-negative file offset or size.
func (d *decoder) offset(field string) int64 {
	v := d.u64(field)
	if v > maxFileSize {
		d.failf("%s %d beyond %d", field, v, int64(maxFileSize))
		return 0
	}
	return int64(v)
}

func (d *decoder) id() string {
	s := d.str("transfer id", maxIDLen)
	if d.err == nil && !validID(s) {
		d.failf("transfer id %q is not 1-%d characters of a-z and 2-7", s, maxIDLen)
	}
	return s
}

func (d *decoder) code() code {
	c := code(d.u8("code"))
	if d.err == nil && c > maxCode {
		d.failf("unknown code %d", c)
	}
	return c
}

func (d *decoder) reason() string {
	s := d.str("reason", maxReason)
	if d.err == nil && !utf8.ValidString(s) {
		d.failf("reason is not UTF-8")
	}
	return cleanText(s)
}

func (d *decoder) hash(field string, allowEmpty bool) []byte {
	s := d.str(field, maxHashSize)
	if d.err != nil {
		return nil
	}
	if len(s) == 0 && allowEmpty {
		return nil
	}
	if len(s) != hashSize {
		d.failf("%s of %d bytes, want %d", field, len(s), hashSize)
		return nil
	}
	return []byte(s)
}

func (d *decoder) end() error {
	if d.err == nil && len(d.b) > 0 {
		d.failf("%d bytes left over", len(d.b))
	}
	return d.err
}

// decode checks a payload's syntax and bounds; what an offer means (its
// names, its limits) is checked by checkOffer.
func decode(typ byte, p []byte) (message, error) {
	switch typ {
	case typeOffer:
		return decodeOffer(p)
	case typeAccept:
		d := decoder{b: p, what: "accept"}
		m := acceptMsg{Next: d.u32("next"), Offset: d.offset("offset")}
		m.Prefix = d.hash("prefix hash", true)
		if d.err == nil && (m.Offset > 0) != (m.Prefix != nil) {
			d.failf("prefix hash present %v with offset %d", m.Prefix != nil, m.Offset)
		}
		return m, d.end()
	case typeReject:
		d := decoder{b: p, what: "reject"}
		m := rejectMsg{ID: d.id(), Code: d.code(), Reason: d.reason()}
		return m, d.end()
	case typeData:
		d := decoder{b: p, what: "data"}
		m := dataMsg{Index: d.u32("index"), Offset: d.offset("offset")}
		m.Data = d.b
		d.b = nil
		if d.err == nil && len(m.Data) == 0 {
			d.failf("no bytes")
		}
		return m, d.end()
	case typeFileEnd:
		d := decoder{b: p, what: "file end"}
		m := fileEndMsg{Index: d.u32("index"), Hash: d.hash("hash", false)}
		return m, d.end()
	case typeAck:
		d := decoder{b: p, what: "ack"}
		m := ackMsg{Next: d.u32("next"), Offset: d.offset("offset")}
		return m, d.end()
	case typeDone:
		d := decoder{b: p, what: "done"}
		m := doneMsg{ID: d.id()}
		return m, d.end()
	case typeCancel:
		d := decoder{b: p, what: "cancel"}
		m := cancelMsg{ID: d.id(), Reason: d.reason()}
		return m, d.end()
	case typeError:
		d := decoder{b: p, what: "error"}
		m := errorMsg{ID: d.id(), Code: d.code(), Reason: d.reason()}
		return m, d.end()
	case typePing:
		d := decoder{b: p, what: "ping"}
		return pingMsg{}, d.end()
	case typeResume:
		d := decoder{b: p, what: "resume"}
		m := resumeMsg{ID: d.id()}
		return m, d.end()
	default:
		return nil, fmt.Errorf("%w: unknown message type %d", ErrMalformed, typ)
	}
}

func decodeOffer(p []byte) (offerMsg, error) {
	d := decoder{b: p, what: "offer"}
	m := offerMsg{ID: d.id()}
	m.Hash = hashAlg(d.u8("hash"))
	if d.err == nil && !m.Hash.valid() {
		d.failf("unknown hash algorithm %d", m.Hash)
	}
	n := d.uvarint("entry count")
	if d.err == nil && (n == 0 || n > maxOfferEntries) {
		d.failf("%d entries, want 1 to %d", n, maxOfferEntries)
	}
	if d.err != nil {
		return offerMsg{}, d.err
	}
	// Each entry takes at least 3 bytes: never allocate for more entries
	// than the bytes could hold.
	m.Entries = make([]entry, 0, min(n, uint64(len(d.b)/3)))
	for i := uint64(0); i < n && d.err == nil; i++ {
		var e entry
		switch k := d.u8("kind"); k {
		case 0:
			e.Path = d.str("path", maxPathLen)
			e.Size = d.offset("size")
		case 1:
			e.Dir = true
			e.Path = d.str("path", maxPathLen)
		default:
			d.failf("entry %d: kind %d is neither file (0) nor directory (1)", i, k)
		}
		m.Entries = append(m.Entries, e)
	}
	if err := d.end(); err != nil {
		return offerMsg{}, err
	}
	return m, nil
}

// cleanText makes a peer's text safe to print: control, format and
// bidirectional characters become '?', invalid UTF-8 becomes U+FFFD, and
// it is cut to maxReason bytes.
func cleanText(s string) string {
	ok := len(s) <= maxReason && utf8.ValidString(s)
	if ok {
		for _, r := range s {
			if unsafeRune(r) {
				ok = false
				break
			}
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if unsafeRune(r) {
			r = '?'
		}
		if b.Len()+utf8.RuneLen(r) > maxReason {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

const idAlphabet = "abcdefghijklmnopqrstuvwxyz234567"

func validID(s string) bool {
	if len(s) == 0 || len(s) > maxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(idAlphabet, s[i]) < 0 {
			return false
		}
	}
	return true
}
