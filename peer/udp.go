package peer

import (
	"errors"
	"net/netip"

	"lanchat/transport"
)

// sendDatagram sends m to addr, signed with our id.
func (n *Node) sendDatagram(to netip.AddrPort, m transport.Message) error {
	b, err := transport.AppendDatagram(nil, n.id, m)
	if err != nil {
		return err
	}
	return n.tr.WriteTo(b, to)
}

// handleDatagram acts on one received datagram. It runs on the node's main
// loop, so it must not block: replies are datagrams, which do not.
func (n *Node) handleDatagram(pkt transport.Packet) {
	dg, err := transport.DecodeDatagram(pkt.Buf)
	if err != nil {
		n.badDatagrams.Add(1)
		if !errors.Is(err, transport.ErrUnknownType) {
			n.log.Debug("dropping datagram", "from", pkt.From, "err", err)
		}
		return
	}
	n.mu.Lock()
	p := n.peers[dg.Sender]
	n.mu.Unlock()
	if p == nil {
		n.unknownSenders.Add(1)
		n.log.Debug("dropping datagram from unknown sender", "from", pkt.From, "id", dg.Sender)
		return
	}
	from := netip.AddrPortFrom(pkt.From.Addr().Unmap(), pkt.From.Port())
	switch m := dg.Msg.(type) {
	case transport.Probe:
		p.mu.Lock()
		p.udpAddr = from
		wasOK := p.udpState == "ok"
		if m.Ack {
			p.udpState = "ok"
		}
		p.mu.Unlock()
		if !m.Ack {
			n.sendDatagram(from, transport.Probe{Ack: true, Nonce: m.Nonce})
			if !wasOK {
				// Prove the path our way too, without waiting for our prober.
				n.sendDatagram(from, transport.Probe{Nonce: n.nextReq.Add(1)})
			}
		}
	case transport.TimeReq:
		n.sendDatagram(from, timeReply(m, pkt.Time))
	case transport.Echo:
		if m.Reply {
			n.complete(p.id, m, pkt.Time)
			return
		}
		m.Reply = true
		n.sendDatagram(from, m)
	case transport.TimeResp:
		n.complete(p.id, m, pkt.Time)
	}
}
