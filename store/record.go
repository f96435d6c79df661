package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"unicode/utf8"
)

// Limits on what is stored; a record that breaks them is damaged.
const (
	// MaxText is the longest text, in bytes (the wire protocol's limit).
	MaxText = 16 << 10
	// MaxName is the longest peer name, in bytes.
	MaxName = 64
	// IDLen is the length of a node id (base32 of a SHA-256).
	IDLen = 52
	// MaxRecipients bounds the recipients of one message.
	MaxRecipients = 4096
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// seal appends the CRC-32C of b to b.
func seal(b []byte) []byte {
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
}

// unseal checks and strips the CRC of a stored value.
func unseal(v []byte) ([]byte, error) {
	if len(v) < 5 {
		return nil, errShort
	}
	body := v[:len(v)-4]
	if crc32.Checksum(body, crcTable) != binary.BigEndian.Uint32(v[len(v)-4:]) {
		return nil, errors.New("checksum mismatch")
	}
	return body, nil
}

var errShort = errors.New("record cut short")

// reader decodes a record; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) u8() byte {
	if r.err != nil || len(r.b) < 1 {
		r.fail()
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) u64() uint64 {
	if r.err != nil || len(r.b) < 8 {
		r.fail()
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) str(limit int) string {
	if r.err != nil {
		return ""
	}
	n, k := binary.Uvarint(r.b)
	if k <= 0 || n > uint64(limit) || n > uint64(len(r.b)-k) {
		r.fail()
		return ""
	}
	s := string(r.b[k : k+int(n)])
	r.b = r.b[k+int(n):]
	return s
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = errShort
	}
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func key(n uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), n) }

// checkText reports why a text cannot be stored: it must be UTF-8, at most
// MaxText bytes, without NUL (Search separates texts with it).
func checkText(s string) error {
	switch {
	case len(s) > MaxText:
		return fmt.Errorf("text is %d bytes long, limit %d", len(s), MaxText)
	case !utf8.ValidString(s):
		return errors.New("text is not valid UTF-8")
	case strings.IndexByte(s, 0) >= 0:
		return errors.New("text contains a NUL byte")
	}
	return nil
}

func checkName(s string) error {
	if len(s) > MaxName || !utf8.ValidString(s) {
		return fmt.Errorf("name %q: not UTF-8 of at most %d bytes", s, MaxName)
	}
	return nil
}

// checkID reports whether s looks like a node id: 52 characters of the
// base32 alphabet.
func checkID(s string) error {
	if len(s) != IDLen {
		return fmt.Errorf("peer id %q: %d characters, want %d", s, len(s), IDLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'A' || c > 'Z') && (c < '2' || c > '7') {
			return fmt.Errorf("peer id %q: not base32", s)
		}
	}
	return nil
}

// outRec is a message waiting in a peer's outbox.
type outRec struct {
	direct bool
	sent   int64 // Unix ns
	queued int64
	seq    uint64 // its history line, 0 without history
	text   string
	flags  uint8 // the chat flags (transport.ChatAction)
}

// Chat flags (transport.ChatAction, /me) follow the text of a record, when
// not zero: records written before they were kept end with the text, and
// read as flags 0; a byte after the text is what older versions skip.

// appendFlags appends flags after a record's text, when not zero.
func appendFlags(b []byte, flags uint8) []byte {
	if flags == 0 {
		return b
	}
	return append(b, flags)
}

// flags reads the chat flags after a record's text: 0 when there are none.
func (r *reader) flags() uint8 {
	if r.err != nil || len(r.b) == 0 {
		return 0
	}
	return r.u8()
}

const recVersion = 1

func (o outRec) encode() []byte {
	b := make([]byte, 0, 32+len(o.text))
	b = append(b, recVersion, boolByte(o.direct))
	b = binary.BigEndian.AppendUint64(b, uint64(o.sent))
	b = binary.BigEndian.AppendUint64(b, uint64(o.queued))
	b = binary.BigEndian.AppendUint64(b, o.seq)
	b = appendStr(b, o.text)
	b = appendFlags(b, o.flags)
	return seal(b)
}

func decodeOut(v []byte) (outRec, error) {
	body, err := unseal(v)
	if err != nil {
		return outRec{}, err
	}
	r := reader{b: body}
	var o outRec
	ver, direct := r.u8(), r.u8()
	o.direct = direct == 1
	o.sent, o.queued = int64(r.u64()), int64(r.u64())
	o.seq = r.u64()
	o.text = r.str(MaxText)
	o.flags = r.flags()
	if r.err != nil {
		return outRec{}, r.err
	}
	if ver != recVersion || direct > 1 {
		return outRec{}, errors.New("unknown record version or flag")
	}
	return o, nil
}

