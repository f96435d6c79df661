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

	// recvMu orders, with a store, a message's freshness decision and
	// its queueing for delivery on a link against a newer link taking
	// over (receiveStored, attach): a replaced link takes no more.
	recvMu sync.Mutex

	mu sync.Mutex // protects following
	// name is the node's current name and trust the known-peers verdict.
	name  string
	trust identity.Trust
	// link is the live connection, nil while away.
	link *link
	// dialAddr is where the node listens, for reconnecting.
	dialAddr string
	// attachedGen is the node's peersGen that attaching link made: a
	// peer list sent again lists only the peers attached since the last
	// one (sendList).
	attachedGen uint64
	via         Via
	// manual is set for nodes given by hand: reconnected for ever.
	manual         bool
	lastAdvertised time.Time
	// away is set while the connection is lost and being re-established.
	away      bool
	awaySince time.Time
	// Delivery; see outbox.go. outbox is the window of what waits for
	// the peer, windowBytes its texts' size, lastLoaded the highest id
	// put in it, and spilled is set while more waits on disk; spills
	// counts the messages offerLocked left there.
	outbox      []outMsg
	windowBytes int
	lastLoaded  uint64
	spilled     bool
	spills      uint64
	// shownUpto is the highest id the peer said it showed (Ack.Shown):
	// those sent again are marked transport.ChatShown.
	shownUpto uint64
	// sent counts the messages at the head of outbox handed to the
	// current link's write queue; the rest wait for room there.
	sent int
	// told is set once the user was told that the peer is not reading,
	// until data moves again.
	told bool
	// recvEpoch is the sequence of the node's message ids that lastRecv
	// counts (without a store; with one, the store keeps it).
	recvEpoch uint64
	lastRecv  uint64
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
	pinned := n.known.NamesOf(l.id)
	p.recvMu.Lock()
	p.mu.Lock()
	l.p = p
	// The name before: this session's, else the one it left under, else
	// the one name known_peers holds for it.
	was = p.name
	if was == "" {
		was = n.left.lookup(l.id)
	}
	if was == "" && len(pinned) == 1 && !SameName(pinned[0], h.Name) {
		was = pinned[0]
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
	old := p.link
	if old == l {
		old = nil
	}
	l.prev = old
	p.link = l
	p.attachedGen = n.peersGen.Add(1)
	if p.recvEpoch != l.epoch {
		p.recvEpoch, p.lastRecv = l.epoch, 0
	}
	p.sent, p.told = 0, false
	if n.store != nil && p.lastLoaded == 0 && len(p.outbox) == 0 {
		// New this session: whatever waits for it is on disk.
		p.spilled = true
	}
	p.pushLocked()
	p.mu.Unlock()
	if old != nil {
		// No chain of links: the newest waits for the one it replaced.
		old.rmu.Lock()
		old.prev = nil
		old.rmu.Unlock()
	}
	p.recvMu.Unlock()
	n.refill(p)
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
	p.sent, p.told = 0, false
	if bye || n.leaving.Load() || n.ctx.Err() != nil || p.dialAddr == "" {
		undelivered = len(p.outbox)
		p.mu.Unlock()
		n.forget(p)
		if n.store != nil {
			// They wait on disk for its next connection.
			undelivered = 0
		}
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
