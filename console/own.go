package console

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"lanchat/peer"
)

// ownGrace is how long a line of one's own waits to be shown with its
// delivery mark; after it, it is shown without (and its delivery is told
// later). On a LAN acknowledgements take a millisecond. A variable for
// tests.
var ownGrace = 300 * time.Millisecond

// Bounds of the delivery bookkeeping of one's own lines.
const (
	maxOwnLines = 4096 // lines waiting for acknowledgements
	maxEarly    = 1024 // acknowledgements of lines not yet registered
	earlyKeep   = 10 * time.Second
	lateClip    = 40 // characters of a line quoted by the late delivery line
)

// ownLine is a chat line of one's own waiting to be shown: with a mark
// once every recipient has acknowledged it, or without after ownGrace.
type ownLine struct {
	msgID uint64
	at    time.Time
	text  string // for the late delivery line, clipped to lateClip
	plain string // the line, without its mark
	// waiting maps the recipients yet to acknowledge it (id) to their
	// names.
	waiting map[string]string
	shown   bool
}

// ownLines tracks one's own lines until every recipient has acknowledged
// them. It is used by the console's pump goroutine only.
type ownLines struct {
	lines map[uint64]*ownLine
	// queue holds the lines not shown yet, oldest first.
	queue []*ownLine
	// early holds acknowledgements that came before their line was
	// registered (the pump can see a Delivered event before the sender's
	// goroutine has registered the line it sent).
	early map[uint64]earlyAck
	// earlyDue is when the oldest of early is stale (zero when none; it
	// may be early after add took one: stale then finds none).
	earlyDue time.Time
	// late holds lines shown before they were delivered and delivered
	// since, to be told in one line.
	late []*ownLine
	// highest is the highest message id registered.
	highest uint64
}

type earlyAck struct {
	peers []peer.Ref
	at    time.Time
}

// heldAck is an acknowledgement held until its line was registered, now
// to be reported (all: it completed the line).
type heldAck struct {
	peer  peer.Ref
	msgID uint64
	all   bool
}

// newOwnLines makes the bookkeeping of a run whose first message id is
// first: lower ids are never held (their lines were an earlier run's).
func newOwnLines(first uint64) *ownLines {
	o := &ownLines{lines: map[uint64]*ownLine{}, early: map[uint64]earlyAck{}}
	if first > 0 {
		o.highest = first - 1
	}
	return o
}

// add registers a line; it returns the lines to show now (it, when it
// needs no acknowledgement or had them all already, or the oldest when
// over the bound), and the acknowledgements held for it, to report now.
func (o *ownLines) add(l *ownLine, now time.Time) (show []*ownLine, acks []heldAck) {
	o.highest = max(o.highest, l.msgID)
	if e, ok := o.early[l.msgID]; ok {
		delete(o.early, l.msgID)
		for _, p := range e.peers {
			_, waited := l.waiting[p.ID]
			delete(l.waiting, p.ID)
			acks = append(acks, heldAck{peer: p, msgID: l.msgID, all: waited && len(l.waiting) == 0})
		}
	}
	if len(l.waiting) == 0 {
		l.shown = true
		return []*ownLine{l}, acks
	}
	if len(o.lines) >= maxOwnLines {
		oldest := o.oldest()
		delete(o.lines, oldest.msgID)
		o.unqueue(oldest)
		if !oldest.shown {
			oldest.shown = true
			show = append(show, oldest)
		}
	}
	o.lines[l.msgID] = l
	o.queue = append(o.queue, l)
	return show, acks
}

func (o *ownLines) oldest() *ownLine {
	var old *ownLine
	for _, l := range o.lines {
		if old == nil || l.msgID < old.msgID {
			old = l
		}
	}
	return old
}

func (o *ownLines) unqueue(l *ownLine) {
	if i := slices.Index(o.queue, l); i >= 0 {
		o.queue = slices.Delete(o.queue, i, i+1)
	}
}

