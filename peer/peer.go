package peer

import (
	"net"
	"strconv"
	"sync"
	"time"

	"lanchat/identity"
	"lanchat/transport"
)

// Peer is another node this one is connected to, or was and is
// reconnecting to. It outlives connections (links): what is sent while
// the node is away waits in its outbox and reaches it when it is back,
// and what it sends is counted so that a resent message is shown once.
type Peer struct {
	id string
	// kick wakes the reconnect loop (the node was seen again).
	kick chan struct{}

	mu sync.Mutex // protects following
	// name is the node's current name and trust the known-peers verdict.
	name  string
	trust identity.Trust
	// link is the live connection, nil while away.
	link *link
	// dialAddr is where the node listens, for reconnecting.
	dialAddr string
	via      Via
	// manual is set for nodes given by hand: reconnected for ever.
	manual         bool
	lastAdvertised time.Time
	// away is set while the connection is lost and being re-established.
	away      bool
	awaySince time.Time
	// Delivery; see outbox.go.
	outbox []outMsg
	// sent counts the messages at the head of outbox handed to the
	// current link's write queue; the rest wait for room there.
	sent int
	// blocked is set while messages wait for room in the link's queue;
	// told once the user was told that the peer is not reading.
	blocked, told bool
	// recvSession is the node's process whose message ids lastRecv
	// counts; a new process starts again from zero.
	recvSession uint64
	lastRecv    uint64
	// userAway and awayText are what the peer's user last said with
	// /away and /back (away.go).
	userAway bool
	awayText string
}

// attach makes l the peer's live connection and hands it, in order,
// whatever waits in the outbox. It reports whether the peer was away, and
// the name it had before when that was another (was).
func (n *Node) attach(l *link, h transport.Hello, dialed bool) (wasAway bool, was string) {
	p := n.peerFor(l.id)
	l.conn.OnSpace(func() { n.pushMore(p, l) })
	p.mu.Lock()
	l.p = p
	was = p.name
	if was == "" {
		was = n.left.lookup(l.id)
	}
	if was == h.Name {
		was = ""
	}
	p.name = h.Name
	p.via = l.via
	if h.TCPPort != 0 {
		p.dialAddr = net.JoinHostPort(l.tcpAddr.Addr().String(), strconv.Itoa(int(h.TCPPort)))
	}
	if dialed && l.via == ViaManual {
		p.manual = true
	}
	if l.via == ViaMDNS && p.lastAdvertised.IsZero() {
		p.lastAdvertised = time.Now()
	}
	wasAway = p.away
	p.away = false
	p.link = l
	if p.recvSession != h.Session {
		p.recvSession, p.lastRecv = h.Session, 0
	}
	p.sent, p.blocked, p.told = 0, false, false
	p.pushLocked()
	p.mu.Unlock()
	n.tellStatus(l)
	select {
	case p.kick <- struct{}{}:
	default:
	}
	return wasAway, was
}

// detach handles the end of l's connection. A peer that said goodbye (or
// a node that is leaving) is dropped, with its undelivered messages; any
// other loss starts reconnecting. It reports whether a reconnect started.
func (n *Node) detach(l *link, bye bool) (reconnecting bool, undelivered int) {
	p := l.p
	p.mu.Lock()
	if p.link != l {
		p.mu.Unlock()
		return false, 0 // replaced by a newer connection
	}
	p.link = nil
	p.sent, p.blocked, p.told = 0, false, false
	if bye || n.leaving.Load() || n.ctx.Err() != nil || p.dialAddr == "" {
		undelivered = len(p.outbox)
		p.mu.Unlock()
		n.forget(p)
		return false, undelivered
	}
	p.away, p.awaySince = true, time.Now()
	p.mu.Unlock()
	n.wg.Add(1)
	go n.reconnect(p)
	return true, 0
}

// ref names the peer for an event.
func (p *Peer) ref() Ref {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Ref{ID: p.id, Name: p.name, Trust: p.trust}
}

// info describes the peer, live or away.
func (p *Peer) info() Info {
	p.mu.Lock()
	l := p.link
	if l == nil {
		i := Info{ID: p.id, Name: p.name, Addr: p.dialAddr, Listen: p.dialAddr, State: Away, UDP: UDPNone, Via: p.via,
			Since: p.awaySince, Trust: p.trust, Pending: len(p.outbox), UserAway: p.userAway, AwayText: p.awayText}
		p.mu.Unlock()
		return i
	}
	p.mu.Unlock()
	return l.info()
}
