package discovery

import (
	"math/rand/v2"
	"time"
)

// pacer decides when this node sends a beacon. It is used by one
// goroutine. The rules (doc.go says why):
//
//   - nothing is sent while a beacon, this node's own or another's, was
//     heard less than gap ago: the decision waits gap plus a random time
//     up to gap × the number of nodes heard lately, or 2^k gaps after k
//     such waits in a row (whichever is more), and is taken again.
//     Spreading the retries so keeps the decisions to about one a gap
//     however many nodes there are, so that two seldom fall within the
//     moment a beacon takes to be heard;
//   - the first beacon (at start, or after the interfaces changed) waits
//     from startMin to spread, and is not sent at all if the node has
//     found peers by then;
//   - a node alone sends again after aloneFirst, doubling up to
//     everyMin; a node with peers sends every everyMin to everyMax, and
//     only if it keeps watch for its group.
type pacer struct {
	gap, startMin, spread, aloneFirst, everyMin, everyMax time.Duration

	lastSent time.Time
	// starting is set until the first beacon since restart was sent or
	// found unnecessary.
	starting bool
	// aloneGap is the next wait of a node alone.
	aloneGap time.Duration
	// deferred counts the decisions in a row that found the LAN busy.
	deferred int
	// rnd is the random source; nil means the global one (tests seed
	// their own).
	rnd *rand.Rand
}

// maxDeferShift caps the doubling of the spread of deferred decisions.
const maxDeferShift = 6

// restart begins again as at start and returns the wait before the
// first decision.
func (p *pacer) restart() time.Duration {
	p.starting, p.aloneGap = true, p.aloneFirst
	return p.startMin + p.randUpTo(p.spread-p.startMin)
}

// decide is called when the wait it last returned is over: it reports
// whether to send now, and how long to wait before the next decision.
// lastHeard is when the last authentic beacon of another node was heard,
// senders how many nodes were heard lately.
func (p *pacer) decide(now, lastHeard time.Time, senders int, alone, watch bool) (send bool, wait time.Duration) {
	if !alone {
		p.aloneGap = p.aloneFirst
		if p.starting || !watch {
			// Found peers without a beacon of ours; or others of the
			// group keep watch.
			p.starting = false
			return false, p.every()
		}
	}
	if now.Sub(lastHeard) < p.gap || now.Sub(p.lastSent) < p.gap {
		spread := max(senders, 1<<min(p.deferred, maxDeferShift))
		p.deferred++
		return false, p.gap + p.randUpTo(p.gap*time.Duration(spread))
	}
	p.deferred = 0
	p.starting = false
	p.lastSent = now
	if !alone || p.aloneGap >= p.everyMin {
		return true, p.every()
	}
	w := p.aloneGap
	p.aloneGap = min(2*p.aloneGap, p.everyMin)
	return true, w + p.randUpTo(w/4)
}

// every is a random time between everyMin and everyMax.
func (p *pacer) every() time.Duration {
	return p.everyMin + p.randUpTo(p.everyMax-p.everyMin)
}

// randUpTo is a random duration in [0, d), or 0.
func (p *pacer) randUpTo(d time.Duration) time.Duration {
	switch {
	case d <= 0:
		return 0
	case p.rnd != nil:
		return time.Duration(p.rnd.Int64N(int64(d)))
	}
	return rand.N(d)
}
