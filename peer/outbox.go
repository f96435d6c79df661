package peer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"lanchat/store"
	"lanchat/transport"
)

// Delivery. Every message waits in its peer's outbox until the peer
// acknowledges it. With a store (the product), the outbox is on disk, and
// each Peer holds a window of it in memory, refilled as acknowledgements
// come: a peer away for days costs disk, not memory. Without one (tests,
// and the bench's in-memory figures), the outbox is the window, bounded
// by OutboxLimit.

const (
	// OutboxLimit is how many undelivered messages a peer may have
	// waiting without a store; one more is refused with an error.
	OutboxLimit = 1000
	// windowMessages and windowBytes bound a peer's window of its
	// outbox on disk. The window holds what is sent and not yet
	// acknowledged: a few of the receiver's commits' worth, so that the
	// next are on their way while one is written.
	windowMessages = 4096
	windowBytes    = 4 << 20
	// pumpQueue bounds the messages whose commit the pump waits for.
	pumpQueue = 4096
)

// ErrOutboxFull is wrapped when a peer has OutboxLimit undelivered
// messages (without a store; with one, store.ErrFull).
var ErrOutboxFull = errors.New("outbox full")

// outMsg is a chat message waiting for the peer's acknowledgement.
type outMsg struct {
	msg    transport.Chat
	queued time.Time
}

// queued is a message appended to the store, waiting for its commit
// before it goes to its recipients.
type queued struct {
	out *store.Out
	c   *store.Commit
	// to are the recipients it was queued for.
	to []Ref
}

// queue puts msg in p's outbox (without a store) and, while connected
// and the connection's write queue has room, in that queue.
func (n *Node) queue(p *Peer, msg transport.Chat) error {
	p.mu.Lock()
	if len(p.outbox) >= OutboxLimit {
		name := p.name
		p.mu.Unlock()
		return fmt.Errorf("not sent to %s: %w: %d messages to it are waiting for delivery already", name, ErrOutboxFull, OutboxLimit)
	}
	p.outbox = append(p.outbox, outMsg{msg: msg, queued: time.Now()})
	p.lastLoaded = msg.MsgID
	p.pushLocked()
	p.mu.Unlock()
	return nil
}

// pump hands each message appended to the store to its recipients once
// its commit is durable, in the order they were appended, and reports it
// (Stored) or its failure. It runs until ctx ends.
func (n *Node) pump(ctx context.Context) {
	for {
		var q queued
		select {
		case q = <-n.pumpq:
		case <-ctx.Done():
			return
		}
		select {
		case <-q.c.Done():
		case <-ctx.Done():
			return
		}
		if err := q.c.Err(); err != nil {
			n.emit(Problem{Err: fmt.Errorf("message not sent, nothing was stored: %w", err)})
			continue
		}
		m := transport.Chat{MsgID: q.out.ID, Direct: q.out.Direct, Sent: q.out.Sent.UnixNano(), Text: q.out.Text, Flags: q.out.Flags}
		for _, r := range q.to {
			n.mu.Lock()
			p := n.peers[r.ID]
			n.mu.Unlock()
			if p == nil {
				continue // not connected this session: it waits on disk
			}
			p.mu.Lock()
			p.offerLocked(m, q.out.Queued)
			p.mu.Unlock()
		}
		n.emit(Stored{MsgID: m.MsgID, Text: m.Text, Direct: m.Direct, To: q.to, Action: m.Flags&transport.ChatAction != 0})
	}
}

// offerLocked adds a durable message at the end of the window when it
// fits and nothing on disk comes before it; otherwise it stays on disk
// for refill to load.
func (p *Peer) offerLocked(m transport.Chat, at time.Time) {
	if m.MsgID <= p.lastLoaded {
		return // refill loaded it already
	}
	if p.spilled || len(p.outbox) >= windowMessages || p.windowBytes+len(m.Text) > windowBytes {
		p.spilled = true
		p.spills++
		return
	}
	p.outbox = append(p.outbox, outMsg{msg: m, queued: at})
	p.windowBytes += len(m.Text)
	p.lastLoaded = m.MsgID
	p.pushLocked()
}

// testHookRefillRead, when set (tests), runs in refill once it has read
// the store, before it takes the peer's lock.
var testHookRefillRead func()

