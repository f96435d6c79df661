package peer

import (
	"errors"
	"net/netip"
	"sync"

	"lanchat/transport"
)

// sendBufs holds buffers for sealing datagrams: WriteTo is done with its
// buffer when it returns, so one can be reused for the next datagram.
var sendBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// sendDatagram seals m for p and sends it to addr.
func (n *Node) sendDatagram(l *link, to netip.AddrPort, m transport.Message) error {
	buf := sendBufs.Get().(*[]byte)
	defer sendBufs.Put(buf)
	b, err := l.ch.Seal((*buf)[:0], n.id, m)
	if err != nil {
		return err
	}
	if cap(b) <= 64<<10 {
		*buf = b[:0] // keep a grown buffer, unless it is huge
	}
	return n.net.WriteTo(b, to)
}

// handleDatagram acts on one received datagram. It runs on the node's
// datagram loop, so it must not block: replies are datagrams, which do
// not. pkt.Buf is reused for the next datagram, and is decrypted in place.
func (n *Node) handleDatagram(pkt transport.Packet) {
	h, err := transport.ParseHeader(pkt.Buf)
	if err != nil {
		n.badDatagrams.Add(1)
		n.log.Debug("dropping datagram", "from", pkt.From, "err", err)
		return
	}
	n.mu.Lock()
	l := n.links[string(h.SenderBytes())]
	n.mu.Unlock()
	if l == nil {
		n.unknownSenders.Add(1)
		n.log.Debug("dropping datagram from unknown sender", "from", pkt.From, "id", h.Sender())
		return
	}
	t, payload, err := l.ch.OpenInPlace(h)
	if err == nil {
		err = n.answerDatagram(l, t, payload, pkt)
	}
	switch {
	case err == nil:
		return
	case errors.Is(err, transport.ErrAuth):
		n.authFailures.Add(1)
	case errors.Is(err, transport.ErrReplay):
		n.replays.Add(1)
	default:
		n.badDatagrams.Add(1)
	}
	n.log.Debug("dropping datagram", "from", pkt.From, "err", err)
}

// answerDatagram acts on an authentic datagram's message of type t; an
// error means the payload did not decode.
func (n *Node) answerDatagram(l *link, t transport.Type, payload []byte, pkt transport.Packet) error {
	from := netip.AddrPortFrom(pkt.From.Addr().Unmap(), pkt.From.Port())
	l.heard(pkt.Time)
	first := l.lastUDP.Swap(pkt.Time.UnixNano()) == 0
	switch t {
	case transport.TypeProbe, transport.TypeProbeAck:
		m, err := transport.DecodeProbe(t, payload)
		if err != nil {
			return err
		}
		l.mu.Lock()
		l.udpAddr = from
		l.mu.Unlock()
		if !m.Ack && first {
			// First contact: answer, and prove the path our way too,
			// without waiting for our keeper. Later probes need no
			// answer: each side's own probes are its heartbeat.
			n.sendDatagram(l, from, transport.Probe{Ack: true, Nonce: m.Nonce})
			n.sendDatagram(l, from, transport.Probe{Nonce: n.nextReq.Add(1)})
		}
	case transport.TypeTimeReq:
		m, err := transport.DecodeTimeReq(payload)
		if err != nil {
			return err
		}
		n.sendDatagram(l, from, timeReply(m, pkt.Time))
	case transport.TypeTimeResp:
		m, err := transport.DecodeTimeResp(payload)
		if err != nil {
			return err
		}
		n.completeTime(l.id, m, pkt.Time)
	case transport.TypeUDPChat:
		return n.udpChat(l, payload, pkt.Time)
	case transport.TypeEchoReq, transport.TypeEchoResp:
		// The payload stays in the packet: sealing the answer copies it.
		m, err := transport.DecodeEchoInPlace(t, payload)
		if err != nil {
			return err
		}
		if m.Reply {
			n.completeEcho(l.id, m, pkt.Time, false)
			return nil
		}
		m.Reply = true
		n.sendDatagram(l, from, m)
	}
	return nil
}
