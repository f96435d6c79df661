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

// Network is what a node needs of its sockets: accepted streams,
// datagrams both ways, and dialling. *transport.Transport is the one the
// product uses.
type Network interface {
	// Streams delivers accepted connections; the receiver owns them.
	Streams() <-chan net.Conn
	// Serve runs the accept and receive loops until ctx is done.
	Serve(ctx context.Context, onPacket func(transport.Packet))
	WriteTo(b []byte, to netip.AddrPort) error
	Dial(ctx context.Context, addr string, timeout time.Duration) (net.Conn, error)
	TCPPort() int
	UDPPort() int
	// Overruns counts datagrams the kernel dropped for want of room.
	Overruns() uint64
}

var _ Network = (*transport.Transport)(nil)

// Securer authenticates a fresh stream and protects what crosses it. The
// product's is TLS 1.3 with the node's key (NewTLS); the bench brings a
// plaintext one of its own to measure what security costs.
type Securer interface {
	// Secure runs the handshake on nc within ctx; dialed tells which
	// end this is. A dialling end opens a stream of kind stream ("" for
	// the chat connection, or StreamTransfer); an accepting end learns
	// the kind from Secured.Stream. On error nc is left for the caller to
	// close.
	Secure(ctx context.Context, nc net.Conn, dialed bool, stream string) (Secured, error)
}

// Stream kinds besides the chat connection: each is a connection of its
// own, to the same port, told apart in the TLS handshake (ALPN).
const (
	// StreamTransfer carries one file transfer (package transfer).
	StreamTransfer = "transfer"
)

// Secured is a stream after its security handshake.
type Secured struct {
	// Conn carries the frames.
	Conn net.Conn
	// ID is the node id the other end proved; "" when the securer
	// proves none (then the hello's claim is all there is).
	ID string
	// Fingerprint of the other end's key, for display; "" when none.
	Fingerprint string
	// Key is the other end's public key (nil when none is proven), for
	// the verification code both users compare.
	Key ed25519.PublicKey
	// Datagrams seals this pair's datagrams and opens the other's.
	Datagrams *transport.Channel
	// Conn options for this stream (its read buffer: TLS keeps a whole
	// record already, a plain stream benefits from a larger one).
	Options transport.ConnOptions
	// Stream is the kind of stream the dialling end opened: "" for the
	// chat connection.
	Stream string
}

// ErrIdentity is wrapped when a node proves a different identity than the
// one expected of it.
var ErrIdentity = errors.New("identity mismatch")

// Exporter labels for the datagram keys, one per direction (RFC 8446 7.5).
const (
	labelFromDialer   = "EXPORTER-lanchat-udp-from-dialer"
	labelFromAcceptor = "EXPORTER-lanchat-udp-from-acceptor"
)

// ALPN names of the chat connection and of a transfer stream.
var (
	chatALPN     = fmt.Sprintf("lanchat/%d", transport.ProtocolVersion)
	transferALPN = "lanchat-transfer/1"
)

// tlsReadBuffer is a TLS stream's read buffer: small, because TLS holds
// the record being read, and a large group holds many idle connections.
const tlsReadBuffer = 512

// tlsSecurer is the product's Securer: mutually authenticated TLS 1.3
// with self-signed Ed25519 certificates made from the node keys.
type tlsSecurer struct{ conf *tls.Config }

// NewTLS makes the TLS securer for a node with identity id.
func NewTLS(id *identity.Identity) (Securer, error) {
	cert, err := id.Certificate()
	if err != nil {
		return nil, err
	}
	return tlsSecurer{conf: tlsConfig(cert)}, nil
}

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
		NextProtos: []string{chatALPN, transferALPN},
		// A connection is made once and kept; nothing is resumed, so
		// tickets would only cost each handshake work and bytes.
		SessionTicketsDisabled: true,
	}
}

func (s tlsSecurer) Secure(ctx context.Context, nc net.Conn, dialed bool, stream string) (Secured, error) {
	var tc *tls.Conn
	switch {
	case !dialed:
		tc = tls.Server(nc, s.conf)
	case stream == StreamTransfer:
		conf := s.conf.Clone()
		conf.NextProtos = []string{transferALPN}
		tc = tls.Client(nc, conf)
	case stream == "":
		conf := s.conf.Clone()
		conf.NextProtos = []string{chatALPN}
		tc = tls.Client(nc, conf)
	default:
		return Secured{}, fmt.Errorf("unknown stream kind %q", stream)
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		return Secured{}, fmt.Errorf("TLS handshake: %w", err)
	}
	st := tc.ConnectionState()
	kind := ""
	switch st.NegotiatedProtocol {
	case transferALPN:
		kind = StreamTransfer
	case chatALPN, "":
	default:
		return Secured{}, fmt.Errorf("unknown protocol %q", st.NegotiatedProtocol)
	}
	if dialed && kind != stream {
		return Secured{}, fmt.Errorf("asked for a %q stream, the peer agreed to %q", stream, kind)
	}
	// VerifyPeerCertificate has checked the certificate (the signature
	// check is the costly part of a handshake): only the id is left.
	pub, ok := st.PeerCertificates[0].PublicKey.(ed25519.PublicKey)
	if !ok {
		return Secured{}, fmt.Errorf("peer certificate key is %T, want Ed25519", st.PeerCertificates[0].PublicKey)
	}
	fromDialer, err1 := st.ExportKeyingMaterial(labelFromDialer, nil, transport.KeySize)
	fromAcceptor, err2 := st.ExportKeyingMaterial(labelFromAcceptor, nil, transport.KeySize)
	if err := errors.Join(err1, err2); err != nil {
		return Secured{}, fmt.Errorf("derive datagram keys: %w", err)
	}
	send, recv := fromAcceptor, fromDialer
	if dialed {
		send, recv = fromDialer, fromAcceptor
	}
	ch, err := transport.NewChannel(send, recv)
	if err != nil {
		return Secured{}, err
	}
	return Secured{
		Conn: tc, ID: identity.IDOf(pub), Fingerprint: identity.Fingerprint(pub), Key: pub, Datagrams: ch,
		Options: transport.ConnOptions{ReadBuffer: tlsReadBuffer},
		Stream:  kind,
	}, nil
}
