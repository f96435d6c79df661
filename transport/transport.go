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

// Packet is one received datagram. Buf is owned by the receiver.
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
	packets chan Packet

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
	return &Transport{
		ln:      ln,
		pc:      pc,
		streams: make(chan net.Conn),
		packets: make(chan Packet, 256),
	}, nil
}

// TCPPort is the bound TCP port.
func (t *Transport) TCPPort() int { return t.ln.Addr().(*net.TCPAddr).Port }

// UDPPort is the bound UDP port.
func (t *Transport) UDPPort() int { return t.pc.LocalAddr().(*net.UDPAddr).Port }

// Streams delivers accepted connections; the receiver owns them.
func (t *Transport) Streams() <-chan net.Conn { return t.streams }

// Packets delivers received datagrams. When the receiver falls behind,
// datagrams are dropped (UDP is best effort) and counted in Overruns.
func (t *Transport) Packets() <-chan Packet { return t.packets }

// Serve runs the accept and receive loops until ctx is done or Close is
// called, and returns after both have stopped.
func (t *Transport) Serve(ctx context.Context) {
	t.wg.Add(2)
	go t.acceptLoop(ctx)
	go t.readLoop(ctx)
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

// Overruns is the number of datagrams dropped because nobody read them in time.
func (t *Transport) Overruns() uint64 { return t.overruns.Load() }

func (t *Transport) readLoop(ctx context.Context) {
	defer t.wg.Done()
	buf := make([]byte, MaxDatagram+1)
	for {
		n, from, err := t.pc.ReadFromUDPAddrPort(buf)
		now := time.Now()
		if err != nil {
			if t.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// ICMP errors surface here on some systems; they say nothing
			// about this socket, so keep reading.
			continue
		}
		// A fresh buffer per packet: the receiver keeps it.
		p := Packet{Buf: append([]byte(nil), buf[:n]...), From: from, Time: now}
		select {
		case t.packets <- p:
		case <-ctx.Done():
			return
		default:
			t.overruns.Add(1)
		}
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
func Dial(ctx context.Context, addr string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout, KeepAlive: 15 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
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
