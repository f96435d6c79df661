package peer

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"lanchat/identity"
	"lanchat/transport"
)

// handshake secures a fresh connection, runs the hello exchange and, when
// the connection is kept, registers the link and starts serving it.
func (n *Node) handshake(raw net.Conn, dialed bool, via Via, expectID string) (*link, error) {
	if tc, ok := raw.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	remote := raw.RemoteAddr()
	deadline := time.Now().Add(HandshakeTimeout)
	raw.SetDeadline(deadline)
	ctx, cancel := context.WithDeadline(n.ctx, deadline)
	sec, err := n.secure.Secure(ctx, raw, dialed, "")
	cancel()
	if err != nil {
		raw.Close()
		return nil, fmt.Errorf("handshake with %v: %w", remote, err)
	}
	if sec.Stream != "" {
		// Not a chat connection: a stream of a connected peer's.
		if err := n.acceptStream(sec, raw); err != nil {
			return nil, fmt.Errorf("handshake with %v: %w", remote, err)
		}
		return nil, nil
	}
	if expectID != "" && sec.ID != "" && sec.ID != expectID {
		raw.Close()
		err := fmt.Errorf("%w: %v was expected to be node %s but proved to be node %s: connection refused (an impostor, or that node's key was replaced)",
			ErrIdentity, remote, identity.Grouped(expectID), identity.Grouped(sec.ID))
		if via == ViaRemembered {
			// Addresses change hands: not a warning.
			return nil, err
		}
		n.log.Debug("IDENTITY MISMATCH", "addr", remote, "expected", expectID, "got", sec.ID)
		n.alarm("mismatch "+expectID+" "+remote.String(), err.Error())
		return nil, err
	}
	raw.SetDeadline(time.Time{})
	opts := sec.Options
	opts.QueueLimit, opts.StallTimeout = n.connOpt.QueueLimit, n.connOpt.StallTimeout
	c := transport.NewConn(sec.Conn, opts)
	fail := func(err error) (*link, error) {
		// Our hello may still be queued; the other side needs it to
		// learn why (a node dialling itself learns it from our hello).
		c.FlushClose(100 * time.Millisecond)
		c.Wait()
		return nil, err
	}
	viaCode := via.wire()
	hello := transport.Hello{
		Version: transport.ProtocolVersion, ID: n.id, Name: n.Name(),
		UDPPort: uint16(n.net.UDPPort()), Session: n.session, Via: viaCode,
		TCPPort: uint16(n.net.TCPPort()), Epoch: n.epoch,
	}
	remoteIP := hostOf(remote)
	if sec.ID != "" {
		n.mu.Lock()
		if n.links[sec.ID] != nil {
			hello.Flags |= transport.HelloConnected
		}
		n.mu.Unlock()
		if _, twin := n.twinOf(sec.ID, 0, remoteIP); twin {
			hello.Flags |= transport.HelloTwin
		}
	}
	if err := c.Send(hello); err != nil {
		return fail(fmt.Errorf("handshake with %v: %w", remote, err))
	}
	t, payload, err := c.Read(deadline)
	if err != nil {
		return fail(fmt.Errorf("handshake with %v: no hello: %w", remote, err))
	}
	if t != transport.TypeHello {
		return fail(fmt.Errorf("handshake with %v: got %v before hello: not a lanchat node", remote, t))
	}
	h, err := transport.DecodeHello(payload)
	if err != nil {
		return fail(fmt.Errorf("handshake with %v: %w", remote, err))
	}
	if sec.ID != "" && h.ID != sec.ID {
		return fail(fmt.Errorf("handshake with %v: hello claims id %s but the TLS key is that of %s", remote, h.ID, sec.ID))
	}
	if h.ID == n.id {
		if h.Session != n.session && !n.selfTwin.Swap(true) {
			n.emit(Warning{Text: fmt.Sprintf("SAME IDENTITY TWICE: another process at %v uses this node's key (%s), a copied key file? "+
				"Each machine needs its own key (delete the copy's identity file to make a new one)", remote, ShortID(n.id))})
		}
		return fail(fmt.Errorf("handshake with %v: %w", remote, ErrSelf))
	}
	if h.Flags&transport.HelloTwin != 0 {
		// The other end holds our identity connected from elsewhere.
		reason := "it is connected to this node's identity from another address"
		n.refusedAsTwin(h.ID, fmt.Sprintf("%s (%s)", h.Name, ShortID(h.ID)), reason)
		return fail(fmt.Errorf("handshake with %v: %w: %s", remote, ErrTwin, reason))
	}
	if expectID != "" && h.ID != expectID {
		return fail(fmt.Errorf("handshake with %v: node id is %s, expected %s", remote, h.ID, expectID))
	}
	if !dialed {
		via = viaFromWire(h.Via)
	}
	var tcpAddr netip.AddrPort
	if ta, ok := remote.(*net.TCPAddr); ok {
		tcpAddr = ta.AddrPort()
	}
	if kept, twin := n.twinOf(h.ID, h.Session, remoteIP); twin {
		n.warnTwin(h.ID, twinText(h.ID, kept, remote))
		if n.id < h.ID {
			c.Send(transport.Welcome{Status: transport.WelcomeTwin,
				Reason: fmt.Sprintf("node %s is connected here from %s already", ShortID(h.ID), kept)})
		}
		return fail(fmt.Errorf("handshake with %v: %w: %s is connected from %s already", remote, ErrTwin, ShortID(h.ID), kept))
	}
	l := &link{
		n: n, conn: c, ch: sec.Datagrams, id: h.ID, session: h.Session, via: via,
		since: time.Now(), addr: remote.String(),
		tcpAddr: netip.AddrPortFrom(tcpAddr.Addr().Unmap(), tcpAddr.Port()),
		udpPort: h.UDPPort, done: make(chan struct{}), fingerprint: sec.Fingerprint, key: sec.Key,
		epoch: h.Epoch,
	}
	l.rcond = sync.NewCond(&l.rmu)
	l.shownCh = make(chan struct{}, 1)
	l.showFn = l.markShown
	if l.epoch == 0 {
		l.epoch = h.Session // a sender that names no epoch counts per process
	}
	var old *link
	if n.id < h.ID {
		// We decide which connection the pair keeps.
		var ok bool
		if old, ok = n.admit(l, false, h.Flags&transport.HelloConnected != 0); !ok {
			if n.ctx.Err() != nil {
				return fail(fmt.Errorf("handshake with %v: %w", remote, n.ctx.Err()))
			}
			c.Send(transport.Welcome{Status: transport.WelcomeDuplicate})
			c.FlushClose(time.Second)
			c.Wait()
			return nil, fmt.Errorf("%w to %s (%s)", ErrDuplicate, h.Name, ShortID(h.ID))
		}
		if err := c.Send(transport.Welcome{Status: transport.WelcomeOK}); err != nil {
			n.remove(l)
			return fail(fmt.Errorf("handshake with %v: %w", remote, err))
		}
	} else {
		t, payload, err := c.Read(deadline)
		if err != nil {
			return fail(fmt.Errorf("handshake with %v: no welcome: %w", remote, err))
		}
		if t != transport.TypeWelcome {
			return fail(fmt.Errorf("handshake with %v: got %v instead of welcome", remote, t))
		}
		w, err := transport.DecodeWelcome(payload)
		if err != nil {
			return fail(fmt.Errorf("handshake with %v: %w", remote, err))
		}
		switch w.Status {
		case transport.WelcomeOK:
		case transport.WelcomeDuplicate:
			return fail(fmt.Errorf("%w to %s (%s)", ErrDuplicate, h.Name, ShortID(h.ID)))
		case transport.WelcomeTwin:
			n.refusedAsTwin(h.ID, fmt.Sprintf("%s (%s)", h.Name, ShortID(h.ID)), w.Reason)
			return fail(fmt.Errorf("handshake with %v: %w: %s", remote, ErrTwin, w.Reason))
		default:
			return fail(fmt.Errorf("handshake with %v: refused: %s", remote, w.Reason))
		}
		var ok bool
		if old, ok = n.admit(l, true, false); !ok {
			return fail(fmt.Errorf("handshake with %v: %w", remote, n.ctx.Err()))
		}
	}
	back, was := n.attach(l, h, dialed)
	if old != nil {
		// The node restarted, or its old connection died unnoticed: the
		// new one wins. Only a new session is worth telling the user.
		old.conn.Close()
		if old.session != l.session {
			n.emit(PeerDown{Peer: old.info(), Reason: "restarted"})
		}
	}
	n.checkTrust(l.p)
	n.remember(l.p) // after checkTrust: a book may keep pinned ids only
	n.sendList(l, time.Now())
	n.emit(PeerUp{Peer: l.info(), Back: back, Was: was})
	if n.onUp != nil {
		n.onUp(l.id)
	}
	n.warnIfConflict(l.p)
	// The other side registers only after our welcome, so as decider we
	// let it probe first: our early probes would reach it as an unknown
	// sender.
	l.startBeats(n.id < h.ID, time.Now())
	n.wg.Add(1)
	go n.serve(l)
	return l, nil
}
