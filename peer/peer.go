package peer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"lanchat/transport"
)

// peer is one entry of the table: a live connection to another node.
type peer struct {
	n       *Node
	m       *member // set by attach, before the connection is served
	conn    *transport.Conn
	ch      *transport.Channel // seals and opens our datagrams
	id      string
	session uint64
	via     string
	since   time.Time
	addr    string
	tcpAddr netip.AddrPort
	udpPort uint16
	// fingerprint of the peer's key ("" when insecure).
	fingerprint string
	// done is closed when the connection has ended; waiters on requests
	// to this peer give up then.
	done chan struct{}
	// ackDue is the chat id to acknowledge once the input runs dry; only
	// the read loop uses it.
	ackDue uint64
	// acked holds the ids of the messages an ack delivered, for the
	// reader to report; reused from ack to ack.
	acked []uint64
	// lastHeard and lastUDP are when anything (any frame or datagram),
	// and an authentic datagram, last arrived: Unix nanoseconds.
	lastHeard, lastUDP atomic.Int64
	// The keeper's schedule, used by keepAll only: the time between
	// heartbeats, the next one, and whether it gave the connection up.
	beatEvery time.Duration
	nextBeat  time.Time
	givenUp   bool
	// beating is set by startBeats once the schedule is set.
	beating atomic.Bool

	mu sync.Mutex // protects following
	// udpAddr is where the peer's datagrams come from, once learned.
	udpAddr netip.AddrPort
	lastRTT time.Duration
	// bye is the reason the peer gave when it said goodbye.
	bye string
	// unreachable is set while the peer has been silent too long.
	unreachable bool
	// dead is why the keeper gave the connection up, if it did.
	dead string
}

func (p *peer) heard(now time.Time) { p.lastHeard.Store(now.UnixNano()) }

func (p *peer) info() Info {
	p.m.mu.Lock()
	name, trust, pending := p.m.name, p.m.trust, len(p.m.outbox)
	p.m.mu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	i := Info{
		ID: p.id, Name: name, Addr: p.addr, TCP: "up", UDP: p.udpStateLocked(),
		Via: p.via, Since: p.since, LastRTT: p.lastRTT, Trust: trust, Fingerprint: p.fingerprint,
		Pending: pending,
	}
	if p.unreachable {
		i.TCP = "unreachable"
	}
	if t := p.udpTargetLocked(); t.IsValid() {
		i.UDPAddr = t.String()
	}
	return i
}

// udpStateLocked: "ok" when an authentic datagram arrived lately,
// "probing" before the first, "no reply" after a silence.
func (p *peer) udpStateLocked() string {
	last := p.lastUDP.Load()
	switch {
	case last == 0 && time.Since(p.since) < UnreachableAfter:
		return "probing"
	case last != 0 && time.Since(time.Unix(0, last)) < UnreachableAfter:
		return "ok"
	}
	return "no reply"
}

func (p *peer) udpTargetLocked() netip.AddrPort {
	return udpTarget(p.udpAddr, p.tcpAddr, p.udpPort)
}

func (p *peer) udpTarget() netip.AddrPort {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.udpTargetLocked()
}

func (p *peer) name() string {
	p.m.mu.Lock()
	defer p.m.mu.Unlock()
	return p.m.name
}

func (p *peer) setRTT(d time.Duration) {
	p.mu.Lock()
	p.lastRTT = d
	p.mu.Unlock()
}

// readLoop handles the peer's frames until the connection ends and returns
// why it ended, in words for the user.
func (p *peer) readLoop() string {
	for {
		t, payload, err := p.conn.Read(time.Time{})
		at := time.Now()
		if err != nil {
			return p.endReason(err)
		}
		p.heard(at)
		if err := p.handleFrame(t, payload, at); err != nil {
			p.n.log.Warn("closing connection after a protocol error",
				"peer", p.name(), "id", ShortID(p.id), "addr", p.addr, "err", err)
			return fmt.Sprintf("protocol error: %v", err)
		}
		// One cumulative acknowledgement covers a burst: it goes once no
		// more input is waiting.
		if p.ackDue != 0 && !p.conn.Buffered() {
			if err := p.conn.Send(transport.Ack{Upto: p.ackDue}); err != nil {
				return fmt.Sprintf("connection lost: %v", err)
			}
			p.ackDue = 0
		}
	}
}

