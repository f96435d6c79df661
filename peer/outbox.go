package peer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

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

// queued is a message appended to the store and on its way to its
// recipients, whose commit the pump waits for to report it.
type queued struct {
	out *store.Out
	c   *store.Commit
	// to are the recipients it was queued for; live names those of them
	// connected when it was offered.
	to   []Ref
	live []string
}

// heldAcks holds the acknowledgements of messages not reported Stored
// yet: a message goes while its commit runs, and may be acknowledged
// before it ends, but a Delivered event never comes before the Stored one.
type heldAcks struct {
	mu sync.Mutex // protects following
	// stored is the highest id the pump has reported (Stored, or failed).
	stored uint64
	// held is in id order (in the order they came for one id), so that
	// the pump, which reports every message, takes those due from the
	// front rather than looking through all of them each time.
	held []Delivered
}

// hold splits the ids peer who acknowledged into those reported stored,
// returned, and those held for the pump to report.
func (n *Node) hold(who Ref, ids []uint64) []uint64 {
	h := &n.held
	first := n.store.FirstID() // lower ids were reported by an earlier run
	h.mu.Lock()
	defer h.mu.Unlock()
	k := len(ids)
	for k > 0 && ids[k-1] >= first && ids[k-1] > h.stored {
		k--
	}
	for _, id := range ids[k:] {
		d := Delivered{Peer: who, MsgID: id}
		if len(h.held) == 0 || h.held[len(h.held)-1].MsgID <= id {
			h.held = append(h.held, d) // the usual case: one peer, ids growing
			continue
		}
		// After every one of the same id or lower (acknowledgements of
		// several peers interleave).
		i, _ := slices.BinarySearchFunc(h.held, id+1, func(d Delivered, id uint64) int { return cmp.Compare(d.MsgID, id) })
		h.held = slices.Insert(h.held, i, d)
	}
	return ids[:k]
}

// reported records that the pump has reported message id, and returns
// the acknowledgements held for it and before it, in id order; none of
// those of id when its commit failed (failed).
func (n *Node) reported(id uint64, failed bool) []Delivered {
	h := &n.held
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stored = max(h.stored, id)
	if len(h.held) == 0 || h.held[0].MsgID > id {
		return nil
	}
	k, _ := slices.BinarySearchFunc(h.held, id+1, func(d Delivered, id uint64) int { return cmp.Compare(d.MsgID, id) })
	due := make([]Delivered, 0, k)
	for _, d := range h.held[:k] {
		if d.MsgID == id && failed {
			continue
		}
		due = append(due, d)
	}
	clear(h.held[:k]) // let the refs go
	h.held = h.held[k:]
	if len(h.held) == 0 {
		h.held = nil
	}
	return due
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

// pump reports each message appended to the store, in the order they
// were appended, once its commit ends: Stored (then the acknowledgements
// that came before it), or, when the commit failed, a Problem, and the
// message leaves the windows, not to be sent again. It runs until ctx
// ends.
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
		id := q.out.ID
		if err := q.c.Err(); err != nil {
			for _, r := range q.to {
				n.mu.Lock()
				p := n.peers[r.ID]
				n.mu.Unlock()
				if p == nil {
					continue
				}
				p.mu.Lock()
				p.unofferLocked(id)
				if p.link != nil && !slices.Contains(q.live, p.name) {
					q.live = append(q.live, p.name) // connected since: it may have gone
				}
				p.mu.Unlock()
			}
			n.reported(id, true)
			if len(q.live) == 0 {
				n.emit(Problem{Err: fmt.Errorf("message not sent, nothing was stored: %w", err)})
			} else {
				n.emit(Problem{Err: fmt.Errorf("message %q was not stored on disk: it may have reached %s already, and will not be sent again: %w",
					clipText(q.out.Text), strings.Join(q.live, ", "), err)})
			}
			continue
		}
		n.emit(Stored{MsgID: id, Text: q.out.Text, Direct: q.out.Direct, To: q.to, Action: q.out.Flags&transport.ChatAction != 0})
		for _, d := range n.reported(id, false) {
			n.emit(d)
		}
	}
}

// clipText shortens a message's text for a problem about it.
func clipText(s string) string {
	const max = 40
	if len(s) <= max {
		return s
	}
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// offerLocked adds a message just appended to the store (its commit may
// still run) at the end of the window when it fits and nothing in the
// store comes before it; otherwise it stays in the store for refill to
// load.
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

// unofferLocked takes message id, whose commit failed, out of the window:
// it is not sent again (it may have been already).
func (p *Peer) unofferLocked(id uint64) {
	i, ok := slices.BinarySearchFunc(p.outbox, id, func(o outMsg, id uint64) int { return cmp.Compare(o.msg.MsgID, id) })
	if !ok {
		return
	}
	p.windowBytes -= len(p.outbox[i].msg.Text)
	p.outbox = slices.Delete(p.outbox, i, i+1)
	if i < p.sent {
		p.sent--
	}
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
			if n.store.Lost(w.ID) {
				continue // its commit failed since the read: not sent
			}
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
		m := &p.outbox[p.sent].msg
		if m.MsgID <= p.shownUpto {
			m.Flags |= transport.ChatShown // sent again: not to be shown again
		}
		// By pointer: Send encodes it at once, and a copy in an
		// interface would cost an allocation per message.
		if err := l.conn.Send(m); err != nil {
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
	// Resliced, not copied down: acknowledgements come a few messages at
	// a time, and copying the rest of a full window for each costs more
	// than the rest of the delivery. append moves the window to a new
	// array once it reaches the end of this one.
	clear(p.outbox[:i]) // let the texts go
	p.outbox = p.outbox[i:]
	if len(p.outbox) == 0 && cap(p.outbox) > 64 {
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
		ids = n.hold(p.ref(), ids)
	}
	return ids
}

// shownBy records that peer p showed every message up to id, stored or
// not yet (Ack.Shown): should the peer die before it stores them, they go
// again marked shown, and it does not show them twice.
func (n *Node) shownBy(p *Peer, id uint64) {
	if id == 0 {
		return
	}
	p.mu.Lock()
	p.shownUpto = max(p.shownUpto, id)
	p.mu.Unlock()
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
