package peer

import (
	"errors"
	"net/netip"

	"lanchat/transport"
)

// sendDatagram seals m for p and sends it to addr.
func (n *Node) sendDatagram(p *peer, to netip.AddrPort, m transport.Message) error {
	b, err := p.ch.Seal(nil, n.id, m)
	if err != nil {
		return err
	}
	return n.tr.WriteTo(b, to)
}

// handleDatagram acts on one received datagram. It runs on the node's main
// loop, so it must not block: replies are datagrams, which do not.
func (n *Node) handleDatagram(pkt transport.Packet) {
	h, err := transport.ParseHeader(pkt.Buf)
	if err != nil {
		n.badDatagrams.Add(1)
		n.log.Debug("dropping datagram", "from", pkt.From, "err", err)
		return
	}
	n.mu.Lock()
	p := n.peers[h.Sender]
	n.mu.Unlock()
	if p == nil {
		n.unknownSenders.Add(1)
		n.log.Debug("dropping datagram from unknown sender", "from", pkt.From, "id", h.Sender)
		return
	}
	msg, err := p.ch.Open(h)
	switch {
	case errors.Is(err, transport.ErrAuth):
		n.authFailures.Add(1)
	case errors.Is(err, transport.ErrReplay):
		n.replays.Add(1)
	case err != nil:
		n.badDatagrams.Add(1)
	}
	if err != nil {
		n.log.Debug("dropping datagram", "from", pkt.From, "err", err)
		return
	}
	from := netip.AddrPortFrom(pkt.From.Addr().Unmap(), pkt.From.Port())
	p.heard(pkt.Time)
	first := p.lastUDP.Swap(pkt.Time.UnixNano()) == 0
	switch m := msg.(type) {
	case transport.Probe:
		p.mu.Lock()
		p.udpAddr = from
		p.mu.Unlock()
		if !m.Ack && first {
			// First contact: answer, and prove the path our way too,
			// without waiting for our keeper. Later probes need no
			// answer: each side's own probes are its heartbeat.
			n.sendDatagram(p, from, transport.Probe{Ack: true, Nonce: m.Nonce})
			n.sendDatagram(p, from, transport.Probe{Nonce: n.nextReq.Add(1)})
		}
	case transport.TimeReq:
		n.sendDatagram(p, from, timeReply(m, pkt.Time))
	case transport.Echo:
		if m.Reply {
			n.complete(p.id, m, pkt.Time)
			return
		}
		m.Reply = true
		n.sendDatagram(p, from, m)
	case transport.TimeResp:
		n.complete(p.id, m, pkt.Time)
	}
}