// acked records p's acknowledgement of msgID. It returns the line, and
// all when that completed it (l.shown says whether it was shown already,
// without its mark). An acknowledgement of a line not registered yet is
// held (held set) and returned by add; one of a line that is not tracked
// (any more) is neither.
func (o *ownLines) acked(p peer.Ref, msgID uint64, now time.Time) (l *ownLine, all, held bool) {
	l = o.lines[msgID]
	if l == nil {
		return nil, false, o.hold(p, msgID, now)
	}
	delete(l.waiting, p.ID)
	if len(l.waiting) > 0 {
		return l, false, false
	}
	delete(o.lines, msgID)
	if l.shown {
		o.late = append(o.late, l)
	} else {
		o.unqueue(l)
	}
	return l, true, false
}

// hold keeps an acknowledgement for a line not registered yet, and
// reports whether it did: only ids above every line registered can be
// lines not registered yet, and the bounds must hold.
func (o *ownLines) hold(p peer.Ref, msgID uint64, now time.Time) bool {
	if msgID <= o.highest {
		return false // a line not tracked, or no longer
	}
	e, ok := o.early[msgID]
	if !ok && len(o.early) >= maxEarly {
		return false
	}
	if !ok {
		e.at = now
		if o.earlyDue.IsZero() {
			o.earlyDue = now.Add(earlyKeep)
		}
	}
	e.peers = append(e.peers, p)
	o.early[msgID] = e
	return true
}

// stale returns, and forgets, the acknowledgements held longer than
// earlyKeep (all of them when flush is set): their lines never came.
func (o *ownLines) stale(now time.Time, flush bool) (acks []heldAck) {
	if !flush && (o.earlyDue.IsZero() || now.Before(o.earlyDue)) {
		return nil
	}
	o.earlyDue = time.Time{}
	for id, e := range o.early {
		if flush || now.Sub(e.at) >= earlyKeep {
			delete(o.early, id)
			for _, p := range e.peers {
				acks = append(acks, heldAck{peer: p, msgID: id})
			}
			continue
		}
		if due := e.at.Add(earlyKeep); o.earlyDue.IsZero() || due.Before(o.earlyDue) {
			o.earlyDue = due
		}
	}
	slices.SortFunc(acks, func(a, b heldAck) int { return cmp.Compare(a.msgID, b.msgID) })
	return acks
}

// gone drops peer, which left for good, from every line waiting for it:
// those lines will never be delivered to every recipient.
func (o *ownLines) gone(peerID string) {
	for id, l := range o.lines {
		if _, ok := l.waiting[peerID]; !ok {
			continue
		}
		delete(o.lines, id)
		o.unqueue(l)
		if !l.shown {
			l.shown = true
			o.queue = append(o.queue, l) // shown at the next expiry
		}
	}
}

// due returns the lines whose grace is over, to show without a mark.
func (o *ownLines) due(now time.Time) (show []*ownLine) {
	for len(o.queue) > 0 {
		l := o.queue[0]
		if !l.shown && now.Sub(l.at) < ownGrace {
			break
		}
		o.queue = o.queue[1:]
		l.shown = true
		show = append(show, l)
	}
	return show
}

// next is when the oldest line not shown is due, or held
// acknowledgements are stale, whichever comes first (zero when neither).
func (o *ownLines) next() time.Time {
	next := o.earlyDue
	if len(o.queue) == 0 {
		return next
	}
	l := o.queue[0]
	due := l.at.Add(ownGrace)
	if l.shown {
		due = l.at // at once
	}
	if next.IsZero() || due.Before(next) {
		next = due
	}
	return next
}

// takeLate returns and clears the lines delivered since they were shown.
func (o *ownLines) takeLate() []*ownLine {
	late := o.late
	o.late = nil
	return late
}

// waitingFor names the recipients a line still waits for.
func waitingFor(l *ownLine) string {
	var names []string
	for _, n := range l.waiting {
		names = append(names, n)
	}
	slices.Sort(names)
	if len(names) > 3 {
		return fmt.Sprintf("%s and %d more", strings.Join(names[:3], ", "), len(names)-3)
	}
	return strings.Join(names, ", ")
}

// lateLine tells of lines delivered to every recipient after they were
// shown.
func lateLine(late []*ownLine) string {
	var quoted []string
	for i, l := range late {
		if i == 3 {
			quoted = append(quoted, fmt.Sprintf("and %d more", len(late)-3))
			break
		}
		quoted = append(quoted, fmt.Sprintf("%q", clip(l.text, lateClip)))
	}
	return "✓ delivered to every recipient: " + strings.Join(quoted, ", ")
}
