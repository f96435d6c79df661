package peer

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"
)

// Each lanchat benchmark has a raw-socket twin on the same loopback path;
// compare ns/op of the pair (benchstat, or the README table).

var payload64 = make([]byte, 64)

// benchNodes starts two connected nodes; b's events are drained (or
// counted by the caller through n.events).
func benchNodes(b *testing.B, insecure bool) (*testNode, *testNode) {
	a, c := startNodeWith(b, "alice", insecure), startNodeWith(b, "bob", insecure)
	if _, err := a.Connect(context.Background(), c.addr(), ViaManual, ""); err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(wait)
	for len(a.Peers()) == 0 || len(c.Peers()) == 0 || c.Peers()[0].UDP != "ok" || a.Peers()[0].UDP != "ok" {
		if time.Now().After(deadline) {
			b.Fatal("nodes did not connect")
		}
		time.Sleep(time.Millisecond)
	}
	return a, c
}

// BenchmarkEcho: /echo round trips with 64 bytes, with encryption (TLS,
// sealed datagrams) and without, to show what it costs.
func BenchmarkEcho(b *testing.B) {
	for _, via := range []string{TCP, UDP} {
		b.Run(via+"/encrypted", func(b *testing.B) { benchEcho(b, via, false) })
		b.Run(via+"/plaintext", func(b *testing.B) { benchEcho(b, via, true) })
	}
}

func benchEcho(b *testing.B, via string, insecure bool) {
	a, _ := benchNodes(b, insecure)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := a.Echo(ctx, "bob", via, payload64); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawEchoTCP(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 64)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Write(payload64)
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawEchoUDP(b *testing.B) {
	srv, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := srv.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			srv.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	c, err := net.DialUDP("udp", nil, srv.LocalAddr().(*net.UDPAddr))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 2048)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Write(payload64)
		c.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := c.Read(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChatThroughput: one op is one 64-byte chat message delivered
// (decoded and handed to the receiver's event stream).
func BenchmarkChatThroughput(b *testing.B) {
	b.Run("encrypted", func(b *testing.B) { benchChat(b, false) })
	b.Run("plaintext", func(b *testing.B) { benchChat(b, true) })
}

func benchChat(b *testing.B, insecure bool) {
	a, c := benchNodes(b, insecure)
	text := "0123456789012345678901234567890123456789012345678901234567890123"
	b.SetBytes(64)
	b.ResetTimer()
	done := make(chan struct{})
	go func() {
		for got := 0; got < b.N; {
			if _, ok := (<-c.events).(Chat); ok {
				got++
			}
		}
		close(done)
	}()
	for i := 0; i < b.N; i++ {
		if _, err := a.Say(text); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(time.Minute):
		b.Fatal("messages not delivered")
	}
}

// BenchmarkRawFramedWrite: one Write per 64-byte length-prefixed message,
// read and split by the receiver.
func BenchmarkRawFramedWrite(b *testing.B) { rawFramed(b, false) }

// BenchmarkRawFramedBatched: the same messages written through a buffer.
func BenchmarkRawFramedBatched(b *testing.B) { rawFramed(b, true) }

func rawFramed(b *testing.B, batched bool) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	n := b.N
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		buf := make([]byte, 128)
		for i := 0; i < n; i++ {
			if _, err := io.ReadFull(r, buf[:4]); err != nil {
				return
			}
			l := binary.BigEndian.Uint32(buf[:4])
			if _, err := io.ReadFull(r, buf[:l]); err != nil {
				return
			}
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	msg := binary.BigEndian.AppendUint32(nil, 64)
	msg = append(msg, payload64...)
	var w io.Writer = c
	bw := bufio.NewWriterSize(c, 64<<10)
	if batched {
		w = bw
	}
	b.SetBytes(64)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w.Write(msg)
	}
	bw.Flush()
	<-done
}
