package peer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"time"

	"lanchat/identity"
	"lanchat/transport"
)

// Sent describes a chat message handed to lanchat: its id and the peers
// it was queued for (delivery is reported by Delivered events).
type Sent struct {
	MsgID uint64
	To    []Ref
}

// Say sends text to every peer, connected or away (it waits in their
// outboxes until they are back). Errors name the peers it could not be
// queued for.
func (n *Node) Say(text string) (Sent, error) {
	if err := transport.CheckText(text); err != nil {
		return Sent{}, fmt.Errorf("message not sent: %w", err)
	}
	n.sendMu.Lock()
	defer n.sendMu.Unlock()
	ms := n.memberList()
	if len(ms) == 0 {
		return Sent{}, fmt.Errorf("message not sent: %w", ErrNoPeers)
	}
	m := transport.Chat{MsgID: n.nextMsg.Add(1), Sent: time.Now().UnixNano(), Text: text}
	sent := Sent{MsgID: m.MsgID}
	var errs []error
	for _, mb := range ms {
		if err := mb.queue(m); err != nil {
			errs = append(errs, err)
			continue
		}
		sent.To = append(sent.To, mb.ref())
	}
	return sent, errors.Join(errs...)
}

// Tell sends text to one peer (a name or id prefix) only; a peer that is
// away gets it when it is back.
func (n *Node) Tell(peerArg, text string) (Sent, error) {
	if err := transport.CheckText(text); err != nil {
		return Sent{}, fmt.Errorf("message not sent: %w", err)
	}
	n.sendMu.Lock()
	defer n.sendMu.Unlock()
	mb, err := n.lookup(peerArg)
	if err != nil {
		return Sent{}, err
	}
	m := transport.Chat{MsgID: n.nextMsg.Add(1), Direct: true, Sent: time.Now().UnixNano(), Text: text}
	if err := mb.queue(m); err != nil {
		return Sent{}, err
	}
	return Sent{MsgID: m.MsgID, To: []Ref{mb.ref()}}, nil
}

// SetName changes this node's name and tells every peer.
func (n *Node) SetName(name string) error {
	if err := transport.CheckName(name); err != nil {
		return err
	}
	n.mu.Lock()
	n.name = name
	ps := n.livePeersLocked()
	n.mu.Unlock()
	var errs []error
	for _, p := range ps {
		if err := p.conn.Send(transport.Nick{Name: name}); err != nil {
			errs = append(errs, fmt.Errorf("%s not told: %w", p.name(), err))
		}
	}
	return errors.Join(errs...)
}

// peerList lists the connected peers but except, with the address where
// each listens, for a newly connected peer. Link-local addresses are left
// out: their zone means nothing on another host.
func (n *Node) peerList(except string) transport.PeerList {
	var l transport.PeerList
	for _, m := range n.memberList() {
		m.mu.Lock()
		addr, live := m.dialAddr, m.conn != nil
		m.mu.Unlock()
		if m.id == except || !live || addr == "" || len(l.Peers) >= transport.MaxPeerList {
			continue
		}
		if ap, err := netip.ParseAddrPort(addr); err != nil || ap.Addr().IsLinkLocalUnicast() || ap.Addr().IsLoopback() {
			continue
		}
		l.Peers = append(l.Peers, transport.PeerRef{ID: m.id, Addr: addr})
	}
	return l
}

// Found is a node that discovery saw.
type Found struct {
	// Via is how it was found: ViaMDNS when empty; a node named in a
	// peer's list inherits how that peer was reached.
	Via      string
	Instance string
	ID       string
	Addrs    []string // host:port to try, best first
	// Answer: the node answered this node's first mDNS query, so it was
	// there first and does not know of this node yet (see
	// discovery.Entry.Answer).
	Answer bool
}

