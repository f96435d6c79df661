package peer

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"lanchat/identity"
	"lanchat/store"
	"lanchat/transport"
)

// Sent describes a chat message handed to lanchat: its id and the peers
// it was queued for (delivery is reported by Delivered events).
type Sent struct {
	MsgID uint64
	To    []Ref
}

// Say sends text to every peer, connected or away (it waits in their
// outboxes until they are back). It returns at once, with the message's
// id; a Stored event follows once it is on disk and on its way, or a
// Problem if it could not be stored. Errors name the peers it could not
// be queued for.
func (n *Node) Say(text string) (Sent, error) { return n.say(text, 0) }

// Act is Say for an action (/me).
func (n *Node) Act(text string) (Sent, error) { return n.say(text, transport.ChatAction) }

func (n *Node) say(text string, flags uint8) (Sent, error) {
	if err := transport.CheckText(text); err != nil {
		return Sent{}, fmt.Errorf("message not sent: %w", err)
	}
	<-n.ready
	n.sendMu.Lock()
	ps := n.peerList()
	if len(ps) == 0 {
		n.sendMu.Unlock()
		return Sent{}, fmt.Errorf("message not sent: %w", ErrNoPeers)
	}
	to := make([]Ref, len(ps))
	for i, p := range ps {
		to[i] = p.ref()
	}
	return n.send(ps, to, false, flags, text)
}

// Tell sends text to one peer (a name or id prefix) only; a peer that is
// away gets it when it is back. With a store, a peer known from an
// earlier session (known_peers) gets it when it is next connected.
func (n *Node) Tell(peerArg, text string) (Sent, error) { return n.tell(peerArg, text, 0) }

// ActTo is Tell for an action (/me to one peer).
func (n *Node) ActTo(peerArg, text string) (Sent, error) {
	return n.tell(peerArg, text, transport.ChatAction)
}

func (n *Node) tell(peerArg, text string, flags uint8) (Sent, error) {
	if err := transport.CheckText(text); err != nil {
		return Sent{}, fmt.Errorf("message not sent: %w", err)
	}
	<-n.ready
	n.sendMu.Lock()
	p, err := n.lookup(peerArg)
	if err == nil {
		return n.send([]*Peer{p}, []Ref{p.ref()}, true, flags, text)
	}
	if n.store != nil {
		if id, ok := n.known.PinnedID(peerArg); ok && id != n.id {
			return n.send(nil, []Ref{{ID: id, Name: peerArg, Trust: identity.Trusted}}, true, flags, text)
		}
	}
	n.sendMu.Unlock()
	return Sent{}, err
}

// chatting reports a chat line to or from a connected peer (Config.OnChat).
func (n *Node) chatting(id string) {
	if n.onChat != nil {
		n.onChat(id)
	}
}

// send queues a message for the peers to (ps, those of them connected or
// away this session, when there is no store) and releases sendMu, which
// the caller holds: ids are handed out and queued in one order. flags
// (transport.ChatAction) go with the message, and the store keeps them
// for a resend after a restart.
func (n *Node) send(ps []*Peer, to []Ref, direct bool, flags uint8, text string) (Sent, error) {
	if n.store == nil {
		m := transport.Chat{MsgID: n.nextMsg.Add(1), Direct: direct, Sent: time.Now().UnixNano(), Text: text, Flags: flags}
		sent := Sent{MsgID: m.MsgID}
		var errs []error
		for i, p := range ps {
			if err := n.queue(p, m); err != nil {
				errs = append(errs, err)
				continue
			}
			n.chatting(p.id)
			sent.To = append(sent.To, to[i])
		}
		n.sendMu.Unlock()
		if len(sent.To) > 0 {
			n.emit(Stored{MsgID: m.MsgID, Text: text, Direct: direct, To: sent.To, Action: flags&transport.ChatAction != 0})
		}
		return sent, errors.Join(errs...)
	}
	defer n.sendMu.Unlock()
	out := &store.Out{Direct: direct, Text: text, Flags: flags}
	for _, r := range to {
		out.To = append(out.To, store.Recipient{ID: r.ID, Name: r.Name})
	}
	c, err := n.store.Append(out)
	if c == nil {
		return Sent{}, fmt.Errorf("message not sent: %w", err)
	}
	kept := to
	if err != nil {
		refused := store.Refused(err)
		kept = slices.DeleteFunc(slices.Clone(to), func(r Ref) bool { return slices.Contains(refused, r.ID) })
	}
	// On its way while its commit runs (ids are leased from a ceiling
	// already on disk, so a crash never reuses one); the pump reports it
	// once the commit ends.
	q := queued{out: out, c: c, to: kept}
	m := transport.Chat{MsgID: out.ID, Direct: out.Direct, Sent: out.Sent.UnixNano(), Text: out.Text, Flags: out.Flags}
	for _, r := range kept {
		n.mu.Lock()
		p := n.peers[r.ID]
		n.mu.Unlock()
		if p == nil {
			continue // not connected this session: it waits in the store
		}
		p.mu.Lock()
		p.offerLocked(m, out.Queued)
		live := p.link != nil
		if live {
			q.live = append(q.live, p.name)
		}
		p.mu.Unlock()
		if live {
			n.chatting(r.ID)
		}
	}
	select {
	case n.pumpq <- q:
	case <-n.ctx.Done():
		return Sent{}, fmt.Errorf("message not sent: %w", n.ctx.Err())
	}
	if err != nil {
		err = fmt.Errorf("not sent to all: %w", err)
	}
	return Sent{MsgID: out.ID, To: kept}, err
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

// listResend is how often at most a peer is sent the list of peers again
// when it changed: a little over the rate at which lists are heeded
// (peerListEvery), so that none is ignored.
const listResend = peerListEvery + time.Second

// sendList sends l's peer the list of the other peers: after the
// handshake, and again (keeper.go) when peers were added since, so that a
// pair that missed each other (a lost beacon, a node that joined after an
// introduction) is introduced later. Sent again, the list holds only the
// peers attached since the last one that went: the others were in it.
// (A full list again would cost a group of n nodes n*n lists of n peers
// each time one joins, and every node the garbage of them.)
func (n *Node) sendList(l *link, now time.Time) {
	gen := n.peersGen.Load()
	pl := n.announcement(l.id, l.listGen.Load())
	if len(pl.Peers) == 0 && l.listGen.Load() != 0 {
		l.listGen.Store(gen) // nothing new to tell
		return
	}
	if l.conn.Send(pl) == nil {
		l.listGen.Store(gen)
		l.listSent.Store(now.UnixNano())
	}
}

// listable reports whether addr may be passed on in a peer list: not
// link-local (its zone means nothing on another host) nor loopback (but
// in tests whose nodes are all on it, allowLoopback).
func (n *Node) listable(addr string) bool {
	ap, err := netip.ParseAddrPort(addr)
	return err == nil && !ap.Addr().IsLinkLocalUnicast() && (!ap.Addr().IsLoopback() || n.allowLoopback)
}

// announcement lists the connected peers but except, with the address
// where each listens: those attached after gen since (0: all of them).
func (n *Node) announcement(except string, since uint64) transport.PeerList {
	var pl transport.PeerList
	for _, p := range n.peerList() {
		p.mu.Lock()
		addr, live, gen := p.dialAddr, p.link != nil, p.attachedGen
		p.mu.Unlock()
		if p.id == except || !live || gen <= since || addr == "" || len(pl.Peers) >= transport.MaxPeerList {
			continue
		}
		if !n.listable(addr) {
			continue
		}
		pl.Peers = append(pl.Peers, transport.PeerRef{ID: p.id, Addr: addr})
	}
	return pl
}
