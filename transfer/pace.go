package transfer

import (
	"context"
	"sync/atomic"
	"time"
)

// A transfer at full speed keeps the CPUs, the disk and the link of both
// ends busy, and a chat line to or from the same peer then waits for
// them now and then. So while chat lines pass between the two
// (Manager.Chatting, within Options.ChatWindow), the sender paces its
// data to Options.ChatShare of the rate it reached while they did not,
// leaving time on all three for the lines (BENCHMARKS.md: chat during a
// transfer). A user who chats while a file goes sees the transfer slow
// down ("yielding") and speed up again once the conversation pauses.

// measureSpan is the shortest time over which an unpaced rate is taken;
// a span longer than maxSpan held a stall (a cut, a receiver that
// stopped reading), not a rate, and is not taken.
const (
	measureSpan = 250 * time.Millisecond
	maxSpan     = 5 * time.Second
)

// monoBase anchors chat times on the monotonic clock: a change of the
// wall clock never starts or ends a pacing.
var monoBase = time.Now()

// monoNanos is t in nanoseconds since monoBase.
func monoNanos(t time.Time) int64 { return int64(t.Sub(monoBase)) }

// pacer decides when the sender's next chunk may be read. It is used by
// one goroutine (produce).
type pacer struct {
	chatAt   *atomic.Int64 // monoNanos of the last chat line with the peer; 0: none
	yielding *atomic.Bool  // set while pacing, for Progress
	window   time.Duration
	share    float64 // of the unpaced rate kept while chatting; ≥ 1: never paced
	now      func() time.Time
	sleep    func(context.Context, time.Duration) bool

	rate  float64   // bytes per second while not paced; 0: not measured yet
	from  time.Time // start of the current measurement
	bytes int64     // read since from
	// warm: the first span of an unpaced stretch is over. It is not
	// taken: the pipeline's buffers (a few chunks, the socket's) fill
	// in it faster than the path drains them.
	warm  bool
	paced bool
	next  time.Time // while paced: when the next chunk may be read
}

func (t *tx) newPacer(o *Options) *pacer {
	return &pacer{chatAt: &t.chatAt, yielding: &t.yielding, window: o.ChatWindow, share: o.ChatShare,
		now: time.Now, sleep: sleepCtx}
}

// wait returns when a chunk of n bytes may be read: at once unless chat
// passed within the window and a rate is known. It returns false when
// ctx ends first.
func (p *pacer) wait(ctx context.Context, n int) bool {
	now := p.now()
	last := p.chatAt.Load()
	chatting := p.share < 1 && last != 0 && time.Duration(monoNanos(now)-last) < p.window
	if !chatting || p.rate == 0 {
		if p.paced || p.from.IsZero() {
			p.paced, p.warm, p.from, p.bytes = false, false, now, 0
			p.yielding.Store(false)
		}
		if el := now.Sub(p.from); el >= measureSpan {
			r := float64(p.bytes) / el.Seconds()
			switch {
			case !p.warm:
				p.warm = true
			case el > maxSpan:
				// a stall: not taken
			case p.rate == 0:
				p.rate = r
			default:
				p.rate = 0.5*p.rate + 0.5*r
			}
			p.from, p.bytes = now, 0
		}
		p.bytes += int64(n)
		return true
	}
	if !p.paced {
		p.paced = true
		p.next = now
		p.yielding.Store(true)
	}
	// No credit for time spent waiting elsewhere (the receiver, the
	// disk): the pace never bursts above its rate.
	if p.next.Before(now) {
		p.next = now
	}
	d := p.next.Sub(now)
	p.next = p.next.Add(time.Duration(float64(n) / (p.share * p.rate) * float64(time.Second)))
	if d <= 0 {
		return true
	}
	return p.sleep(ctx, d)
}

// sleepCtx sleeps for d; false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
