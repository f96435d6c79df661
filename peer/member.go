package peer

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"lanchat/identity"
	"lanchat/transport"
)

// Delivery and liveness.
const (
	// OutboxLimit is how many undelivered messages a peer may have
	// waiting; one more is refused with an error.
	OutboxLimit = 1000
	// beatInterval is how often each side shows it is alive, over UDP
	// (a probe, acknowledged) and over TCP (a heartbeat frame).
	beatInterval = 500 * time.Millisecond
	// UnreachableAfter is the silence after which a peer is shown as
	// unreachable. Heartbeats come every beatInterval, so a pulled cable
	// is noticed between UnreachableAfter-beatInterval and
	// UnreachableAfter+checkInterval after it was pulled: within 3 s.
	UnreachableAfter = 2500 * time.Millisecond
	// checkInterval is how often silence is checked.
	checkInterval = 100 * time.Millisecond
	// deadAfter is the silence after which the connection is given up
	// and a new one is tried.
	deadAfter = 10 * time.Second
	// Reconnection backoff: from about reconnectFirst, doubling, capped.
	reconnectFirst = 100 * time.Millisecond
	reconnectMax   = 4 * time.Second
	// advertisedFor is how long after its last mDNS sighting a peer
	// found by mDNS is still worth reconnecting to.
	advertisedFor = 90 * time.Second
	// lookAgainEvery: while a peer is being reconnected, discovery looks
	// for it this often (not only when it was lost), so that a peer still
	// advertised stays advertised and is not given up.
	lookAgainEvery = advertisedFor / 3
	// staleAfter is how old a connection must be before a new one from
	// the same process replaces it: younger ones are a simultaneous dial.
	staleAfter = 2 * time.Second
)

// ErrOutboxFull is wrapped when a peer has OutboxLimit undelivered messages.
var ErrOutboxFull = errors.New("outbox full")

// outMsg is a chat message waiting for the peer's acknowledgement.
type outMsg struct {
	msg    transport.Chat
	queued time.Time
}

// member is a node this one is or was connected to in this process. It
// outlives connections: what is sent while the node is away waits in its
// outbox and reaches it when it is back, and what it sends is counted so
// that a resent message is shown once.
type member struct {
	id string
	// kick wakes the reconnect loop (the node was seen again).
	kick chan struct{}

	mu sync.Mutex // protects following
	// name is the node's current name and trust the known-peers verdict.
	name  string
	trust identity.Trust
	// conn is the live connection, nil while away.
	conn *peer
	// dialAddr is where the node listens, for reconnecting.
	dialAddr string
	via      string
	// manual is set for nodes given by hand: reconnected for ever.
	manual         bool
	lastAdvertised time.Time
	// away is set while the connection is lost and being re-established.
	away      bool
	awaySince time.Time
	outbox    []outMsg
	// recvSession is the node's process whose message ids lastRecv
	// counts; a new process starts again from zero.
	recvSession uint64
	lastRecv    uint64
}

// memberFor returns the member for id, making it when new.
func (n *Node) memberFor(id string) *member {
	n.mu.Lock()
	defer n.mu.Unlock()
	m := n.members[id]
	if m == nil {
		m = &member{id: id, kick: make(chan struct{}, 1)}
		n.members[id] = m
	}
	return m
}

// attach makes p the member's live connection: it resends, in order,
// whatever waits in the outbox. It reports whether the member was away.
func (n *Node) attach(p *peer, h transport.Hello, dialed bool) (wasAway bool) {
	m := n.memberFor(p.id)
	m.mu.Lock()
	defer m.mu.Unlock()
	p.m = m
	m.name = h.Name
	m.via = p.via
	if h.TCPPort != 0 {
		m.dialAddr = net.JoinHostPort(p.tcpAddr.Addr().String(), strconv.Itoa(int(h.TCPPort)))
	}
	if dialed && p.via == ViaManual {
		m.manual = true
	}
	if p.via == ViaMDNS && m.lastAdvertised.IsZero() {
		m.lastAdvertised = time.Now()
	}
	wasAway = m.away
	m.away = false
	m.conn = p
	if m.recvSession != h.Session {
		m.recvSession, m.lastRecv = h.Session, 0
	}
	for i := range m.outbox {
		if err := p.conn.Send(&m.outbox[i].msg); err != nil {
			p.conn.Close() // as in queue: the next connection resends
			break
		}
	}
	select {
	case m.kick <- struct{}{}:
	default:
	}
	return wasAway
}

// detach handles the end of p's connection. A peer that said goodbye (or
// a node that is leaving) is dropped, with its undelivered messages; any
// other loss starts reconnecting. It reports whether a reconnect started.
func (n *Node) detach(p *peer, bye bool) (reconnecting bool, undelivered int) {
	m := p.m
	m.mu.Lock()
	if m.conn != p {
		m.mu.Unlock()
		return false, 0 // replaced by a newer connection
	}
	m.conn = nil
	if bye || n.leaving.Load() || n.ctx.Err() != nil || m.dialAddr == "" {
		undelivered = len(m.outbox)
		m.mu.Unlock()
		n.mu.Lock()
		if n.members[m.id] == m {
			delete(n.members, m.id)
		}
		n.mu.Unlock()
		return false, undelivered
	}
	m.away, m.awaySince = true, time.Now()
	m.mu.Unlock()
	n.wg.Add(1)
	go n.reconnect(m)
	return true, 0
}

