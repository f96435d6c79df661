package bench

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"lanchat/bench/baseline"
	"lanchat/peer"
)

// Micro-benchmarks: each lanchat benchmark has a raw-socket twin on the
// same loopback path; compare ns/op of the pair (benchstat).

var payload64 = make([]byte, 64)

// benchNodes starts two connected nodes on loopback, n0 and n1, with a
// working datagram channel; they stop when the benchmark ends.
func benchNodes(b *testing.B, insecure bool) (*node, *node) {
	ns, err := pair(baseline.Loopback, insecure)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stopAll(ns) })
	return ns[1], ns[0]
}

// BenchmarkEcho: /echo round trips with 64 bytes, with encryption (TLS,
// sealed datagrams) and without, to show what it costs.
func BenchmarkEcho(b *testing.B) {
	for _, via := range []string{peer.TCP, peer.UDP} {
		b.Run(via+"/encrypted", func(b *testing.B) { benchEcho(b, via, false) })
		b.Run(via+"/plaintext", func(b *testing.B) { benchEcho(b, via, true) })
	}
}

func benchEcho(b *testing.B, via string, insecure bool) {
	a, _ := benchNodes(b, insecure)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := a.Echo(ctx, "n0", via, payload64); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEchoSeries: one op is one echo of /echo -n, sent by the
// connection's reader as the previous reply comes in.
func BenchmarkEchoSeries(b *testing.B) {
	for _, via := range []string{peer.TCP, peer.UDP} {
		b.Run(via, func(b *testing.B) {
			a, _ := benchNodes(b, false)
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; {
				r, err := a.EchoSeries(context.Background(), "n0", via, payload64, min(b.N-done, peer.MaxSeries), nil)
				if err != nil {
					b.Fatal(err)
				}
				done += r.Sent
			}
		})
	}
}

func BenchmarkRawEchoTCP(b *testing.B) {
	if _, err := baseline.TCPRoundTrips(baseline.Loopback, b.N); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkRawEchoUDP(b *testing.B) {
	if _, err := baseline.UDPRoundTrips(baseline.Loopback, b.N); err != nil {
		b.Fatal(err)
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
	var got atomic.Int64
	c.on(func(e peer.Event, _ time.Time) {
		if _, ok := e.(peer.Chat); ok && got.Add(1) == int64(b.N) {
			close(done)
		}
	})
	for i := 0; i < b.N; i++ {
		// As fast as lanchat takes them: a full outbox (1000 waiting
		// for their acknowledgement) is waited out.
		for {
			_, err := a.Say(text)
			if err == nil {
				break
			}
			if !errors.Is(err, peer.ErrOutboxFull) {
				b.Fatal(err)
			}
			time.Sleep(50 * time.Microsecond)
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
func BenchmarkRawFramedWrite(b *testing.B) {
	b.SetBytes(64)
	if _, err := baseline.Framed(baseline.Loopback, b.N, 64, false); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkRawFramedBatched: the same messages written through a buffer.
func BenchmarkRawFramedBatched(b *testing.B) {
	b.SetBytes(64)
	if _, err := baseline.Framed(baseline.Loopback, b.N, 64, true); err != nil {
		b.Fatal(err)
	}
}