// textLen reads only the length of an outbox record's text (for counting at
// Open without copying texts). The record is checked by its CRC.
func outTextLen(v []byte) (int, error) {
	body, err := unseal(v)
	if err != nil {
		return 0, err
	}
	if len(body) < 26 {
		return 0, errShort
	}
	n, k := binary.Uvarint(body[26:])
	if k <= 0 || n > MaxText || n > uint64(len(body)-26-k) {
		return 0, errShort
	}
	return int(n), nil
}

// recvRec is what is known of a sender: its epoch, the last id recorded,
// and the last one the reader of the events confirmed shown (MarkShown).
type recvRec struct{ epoch, last, shown uint64 }

func (r recvRec) encode() []byte {
	b := make([]byte, 0, 28)
	b = binary.BigEndian.AppendUint64(b, r.epoch)
	b = binary.BigEndian.AppendUint64(b, r.last)
	b = binary.BigEndian.AppendUint64(b, r.shown)
	return seal(b)
}

func decodeRecv(v []byte) (recvRec, error) {
	body, err := unseal(v)
	if err != nil {
		return recvRec{}, err
	}
	switch len(body) {
	case 16: // written before shown was kept: everything was shown
		last := binary.BigEndian.Uint64(body[8:])
		return recvRec{binary.BigEndian.Uint64(body), last, last}, nil
	case 24:
		return recvRec{binary.BigEndian.Uint64(body), binary.BigEndian.Uint64(body[8:]), binary.BigEndian.Uint64(body[16:])}, nil
	}
	return recvRec{}, errShort
}

// Recipient state bytes in a history line.
const (
	stateAsDerived byte = 0 // acked unless the outbox still holds it
	stateDropped   byte = 1
)

// histRec is a history line as stored.
type histRec struct {
	in     bool
	direct bool
	peer   string // in: sender; out direct: recipient; out group: ""
	name   string
	epoch  uint64
	msgID  uint64
	sent   int64
	at     int64
	to     []recipientRec // out only
	text   string
	chat   uint8 // the chat flags (transport.ChatAction)
}

type recipientRec struct {
	id, name string
	state    byte
}

func (h histRec) encode() []byte {
	b := make([]byte, 0, 64+len(h.text)+len(h.to)*60)
	flags := boolByte(h.in) | boolByte(h.direct)<<1
	b = append(b, recVersion, flags)
	b = appendStr(b, h.peer)
	b = appendStr(b, h.name)
	b = binary.BigEndian.AppendUint64(b, h.epoch)
	b = binary.BigEndian.AppendUint64(b, h.msgID)
	b = binary.BigEndian.AppendUint64(b, uint64(h.sent))
	b = binary.BigEndian.AppendUint64(b, uint64(h.at))
	b = binary.AppendUvarint(b, uint64(len(h.to)))
	for _, t := range h.to {
		b = appendStr(b, t.id)
		b = appendStr(b, t.name)
		b = append(b, t.state)
	}
	b = appendStr(b, h.text)
	b = appendFlags(b, h.chat)
	return seal(b)
}

func decodeHist(v []byte) (histRec, error) {
	body, err := unseal(v)
	if err != nil {
		return histRec{}, err
	}
	r := reader{b: body}
	var h histRec
	ver, flags := r.u8(), r.u8()
	h.in, h.direct = flags&1 != 0, flags&2 != 0
	h.peer = r.str(IDLen)
	h.name = r.str(MaxName)
	h.epoch, h.msgID = r.u64(), r.u64()
	h.sent, h.at = int64(r.u64()), int64(r.u64())
	n, k := binary.Uvarint(r.b)
	if k <= 0 || n > MaxRecipients {
		return histRec{}, errShort
	}
	r.b = r.b[k:]
	for range n {
		t := recipientRec{id: r.str(IDLen), name: r.str(MaxName), state: r.u8()}
		if r.err != nil {
			break
		}
		h.to = append(h.to, t)
	}
	h.text = r.str(MaxText)
	h.chat = r.flags()
	if r.err != nil {
		return histRec{}, r.err
	}
	if ver != recVersion || flags > 3 {
		return histRec{}, errors.New("unknown record version or flag")
	}
	return h, nil
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}
