package bench

import (
	"context"
	"fmt"
	"net"
	"time"

	"lanchat/bench/baseline"
	"lanchat/peer"
	"lanchat/transport"
)

// plainSecurer is what the bench measures security against: no TLS and
// no sealing, so the hello's claim of an id is all there is. The product
// never uses it; it is here to show what TLS and sealing cost.
type plainSecurer struct{}

func (plainSecurer) Secure(_ context.Context, nc net.Conn, _ bool, stream string) (peer.Secured, error) {
	if stream != "" {
		return peer.Secured{}, fmt.Errorf("the plaintext bench securer opens no %s streams", stream)
	}
	return peer.Secured{
		Conn:      nc,
		Datagrams: transport.NewChannelAEAD(nullAEAD{}, nullAEAD{}),
		// Nothing buffers below a plain stream: a larger read buffer
		// saves a system call per small frame.
		Options: transport.ConnOptions{ReadBuffer: transport.DefaultReadBuffer},
	}, nil
}

// nullAEAD is the identity "cipher": datagrams go as they are, and the
// channel's counters and replay window still run.
type nullAEAD struct{}

func (nullAEAD) NonceSize() int { return 12 }
func (nullAEAD) Overhead() int  { return 0 }
func (nullAEAD) Seal(dst, _, plaintext, _ []byte) []byte {
	return append(dst, plaintext...)
}
func (nullAEAD) Open(dst, _, ciphertext, _ []byte) ([]byte, error) {
	return append(dst, ciphertext...), nil
}

// hostNetwork is a transport whose outgoing connections, like its
// listening sockets, belong to host i of h (a network namespace):
// sockets stay in the namespace they were opened in.
type hostNetwork struct {
	*transport.Transport
	h baseline.Hosts
	i int
}

// listenOn binds a transport on host i of h.
func listenOn(h baseline.Hosts, i int) (hostNetwork, error) {
	var tr *transport.Transport
	err := h.On(i, func() (err error) {
		tr, err = transport.Listen(0)
		return err
	})
	return hostNetwork{Transport: tr, h: h, i: i}, err
}

func (t hostNetwork) Dial(ctx context.Context, addr string, timeout time.Duration) (c net.Conn, err error) {
	err = t.h.On(t.i, func() error {
		c, err = t.Transport.Dial(ctx, addr, timeout)
		return err
	})
	return c, err
}
