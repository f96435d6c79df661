package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"lanchat/peer"
)

// echoRoundTrips makes n /echo calls of 64 bytes from a to b and returns
// each round trip as /echo reports it (from before the request is
// written until its reply has been read and decrypted: what a raw client
// times from Write to Read), and as the calling goroutine sees it (that,
// plus looking the peer up and the hand-off of the reply from the
// connection's reader).
func echoRoundTrips(a *node, b *node, via string, n int) (reported, caller []time.Duration, err error) {
	ctx := context.Background()
	payload := make([]byte, 64)
	for i := 0; i < n; i++ {
		start := time.Now()
		r, err := a.Echo(ctx, b.ID(), via, payload)
		if err != nil {
			return nil, nil, fmt.Errorf("echo over %s: %w", via, err)
		}
		caller = append(caller, time.Since(start))
		if !r.OK {
			return nil, nil, fmt.Errorf("echo over %s: payload changed", via)
		}
		reported = append(reported, r.RTT)
	}
	return reported, caller, nil
}

// timeOffsets asks b for its clock n times; the nodes share one clock, so
// every offset is an error.
func timeOffsets(a, b *node, via string, n int) ([]time.Duration, error) {
	out := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		r, err := a.Time(context.Background(), b.ID(), via)
		if err != nil {
			return nil, err
		}
		out = append(out, r.Offset.Abs())
	}
	return out, nil
}

// chatLatency sends n chat messages from a, one at a time, and times each
// from Say to its arrival in b's event stream.
func chatLatency(a, b *node, n int, size int) ([]time.Duration, error) {
	arrived := make(chan time.Time, 1)
	b.on(func(e peer.Event, at time.Time) {
		if _, ok := e.(peer.Chat); ok {
			arrived <- at
		}
	})
	defer b.on(func(peer.Event, time.Time) {})
	text := fill(size)
	out := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		start := time.Now()
		if _, err := a.Say(text); err != nil {
			return nil, err
		}
		select {
		case at := <-arrived:
			out = append(out, at.Sub(start))
		case <-time.After(10 * time.Second):
			return nil, errors.New("chat message not delivered within 10s")
		}
	}
	return out, nil
}

func fill(size int) string {
	b := make([]byte, size)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return string(b)
}

// chatThroughput sends n messages from a to b as fast as lanchat takes
// them (waiting only when the outbox is full) and returns the time until
// b has them all.
func chatThroughput(a, b *node, n, size int) (time.Duration, error) {
	var mu sync.Mutex
	got := 0
	all := make(chan struct{})
	b.on(func(e peer.Event, _ time.Time) {
		if _, ok := e.(peer.Chat); ok {
			mu.Lock()
			got++
			if got == n {
				close(all)
			}
			mu.Unlock()
		}
	})
	defer b.on(func(peer.Event, time.Time) {})
	text := fill(size)
	start := time.Now()
	for i := 0; i < n; i++ {
		for {
			_, err := a.Say(text)
			if err == nil {
				break
			}
			if !errors.Is(err, peer.ErrOutboxFull) {
				return 0, err
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
	select {
	case <-all:
		return time.Since(start), nil
	case <-time.After(time.Minute):
		return 0, errors.New("chat messages not all delivered within a minute")
	}
}

// fanOut sends rounds group messages from the first node and times the
// arrival at every other.
func fanOut(ns []*node, rounds int) ([]time.Duration, error) {
	var mu sync.Mutex
	var start time.Time
	var lat []time.Duration
	arrived := make(chan struct{}, len(ns)*rounds)
	for _, n := range ns[1:] {
		n.on(func(e peer.Event, at time.Time) {
			if c, ok := e.(peer.Chat); ok && strings.HasPrefix(c.Text, "fan-out ") {
				mu.Lock()
				lat = append(lat, at.Sub(start))
				mu.Unlock()
				arrived <- struct{}{}
			}
		})
	}
	defer func() {
		for _, n := range ns[1:] {
			n.on(func(peer.Event, time.Time) {})
		}
	}()
	result := func() []time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return append([]time.Duration(nil), lat...)
	}
	for r := 0; r < rounds; r++ {
		mu.Lock()
		start = time.Now()
		mu.Unlock()
		if _, err := ns[0].Say(fmt.Sprintf("fan-out %d", r)); err != nil {
			return nil, err
		}
		for i := 1; i < len(ns); i++ {
			select {
			case <-arrived:
			case <-time.After(10 * time.Second):
				return nil, errors.New("group message not delivered to every node within 10s")
			}
		}
	}
	return result(), nil
}
