package peer

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"lanchat/transport"
)

// seriesUDPWait is how long an echo of a series over UDP waits before it
// counts as lost and the next goes out (a variable for tests).
var seriesUDPWait = time.Second

const (
	// seriesPoll is how often a series hands new results to its caller.
	seriesPoll = 20 * time.Millisecond
	// MaxSeries bounds the echoes of one series.
	MaxSeries = 100000
)

// SeriesReply is one echo of a series: its reply, or the error that ended
// its wait (a lost datagram).
type SeriesReply struct {
	Seq int // from 1
	// Got is the reply, RTT its round trip, OK whether it carried what
	// was sent.
	Got []byte
	RTT time.Duration
	OK  bool
	Err error
}

// EchoSeriesResult is the outcome of a series of echoes.
type EchoSeriesResult struct {
	Peer      Info
	Transport string
	Sent      int
	// RTTs are the round trips of the echoes that came back, in order.
	RTTs []time.Duration
	// Mismatched counts replies that came back changed.
	Mismatched int
}

// EchoSeries sends count echoes of payload to peer back to back, like
// ping -f: each goes out as soon as the one before has come back (or, over
// UDP, has waited a second and counts as lost). Each round trip is timed
// as Echo times it.
//
// The next echo is sent by the goroutine that read the reply, so a round
// trip costs what a raw socket ping-pong costs: no hand-off to the caller
// between echoes. each, if not nil, is given the replies in order, in the
// caller's goroutine, batched every 20 ms. The series ends early on an
// error (the connection lost, no reply over TCP, ctx done); the result then
// holds what was measured until then. Sent counts the echoes sent, less
// the one in flight when ctx ended it.
func (n *Node) EchoSeries(ctx context.Context, peerArg, via string, payload []byte, count int, each func(SeriesReply)) (EchoSeriesResult, error) {
	if len(payload) > transport.MaxPayload {
		return EchoSeriesResult{}, fmt.Errorf("echo payload of %d bytes: %w (limit %d)", len(payload), transport.ErrTooLong, transport.MaxPayload)
	}
	if count < 1 || count > MaxSeries {
		return EchoSeriesResult{}, fmt.Errorf("echo series of %d: want 1 to %d echoes", count, MaxSeries)
	}
	l, err := n.lookupLive(peerArg)
	if err != nil {
		return EchoSeriesResult{}, err
	}
	s := &series{n: n, l: l, via: via, payload: payload, count: count, keep: each != nil, done: make(chan struct{}),
		rtts: make([]time.Duration, 0, count)}
	s.wait = tcpRequestTimeout
	if via == UDP {
		s.wait = seriesUDPWait
	}
	s.timer = time.AfterFunc(s.wait, s.checkWait)
	s.mu.Lock()
	m, ok := s.nextLocked()
	s.mu.Unlock()
	if ok {
		s.send(m, false)
	}

	var tick <-chan time.Time
	if each != nil {
		t := time.NewTicker(seriesPoll)
		defer t.Stop()
		tick = t.C
	}
	handed := 0
	hand := func() {
		s.mu.Lock()
		batch := s.replies
		s.replies = nil
		s.mu.Unlock()
		for _, r := range batch {
			handed++
			r.Seq = handed
			each(r)
		}
	}
	for wait := true; wait; {
		select {
		case <-s.done:
			wait = false
		case <-tick:
			hand()
		case <-l.done:
			s.finish(fmt.Errorf("connection to %s closed during the echoes", l.name()))
		case <-ctx.Done():
			s.stop(ctx.Err())
		}
	}
	if each != nil {
		hand()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	res := EchoSeriesResult{Peer: l.info(), Transport: via, Sent: s.sent, RTTs: s.rtts, Mismatched: s.mismatched}
	if len(s.rtts) > 0 {
		l.setRTT(s.rtts[len(s.rtts)-1])
	}
	return res, s.err
}

// series is the state of one EchoSeries. Its echoes are sent by whichever
// goroutine ends the wait for the one before: the connection's reader (or
// the datagram loop) with the reply, or the timer; never under mu.
type series struct {
	n       *Node
	l       *link
	via     string
	payload []byte
	count   int
	wait    time.Duration
	keep    bool // keep replies for the caller's each
	timer   *time.Timer
	done    chan struct{}

	mu  sync.Mutex // protects following
	cur uint64     // request id in flight; 0 when none
	// curSent is when cur went out.
	curSent    time.Time
	sent       int
	rtts       []time.Duration
	mismatched int
	replies    []SeriesReply // not yet handed to each
	finished   bool
	err        error
}

// nextLocked registers the next echo and returns it for send, or ends
// the series after the last (ok false).
func (s *series) nextLocked() (m transport.Echo, ok bool) {
	if s.finished {
		return m, false
	}
	if s.sent == s.count {
		s.finishLocked(nil)
		return m, false
	}
	n := s.n
	id := n.nextReq.Add(1)
	now := time.Now()
	s.cur, s.curSent = id, now
	s.sent++
	n.pmu.Lock()
	n.pending[id] = pending{peerID: s.l.id, sentAt: now, series: s}
	n.pmu.Unlock()
	return transport.Echo{ReqID: id, Payload: s.payload}, true
}

// send sends an echo that nextLocked registered. onReader is set on the
// reader of the series' connection, which then writes it itself.
func (s *series) send(m transport.Echo, onReader bool) {
	var err error
	switch {
	case s.via == UDP:
		err = s.n.sendDatagram(s.l, s.l.udpTarget(), m)
	case onReader:
		err = s.l.conn.Reply(m)
	default:
		err = s.l.conn.Send(m)
	}
	if err != nil {
		s.finish(err)
	}
}

// replied takes the reply to the echo in flight, sent at sentAt and read
// at at, and sends the next. got may point into the read buffer.
func (s *series) replied(got []byte, sentAt, at time.Time, onReader bool) {
	s.mu.Lock()
	if s.finished {
		s.mu.Unlock()
		return
	}
	s.cur = 0
	rtt := at.Sub(sentAt)
	ok := bytes.Equal(got, s.payload)
	s.rtts = append(s.rtts, rtt)
	if !ok {
		s.mismatched++
	}
	if s.keep {
		s.replies = append(s.replies, SeriesReply{Got: bytes.Clone(got), RTT: rtt, OK: ok})
	}
	m, next := s.nextLocked()
	s.mu.Unlock()
	if next {
		s.send(m, onReader)
	}
}

// checkWait runs when the timer fires: an echo that has waited its time
// is lost (over UDP: the next goes out) or ends the series (over TCP: the
// connection is stuck). The timer is re-armed here, not for every echo, to
// keep timer updates off the round trip.
func (s *series) checkWait() {
	s.mu.Lock()
	m, next := s.checkWaitLocked()
	s.mu.Unlock()
	if next {
		s.send(m, false)
	}
}

func (s *series) checkWaitLocked() (transport.Echo, bool) {
	if s.finished {
		return transport.Echo{}, false
	}
	if s.cur == 0 {
		s.timer.Reset(s.wait)
		return transport.Echo{}, false
	}
	if left := s.wait - time.Since(s.curSent); left > 0 {
		s.timer.Reset(left)
		return transport.Echo{}, false
	}
	// Whoever deletes the pending entry owns the echo: if the reply got
	// there first, replied will send the next.
	s.n.pmu.Lock()
	_, waiting := s.n.pending[s.cur]
	delete(s.n.pending, s.cur)
	s.n.pmu.Unlock()
	if !waiting {
		s.timer.Reset(s.wait)
		return transport.Echo{}, false
	}
	s.cur = 0
	if s.via != UDP {
		s.finishLocked(fmt.Errorf("%w: no reply over tcp in %v", ErrTimeout, s.wait))
		return transport.Echo{}, false
	}
	if s.keep {
		s.replies = append(s.replies, SeriesReply{Err: fmt.Errorf("%w: no reply over udp within %v", ErrTimeout, s.wait)})
	}
	s.timer.Reset(s.wait)
	return s.nextLocked()
}

// stop ends the series because its caller stopped it (ctx): the echo in
// flight then, whose fate is unknown, is not counted as sent.
func (s *series) stop(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.finished && s.cur != 0 {
		s.sent--
	}
	s.finishLocked(err)
}

// finish ends the series from outside (ctx, connection lost).
func (s *series) finish(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finishLocked(err)
}

func (s *series) finishLocked(err error) {
	if s.finished {
		return
	}
	s.finished = true
	s.err = err
	s.timer.Stop()
	if s.cur != 0 {
		s.n.pmu.Lock()
		delete(s.n.pending, s.cur)
		s.n.pmu.Unlock()
		s.cur = 0
	}
	close(s.done)
}