// Discovered dials a node that discovery found, unless it is this node,
// already connected or being dialled. Failures are logged once per
// instance and address: discovery repeats itself, the log should not.
func (n *Node) Discovered(f Found) {
	<-n.ready
	if f.ID == n.id || n.leaving.Load() {
		return
	}
	n.mu.Lock()
	if m := n.members[f.ID]; m != nil {
		m.mu.Lock()
		m.lastAdvertised = time.Now()
		away := m.away
		m.mu.Unlock()
		if away {
			// Its reconnect loop may be asleep in its backoff: seen
			// again, it is worth a try now.
			select {
			case m.kick <- struct{}{}:
			default:
			}
		}
	}
	if n.peers[f.ID] != nil || n.dialing[f.ID] {
		n.mu.Unlock()
		return
	}
	n.dialing[f.ID] = true
	wait := n.holdOffLocked(f)
	n.mu.Unlock()
	n.log.Debug("dialling a discovered node", "id", ShortID(f.ID), "found", f.Instance, "addrs", f.Addrs, "after", wait)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer func() {
			n.mu.Lock()
			delete(n.dialing, f.ID)
			n.mu.Unlock()
		}()
		if wait > 0 && !n.heldOff(f, wait) {
			return
		}
		var errs []error
		for _, addr := range f.Addrs {
			via := f.Via
			if via == "" {
				via = ViaMDNS
			}
			_, err := n.Connect(n.ctx, addr, via, f.ID)
			if err == nil || errors.Is(err, ErrDuplicate) {
				return
			}
			if n.ctx.Err() != nil || n.leaving.Load() {
				return
			}
			errs = append(errs, err)
		}
		key := f.Instance + " " + fmt.Sprint(f.Addrs)
		n.mu.Lock()
		warned := n.warned[key]
		n.warned[key] = true
		n.mu.Unlock()
		level := n.log.Info
		if warned {
			level = n.log.Debug
		}
		level("skipping a discovered node: cannot connect", "found", f.Instance, "err", errors.Join(errs...))
	}()
}

// holdOffLocked decides how long to wait before dialling f. Both ends of
// a pair usually discover each other, and a pair that dials both ways pays
// for two TLS handshakes and drops one: with many nodes starting at once
// that doubles the handshakes of forming the mesh. So a node dials at once only
// a node that answered its first query (which cannot know of it yet); one
// seen later has most likely just started and is dialling it, so it waits
// a little, or longer when its id is the larger, and dials only if no
// connection has come of the other's dial by then.
func (n *Node) holdOffLocked(f Found) time.Duration {
	var d time.Duration
	switch {
	case n.acceptingFromLocked(f):
		d = shortHoldOff
	case f.Answer:
		return 0
	case n.id < f.ID:
		d = shortHoldOff
	default:
		d = DialHoldOff
	}
	return d + rand.N(d/2)
}

// acceptingFromLocked reports whether a connection from one of f's
// addresses is being accepted: most likely f dialling.
func (n *Node) acceptingFromLocked(f Found) bool {
	for _, a := range f.Addrs {
		if ap, err := netip.ParseAddrPort(a); err == nil && n.accepting[ap.Addr().Unmap().WithZone("")] > 0 {
			return true
		}
	}
	return false
}

// heldOff waits d and then for connections being accepted from f's
// addresses (within HandshakeTimeout), and reports whether f is still to
// be dialled.
func (n *Node) heldOff(f Found, d time.Duration) bool {
	deadline := time.Now().Add(d + HandshakeTimeout)
	for {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-n.ctx.Done():
			t.Stop()
			return false
		}
		n.mu.Lock()
		connected, accepting := n.peers[f.ID] != nil, n.acceptingFromLocked(f)
		n.mu.Unlock()
		if connected || n.leaving.Load() {
			return false
		}
		if !accepting || time.Now().After(deadline) {
			return true
		}
		d = 20 * time.Millisecond
	}
}

// ConnectManual connects to a peer given by hand, retrying with backoff
// until it succeeds or ctx ends; each failure after the first is logged at
// debug level only.
func (n *Node) ConnectManual(ctx context.Context, addr, expectID string) {
	<-n.ready
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stop := context.AfterFunc(n.ctx, cancel)
		defer stop()
		delay := 250 * time.Millisecond
		for attempt := 1; ; attempt++ {
			_, err := n.Connect(ctx, addr, ViaManual, expectID)
			if err == nil || errors.Is(err, ErrDuplicate) || errors.Is(err, ErrSelf) || errors.Is(err, ErrIdentity) {
				if errors.Is(err, ErrSelf) {
					n.emit(Problem{Err: fmt.Errorf("--peer %s: %w", addr, err)})
				}
				return
			}
			if attempt == 1 {
				n.emit(Problem{Err: fmt.Errorf("--peer %s: %w; retrying in the background", addr, err)})
			} else {
				n.log.Debug("manual peer still unreachable", "addr", addr, "err", err)
			}
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			}
			delay = min(2*delay, 10*time.Second)
		}
	}()
}

// SplitPeerAddr splits "[ID@]HOST:PORT" into the expected id (normalised,
// "" when not given) and the address.
func SplitPeerAddr(s string) (id, addr string) {
	if i := strings.Index(s, "@"); i >= 0 {
		return identity.NormalizeID(s[:i]), s[i+1:]
	}
	return "", s
}