// refill loads what waits on disk for p beyond its window, while the
// window has room. The store is read with no lock held: a message left on
// disk by offerLocked meanwhile may have become durable after the read
// began, and keeps p spilled (else nothing would load it, and the next
// one offered would go, and be acknowledged, in its place).
func (n *Node) refill(p *Peer) {
	if n.store == nil {
		return
	}
	for {
		p.mu.Lock()
		after, room, spills := p.lastLoaded, windowMessages-len(p.outbox), p.spills
		need := p.spilled && room >= windowMessages/2 && p.windowBytes <= windowBytes/2
		p.mu.Unlock()
		if !need {
			return
		}
		ws, err := n.store.Outbox(p.id, after, room)
		if testHookRefillRead != nil {
			testHookRefillRead()
		}
		if err != nil {
			n.emit(Problem{Err: fmt.Errorf("read the messages waiting for %s: %w", ShortID(p.id), err)})
			return
		}
		p.mu.Lock()
		if p.lastLoaded != after {
			p.mu.Unlock()
			continue // loaded meanwhile: look again
		}
		for _, w := range ws {
			p.outbox = append(p.outbox, outMsg{msg: transport.Chat{MsgID: w.ID, Direct: w.Direct, Sent: w.Sent.UnixNano(), Text: w.Text, Flags: w.Flags}, queued: w.Queued})
			p.windowBytes += len(w.Text)
			p.lastLoaded = w.ID
		}
		p.spilled = len(ws) == room || p.spills != spills
		more := p.spilled
		p.pushLocked()
		p.mu.Unlock()
		if !more {
			return
		}
	}
}

// pushLocked hands the link's write queue the messages not handed yet, in
// order, until it is full; the rest wait for OnSpace. It never skips one:
// a later message acked cumulatively would clear an earlier one unsent.
func (p *Peer) pushLocked() {
	l := p.link
	if l == nil {
		return
	}
	for p.sent < len(p.outbox) {
		// By pointer: Send encodes it at once, and a copy in an
		// interface would cost an allocation per message.
		if err := l.conn.Send(&p.outbox[p.sent].msg); err != nil {
			// Full: OnSpace resumes. Closed: the next link resends.
			return
		}
		p.sent++
	}
}

// pushMore is l's OnSpace: its write queue has room again.
func (n *Node) pushMore(p *Peer, l *link) {
	p.mu.Lock()
	if p.link == l {
		p.pushLocked()
	}
	p.mu.Unlock()
}

// notReading is the notice due, once per stall, for a peer whose
// messages wait while it has taken none of the data queued for it in
// notReadingAfter: a peer merely slower than the sender is not told of.
func (l *link) notReading(now time.Time) *Notice {
	p := l.p
	stalled := l.conn.Waiting(now)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.link != l {
		return nil
	}
	if stalled < notReadingAfter {
		p.told = false // moving again: a later stall is told again
		return nil
	}
	if p.told || len(p.outbox) == 0 {
		return nil
	}
	bytes := 0
	for _, o := range p.outbox {
		bytes += len(o.msg.Text)
	}
	more := ""
	if p.spilled {
		more = ", and more on disk"
	}
	return &Notice{Text: fmt.Sprintf("%s (%s) is not reading (nothing taken for %v): %d messages (%s%s) wait for it, and go once it reads again or reconnects",
		p.name, ShortID(p.id), stalled.Round(100*time.Millisecond), len(p.outbox), sizeOf(bytes), more)}
}

// toldNotReading records that the notice from notReading went out.
func (l *link) toldNotReading() {
	l.p.mu.Lock()
	if l.p.link == l {
		l.p.told = true
	}
	l.p.mu.Unlock()
}

