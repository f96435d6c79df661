package peer

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"lanchat/identity"
	"lanchat/transport"
)

// peer is one entry of the table: a live connection to another node.
type peer struct {
	n       *Node
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

	mu sync.Mutex // protects following
	// name is the peer's current name.
	name string
	// udpAddr is where the peer's datagrams come from, once learned.
	udpAddr  netip.AddrPort
	udpState string
	lastRTT  time.Duration
	// bye is the reason the peer gave when it said goodbye.
	bye string
	// trust is the known-peers verdict on name and id.
	trust identity.Trust
}

func (p *peer) info() Info {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := Info{
		ID: p.id, Name: p.name, Addr: p.addr, TCP: "up", UDP: p.udpState,
		Via: p.via, Since: p.since, LastRTT: p.lastRTT, Trust: p.trust, Fingerprint: p.fingerprint,
	}
	if t := p.udpTargetLocked(); t.IsValid() {
		i.UDPAddr = t.String()
	}
	return i
}

func (p *peer) udpTargetLocked() netip.AddrPort {
	return udpTarget(p.udpAddr, p.tcpAddr, p.udpPort)
}

func (p *peer) udpTarget() netip.AddrPort {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.udpTargetLocked()
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
		if err := p.handleFrame(t, payload, at); err != nil {
			p.n.log.Warn("closing connection after a protocol error",
				"peer", p.name, "id", ShortID(p.id), "addr", p.addr, "err", err)
			return fmt.Sprintf("protocol error: %v", err)
		}
	}
}

func (p *peer) endReason(err error) string {
	p.mu.Lock()
	bye := p.bye
	p.mu.Unlock()
	switch {
	case bye != "":
		return bye
	case p.n.leaving.Load() || errors.Is(err, net.ErrClosed):
		return "connection closed here"
	case errors.Is(err, io.EOF):
		return "connection closed without goodbye"
	case errors.Is(err, transport.ErrTooLong), errors.Is(err, transport.ErrMalformed):
		p.n.log.Warn("closing connection after a protocol error",
			"peer", p.name, "id", ShortID(p.id), "addr", p.addr, "err", err)
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
		p.n.emit(Chat{From: p.info(), Text: m.Text, Direct: m.Direct, At: at, Sent: time.Unix(0, m.Sent)})
	case transport.TypeNick:
		m, err := transport.DecodeNick(payload)
		if err != nil {
			return err
		}
		p.mu.Lock()
		old := p.name
		p.name = m.Name
		p.mu.Unlock()
		if old != m.Name {
			p.n.checkTrust(p)
			p.n.emit(Nick{ID: p.id, Old: old, New: m.Name})
			p.n.warnIfConflict(p)
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
		m, err := transport.DecodeEcho(t, payload)
		if err != nil {
			return err
		}
		m.Reply = true
		return p.conn.Send(m)
	case transport.TypeTimeResp, transport.TypeEchoResp:
		m, err := transport.Decode(t, payload)
		if err != nil {
			return err
		}
		p.n.complete(p.id, m, at)
	case transport.TypeHello, transport.TypeWelcome, transport.TypeProbe, transport.TypeProbeAck:
		return fmt.Errorf("unexpected %v frame", t)
	default:
		// A newer version's message: skip it, as the protocol promises.
		p.n.log.Debug("skipping unknown frame", "peer", p.name, "type", uint8(t), "bytes", len(payload))
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

// probeUDP opens the datagram channel: probes at growing intervals until
// one is acknowledged or the connection ends. With holdOff it first waits
// for the peer's probe, which makes it send its own at once.
func (p *peer) probeUDP(holdOff bool) {
	defer p.n.wg.Done()
	if holdOff {
		t := time.NewTimer(300 * time.Millisecond)
		select {
		case <-t.C:
		case <-p.done:
			t.Stop()
			return
		}
	}
	udpOK := func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.udpState == "ok"
	}
	interval := 100 * time.Millisecond
	const tries = 8
	for i := 0; i < tries; i++ {
		if udpOK() {
			return
		}
		p.n.sendDatagram(p, p.udpTarget(), transport.Probe{Nonce: p.n.nextReq.Add(1)})
		t := time.NewTimer(interval)
		select {
		case <-t.C:
		case <-p.done:
			t.Stop()
			return
		}
		interval = min(2*interval, 2*time.Second)
	}
	if udpOK() {
		return
	}
	p.mu.Lock()
	p.udpState = "no reply"
	p.mu.Unlock()
	p.n.log.Warn("no UDP reply from peer: /time -udp and /echo -udp will time out",
		"peer", p.name, "id", ShortID(p.id), "udp", p.udpTarget())
}
