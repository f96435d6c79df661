package peer

import (
	"fmt"
	"time"

	"lanchat/transport"
)

// TellUDP sends text to one connected peer as a single sealed datagram
// (/msg -udp): no message id, no acknowledgement, no retry; it arrives
// once or not at all. Texts over transport.MaxUDPText are refused, so
// that the datagram is never fragmented. It returns the peer as it
// stands: a UDP state other than UDPOK means the datagram may well be
// lost.
func (n *Node) TellUDP(peerArg, text string, action bool) (Info, error) {
	if err := transport.CheckUDPText(text); err != nil {
		return Info{}, fmt.Errorf("message not sent over udp: %w: send it without -udp", err)
	}
	l, err := n.lookupLive(peerArg)
	if err != nil {
		return Info{}, err
	}
	m := transport.UDPChat{Sent: time.Now().UnixNano(), Text: text}
	if action {
		m.Flags |= transport.ChatAction
	}
	if err := n.sendDatagram(l, l.udpTarget(), m); err != nil {
		return l.info(), fmt.Errorf("message not sent over udp: %w", err)
	}
	n.chatting(l.id)
	return l.info(), nil
}

// udpChat shows a chat datagram from l's peer. It runs on the datagram
// loop, which must not wait: when the event reader is behind, the line is
// dropped, as the network might have dropped it.
func (n *Node) udpChat(l *link, payload []byte, at time.Time) error {
	m, err := transport.DecodeUDPChat(payload)
	if err != nil {
		return err
	}
	n.chatting(l.id)
	ev := Chat{From: l.p.ref(), Text: m.Text, Direct: true, UDP: true, At: at, Sent: time.Unix(0, m.Sent),
		Action: m.Flags&transport.ChatAction != 0}
	if !n.tryEmit(ev) {
		n.log.Debug("udp chat dropped: events are not being read", "peer", ev.From.Name)
	}
	return nil
}
