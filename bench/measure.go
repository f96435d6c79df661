package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"lanchat/bench/baseline"
	"lanchat/peer"
	"lanchat/store"
)

// echoSeries runs /echo -n: n echoes of 64 bytes from a to b, back to
// back, each timed as /echo reports it: from before the request is
// written until its reply has been read and decrypted, what the raw
// client times from Write to Read.
func echoSeries(a, b *node, via string, n int) ([]time.Duration, error) {
	r, err := a.EchoSeries(context.Background(), b.ID(), via, make([]byte, 64), n, nil)
	switch {
	case err != nil:
		return nil, fmt.Errorf("echo series over %s: %w", via, err)
	case len(r.RTTs) != n:
		return nil, fmt.Errorf("echo series over %s: %d of %d echoes came back", via, len(r.RTTs), n)
	case r.Mismatched > 0:
		return nil, fmt.Errorf("echo series over %s: %d payloads changed", via, r.Mismatched)
	}
	return r.RTTs, nil
}

// echoRuns holds round trips by transport: raw sockets', /echo -n's, and
// /echo -n's without encryption.
type echoRuns struct {
	raw, series, plain map[string][]time.Duration
}

const (
	// echoRounds is how many turns interleavedEchoes takes.
	echoRounds = 25
	// echoWarmUp round trips start every turn and are not counted: the
	// first of a turn wakes threads that the turn before left asleep.
	echoWarmUp = 20
)

// interleavedEchoes measures n round trips each of raw sockets on h and
// of /echo -n from a to b (and between the plain pair, if any) over TCP
// and UDP, in turns of n/echoRounds. On a virtual machine a ping-pong
// runs either on one CPU or bounced between two, at rates that differ by
// half, and which one a run gets is chance that lasts for seconds; in
// turns, every figure gets the same mix. Each turn's first echoWarmUp
// round trips, raw and lanchat alike, are left out.
func interleavedEchoes(a, b *node, plain []*node, h baseline.Hosts, n int) (echoRuns, error) {
	r := echoRuns{raw: map[string][]time.Duration{}, series: map[string][]time.Duration{}, plain: map[string][]time.Duration{}}
	for turn := 0; turn < echoRounds; turn++ {
		k := n / echoRounds
		if turn == 0 {
			k += n % echoRounds
		}
		keep := func(into map[string][]time.Duration, via string, d []time.Duration, err error) error {
			if err != nil {
				return err
			}
			into[via] = append(into[via], d[echoWarmUp:]...)
			return nil
		}
		tcp, err := baseline.TCPRoundTrips(h, k+echoWarmUp)
		if err := keep(r.raw, peer.TCP, tcp, err); err != nil {
			return r, err
		}
		udp, err := baseline.UDPRoundTrips(h, k+echoWarmUp)
		if err := keep(r.raw, peer.UDP, udp, err); err != nil {
			return r, err
		}
		for _, via := range []string{peer.TCP, peer.UDP} {
			s, err := echoSeries(a, b, via, k+echoWarmUp)
			if err := keep(r.series, via, s, err); err != nil {
				return r, err
			}
			if plain != nil {
				s, err := echoSeries(plain[1], plain[0], via, k+echoWarmUp)
				if err := keep(r.plain, via, s, err); err != nil {
					return r, err
				}
			}
		}
	}
	return r, nil
}

// echoCalls makes n separate /echo calls and times each as the calling
// goroutine sees it: the round trip, plus looking the peer up and the
// hand-off of the reply from the connection's reader to the caller.
func echoCalls(a, b *node, via string, n int) ([]time.Duration, error) {
	ctx := context.Background()
	payload := make([]byte, 64)
	out := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		start := time.Now()
		r, err := a.Echo(ctx, b.ID(), via, payload)
		if err != nil {
			return nil, fmt.Errorf("echo over %s: %w", via, err)
		}
		out = append(out, time.Since(start))
		if !r.OK {
			return nil, fmt.Errorf("echo over %s: payload changed", via)
		}
	}
	return out, nil
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

// chatLatency sends n chat messages from a to the group, one at a time,
// and times each from Say to its arrival in b's event stream. A message
// refused for another peer (its outbox full) still counts if b gets it.
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
		sent, err := a.Say(text)
		if err != nil && !slices.ContainsFunc(sent.To, func(r peer.Ref) bool { return r.ID == b.ID() }) {
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
// them (waiting only when the outbox, in memory or on disk, is full) and
// returns the time until b has them all.
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
			if !errors.Is(err, peer.ErrOutboxFull) && !errors.Is(err, store.ErrFull) {
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

// throughputTurns: raw and lanchat throughput are measured in alternating
// turns, as the round trips are (see interleavedEchoes): the rate of a
// block measured on its own can change by tens of percent with the mode
// the machine happens to be in.
const throughputTurns = 5

// throughput holds the time each kind of stream took for its messages,
// summed over the turns.
type throughput struct {
	rawN, chatN                    int
	oneWrite, batched, chat, plain time.Duration
}

// throughputs measures, in turns, raw framed messages written one Write
// each and through a buffer, and chat from a to b, and over the plaintext
// pair when there is one.
func throughputs(a, b *node, plain []*node, h baseline.Hosts, o options) (throughput, error) {
	const rawPerTurn = 200000 / throughputTurns
	chatPerTurn := int(o.duration.Seconds()*100000) / throughputTurns
	tp := throughput{rawN: rawPerTurn * throughputTurns, chatN: chatPerTurn * throughputTurns}
	for turn := 0; turn < throughputTurns; turn++ {
		d, err := baseline.Framed(h, rawPerTurn, o.size, false)
		if err != nil {
			return tp, err
		}
		tp.oneWrite += d
		if d, err = baseline.Framed(h, rawPerTurn, o.size, true); err != nil {
			return tp, err
		}
		tp.batched += d
		if d, err = chatThroughput(a, b, chatPerTurn, o.size); err != nil {
			return tp, err
		}
		tp.chat += d
		if plain != nil {
			if d, err = chatThroughput(plain[1], plain[0], chatPerTurn, o.size); err != nil {
				return tp, err
			}
			tp.plain += d
		}
	}
	return tp, nil
}
