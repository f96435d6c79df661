package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Packet is one received datagram. Buf is valid only until the handler it
// is given to returns: the next datagram is read into the same buffer.
type Packet struct {
	Buf  []byte
	From netip.AddrPort
	Time time.Time
}

// Transport holds a node's TCP listener and UDP socket, both bound to all
// interfaces, IPv4 and IPv6.
type Transport struct {
	ln      *net.TCPListener
	pc      *net.UDPConn
	streams chan net.Conn

	closed   atomic.Bool
	overruns atomic.Uint64
	wg       sync.WaitGroup
}

// Listen binds TCP and UDP. With port 0 the OS chooses the TCP port and UDP
// takes the same number when it is free. Nothing runs until Serve.
func Listen(port int) (t *Transport, err error) {
	if port < 0 || port > 65535 {
		return nil, fmt.Errorf("port %d out of range 0-65535", port)
	}
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{Port: port})
	if err != nil {
		return nil, fmt.Errorf("listen on TCP port %d: %w", port, err)
	}
	defer func() {
		if err != nil {
			ln.Close()
		}
	}()
	tcpPort := ln.Addr().(*net.TCPAddr).Port
	pc, err := net.ListenUDP("udp", &net.UDPAddr{Port: tcpPort})
	if err != nil && port == 0 {
		pc, err = net.ListenUDP("udp", &net.UDPAddr{})
	}
	if err != nil {
		return nil, fmt.Errorf("listen on UDP port %d: %w", tcpPort, err)
	}
	// A larger receive buffer absorbs bursts (and junk floods) without
	// dropping the datagrams that matter.
	_ = pc.SetReadBuffer(1 << 20)
	enableDropCount(pc)
	return &Transport{
		ln:      ln,
		pc:      pc,
		streams: make(chan net.Conn),
	}, nil
}

// TCPPort is the bound TCP port.
func (t *Transport) TCPPort() int { return t.ln.Addr().(*net.TCPAddr).Port }

// UDPPort is the bound UDP port.
func (t *Transport) UDPPort() int { return t.pc.LocalAddr().(*net.UDPAddr).Port }

// Streams delivers accepted connections; the receiver owns them.
func (t *Transport) Streams() <-chan net.Conn { return t.streams }

// Serve runs the accept and receive loops until ctx is done or Close is
// called, and returns after both have stopped. onPacket is called for
// each datagram, on the receive loop: it must not block (a hand-off to
// another goroutine would cost a good part of a round trip). While it
// runs, datagrams wait in the socket buffer; beyond that the kernel drops
// them (UDP is best effort) and Overruns counts them.
func (t *Transport) Serve(ctx context.Context, onPacket func(Packet)) {
	t.wg.Add(2)
	go t.acceptLoop(ctx)
	go t.readLoop(ctx, onPacket)
	stop := context.AfterFunc(ctx, func() { t.Close() })
	defer stop()
	t.wg.Wait()
}

func (t *Transport) acceptLoop(ctx context.Context) {
	defer t.wg.Done()
	var delay time.Duration
	for {
		c, err := t.ln.Accept()
		if err != nil {
			if t.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			select {
			case <-time.After(delay):
				continue
			case <-ctx.Done():
				return
			}
		}
		delay = 0
		select {
		case t.streams <- c:
		case <-ctx.Done():
			c.Close()
			return
		}
	}
}

// Overruns is the number of datagrams the kernel dropped because the
// socket buffer was full (where the system reports it).
func (t *Transport) Overruns() uint64 { return t.overruns.Load() }

func (t *Transport) readFrom(buf, oob []byte) (int, []byte, netip.AddrPort, error) {
	n, oobn, _, from, err := t.pc.ReadMsgUDPAddrPort(buf, oob)
	return n, oob[:oobn], from, err
}

func (t *Transport) readLoop(ctx context.Context, onPacket func(Packet)) {
	defer t.wg.Done()
	// One buffer for every datagram: handlers decode (copying what they
	// keep) before the next read.
	buf, oobBuf := make([]byte, MaxDatagram+1), make([]byte, 64)
	for {
		n, oob, from, err := t.readFrom(buf, oobBuf)
		now := time.Now()
		t.countDrops(oob)
		if err != nil {
			if t.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// ICMP errors surface here on some systems; they say nothing
			// about this socket, so keep reading.
			continue
		}
		onPacket(Packet{Buf: buf[:n], From: from, Time: now})
	}
}

// WriteTo sends one datagram.
func (t *Transport) WriteTo(b []byte, to netip.AddrPort) error {
	if _, err := t.pc.WriteToUDPAddrPort(b, to); err != nil {
		return fmt.Errorf("send datagram to %v: %w", to, err)
	}
	return nil
}

// Dial opens a TCP connection to addr ("host:port") within timeout.
func (t *Transport) Dial(ctx context.Context, addr string, timeout time.Duration) (c net.Conn, err error) {
	d := net.Dialer{Timeout: timeout, KeepAlive: 15 * time.Second}
	c, err = d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	return c, nil
}

// Close closes both sockets; Serve then returns. Safe to call more than once.
func (t *Transport) Close() error {
	if t.closed.Swap(true) {
		return nil
	}
	err1 := t.ln.Close()
	err2 := t.pc.Close()
	return errors.Join(err1, err2)
}
