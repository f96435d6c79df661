package peer

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"lanchat/identity"
	"lanchat/transport"
)

// ErrIdentity is wrapped when a node proves a different identity than the
// one expected of it.
var ErrIdentity = errors.New("identity mismatch")

// Exporter labels for the datagram keys, one per direction (RFC 8446 7.5).
const (
	labelFromDialer   = "EXPORTER-lanchat-udp-from-dialer"
	labelFromAcceptor = "EXPORTER-lanchat-udp-from-acceptor"
)

// tlsConfig makes the configuration for both ends: TLS 1.3 only, each
// side presents its self-signed certificate, and each checks that the
// other's is a well-formed Ed25519 self-signed one. Which key is the right
// one is decided after the handshake, against the expected id.
func tlsConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAnyClientCert,
		// No CA vouches for LAN nodes: the chain check is replaced by the
		// key check below and by the id comparison after the handshake.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			_, err := identity.PeerID(raw)
			return err
		},
		NextProtos: []string{fmt.Sprintf("lanchat/%d", transport.ProtocolVersion)},
		// A connection is made once and kept; nothing is resumed, so
		// tickets would only cost each handshake work and bytes.
		SessionTicketsDisabled: true,
	}
}

// secure runs the TLS handshake on a fresh connection and returns the
// encrypted stream, the peer's proven id and the datagram channel keyed
// from the TLS session.
func (n *Node) secure(nc net.Conn, dialed bool) (net.Conn, string, *transport.Channel, error) {
	if n.insecure {
		return nc, "", transport.NewPlainChannel(), nil
	}
	var tc *tls.Conn
	if dialed {
		tc = tls.Client(nc, n.tlsConf)
	} else {
		tc = tls.Server(nc, n.tlsConf)
	}
	ctx, cancel := context.WithTimeout(n.ctx, HandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, "", nil, fmt.Errorf("TLS handshake: %w", err)
	}
	st := tc.ConnectionState()
	// VerifyPeerCertificate has checked the certificate (the signature
	// check is the costly part of a handshake): only the id is left.
	pub, ok := st.PeerCertificates[0].PublicKey.(ed25519.PublicKey)
	if !ok {
		return nil, "", nil, fmt.Errorf("peer certificate key is %T, want Ed25519", st.PeerCertificates[0].PublicKey)
	}
	id := identity.IDOf(pub)
	fromDialer, err1 := st.ExportKeyingMaterial(labelFromDialer, nil, transport.KeySize)
	fromAcceptor, err2 := st.ExportKeyingMaterial(labelFromAcceptor, nil, transport.KeySize)
	if err := errors.Join(err1, err2); err != nil {
		return nil, "", nil, fmt.Errorf("derive datagram keys: %w", err)
	}
	send, recv := fromAcceptor, fromDialer
	if dialed {
		send, recv = fromDialer, fromAcceptor
	}
	ch, err := transport.NewChannel(send, recv)
	if err != nil {
		return nil, "", nil, err
	}
	return tc, id, ch, nil
}

// Connect dials addr ("host:port") and runs the handshake. expectID, when
// set, is the id the other end must prove.
func (n *Node) Connect(ctx context.Context, addr, via, expectID string) (Info, error) {
	<-n.ready
	if n.leaving.Load() {
		return Info{}, fmt.Errorf("connect to %s: node is leaving", addr)
	}
	nc, err := n.tr.Dial(ctx, addr, DialTimeout)
	if err != nil {
		return Info{}, err
	}
	p, err := n.handshake(nc, true, via, expectID)
	if err != nil {
		return Info{}, err
	}
	return p.info(), nil
}

