// Package baseline measures plain Go sockets doing what lanchat does, on
// loopback or between two hosts: the raw figures lanchat's are compared
// with, shared by the bench command and the go test benchmarks.
package baseline

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"
)

// Hosts says where the two ends of a measurement run. On runs f so that
// the sockets it opens belong to host 0 (the server) or host 1 (the
// client); Addrs are the hosts' addresses.
type Hosts struct {
	On    func(host int, f func() error) error
	Addrs [2]string
}

// Loopback puts both ends on this host's loopback.
var Loopback = Hosts{On: func(_ int, f func() error) error { return f() }, Addrs: [2]string{"127.0.0.1", "127.0.0.1"}}

// listenTCP opens the server's listener.
func (h Hosts) listenTCP() (ln net.Listener, err error) {
	err = h.On(0, func() error {
		ln, err = net.Listen("tcp", net.JoinHostPort(h.Addrs[0], "0"))
		return err
	})
	return ln, err
}

// dialTCP connects the client to addr.
func (h Hosts) dialTCP(addr string) (c net.Conn, err error) {
	err = h.On(1, func() error {
		c, err = net.DialTimeout("tcp", addr, 5*time.Second)
		return err
	})
	return c, err
}

// TCPRoundTrips times n round trips of a 64-byte message over TCP: the
// floor for /echo -tcp.
func TCPRoundTrips(h Hosts, n int) ([]time.Duration, error) {
	ln, err := h.listenTCP()
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		// A plain read and write per message. (io.Copy would splice
		// through a pipe on Linux, which costs more than this does, and
		// would flatter lanchat.)
		buf := make([]byte, 64)
		for {
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	c, err := h.dialTCP(ln.Addr().String())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	msg, buf := make([]byte, 64), make([]byte, 64)
	out := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		start := time.Now()
		if _, err := c.Write(msg); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}

// UDPRoundTrips times n round trips of a 64-byte datagram.
func UDPRoundTrips(h Hosts, n int) ([]time.Duration, error) {
	var srv, c *net.UDPConn
	err := h.On(0, func() (err error) {
		srv, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(h.Addrs[0])})
		return err
	})
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			k, from, err := srv.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			srv.WriteToUDPAddrPort(buf[:k], from)
		}
	}()
	err = h.On(1, func() (err error) {
		c, err = net.DialUDP("udp", nil, srv.LocalAddr().(*net.UDPAddr))
		return err
	})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	msg, buf := make([]byte, 64), make([]byte, 2048)
	out := make([]time.Duration, 0, n)
	// One deadline for the run: moving it for every datagram would cost
	// the raw client a timer update that lanchat does not pay.
	c.SetReadDeadline(time.Now().Add(time.Minute))
	for i := 0; i < n; i++ {
		start := time.Now()
		c.Write(msg)
		if _, err := c.Read(buf); err != nil {
			return nil, fmt.Errorf("raw udp round trip: %w", err)
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}

// Framed sends n length-prefixed messages of size bytes one way and
// returns how long until the receiver has read them all; batched writes
// them through a buffer, otherwise each is its own Write.
func Framed(h Hosts, n, size int, batched bool) (time.Duration, error) {
	ln, err := h.listenTCP()
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Minute))
		r := bufio.NewReader(c)
		buf := make([]byte, size)
		for i := 0; i < n; i++ {
			var hdr [4]byte
			if _, err := io.ReadFull(r, hdr[:]); err != nil {
				done <- err
				return
			}
			if _, err := io.ReadFull(r, buf[:binary.BigEndian.Uint32(hdr[:])]); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	c, err := h.dialTCP(ln.Addr().String())
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	msg := binary.BigEndian.AppendUint32(nil, uint32(size))
	msg = append(msg, make([]byte, size)...)
	start := time.Now()
	var w io.Writer = c
	bw := bufio.NewWriterSize(c, 64<<10)
	if batched {
		w = bw
	}
	for i := 0; i < n; i++ {
		if _, err := w.Write(msg); err != nil {
			return 0, err
		}
	}
	if err := bw.Flush(); err != nil {
		return 0, err
	}
	if err := <-done; err != nil {
		return 0, err
	}
	return time.Since(start), nil
}
