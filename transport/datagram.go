package transport

import (
	"fmt"
)

// DatagramMagic opens every datagram.
const DatagramMagic = "LC"

// MaxDatagram is the largest datagram read or sent.
const MaxDatagram = 65507

// Datagram is one UDP packet: who sent it, and a message.
type Datagram struct {
	Sender string
	Msg    Message
}

// AppendDatagram encodes a datagram from sender carrying m.
func AppendDatagram(b []byte, sender string, m Message) ([]byte, error) {
	start := len(b)
	e := encoder{b}
	e.b = append(e.b, DatagramMagic...)
	e.u8(ProtocolVersion)
	e.u8(uint8(m.Type()))
	e.str(sender)
	e.b = m.Append(e.b)
	if n := len(e.b) - start; n > MaxDatagram {
		return b[:start], fmt.Errorf("%v datagram of %d bytes: %w (limit %d)", m.Type(), n, ErrTooLong, MaxDatagram)
	}
	return e.b, nil
}

// DecodeDatagram decodes one datagram. Datagrams of a type this version does
// not know return ErrUnknownType with the sender filled in.
func DecodeDatagram(p []byte) (Datagram, error) {
	var dg Datagram
	if len(p) < len(DatagramMagic)+2 || string(p[:len(DatagramMagic)]) != DatagramMagic {
		return dg, fmt.Errorf("%w: datagram: bad magic", ErrMalformed)
	}
	d := decoder{b: p[len(DatagramMagic):], what: "datagram"}
	if v := d.u8("version"); v != ProtocolVersion {
		return dg, fmt.Errorf("%w: datagram of protocol version %d", ErrVersion, v)
	}
	t := Type(d.u8("type"))
	dg.Sender = d.str("sender")
	if d.err != nil {
		return dg, d.err
	}
	if dg.Sender == "" || len(dg.Sender) > MaxIDLen {
		return dg, fmt.Errorf("%w: datagram: sender id of %d bytes", ErrMalformed, len(dg.Sender))
	}
	switch t {
	case TypeTimeReq, TypeTimeResp, TypeEchoReq, TypeEchoResp, TypeProbe, TypeProbeAck:
	default:
		if t.Known() {
			return dg, fmt.Errorf("%w: %v is not sent over UDP", ErrMalformed, t)
		}
		return dg, fmt.Errorf("%w: %v", ErrUnknownType, t)
	}
	m, err := Decode(t, d.b)
	if err != nil {
		return dg, err
	}
	dg.Msg = m
	return dg, nil
}
