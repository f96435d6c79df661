package peer

import (
	"context"
	"errors"
	"testing"
	"time"

	"lanchat/bench/baseline"
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

// BenchmarkEchoSeries: one op is one echo of /echo -n, sent by the
// connection's reader as the previous reply comes in.
func BenchmarkEchoSeries(b *testing.B) {
	for _, via := range []string{TCP, UDP} {
		b.Run(via, func(b *testing.B) {
			a, _ := benchNodes(b, false)
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; {
				r, err := a.EchoSeries(context.Background(), "bob", via, payload64, min(b.N-done, MaxSeries), nil)
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
	go func() {
		for got := 0; got < b.N; {
			if _, ok := (<-c.events).(Chat); ok {
				got++
			}
		}
		close(done)
	}()
	// The sender's events (a delivery report per message) are read too:
	// a node whose events nobody reads stops.
	go func() {
		for {
			select {
			case <-a.events:
			case <-done:
				return
			}
		}
	}()
	for i := 0; i < b.N; i++ {
		// As fast as lanchat takes them: a full outbox (1000 waiting
		// for their acknowledgement) is waited out.
		for {
			_, err := a.Say(text)
			if err == nil {
				break
			}
			if !errors.Is(err, ErrOutboxFull) {
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