// reconnect dials a member that was lost until it is connected again (by
// either side), it stops being advertised, or the node stops.
func (n *Node) reconnect(m *member) {
	defer n.wg.Done()
	lookAgain := func() {
		if n.onLost != nil {
			n.onLost()
		}
	}
	lookAgain()
	lookedAt := time.Now()
	delay := reconnectFirst
	for {
		if time.Since(lookedAt) >= lookAgainEvery {
			lookAgain()
			lookedAt = time.Now()
		}
		// Jitter spreads the redials of many nodes that lost the same
		// network at the same moment.
		wait := delay/2 + rand.N(delay)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-m.kick:
			t.Stop()
		case <-n.ctx.Done():
			t.Stop()
			return
		}
		m.mu.Lock()
		if !m.away {
			m.mu.Unlock()
			return
		}
		addr, via, manual := m.dialAddr, m.via, m.manual
		seen := m.lastAdvertised
		if seen.Before(m.awaySince) {
			seen = m.awaySince
		}
		if !manual && time.Since(seen) > advertisedFor {
			undelivered := len(m.outbox)
			m.away = false
			name := m.name
			m.mu.Unlock()
			n.mu.Lock()
			if n.members[m.id] == m {
				delete(n.members, m.id)
			}
			n.mu.Unlock()
			text := fmt.Sprintf("gave up reconnecting to %s (%s): not seen on the network for %v", name, ShortID(m.id), advertisedFor)
			if undelivered > 0 {
				text += fmt.Sprintf("; %d messages to it were not delivered", undelivered)
			}
			n.emit(Notice{Text: text})
			return
		}
		m.mu.Unlock()
		if n.leaving.Load() {
			return
		}
		_, err := n.Connect(n.ctx, addr, via, m.id)
		if err == nil {
			return
		}
		n.log.Debug("reconnect failed", "id", ShortID(m.id), "addr", addr, "err", err)
		delay = min(2*delay, reconnectMax)
	}
}

// queue puts msg in the member's outbox and sends it if connected.
func (m *member) queue(msg transport.Chat) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.outbox) >= OutboxLimit {
		return fmt.Errorf("not sent to %s: %w: %d messages to it are waiting for delivery already", m.name, ErrOutboxFull, OutboxLimit)
	}
	m.outbox = append(m.outbox, outMsg{msg: msg, queued: time.Now()})
	if m.conn != nil {
		// By pointer: Send encodes it at once, and a copy in an
		// interface would cost an allocation per message.
		if err := m.conn.conn.Send(&m.outbox[len(m.outbox)-1].msg); err != nil {
			// The message stays in the outbox and goes with the next
			// connection. This one must not carry later messages: their
			// cumulative ack would clear this one unsent.
			m.conn.conn.Close()
		}
	}
	return nil
}

// acked removes what the peer acknowledged from the outbox and appends
// their ids to ids.
func (m *member) acked(upto uint64, ids []uint64) []uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	i := 0
	for i < len(m.outbox) && m.outbox[i].msg.MsgID <= upto {
		ids = append(ids, m.outbox[i].msg.MsgID)
		i++
	}
	n := copy(m.outbox, m.outbox[i:])
	clear(m.outbox[n:]) // let the texts go
	m.outbox = m.outbox[:n]
	return ids
}

// ref names the member for an event.
func (m *member) ref() Ref {
	m.mu.Lock()
	defer m.mu.Unlock()
	return Ref{ID: m.id, Name: m.name, Trust: m.trust}
}

// received records a chat message id from the member and reports whether
// it is new, with the id to acknowledge.
func (m *member) received(id uint64) (fresh bool, ack uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if id > m.lastRecv {
		m.lastRecv = id
		return true, id
	}
	return false, m.lastRecv
}

// info describes the member, live or away.
func (m *member) info() Info {
	m.mu.Lock()
	p := m.conn
	if p == nil {
		i := Info{ID: m.id, Name: m.name, Addr: m.dialAddr, TCP: "away", UDP: "-", Via: m.via,
			Since: m.awaySince, Trust: m.trust, Pending: len(m.outbox)}
		m.mu.Unlock()
		return i
	}
	m.mu.Unlock()
	return p.info()
}

// PendingMessage is a message not yet acknowledged by a peer.
type PendingMessage struct {
	MsgID  uint64
	Text   string
	Direct bool
	Queued time.Time
}

// PendingPeer is a peer with messages not yet delivered.
type PendingPeer struct {
	Peer     Info
	Messages []PendingMessage
}

// Pending lists, per peer, the messages not yet delivered.
func (n *Node) Pending() []PendingPeer {
	var out []PendingPeer
	for _, m := range n.memberList() {
		m.mu.Lock()
		var list []PendingMessage
		for _, o := range m.outbox {
			list = append(list, PendingMessage{MsgID: o.msg.MsgID, Text: o.msg.Text, Direct: o.msg.Direct, Queued: o.queued})
		}
		m.mu.Unlock()
		if len(list) > 0 {
			out = append(out, PendingPeer{Peer: m.info(), Messages: list})
		}
	}
	slices.SortFunc(out, func(a, b PendingPeer) int { return cmp.Compare(a.Peer.Name, b.Peer.Name) })
	return out
}

// PendingCount is the number of undelivered messages, over all peers.
func (n *Node) PendingCount() int {
	total := 0
	for _, m := range n.memberList() {
		m.mu.Lock()
		total += len(m.outbox)
		m.mu.Unlock()
	}
	return total
}

func (n *Node) memberList() []*member {
	n.mu.Lock()
	defer n.mu.Unlock()
	ms := make([]*member, 0, len(n.members))
	for _, m := range n.members {
		ms = append(ms, m)
	}
	return ms
}
