package peer

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"lanchat/transport"
)

// Sent describes a chat message handed to lanchat: its id and the peers
// it was queued for (delivery is reported by Delivered events).
type Sent struct {
	MsgID uint64
	To    []Ref
}

// Say sends text to every peer, connected or away (it waits in their
// outboxes until they are back). It returns at once: what a peer cannot
// take now waits for it. Errors name the peers it could not be queued for.
func (n *Node) Say(text string) (Sent, error) { return n.say(text, 0) }

// Act is Say for an action (/me).
func (n *Node) Act(text string) (Sent, error) { return n.say(text, transport.ChatAction) }

func (n *Node) say(text string, flags uint8) (Sent, error) {
	if err := transport.CheckText(text); err != nil {
		return Sent{}, fmt.Errorf("message not sent: %w", err)
	}
	n.sendMu.Lock()
	defer n.sendMu.Unlock()
	ps := n.peerList()
	if len(ps) == 0 {
		return Sent{}, fmt.Errorf("message not sent: %w", ErrNoPeers)
	}
	m := transport.Chat{MsgID: n.nextMsg.Add(1), Sent: time.Now().UnixNano(), Text: text, Flags: flags}
	sent := Sent{MsgID: m.MsgID}
	var errs []error
	for _, p := range ps {
		if err := n.queue(p, m); err != nil {
			errs = append(errs, err)
			continue
		}
		sent.To = append(sent.To, p.ref())
	}
	return sent, errors.Join(errs...)
}

// Tell sends text to one peer (a name or id prefix) only; a peer that is
// away gets it when it is back.
func (n *Node) Tell(peerArg, text string) (Sent, error) { return n.tell(peerArg, text, 0) }

// ActTo is Tell for an action (/me to one peer).
func (n *Node) ActTo(peerArg, text string) (Sent, error) {
	return n.tell(peerArg, text, transport.ChatAction)
}

func (n *Node) tell(peerArg, text string, flags uint8) (Sent, error) {
	if err := transport.CheckText(text); err != nil {
		return Sent{}, fmt.Errorf("message not sent: %w", err)
	}
	n.sendMu.Lock()
	defer n.sendMu.Unlock()
	p, err := n.lookup(peerArg)
	if err != nil {
		return Sent{}, err
	}
	m := transport.Chat{MsgID: n.nextMsg.Add(1), Direct: true, Sent: time.Now().UnixNano(), Text: text, Flags: flags}
	if err := n.queue(p, m); err != nil {
		return Sent{}, err
	}
	return Sent{MsgID: m.MsgID, To: []Ref{p.ref()}}, nil
}

// SetName changes this node's name and tells every peer. A name that a
// connected or known peer holds (compared as SameName does) is refused.
func (n *Node) SetName(name string) error {
	if err := n.checkNewName(name); err != nil {
		return err
	}
	n.mu.Lock()
	n.name = name
	ls := n.linksLocked()
	n.mu.Unlock()
	var errs []error
	for _, l := range ls {
		if err := l.conn.Send(transport.Nick{Name: name}); err != nil {
			errs = append(errs, fmt.Errorf("%s not told: %w", l.name(), err))
		}
	}
	return errors.Join(errs...)
}

// announcement lists the connected peers but except, with the address
// where each listens, for a newly connected peer. Link-local addresses
// are left out: their zone means nothing on another host.
func (n *Node) announcement(except string) transport.PeerList {
	var pl transport.PeerList
	for _, p := range n.peerList() {
		p.mu.Lock()
		addr, live := p.dialAddr, p.link != nil
		p.mu.Unlock()
		if p.id == except || !live || addr == "" || len(pl.Peers) >= transport.MaxPeerList {
			continue
		}
		if ap, err := netip.ParseAddrPort(addr); err != nil || ap.Addr().IsLinkLocalUnicast() || ap.Addr().IsLoopback() {
			continue
		}
		pl.Peers = append(pl.Peers, transport.PeerRef{ID: p.id, Addr: addr})
	}
	return pl
}