// handshake secures a fresh connection, runs the hello exchange and, when
// the connection is kept, registers the peer and starts serving it.
func (n *Node) handshake(raw net.Conn, dialed bool, via, expectID string) (*peer, error) {
	if tc, ok := raw.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	remote := raw.RemoteAddr()
	deadline := time.Now().Add(HandshakeTimeout)
	raw.SetDeadline(deadline)
	nc, provenID, ch, err := n.secure(raw, dialed)
	if err != nil {
		raw.Close()
		return nil, fmt.Errorf("handshake with %v: %w", remote, err)
	}
	if expectID != "" && provenID != "" && provenID != expectID {
		nc.Close()
		err := fmt.Errorf("%w: %v was expected to be node %s but proved to be node %s: connection refused (an impostor, or that node's key was replaced)",
			ErrIdentity, remote, identity.Grouped(expectID), identity.Grouped(provenID))
		n.log.Warn("IDENTITY MISMATCH", "addr", remote, "expected", expectID, "got", provenID)
		n.emit(Warning{Text: err.Error()})
		return nil, err
	}
	raw.SetDeadline(time.Time{})
	c := transport.NewConn(nc)
	fail := func(err error) (*peer, error) {
		// Our hello may still be queued; the other side needs it to
		// learn why (a node dialling itself learns it from our hello).
		c.FlushClose(100 * time.Millisecond)
		return nil, err
	}
	viaCode := uint8(0)
	if via == ViaMDNS {
		viaCode = 1
	}
	hello := transport.Hello{
		Version: transport.ProtocolVersion, ID: n.id, Name: n.Name(),
		UDPPort: uint16(n.tr.UDPPort()), Session: n.session, Via: viaCode,
		TCPPort: uint16(n.tr.TCPPort()),
	}
	if provenID != "" {
		n.mu.Lock()
		if n.peers[provenID] != nil {
			hello.Flags |= transport.HelloConnected
		}
		n.mu.Unlock()
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
	if provenID != "" && h.ID != provenID {
		return fail(fmt.Errorf("handshake with %v: hello claims id %s but the TLS key is that of %s", remote, h.ID, provenID))
	}
	if h.ID == n.id {
		return fail(fmt.Errorf("handshake with %v: %w", remote, ErrSelf))
	}
	if expectID != "" && h.ID != expectID {
		return fail(fmt.Errorf("handshake with %v: node id is %s, expected %s", remote, h.ID, expectID))
	}
	if !dialed {
		via = ViaManual
		if h.Via == 1 {
			via = ViaMDNS
		}
	}
	var tcpAddr netip.AddrPort
	if ta, ok := remote.(*net.TCPAddr); ok {
		tcpAddr = ta.AddrPort()
	}
	p := &peer{
		n: n, conn: c, ch: ch, id: h.ID, session: h.Session, via: via,
		since: time.Now(), addr: remote.String(),
		tcpAddr: netip.AddrPortFrom(tcpAddr.Addr().Unmap(), tcpAddr.Port()),
		udpPort: h.UDPPort, done: make(chan struct{}),
	}
	if tc, ok := nc.(*tls.Conn); ok {
		if pub, ok := tc.ConnectionState().PeerCertificates[0].PublicKey.(ed25519.PublicKey); ok {
			p.fingerprint = identity.Fingerprint(pub)
		}
	}
	var old *peer
	if n.id < h.ID {
		// We decide which connection the pair keeps.
		var ok bool
		if old, ok = n.admit(p, false, h.Flags&transport.HelloConnected != 0); !ok {
			if n.ctx.Err() != nil {
				return fail(fmt.Errorf("handshake with %v: %w", remote, n.ctx.Err()))
			}
			c.Send(transport.Welcome{Status: transport.WelcomeDuplicate})
			c.FlushClose(time.Second)
			return nil, fmt.Errorf("%w to %s (%s)", ErrDuplicate, h.Name, ShortID(h.ID))
		}
		if err := c.Send(transport.Welcome{Status: transport.WelcomeOK}); err != nil {
			n.remove(p)
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
		default:
			return fail(fmt.Errorf("handshake with %v: refused: %s", remote, w.Reason))
		}
		var ok bool
		if old, ok = n.admit(p, true, false); !ok {
			return fail(fmt.Errorf("handshake with %v: %w", remote, n.ctx.Err()))
		}
	}
	back := n.attach(p, h, dialed)
	if old != nil {
		// The node restarted, or its old connection died unnoticed: the
		// new one wins. Only a new session is worth telling the user.
		old.conn.Close()
		if old.session != p.session {
			n.emit(PeerDown{Peer: old.info(), Reason: "restarted"})
		}
	}
	n.checkTrust(p.m)
	p.conn.Send(n.peerList(p.id))
	n.emit(PeerUp{Peer: p.info(), Back: back})
	if n.onUp != nil {
		n.onUp()
	}
	n.warnIfConflict(p.m)
	// The other side registers only after our welcome, so as decider we
	// let it probe first: our early probes would reach it as an unknown
	// sender.
	p.startBeats(n.id < h.ID, time.Now())
	n.wg.Add(1)
	go n.serve(p)
	return p, nil
}
