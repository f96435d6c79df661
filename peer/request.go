package peer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"lanchat/transport"
)

// Transports a request can use.
const (
	TCP = "tcp"
	UDP = "udp"
)

const (
	// tcpRequestTimeout bounds a request over TCP.
	tcpRequestTimeout = 5 * time.Second
	// udpFirstWait is how long the first UDP attempt waits; each retry
	// waits twice as long as the one before.
	udpFirstWait = 250 * time.Millisecond
	udpAttempts  = 4
)

// ErrTimeout is wrapped when a request got no reply in time (over UDP,
// after every attempt): over UDP, the datagrams were lost.
var ErrTimeout = errors.New("request timed out")

type reply struct {
	msg transport.Message
	at  time.Time
}

// pending is a request waiting for its reply: for a caller waiting on
// ch, or for a series (/echo -n), which takes the reply in the goroutine
// that read it.
type pending struct {
	peerID string
	sentAt time.Time
	ch     chan<- attemptReply
	series *series
}

type attemptReply struct {
	reply
	sentAt time.Time
}

// take removes and returns the request a reply answers. Replies from
// another peer than the one asked, or to no pending request, are counted
// and dropped.
func (n *Node) take(from string, id uint64) (pending, bool) {
	n.pmu.Lock()
	pd, ok := n.pending[id]
	if !ok || pd.peerID != from {
		n.pmu.Unlock()
		n.strayReplies.Add(1)
		return pending{}, false
	}
	delete(n.pending, id)
	n.pmu.Unlock()
	return pd, true
}

// completeEcho hands an echo reply to its request. m.Payload may point
// into the read buffer: it is copied only for a waiting caller. onReader
// is set when it runs on the reader of the connection the reply came by.
func (n *Node) completeEcho(from string, m transport.Echo, at time.Time, onReader bool) {
	pd, ok := n.take(from, m.ReqID)
	if !ok {
		return
	}
	if pd.series != nil {
		pd.series.replied(m.Payload, pd.sentAt, at, onReader)
		return
	}
	m.Payload = bytes.Clone(m.Payload)
	deliver(pd, m, at)
}

// completeTime hands a time reply to its request.
func (n *Node) completeTime(from string, m transport.TimeResp, at time.Time) {
	if pd, ok := n.take(from, m.ReqID); ok && pd.series == nil {
		deliver(pd, m, at)
	}
}

func deliver(pd pending, m transport.Message, at time.Time) {
	select {
	case pd.ch <- attemptReply{reply{m, at}, pd.sentAt}:
	default:
	}
}

// request sends the message build makes over the chosen transport and
// waits for the reply. Over UDP it retries with a new request id each time.
func (n *Node) request(ctx context.Context, l *link, via string, build func(reqID uint64, now time.Time) transport.Message) (attemptReply, error) {
	attempts, wait := 1, tcpRequestTimeout
	if via == UDP {
		attempts, wait = udpAttempts, udpFirstWait
	}
	ch := make(chan attemptReply, attempts)
	var ids []uint64
	defer func() {
		n.pmu.Lock()
		for _, id := range ids {
			delete(n.pending, id)
		}
		n.pmu.Unlock()
	}()
	start := time.Now()
	for i := 0; i < attempts; i++ {
		id := n.nextReq.Add(1)
		ids = append(ids, id)
		now := time.Now()
		m := build(id, now)
		// Register before sending: the reply may beat the return of Send.
		n.pmu.Lock()
		n.pending[id] = pending{peerID: l.id, sentAt: now, ch: ch}
		n.pmu.Unlock()
		var err error
		if via == UDP {
			err = n.sendDatagram(l, l.udpTarget(), m)
		} else {
			err = l.conn.Send(m)
		}
		if err != nil {
			return attemptReply{}, err
		}
		t := time.NewTimer(wait)
		select {
		case r := <-ch:
			t.Stop()
			l.setRTT(r.at.Sub(r.sentAt))
			return r, nil
		case <-t.C:
		case <-l.done:
			t.Stop()
			return attemptReply{}, fmt.Errorf("connection to %s closed before the reply", l.name())
		case <-ctx.Done():
			t.Stop()
			return attemptReply{}, ctx.Err()
		}
		wait *= 2
	}
	took := time.Since(start).Round(time.Millisecond)
	if via == UDP {
		return attemptReply{}, fmt.Errorf("%w: no reply over udp after %d tries in %v", ErrTimeout, attempts, took)
	}
	return attemptReply{}, fmt.Errorf("%w: no reply over tcp in %v", ErrTimeout, took)
}