// sizeOf writes a byte count for people.
func sizeOf(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// acked removes what the peer acknowledged from the window (and from the
// store) and appends their ids to ids.
func (n *Node) acked(p *Peer, upto uint64, ids []uint64) []uint64 {
	p.mu.Lock()
	i := 0
	for i < len(p.outbox) && p.outbox[i].msg.MsgID <= upto {
		ids = append(ids, p.outbox[i].msg.MsgID)
		p.windowBytes -= len(p.outbox[i].msg.Text)
		i++
	}
	k := copy(p.outbox, p.outbox[i:])
	clear(p.outbox[k:]) // let the texts go
	p.outbox = p.outbox[:k]
	if k == 0 && cap(p.outbox) > 64 {
		p.outbox = nil // a burst's worth: not kept for the quiet after it
	}
	p.sent = max(p.sent-i, 0)
	spilled := p.spilled
	p.mu.Unlock()
	if n.store != nil && i > 0 {
		n.store.Acked(p.id, upto)
		if spilled {
			n.refill(p)
		}
	}
	return ids
}

// received records a chat message id from the peer (without a store) and
// reports whether it is new, with the id to acknowledge.
func (p *Peer) received(id uint64) (fresh bool, ack uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if id > p.lastRecv {
		p.lastRecv = id
		return true, id
	}
	return false, p.lastRecv
}

// PendingMessage is a message not yet acknowledged by a peer.
type PendingMessage struct {
	MsgID  uint64
	Text   string
	Direct bool
	Queued time.Time
}

// PendingPeer is a peer with messages not yet delivered: Count of them,
// the first of which are listed.
type PendingPeer struct {
	Peer     Info
	Count    int
	Messages []PendingMessage
}

// pendingListed is how many waiting messages Pending lists per peer.
const pendingListed = 100

// Pending lists, per peer, the messages not yet delivered: with a store,
// every peer that has any on disk, met this session or not.
func (n *Node) Pending() []PendingPeer {
	var out []PendingPeer
	if n.store == nil {
		for _, p := range n.peerList() {
			p.mu.Lock()
			var list []PendingMessage
			for _, o := range p.outbox {
				list = append(list, PendingMessage{MsgID: o.msg.MsgID, Text: o.msg.Text, Direct: o.msg.Direct, Queued: o.queued})
			}
			p.mu.Unlock()
			if len(list) > 0 {
				out = append(out, PendingPeer{Peer: p.info(), Count: len(list), Messages: list[:min(len(list), pendingListed)]})
			}
		}
	} else {
		for id, c := range n.store.Pending() {
			if c.Messages == 0 {
				continue
			}
			pp := PendingPeer{Peer: n.infoOf(id), Count: c.Messages}
			ws, err := n.store.Outbox(id, 0, pendingListed)
			if err != nil {
				n.log.Warn("reading the messages waiting for a peer", "id", ShortID(id), "err", err)
			}
			for _, w := range ws {
				pp.Messages = append(pp.Messages, PendingMessage{MsgID: w.ID, Text: w.Text, Direct: w.Direct, Queued: w.Queued})
			}
			out = append(out, pp)
		}
	}
	slices.SortFunc(out, func(a, b PendingPeer) int {
		return cmp.Or(cmp.Compare(a.Peer.Name, b.Peer.Name), cmp.Compare(a.Peer.ID, b.Peer.ID))
	})
	return out
}

// PendingCount is the number of undelivered messages, over all peers.
func (n *Node) PendingCount() int {
	if n.store != nil {
		return n.store.Total().Messages
	}
	total := 0
	for _, p := range n.peerList() {
		p.mu.Lock()
		total += len(p.outbox)
		p.mu.Unlock()
	}
	return total
}

// Drop discards what waits for a peer (a name, an id prefix, or a name
// known from an earlier session) and reports how many messages that was.
// Messages already handed to its connection may still arrive.
func (n *Node) Drop(peerArg string) (Info, int, error) {
	id, err := n.resolveID(peerArg)
	if err != nil {
		return Info{}, 0, err
	}
	dropped := 0
	n.mu.Lock()
	p := n.peers[id]
	n.mu.Unlock()
	if p != nil {
		p.mu.Lock()
		if n.store == nil {
			dropped = len(p.outbox)
		}
		p.outbox, p.sent, p.windowBytes, p.spilled = nil, 0, 0, false
		p.mu.Unlock()
	}
	if n.store != nil {
		if dropped, err = n.store.Drop(id); err != nil {
			return n.infoOf(id), 0, fmt.Errorf("drop the messages waiting for %s: %w", ShortID(id), err)
		}
	}
	return n.infoOf(id), dropped, nil
}
