package peer

import (
	"errors"
	"fmt"
	"time"

	"lanchat/store"
	"lanchat/transport"
)

// Receiving with a store: a chat message is shown, and acknowledged, only
// once the store has it on disk, so that an acknowledged message survives
// a crash of the receiver and a resend after either side restarted is
// never shown twice. The reader hands each message to the store at once
// (commits are grouped) and queues it; a delivery goroutine, which exists
// while the queue is not empty, waits for each commit in order, shows the
// message and sends one cumulative acknowledgement once the queue runs
// dry, and others while it waits for a commit.

// maxArrivals bounds the messages of one peer waiting for their commit
// (maxArrivalBytes their texts): beyond it the reader waits, and so does
// the peer's sending. It allows a few commits' worth of a fast sender in
// flight, so that the next arrive while one is written.
const maxArrivals = 4096

// maxArrivalBytes bounds the texts of the messages of one peer waiting for
// their commit.
const maxArrivalBytes = 4 << 20

// waiting is how many arrivals wait for delivery; l.rmu held.
func (l *link) waiting() int { return len(l.arrivals) - l.ahead }

// arrival is a message read and handed to the store.
type arrival struct {
	c     *store.Commit
	fresh bool
	chat  Chat
}

// errNotStored is wrapped when a received message could not be stored:
// the connection is closed (nothing after it may be acknowledged), and
// the peer sends it again on the next.
var errNotStored = errors.New("could not store a message")

// receiveStored hands m to the store and queues it for delivery.
func (l *link) receiveStored(m transport.Chat, at time.Time) error {
	ref := l.p.ref()
	sent := time.Unix(0, m.Sent)
	fresh, c, err := l.n.store.Receive(store.In{From: l.id, Name: ref.Name, Epoch: l.epoch, ID: m.MsgID,
		Direct: m.Direct, Text: m.Text, Flags: m.Flags, Sent: sent})
	if err != nil {
		return fmt.Errorf("%w (%d), so it was not acknowledged: %w", errNotStored, m.MsgID, err)
	}
	if !fresh && l.n.confirm && l.n.store.Resurface(l.id, l.epoch, m.MsgID) {
		// Stored by a run killed before it showed it: shown now (the
		// sender resends it because it was not acknowledged).
		fresh = true
	}
	l.rmu.Lock()
	for l.waiting() > 0 && (l.waiting() >= maxArrivals || l.arrivalBytes >= maxArrivalBytes) && !l.rclosed {
		l.rcond.Wait()
	}
	if l.rclosed {
		l.rmu.Unlock()
		return nil
	}
	if len(l.arrivals) == cap(l.arrivals) && l.ahead > 0 {
		// Full, with room at the front: move down rather than grow.
		k := copy(l.arrivals, l.arrivals[l.ahead:])
		clear(l.arrivals[k:])
		l.arrivals, l.ahead = l.arrivals[:k], 0
	}
	l.arrivals = append(l.arrivals, arrival{c: c, fresh: fresh,
		chat: Chat{From: ref, MsgID: m.MsgID, Text: m.Text, Direct: m.Direct, At: at, Sent: sent, Action: m.Flags&transport.ChatAction != 0}})
	l.arrivalBytes += len(m.Text)
	if !l.delivering {
		l.delivering = true
		l.rwg.Add(1)
		go l.deliver()
	}
	l.rmu.Unlock()
	return nil
}

