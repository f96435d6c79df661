package peer

import (
	"context"
	"fmt"
	"time"

	"lanchat/transport"
)

// Liveness.
const (
	// beatInterval is how often each side shows it is alive, over UDP
	// (a probe, acknowledged) and over TCP (a heartbeat frame) while no
	// datagram gets through.
	beatInterval = 500 * time.Millisecond
	// UnreachableAfter is the silence after which a peer is shown as
	// unreachable. Heartbeats come every beatInterval, so a pulled cable
	// or a stopped process is noticed between UnreachableAfter-beatInterval
	// and UnreachableAfter+checkInterval after it happened: within 3 s.
	UnreachableAfter = 2500 * time.Millisecond
	// checkInterval is how often silence is checked.
	checkInterval = 100 * time.Millisecond
	// deadAfter is the silence after which the connection is given up
	// and a new one is tried.
	deadAfter = 10 * time.Second
	// notReadingAfter: a peer whose messages wait for room in its
	// queue while it has taken none of it for this long is reported as
	// not reading.
	notReadingAfter = 2 * time.Second
	// resumeGap: a keeper round this late means this process did not
	// run meanwhile (stopped, a suspended laptop): the silence it would
	// see is its own, not its peers'.
	resumeGap = time.Second
)

// startBeats sets the keeper's schedule for a new connection: probes go
// out fast at first (100 ms, doubling) until the datagram channel
// answers, then every beatInterval. With holdOff the first waits a little,
// to let the peer probe first.
//
// The keeper leaves a link alone until then: a link enters the table
// before the handshake has attached it to its peer.
func (l *link) startBeats(holdOff bool, now time.Time) {
	l.heard(now)
	l.reported = Up
	l.beatEvery = 100 * time.Millisecond
	l.nextBeat = now.Add(l.beatEvery)
	if holdOff {
		l.nextBeat = now.Add(300 * time.Millisecond)
	}
	l.beating.Store(true) // after the fields above: keepAll loads it first
}

// keepAll keeps every connection honest until ctx ends. Every
// checkInterval it sends each peer its heartbeat when due, shows a peer as
// unreachable after UnreachableAfter of silence, and gives a connection
// up after deadAfter, so that a pulled cable is noticed although TCP says
// nothing. One goroutine and one ticker serve every peer, and nothing it
// does waits: sends only queue, and its events are dropped (and tried
// again next round) rather than wait for the console.
func (n *Node) keepAll(ctx context.Context) {
	t := time.NewTicker(checkInterval)
	defer t.Stop()
	var ls []*link
	last := time.Now()
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		n.mu.Lock()
		ls = n.appendLinksLocked(ls[:0])
		n.mu.Unlock()
		now := time.Now()
		resumed := now.Sub(last) > resumeGap
		last = now
		for _, l := range ls {
			if resumed {
				l.resume(now)
			}
			l.keep(now)
		}
		clear(ls) // let ended links go
	}
}

// resume restarts l's silence clock and heartbeat after this process did
// not run for a while: the peer gets UnreachableAfter to be heard again.
func (l *link) resume(now time.Time) {
	if !l.beating.Load() {
		return
	}
	if time.Unix(0, l.lastHeard.Load()).Before(now) {
		l.heard(now)
	}
	l.nextBeat = now
}

// keep is one round of the keeper for l; only keepAll calls it.
func (l *link) keep(now time.Time) {
	if l.givenUp || !l.beating.Load() {
		return
	}
	select {
	case <-l.done:
		return
	default:
	}
	l.conn.Trim(now)
	if !now.Before(l.nextBeat) {
		l.n.sendDatagram(l, l.udpTarget(), transport.Probe{Nonce: l.n.nextReq.Add(1)})
		// Over TCP only while no datagram gets through (UDP blocked,
		// or lost): the datagrams are the cheaper heartbeat. A full
		// write queue skips it: data is waiting there already.
		if now.Sub(time.Unix(0, l.lastUDP.Load())) > 2*beatInterval {
			l.conn.Send(transport.Beat{})
		}
		if l.lastUDP.Load() != 0 {
			l.beatEvery = beatInterval
		} else {
			l.beatEvery = min(2*l.beatEvery, beatInterval)
		}
		l.nextBeat = now.Add(l.beatEvery)
	}
	silence := now.Sub(time.Unix(0, l.lastHeard.Load()))
	l.mu.Lock()
	l.unreachable = silence >= UnreachableAfter
	if silence >= deadAfter && l.dead == "" {
		l.dead = fmt.Sprintf("no sign of life for %v", deadAfter)
	}
	state := Up
	if l.unreachable {
		state = Unreachable
	}
	dead := l.dead != ""
	l.mu.Unlock()
	if state != l.reported && l.n.tryEmit(PeerState{Peer: l.info(), State: state, Silence: silence}) {
		l.reported = state
	}
	if note := l.notReading(now); note != nil && l.n.tryEmit(*note) {
		l.toldNotReading()
	}
	l.rmu.Lock()
	ackDue := !l.delivering && l.rack > l.rackSent
	l.rmu.Unlock()
	if ackDue {
		l.sendAck() // one that found the write queue full
	}
	if l.n.peersGen.Load() != l.listGen.Load() && now.Sub(time.Unix(0, l.listSent.Load())) >= listResend {
		l.n.sendList(l, now)
	}
	if dead {
		l.givenUp = true
		l.conn.Close()
	}
}