func (p *peer) endReason(err error) string {
	p.mu.Lock()
	bye, dead := p.bye, p.dead
	p.mu.Unlock()
	switch {
	case bye != "":
		return bye
	case dead != "":
		return dead
	case p.n.leaving.Load() || errors.Is(err, net.ErrClosed):
		return "connection closed here"
	case errors.Is(err, io.EOF):
		return "connection closed without goodbye"
	case errors.Is(err, transport.ErrTooLong), errors.Is(err, transport.ErrMalformed):
		p.n.log.Warn("closing connection after a protocol error",
			"peer", p.name(), "id", ShortID(p.id), "addr", p.addr, "err", err)
		return fmt.Sprintf("protocol error: %v", err)
	}
	return fmt.Sprintf("connection lost: %v", err)
}

// handleFrame acts on one frame; an error closes the connection.
func (p *peer) handleFrame(t transport.Type, payload []byte, at time.Time) error {
	switch t {
	case transport.TypeChat:
		m, err := transport.DecodeChat(payload)
		if err != nil {
			return err
		}
		fresh, ack := p.m.received(m.MsgID)
		if fresh {
			p.n.emit(Chat{From: p.m.ref(), MsgID: m.MsgID, Text: m.Text, Direct: m.Direct, At: at, Sent: time.Unix(0, m.Sent)})
		}
		// Acknowledge duplicates too: the first ack may have been lost.
		p.ackDue = ack
	case transport.TypeAck:
		m, err := transport.DecodeAck(payload)
		if err != nil {
			return err
		}
		p.acked = p.m.acked(m.Upto, p.acked[:0])
		if len(p.acked) > 0 {
			who := p.m.ref()
			for _, id := range p.acked {
				p.n.emit(Delivered{Peer: who, MsgID: id})
			}
		}
		if cap(p.acked) > 64 {
			p.acked = nil // a burst's worth: not kept for the quiet after it
		}
	case transport.TypeBeat:
		// Only a sign of life: heard above.
	case transport.TypePeerList:
		m, err := transport.DecodePeerList(payload)
		if err != nil {
			return err
		}
		for _, ref := range m.Peers {
			// The same path as an mDNS sighting: skipped when known,
			// and the node at addr must prove it holds ref.ID.
			p.n.Discovered(Found{Via: p.via, Instance: "introduced by " + p.name(), ID: ref.ID, Addrs: []string{ref.Addr}})
		}
	case transport.TypeNick:
		m, err := transport.DecodeNick(payload)
		if err != nil {
			return err
		}
		p.m.mu.Lock()
		old := p.m.name
		p.m.name = m.Name
		p.m.mu.Unlock()
		if old != m.Name {
			p.n.checkTrust(p.m)
			p.n.emit(Nick{ID: p.id, Old: old, New: m.Name})
			p.n.warnIfConflict(p.m)
		}
	case transport.TypeBye:
		m, err := transport.DecodeBye(payload)
		if err != nil {
			return err
		}
		reason := m.Reason
		if reason == "" {
			reason = "left"
		}
		p.mu.Lock()
		p.bye = reason
		p.mu.Unlock()
	case transport.TypeTimeReq:
		m, err := transport.DecodeTimeReq(payload)
		if err != nil {
			return err
		}
		return p.conn.Send(timeReply(m, at))
	case transport.TypeEchoReq:
		// Send copies the payload before the next read reuses it.
		m, err := transport.DecodeEchoInPlace(t, payload)
		if err != nil {
			return err
		}
		m.Reply = true
		return p.conn.Send(m)
	case transport.TypeEchoResp:
		m, err := transport.DecodeEchoInPlace(t, payload)
		if err != nil {
			return err
		}
		p.n.completeEcho(p.id, m, at)
	case transport.TypeTimeResp:
		m, err := transport.DecodeTimeResp(payload)
		if err != nil {
			return err
		}
		p.n.completeTime(p.id, m, at)
	case transport.TypeHello, transport.TypeWelcome, transport.TypeProbe, transport.TypeProbeAck:
		return fmt.Errorf("unexpected %v frame", t)
	default:
		// A newer version's message: skip it, as the protocol promises.
		p.n.log.Debug("skipping unknown frame", "peer", p.name(), "type", uint8(t), "bytes", len(payload))
	}
	return nil
}