// TimeResult is the outcome of a time query.
type TimeResult struct {
	Peer      Info
	Transport string
	// PeerTime is the peer's clock when it replied, in the peer's zone.
	PeerTime time.Time
	// Offset is how far the peer's clock is ahead of ours; RTT is the
	// round-trip delay less the peer's processing time (NTP's delay).
	Offset, RTT time.Duration
}

// Offset and delay from NTP's four timestamps: t1 request sent, t2 request
// received, t3 reply sent, t4 reply received.
func Offset(t1, t2, t3, t4 int64) time.Duration {
	return time.Duration(((t2 - t1) + (t3 - t4)) / 2)
}

// Delay is the round trip less the time the peer held the request.
func Delay(t1, t2, t3, t4 int64) time.Duration {
	return time.Duration((t4 - t1) - (t3 - t2))
}

// Time asks peer (a name or id prefix) for its clock.
func (n *Node) Time(ctx context.Context, peerArg, via string) (TimeResult, error) {
	l, err := n.lookupLive(peerArg)
	if err != nil {
		return TimeResult{}, err
	}
	return n.timeOf(ctx, l, via)
}

// TimeAll asks every peer for its clock, concurrently, and returns the
// results in table order with one error per failed peer.
func (n *Node) TimeAll(ctx context.Context, via string, each func(TimeResult, error)) error {
	n.mu.Lock()
	ls := n.linksLocked()
	n.mu.Unlock()
	if len(ls) == 0 {
		return ErrNoPeers
	}
	type res struct {
		r   TimeResult
		err error
	}
	out := make(chan res, len(ls))
	for _, l := range ls {
		go func() {
			r, err := n.timeOf(ctx, l, via)
			if err != nil {
				err = fmt.Errorf("time %s: %w", l.name(), err)
			}
			out <- res{r, err}
		}()
	}
	for range ls {
		r := <-out
		each(r.r, r.err)
	}
	return nil
}

func (n *Node) timeOf(ctx context.Context, l *link, via string) (TimeResult, error) {
	r, err := n.request(ctx, l, via, func(id uint64, now time.Time) transport.Message {
		return transport.TimeReq{ReqID: id, T1: now.UnixNano()}
	})
	if err != nil {
		return TimeResult{}, err
	}
	m := r.msg.(transport.TimeResp)
	if m.T1 != r.sentAt.UnixNano() {
		return TimeResult{}, fmt.Errorf("reply does not echo our send time: dropped")
	}
	t4 := r.at.UnixNano()
	return TimeResult{
		Peer:      l.info(),
		Transport: via,
		PeerTime:  time.Unix(0, m.T3).In(time.FixedZone(m.Zone, int(m.ZoneOffset))),
		Offset:    Offset(m.T1, m.T2, m.T3, t4),
		RTT:       Delay(m.T1, m.T2, m.T3, t4),
	}, nil
}

// EchoResult is the outcome of one echo.
type EchoResult struct {
	Peer      Info
	Transport string
	Sent      []byte
	Got       []byte
	RTT       time.Duration
	OK        bool // Got equals Sent
}

// Echo sends payload to peer and waits for it to come back.
func (n *Node) Echo(ctx context.Context, peerArg, via string, payload []byte) (EchoResult, error) {
	if len(payload) > transport.MaxPayload {
		return EchoResult{}, fmt.Errorf("echo payload of %d bytes: %w (limit %d)", len(payload), transport.ErrTooLong, transport.MaxPayload)
	}
	l, err := n.lookupLive(peerArg)
	if err != nil {
		return EchoResult{}, err
	}
	r, err := n.request(ctx, l, via, func(id uint64, _ time.Time) transport.Message {
		return transport.Echo{ReqID: id, Payload: payload}
	})
	if err != nil {
		return EchoResult{}, err
	}
	got := r.msg.(transport.Echo).Payload
	return EchoResult{
		Peer: l.info(), Transport: via, Sent: payload, Got: got,
		RTT: r.at.Sub(r.sentAt), OK: bytes.Equal(got, payload),
	}, nil
}