// deliver shows the queued messages as their commits complete, in order,
// and acknowledges them; it exits when the queue is empty.
func (l *link) deliver() {
	defer l.rwg.Done()
	for {
		l.rmu.Lock()
		if l.waiting() == 0 || l.rclosed {
			l.delivering = false
			if cap(l.arrivals) > 256 {
				l.arrivals = nil // a burst's worth: not kept for the quiet after it
			}
			l.rmu.Unlock()
			l.sendAck()
			return
		}
		a := l.arrivals[l.ahead]
		l.arrivals[l.ahead] = arrival{}
		l.ahead++
		l.arrivalBytes -= len(a.chat.Text)
		if l.ahead == len(l.arrivals) {
			l.arrivals, l.ahead = l.arrivals[:0], 0
		}
		l.rcond.Broadcast()
		l.rmu.Unlock()
		if !l.waitCommit(a.c) {
			l.stopDelivery()
			return
		}
		if err := a.c.Err(); err != nil {
			// Nothing after it may be acknowledged: a cumulative ack
			// would cover it. The connection goes; the peer resends.
			l.n.emit(Problem{Err: fmt.Errorf("a message from %s could not be stored, so it was not acknowledged (it will be sent again): %w", a.chat.From.Name, err)})
			l.stopDelivery()
			l.conn.Close()
			return
		}
		if a.fresh {
			if l.n.confirm {
				a.chat.Shown = l.showFn
			}
			l.n.emit(a.chat)
		}
		l.rmu.Lock()
		l.rack = max(l.rack, a.chat.MsgID)
		if a.fresh {
			l.rfresh = max(l.rfresh, a.chat.MsgID)
		}
		drained := l.waiting() == 0
		upto := l.rfresh
		l.rmu.Unlock()
		if drained {
			l.waitShown(upto)
		}
	}
}

// waitCommit waits for c, and reports false if the node stopped first.
// While c runs, what is delivered is acknowledged, as far as it is shown:
// a steady stream, whose queue never runs dry, is then acknowledged at
// least once per commit, and the sender's window moves on meanwhile.
func (l *link) waitCommit(c *store.Commit) bool {
	select {
	case <-c.Done():
		return true
	default:
	}
	l.sendAck()
	for {
		select {
		case <-c.Done():
			return true
		case <-l.shownCh:
			l.sendAck()
		case <-l.n.ctx.Done():
			return false
		}
	}
}

// shownWait bounds how long the delivery goroutine waits for the events'
// reader to show what it was given before acknowledging: a stuck console
// holds the acknowledgement back (the keeper retries), not the delivery.
const shownWait = 2 * time.Second

// markShown is Chat.Shown: the events' reader has shown message id.
func (l *link) markShown(id uint64) {
	for {
		cur := l.shown.Load()
		if id <= cur {
			return
		}
		if l.shown.CompareAndSwap(cur, id) {
			break
		}
	}
	// Remembered across a kill: a resend of what was stored and not
	// shown is shown then (receiveStored). Until the mark is on disk or
	// the acknowledgement with the sender, a kill shows it twice: both
	// go at once (the acknowledgement is only queued here).
	if l.n.store != nil {
		l.n.store.MarkShown(l.id, l.epoch, id)
	}
	l.sendAck()
	select {
	case l.shownCh <- struct{}{}:
	default:
	}
}

// waitShown waits, within shownWait, until every fresh message up to id
// was shown.
func (l *link) waitShown(id uint64) {
	if !l.n.confirm || l.shown.Load() >= id {
		return
	}
	t := time.NewTimer(shownWait)
	defer t.Stop()
	for l.shown.Load() < id {
		select {
		case <-l.shownCh:
		case <-t.C:
			return
		case <-l.n.ctx.Done():
			return
		}
	}
}

// stopDelivery drops what waits: the link is going.
func (l *link) stopDelivery() {
	l.rmu.Lock()
	l.rclosed = true
	l.arrivals, l.ahead, l.arrivalBytes = nil, 0, 0
	l.delivering = false
	l.rcond.Broadcast()
	l.rmu.Unlock()
}

// sendAck acknowledges everything delivered, if not done yet; with
// ConfirmShown, only as far as it was shown (shown first: then a crash
// cannot lose the display). Messages are shown in id order, so every
// fresh one up to the last shown was shown, and every one delivered is
// stored. A full write queue leaves it due: the keeper tries again.
func (l *link) sendAck() {
	l.rmu.Lock()
	upto := l.rack
	if s := l.shown.Load(); l.n.confirm && s < l.rfresh {
		upto = min(upto, s)
	}
	due := upto > l.rackSent
	l.rmu.Unlock()
	if !due {
		return
	}
	if l.conn.Send(transport.Ack{Upto: upto}) == nil {
		l.rmu.Lock()
		l.rackSent = max(l.rackSent, upto)
		l.rmu.Unlock()
	}
}