// timeReply answers a time request that arrived at t2.
func timeReply(m transport.TimeReq, t2 time.Time) transport.TimeResp {
	t3 := time.Now()
	zone, off := t3.Zone()
	return transport.TimeResp{
		ReqID: m.ReqID, T1: m.T1, T2: t2.UnixNano(), T3: t3.UnixNano(),
		Zone: zone, ZoneOffset: int32(off),
	}
}

// startBeats sets the keeper's schedule for a new connection: probes go
// out fast at first (100 ms, doubling) until the datagram channel
// answers, then every beatInterval. With holdOff the first waits a little,
// to let the peer probe first.
//
// The keeper leaves a peer alone until then: a peer enters the table
// before the handshake has attached it to its member.
func (p *peer) startBeats(holdOff bool, now time.Time) {
	p.heard(now)
	p.beatEvery = 100 * time.Millisecond
	p.nextBeat = now.Add(p.beatEvery)
	if holdOff {
		p.nextBeat = now.Add(300 * time.Millisecond)
	}
	p.beating.Store(true) // after the fields above: keepAll loads it first
}

// keepAll keeps every connection honest until ctx ends. Every
// checkInterval it sends each peer its heartbeat when due, shows a peer as
// unreachable after UnreachableAfter of silence, and gives a connection
// up after deadAfter, so that a pulled cable is noticed although TCP says
// nothing. One goroutine and one ticker serve every peer.
func (n *Node) keepAll(ctx context.Context) {
	t := time.NewTicker(checkInterval)
	defer t.Stop()
	var ps []*peer
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		n.mu.Lock()
		ps = ps[:0]
		for _, p := range n.peers {
			ps = append(ps, p)
		}
		n.mu.Unlock()
		now := time.Now()
		for _, p := range ps {
			p.keep(now)
		}
		clear(ps) // let ended peers go
	}
}

// keep is one round of the keeper for p; only keepAll calls it.
func (p *peer) keep(now time.Time) {
	if p.givenUp || !p.beating.Load() {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	p.conn.Trim(now)
	if !now.Before(p.nextBeat) {
		p.n.sendDatagram(p, p.udpTarget(), transport.Probe{Nonce: p.n.nextReq.Add(1)})
		// Over TCP only while no datagram gets through (UDP blocked,
		// or lost): the datagrams are the cheaper heartbeat.
		if now.Sub(time.Unix(0, p.lastUDP.Load())) > 2*beatInterval {
			p.conn.Send(transport.Beat{})
		}
		if p.lastUDP.Load() != 0 {
			p.beatEvery = beatInterval
		} else {
			p.beatEvery = min(2*p.beatEvery, beatInterval)
		}
		p.nextBeat = now.Add(p.beatEvery)
	}
	silence := now.Sub(time.Unix(0, p.lastHeard.Load()))
	p.mu.Lock()
	was := p.unreachable
	p.unreachable = silence >= UnreachableAfter
	changed := was != p.unreachable
	if silence >= deadAfter {
		p.dead = fmt.Sprintf("no sign of life for %v", deadAfter)
	}
	dead := p.dead != ""
	p.mu.Unlock()
	if changed {
		state := "up"
		if !was {
			state = "unreachable"
		}
		p.n.emit(PeerState{Peer: p.info(), State: state, Silence: silence})
	}
	if dead {
		p.givenUp = true
		p.conn.Close()
	}
}
