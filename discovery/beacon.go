package discovery

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"lanchat/identity"
	"lanchat/transport"
)

// Beacon wire format (see doc.go): every integer big-endian.
const (
	// BeaconPort is the UDP port beacons are sent to and heard on.
	BeaconPort = 47474
	// beaconMagic starts every beacon.
	beaconMagic = "LCBN"
	// beaconFormat is the layout version; others are ignored.
	beaconFormat = 1
	// MaxBeaconAddrs bounds the addresses one beacon carries.
	MaxBeaconAddrs = 8
	// beaconFixed is the size of the fields before the name: magic,
	// format, protocol, flags, address count, time, key, TCP and UDP
	// ports, name length.
	beaconFixed = 4 + 1 + 1 + 1 + 1 + 8 + ed25519.PublicKeySize + 2 + 2 + 1
	// MaxBeaconSize bounds a beacon on the wire.
	MaxBeaconSize = beaconFixed + transport.MaxNameLen + MaxBeaconAddrs*17 + ed25519.SignatureSize
	// beaconContext is signed before the beacon's bytes, so that a
	// signature made for a beacon means nothing anywhere else.
	beaconContext = "lanchat beacon v1\x00"
)

// ErrBadBeacon is wrapped by every decoding error.
var ErrBadBeacon = errors.New("not a valid beacon")

// Beacon is what a node broadcasts about itself: what its mDNS record
// carries (protocol version, name, ports, addresses), its public key (the
// id is its hash), when it was sent, and a signature by that key over all
// of it.
type Beacon struct {
	// Protocol is the lanchat protocol version (transport.ProtocolVersion).
	Protocol uint8
	// Flags: none defined; sent as 0, ignored when heard.
	Flags   uint8
	Key     ed25519.PublicKey
	Name    string
	TCPPort uint16
	UDPPort uint16
	// Sent is when the beacon was made, to the nanosecond.
	Sent time.Time
	// Addrs are the sender's addresses on the interface it was sent from,
	// without zones.
	Addrs []netip.Addr

	// signed and sig are set by DecodeBeacon for Verify.
	signed, sig []byte
}

// ID is the node id of the beacon's key.
func (b Beacon) ID() string { return identity.IDOf(b.Key) }

// AppendSigned appends b, signed with key (whose public half replaces
// b.Key), to buf. At most MaxBeaconAddrs addresses are carried; zones are
// dropped.
func (b Beacon) AppendSigned(buf []byte, key ed25519.PrivateKey) []byte {
	pub := key.Public().(ed25519.PublicKey)
	start := len(buf)
	addrs := b.Addrs[:min(len(b.Addrs), MaxBeaconAddrs)]
	name := b.Name
	if len(name) > transport.MaxNameLen {
		name = name[:transport.MaxNameLen]
	}
	buf = append(buf, beaconMagic...)
	buf = append(buf, beaconFormat, b.Protocol, b.Flags, byte(len(addrs)))
	buf = binary.BigEndian.AppendUint64(buf, uint64(b.Sent.UnixNano()))
	buf = append(buf, pub...)
	buf = binary.BigEndian.AppendUint16(buf, b.TCPPort)
	buf = binary.BigEndian.AppendUint16(buf, b.UDPPort)
	buf = append(buf, byte(len(name)))
	buf = append(buf, name...)
	for _, a := range addrs {
		a = a.Unmap().WithZone("")
		if a.Is4() {
			buf = append(buf, 4)
			v := a.As4()
			buf = append(buf, v[:]...)
		} else {
			buf = append(buf, 6)
			v := a.As16()
			buf = append(buf, v[:]...)
		}
	}
	sig := ed25519.Sign(key, append([]byte(beaconContext), buf[start:]...))
	return append(buf, sig...)
}

// DecodeBeacon parses a beacon without checking its signature (Verify
// does): the layout, sizes, name, ports and addresses. It never keeps p.
func DecodeBeacon(p []byte) (Beacon, error) {
	bad := func(format string, args ...any) (Beacon, error) {
		return Beacon{}, fmt.Errorf("%w: %s", ErrBadBeacon, fmt.Sprintf(format, args...))
	}
	if len(p) > MaxBeaconSize {
		return bad("%d bytes, limit %d", len(p), MaxBeaconSize)
	}
	if len(p) < beaconFixed+ed25519.SignatureSize {
		return bad("%d bytes, too short", len(p))
	}
	if string(p[:4]) != beaconMagic {
		return bad("bad magic")
	}
	if p[4] != beaconFormat {
		return bad("format %d, want %d", p[4], beaconFormat)
	}
	b := Beacon{Protocol: p[5], Flags: p[6]}
	count := int(p[7])
	if count > MaxBeaconAddrs {
		return bad("%d addresses, limit %d", count, MaxBeaconAddrs)
	}
	b.Sent = time.Unix(0, int64(binary.BigEndian.Uint64(p[8:16])))
	b.Key = ed25519.PublicKey(append([]byte(nil), p[16:48]...))
	b.TCPPort = binary.BigEndian.Uint16(p[48:50])
	b.UDPPort = binary.BigEndian.Uint16(p[50:52])
	if b.TCPPort == 0 || b.UDPPort == 0 {
		return bad("port 0")
	}
	nameLen := int(p[52])
	body := p[beaconFixed : len(p)-ed25519.SignatureSize]
	if nameLen > len(body) {
		return bad("name of %d bytes overruns the beacon", nameLen)
	}
	b.Name = string(body[:nameLen])
	if err := transport.CheckName(b.Name); err != nil {
		return bad("%v", err)
	}
	rest := body[nameLen:]
	for i := 0; i < count; i++ {
		if len(rest) < 1 {
			return bad("address %d missing", i)
		}
		var a netip.Addr
		switch rest[0] {
		case 4:
			if len(rest) < 5 {
				return bad("address %d cut short", i)
			}
			a = netip.AddrFrom4([4]byte(rest[1:5]))
			rest = rest[5:]
		case 6:
			if len(rest) < 17 {
				return bad("address %d cut short", i)
			}
			a = netip.AddrFrom16([16]byte(rest[1:17]))
			if a.Is4In6() {
				return bad("address %d is IPv4-mapped", i)
			}
			rest = rest[17:]
		default:
			return bad("address %d of family %d", i, rest[0])
		}
		b.Addrs = append(b.Addrs, a)
	}
	if len(rest) != 0 {
		return bad("%d bytes after the addresses", len(rest))
	}
	b.signed = append([]byte(beaconContext), p[:len(p)-ed25519.SignatureSize]...)
	b.sig = append([]byte(nil), p[len(p)-ed25519.SignatureSize:]...)
	return b, nil
}

// Verify reports whether a decoded beacon's signature is its key's.
func (b Beacon) Verify() bool {
	return len(b.Key) == ed25519.PublicKeySize && b.sig != nil && ed25519.Verify(b.Key, b.signed, b.sig)
}
