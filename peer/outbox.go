package peer

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"lanchat/transport"
)

// OutboxLimit is how many undelivered messages a peer may have waiting;
// one more is refused with an error.
const OutboxLimit = 1000

// ErrOutboxFull is wrapped when a peer has OutboxLimit undelivered messages.
var ErrOutboxFull = errors.New("outbox full")

// outMsg is a chat message waiting for the peer's acknowledgement.
type outMsg struct {
	msg    transport.Chat
	queued time.Time
}

// queue puts msg in p's outbox and, while connected and the connection's
// write queue has room, in that queue.
func (n *Node) queue(p *Peer, msg transport.Chat) error {
	p.mu.Lock()
	if len(p.outbox) >= OutboxLimit {
		name := p.name
		p.mu.Unlock()
		return fmt.Errorf("not sent to %s: %w: %d messages to it are waiting for delivery already", name, ErrOutboxFull, OutboxLimit)
	}
	p.outbox = append(p.outbox, outMsg{msg: msg, queued: time.Now()})
	p.pushLocked()
	p.mu.Unlock()
	return nil
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
			p.blocked = errors.Is(err, transport.ErrQueueFull)
			return
		}
		p.sent++
	}
	p.blocked, p.told = false, false
}

// pushMore is l's OnSpace: its write queue has room again.
func (n *Node) pushMore(p *Peer, l *link) {
	p.mu.Lock()
	if p.link == l {
		p.pushLocked()
	}
	p.mu.Unlock()
}

// notReading is the notice due, once, for a peer whose messages wait
// because it has taken none of the data queued for it in
// notReadingAfter: a peer merely slower than the sender is not told of.
func (l *link) notReading(now time.Time) *Notice {
	p := l.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.link != l || !p.blocked || p.told {
		return nil
	}
	stalled := l.conn.Waiting(now)
	if stalled < notReadingAfter {
		return nil
	}
	waiting, bytes := len(p.outbox)-p.sent, l.conn.Queued()
	for _, o := range p.outbox[p.sent:] {
		bytes += len(o.msg.Text)
	}
	return &Notice{Text: fmt.Sprintf("%s (%s) is not reading (nothing taken for %v): %d messages (%s) wait for it, and go once it reads again or reconnects",
		p.name, ShortID(p.id), stalled.Round(100*time.Millisecond), waiting, sizeOf(bytes))}
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

// acked removes what the peer acknowledged from the outbox and appends
// their ids to ids.
func (p *Peer) acked(upto uint64, ids []uint64) []uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := 0
	for i < len(p.outbox) && p.outbox[i].msg.MsgID <= upto {
		ids = append(ids, p.outbox[i].msg.MsgID)
		i++
	}
	n := copy(p.outbox, p.outbox[i:])
	clear(p.outbox[n:]) // let the texts go
	p.outbox = p.outbox[:n]
	p.sent = max(p.sent-i, 0)
	return ids
}

// received records a chat message id from the peer and reports whether
// it is new, with the id to acknowledge.
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

// PendingPeer is a peer with messages not yet delivered.
type PendingPeer struct {
	Peer     Info
	Messages []PendingMessage
}

// Pending lists, per peer, the messages not yet delivered.
func (n *Node) Pending() []PendingPeer {
	var out []PendingPeer
	for _, p := range n.peerList() {
		p.mu.Lock()
		var list []PendingMessage
		for _, o := range p.outbox {
			list = append(list, PendingMessage{MsgID: o.msg.MsgID, Text: o.msg.Text, Direct: o.msg.Direct, Queued: o.queued})
		}
		p.mu.Unlock()
		if len(list) > 0 {
			out = append(out, PendingPeer{Peer: p.info(), Messages: list})
		}
	}
	slices.SortFunc(out, func(a, b PendingPeer) int { return cmp.Compare(a.Peer.Name, b.Peer.Name) })
	return out
}

// PendingCount is the number of undelivered messages, over all peers.
func (n *Node) PendingCount() int {
	total := 0
	for _, p := range n.peerList() {
		p.mu.Lock()
		total += len(p.outbox)
		p.mu.Unlock()
	}
	return total
}
