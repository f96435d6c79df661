package peer

import (
	"errors"
	"fmt"
	"time"

	"lanchat/store"
	"lanchat/transport"
)

// Receiving with a store: a chat message is shown as soon as the store
// has decided it is fresh, and acknowledged only once it is on disk, so
// that an acknowledged message survives a crash of the receiver and a
// resend after either side restarted is never shown twice. The reader
// hands each message to the store at once (commits are grouped) and
// queues it; a delivery goroutine, which exists while the queue or the
// commits it waits for are not empty, shows each message in order, then
// waits for the commits in order, and sends one cumulative
// acknowledgement once both run dry, and others while it waits for a
// commit. With ConfirmShown, the acknowledgements also tell the sender how
// far messages were shown (Ack.Shown) as soon as they are: what it sends
// again after a failed commit or a crash is marked shown, and stored
// without being shown twice. A failed commit closes the connection.

// maxArrivals bounds the messages of one peer waiting to be shown or for
// their commit (maxArrivalBytes the texts of those not shown yet): beyond
// it the reader waits, and so does the peer's sending. It allows a few
// commits' worth of a fast sender in flight, so that the next arrive while
// one is written.
const maxArrivals = 4096

// maxArrivalBytes bounds the texts of the messages of one peer waiting to
// be shown.
const maxArrivalBytes = 4 << 20

// waiting is how many arrivals wait to be shown; l.rmu held.
func (l *link) waiting() int { return len(l.arrivals) - l.ahead }

// settling is a message shown (or found a duplicate) whose commit the
// delivery goroutine has not seen end yet.
type settling struct {
	c     *store.Commit
	id    uint64
	fresh bool
	from  string // the sender's name, for a failure
}

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

// errReplaced ends the reading of a link a newer one of the same peer
// has replaced: what it would still read comes again on the newer one
// (nothing after what it took is acknowledged on it).
var errReplaced = errors.New("replaced by a newer connection")

// receiveStored hands m to the store and queues it for delivery. A link
// replaced by a newer one takes nothing more: the decision that a message
// is fresh and its place in a delivery queue go together (p.recvMu), so
// that the newer link never shows a later message before this one's.
func (l *link) receiveStored(m transport.Chat, at time.Time) error {
	l.rmu.Lock()
	for inFlight := l.waiting() + l.settling; inFlight > 0 && (inFlight >= maxArrivals || l.arrivalBytes >= maxArrivalBytes) && !l.rclosed; inFlight = l.waiting() + l.settling {
		l.rcond.Wait()
	}
	closed := l.rclosed
	l.rmu.Unlock()
	if closed {
		return nil
	}
	p := l.p
	p.recvMu.Lock()
	defer p.recvMu.Unlock()
	p.mu.Lock()
	current := p.link == l
	p.mu.Unlock()
	if !current {
		return errReplaced
	}
	ref := p.ref()
	sent := time.Unix(0, m.Sent)
	shown := m.Flags&transport.ChatShown != 0
	m.Flags &^= transport.ChatShown
	fresh, c, err := l.n.store.Receive(store.In{From: l.id, Name: ref.Name, Epoch: l.epoch, ID: m.MsgID,
		Direct: m.Direct, Text: m.Text, Flags: m.Flags, Sent: sent})
	if err != nil {
		return fmt.Errorf("%w (%d), so it was not acknowledged: %w", errNotStored, m.MsgID, err)
	}
	switch {
	case shown:
		// Shown by a run killed before it stored it, which said so: stored
		// now, not shown twice.
		fresh = false
		l.n.store.MarkShown(l.id, l.epoch, m.MsgID)
	case !fresh && l.n.confirm && l.n.store.Resurface(l.id, l.epoch, m.MsgID):
		// Stored by a run killed before it showed it: shown now (the
		// sender resends it because it was not acknowledged).
		fresh = true
	}
	l.rmu.Lock()
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
	if l.rwake == nil {
		l.rwake = make(chan struct{}, 1)
	}
	if !l.delivering {
		l.delivering = true
		l.rwg.Add(1)
		go l.deliver(l.rwake)
	} else {
		select {
		case l.rwake <- struct{}{}: // shown now, not after the commit waited for
		default:
		}
	}
	l.rmu.Unlock()
	return nil
}

