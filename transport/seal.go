package transport

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"lanchat/identity"
	"slices"
	"sync"
	"sync/atomic"
)

// Errors from opening a sealed datagram, for counting drops by cause.
var (
	// ErrAuth is wrapped when a datagram fails authentication: forged,
	// altered, or sealed under another key.
	ErrAuth = errors.New("datagram failed authentication")
	// ErrReplay is wrapped when a datagram's counter was seen before or
	// is too old for the replay window.
	ErrReplay = errors.New("replayed datagram")
)

// KeySize is the size of each direction's AEAD key (AES-256-GCM).
const KeySize = 32

// Channel seals datagrams to one peer and opens datagrams from it. Each
// direction has its own key; the nonce is a counter that never repeats
// under a key, and received counters pass a sliding replay window, as in
// WireGuard. Safe for concurrent use.
type Channel struct {
	send, recv cipher.AEAD
	next       atomic.Uint64

	mu  sync.Mutex // protects win
	win replayWindow
}

// NewChannel makes a channel from the two directions' keys.
func NewChannel(sendKey, recvKey []byte) (*Channel, error) {
	send, err := newAEAD(sendKey)
	if err != nil {
		return nil, err
	}
	recv, err := newAEAD(recvKey)
	if err != nil {
		return nil, err
	}
	return &Channel{send: send, recv: recv}, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("datagram key of %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// nonces holds nonce buffers: built on the stack, a nonce would escape
// through the AEAD interface and cost an allocation per datagram.
var nonces = sync.Pool{New: func() any { return new([12]byte) }}

// nonce is the counter as a GCM nonce, from the pool: Put it back after use.
func nonce(counter uint64) *[12]byte {
	n := nonces.Get().(*[12]byte)
	binary.BigEndian.PutUint64(n[4:], counter) // n[:4] stays zero
	return n
}

// appendHeader writes the cleartext part of a datagram: magic, version,
// sender id, counter. It is authenticated as additional data.
func appendHeader(b []byte, sender string, counter uint64) []byte {
	e := encoder{b}
	e.b = append(e.b, DatagramMagic...)
	e.u8(ProtocolVersion)
	e.str(sender)
	e.u64(counter)
	return e.b
}

// Seal appends a sealed datagram from sender carrying m to b.
func (c *Channel) Seal(b []byte, sender string, m Message) ([]byte, error) {
	counter := c.next.Add(1)
	start := len(b)
	b = appendHeader(b, sender, counter)
	hdrEnd := len(b)
	b = append(b, byte(m.Type()))
	b = m.Append(b)
	if n := len(b) - start + c.send.Overhead(); n > MaxDatagram {
		return b[:start], fmt.Errorf("%v datagram of %d bytes: %w (limit %d)", m.Type(), n, ErrTooLong, MaxDatagram)
	}
	// Seal in place: the plaintext is overwritten by the ciphertext,
	// which needs room for the tag.
	b = slices.Grow(b, c.send.Overhead())
	n := nonce(counter)
	sealed := c.send.Seal(b[hdrEnd:hdrEnd], n[:], b[hdrEnd:], b[start:hdrEnd])
	nonces.Put(n)
	return b[:hdrEnd+len(sealed)], nil
}

// Header is the cleartext part of a received datagram. It points into
// the datagram.
type Header struct {
	Counter uint64
	sender  []byte
	// aad and sealed split the datagram for Open.
	aad, sealed []byte
}

// Sender is the id of the node that says it sent the datagram.
func (h Header) Sender() string { return string(h.sender) }

// SenderBytes is Sender in place, for a lookup without a copy.
func (h Header) SenderBytes() []byte { return h.sender }

// ParseHeader reads the cleartext header, so the receiver can find the
// sender's channel.
func ParseHeader(p []byte) (Header, error) {
	var h Header
	if len(p) < len(DatagramMagic)+1 || string(p[:len(DatagramMagic)]) != DatagramMagic {
		return h, fmt.Errorf("%w: datagram: bad magic", ErrMalformed)
	}
	d := decoder{b: p[len(DatagramMagic):], what: "datagram"}
	if v := d.u8("version"); v != ProtocolVersion {
		return h, fmt.Errorf("%w: datagram of protocol version %d", ErrVersion, v)
	}
	h.sender = d.view("sender")
	h.Counter = d.u64("counter")
	if d.err != nil {
		return h, d.err
	}
	if !idShaped(h.sender) {
		return h, fmt.Errorf("%w: datagram: sender %q is not a node id", ErrMalformed, h.sender[:min(len(h.sender), 64)])
	}
	h.aad = p[:len(p)-len(d.b)]
	h.sealed = d.b
	return h, nil
}

// Open authenticates and decrypts a datagram whose header was parsed,
// checks its counter against the replay window, and decodes its message.
// The counter is recorded only once the datagram is authentic, so forged
// datagrams cannot move the window.
func (c *Channel) Open(h Header) (Message, error) {
	t, payload, err := c.open(nil, h)
	if err != nil {
		return nil, err
	}
	return Decode(t, payload)
}

// OpenInPlace is Open without a copy or a decode: the datagram is
// decrypted where it lies (destroying it), and the message's type and
// encoded payload are returned for the caller to decode.
func (c *Channel) OpenInPlace(h Header) (Type, []byte, error) {
	return c.open(h.sealed[:0], h)
}

func (c *Channel) open(dst []byte, h Header) (Type, []byte, error) {
	n := nonce(h.Counter)
	plain, err := c.recv.Open(dst, n[:], h.sealed, h.aad)
	nonces.Put(n)
	if err != nil {
		return 0, nil, fmt.Errorf("%w from %q", ErrAuth, h.sender)
	}
	c.mu.Lock()
	fresh := c.win.accept(h.Counter)
	c.mu.Unlock()
	if !fresh {
		return 0, nil, fmt.Errorf("%w from %q (counter %d)", ErrReplay, h.sender, h.Counter)
	}
	if len(plain) == 0 {
		return 0, nil, fmt.Errorf("%w: sealed datagram without a type", ErrMalformed)
	}
	t := Type(plain[0])
	switch t {
	case TypeTimeReq, TypeTimeResp, TypeEchoReq, TypeEchoResp, TypeProbe, TypeProbeAck, TypeUDPChat:
	default:
		if t.Known() {
			return 0, nil, fmt.Errorf("%w: %v is not sent over UDP", ErrMalformed, t)
		}
		return 0, nil, fmt.Errorf("%w: %v", ErrUnknownType, t)
	}
	return t, plain[1:], nil
}

// windowSize is how far behind the newest counter a datagram may arrive
// (reordered) and still be accepted.
const windowSize = 2048

// replayWindow remembers which of the last windowSize counters were seen.
type replayWindow struct {
	top  uint64 // highest counter accepted; 0 before the first
	bits [windowSize / 64]uint64
}

// accept reports whether counter is new and, if so, records it.
func (w *replayWindow) accept(counter uint64) bool {
	if counter == 0 {
		return false // counters start at 1
	}
	if counter > w.top {
		gap := counter - w.top
		if gap >= windowSize {
			w.bits = [windowSize / 64]uint64{}
		} else {
			for i := w.top + 1; i < counter; i++ {
				w.clear(i)
			}
		}
		w.top = counter
		w.set(counter)
		return true
	}
	if w.top-counter >= windowSize {
		return false
	}
	if w.isSet(counter) {
		return false
	}
	w.set(counter)
	return true
}

func (w *replayWindow) set(n uint64)        { w.bits[(n/64)%(windowSize/64)] |= 1 << (n % 64) }
func (w *replayWindow) clear(n uint64)      { w.bits[(n/64)%(windowSize/64)] &^= 1 << (n % 64) }
func (w *replayWindow) isSet(n uint64) bool { return w.bits[(n/64)%(windowSize/64)]&(1<<(n%64)) != 0 }

// NewChannelAEAD makes a channel from the two directions' AEADs, for a
// caller that brings its own (the bench measures a channel that does not
// encrypt). The nonce is 12 bytes; counters and the replay window work as
// with NewChannel.
func NewChannelAEAD(send, recv cipher.AEAD) *Channel {
	return &Channel{send: send, recv: recv}
}

// idShaped reports whether b has the shape of a node id: identity.IDLen
// characters of base32 (A-Z, 2-7). It is checked on every datagram, so it
// is a loop, not a decode; the id must also be a peer's to be used.
func idShaped(b []byte) bool {
	if len(b) != identity.IDLen {
		return false
	}
	for _, c := range b {
		if !('A' <= c && c <= 'Z' || '2' <= c && c <= '7') {
			return false
		}
	}
	return true
}