// deliver shows the queued messages in order as soon as they are queued,
// and acknowledges them as their commits complete; it exits when neither
// messages to show nor commits to wait for are left. wake signals an
// arrival.
func (l *link) deliver(wake <-chan struct{}) {
	defer l.rwg.Done()
	l.rmu.Lock()
	prev := l.prev
	l.prev = nil
	l.rmu.Unlock()
	if prev != nil {
		// What the replaced link took is shown first: it came first.
		prev.rwg.Wait()
	}
	var commits []settling // in order; bounded with arrivals by maxArrivals
	for {
		l.rmu.Lock()
		if l.rclosed {
			l.delivering = false
			l.rmu.Unlock()
			return
		}
		if l.waiting() > 0 {
			a := l.arrivals[l.ahead]
			l.arrivals[l.ahead] = arrival{}
			l.ahead++
			l.arrivalBytes -= len(a.chat.Text)
			if l.ahead == len(l.arrivals) {
				l.arrivals, l.ahead = l.arrivals[:0], 0
			}
			l.settling++
			l.rcond.Broadcast() // room for bytes
			l.rmu.Unlock()
			if a.fresh {
				if l.n.confirm {
					a.chat.Shown = l.showFn
				}
				l.n.emit(a.chat)
			}
			commits = append(commits, settling{c: a.c, id: a.chat.MsgID, fresh: a.fresh, from: a.chat.From.Name})
			if !l.settle(&commits) {
				return
			}
			continue
		}
		if len(commits) == 0 {
			l.delivering = false
			if cap(l.arrivals) > 256 {
				l.arrivals = nil // a burst's worth: not kept for the quiet after it
			}
			l.rmu.Unlock()
			l.sendAck()
			return
		}
		l.rmu.Unlock()
		if !l.waitCommit(commits[0].c, wake) {
			l.stopDelivery()
			return
		}
		if !l.settle(&commits) {
			return
		}
		l.rmu.Lock()
		drained := l.waiting() == 0 && len(commits) == 0
		upto := l.rfresh
		l.rmu.Unlock()
		if drained {
			l.waitShown(upto)
		}
	}
}

// settle takes from the front of commits those that have ended, and
// counts them delivered: they may be acknowledged. A failed one closes the
// connection (nothing after it may be acknowledged: a cumulative ack
// would cover it), and settle reports false.
func (l *link) settle(commits *[]settling) bool {
	cs := *commits
	k := 0
	for k < len(cs) && ended(cs[k].c) {
		if err := cs[k].c.Err(); err != nil {
			l.n.emit(Problem{Err: fmt.Errorf("a message from %s could not be stored, so it was not acknowledged (it will be sent again): %w", cs[k].from, err)})
			l.stopDelivery()
			l.conn.Close()
			return false
		}
		k++
	}
	if k == 0 {
		return true
	}
	l.rmu.Lock()
	for _, s := range cs[:k] {
		l.rack = max(l.rack, s.id)
		if s.fresh {
			l.rfresh = max(l.rfresh, s.id)
		}
	}
	l.settling -= k
	l.rcond.Broadcast()
	l.rmu.Unlock()
	n := copy(cs, cs[k:])
	clear(cs[n:])
	*commits = cs[:n]
	return true
}

// ended reports whether c is over.
func ended(c *store.Commit) bool {
	select {
	case <-c.Done():
		return true
	default:
		return false
	}
}

// waitCommit waits for c, or for an arrival to show (wake), and reports
// false if the node stopped first. While it waits, what is delivered is
// acknowledged, as far as it is shown: a steady stream, whose queue never
// runs dry, is then acknowledged at least once per commit, and the
// sender's window moves on meanwhile.
func (l *link) waitCommit(c *store.Commit, wake <-chan struct{}) bool {
	if ended(c) {
		return true
	}
	l.sendAck()
	for {
		select {
		case <-c.Done():
			return true
		case <-wake:
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
	l.arrivals, l.ahead, l.arrivalBytes, l.settling = nil, 0, 0, 0
	l.delivering = false
	l.rcond.Broadcast()
	l.rmu.Unlock()
}

// sendAck acknowledges everything delivered, if not done yet; with
// ConfirmShown, only as far as it was shown (shown first: then a crash
// cannot lose the display). Messages are shown in id order, so every
// fresh one up to the last shown was shown, and every one delivered is
// stored. A full write queue leaves it due: the keeper tries again.
//
// With ConfirmShown, it also tells the sender how far messages were shown
// (Ack.Shown), stored or not yet: a kill before their commit then does not
// show them twice (the sender marks them shown when it sends them again).
func (l *link) sendAck() {
	l.rmu.Lock()
	upto := l.rack
	s := l.shown.Load()
	if l.n.confirm && s < l.rfresh {
		upto = min(upto, s)
	}
	if !l.n.confirm || s <= l.shownSent {
		s = 0 // told already
	}
	due := upto > l.rackSent || s != 0
	upto = max(upto, l.rackSent)
	l.rmu.Unlock()
	if !due {
		return
	}
	if l.conn.Send(transport.Ack{Upto: upto, Shown: s}) == nil {
		l.rmu.Lock()
		l.rackSent = max(l.rackSent, upto)
		l.shownSent = max(l.shownSent, s)
		l.rmu.Unlock()
	}
}
