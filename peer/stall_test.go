package peer

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"lanchat/transport"
)

// notReading completes the handshake with n, then only writes: a
// heartbeat frame every 100 ms, so that it looks alive, and never reads.
func notReading(t *testing.T, n *testNode) string {
	t.Helper()
	c, id := handMadeClient(t, n)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				c.Send(transport.Beat{})
			case <-stop:
				return
			}
		}
	}()
	t.Cleanup(func() { close(stop); wg.Wait() })
	return id
}

// collect records a node's events from now on, for checks at the end.
type collect struct {
	mu     sync.Mutex
	events []Event
}

func (c *collect) add(e Event) {
	c.mu.Lock()
	c.events = append(c.events, e)
	c.mu.Unlock()
}

func (c *collect) all() []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Event(nil), c.events...)
}

// TestPeerNotReading: a peer that completed the handshake and then never
// reads. Sending never waits for it, what is queued for it stays within
// the bound, the sender is told once, a healthy peer gets every message
// and is never shown unreachable, and the connection is closed with a
// reason that says what happened.
func TestPeerNotReading(t *testing.T) {
	const limit = 256 << 10
	a := startNodeWith(t, Config{Name: "alice", QueueLimit: limit, StallTimeout: 3 * time.Second})
	b := startNode(t, "bob")
	connected(t, a, b)
	mute := notReading(t, a)
	next(t, a, func(e PeerUp) bool { return e.Peer.ID == mute })
	var seen collect
	stopWatch := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case e := <-a.events:
				seen.add(e)
			case <-stopWatch:
				return
			}
		}
	}()

	// More than the kernel's socket buffers hold (about 10 MB on
	// loopback), so that the writes to the mute peer stall; and a group
	// message now and then, which bob must get, in order.
	bulk := strings.Repeat("x", 16000)
	const count, every = 900, 30
	done := make(chan error, 1)
	go func() {
		for i := range count {
			if _, err := a.Tell(mute[:8], bulk); err != nil {
				done <- fmt.Errorf("direct message %d: %w", i, err)
				return
			}
			if i%every == 0 {
				if _, err := a.Say(fmt.Sprintf("group %03d", i/every)); err != nil {
					done <- err
					return
				}
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(wait):
		t.Fatalf("sending blocked on a peer that does not read")
	}
	for i := 0; i < count/every; i++ {
		m := next[Chat](t, b, nil)
		if want := fmt.Sprintf("group %03d", i); m.Text != want {
			t.Fatalf("bob's message %d is %q, want %q", i, m.Text, want)
		}
	}
	maxQueued := 0
	deadline := time.Now().Add(3 * wait)
	for {
		var down *PeerDown
		for _, e := range seen.all() {
			if d, ok := e.(PeerDown); ok && d.Peer.ID == mute {
				down = &d
			}
		}
		if down != nil {
			if down.Reason != transport.ErrStalled.Error() {
				t.Errorf("peer_down reason %q, want %q", down.Reason, transport.ErrStalled.Error())
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the peer that does not read was never dropped; events: %v", seen.all())
		}
		for _, p := range a.Peers() {
			if p.ID == mute {
				maxQueued = max(maxQueued, p.Queued)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stopWatch)
	<-watched
	if maxQueued > limit+64<<10 {
		t.Errorf("%d bytes queued for a peer that does not read, limit %d", maxQueued, limit)
	}
	notices := 0
	for _, e := range seen.all() {
		switch e := e.(type) {
		case Notice:
			if !strings.Contains(e.Text, "is not reading") {
				continue
			}
			if !strings.Contains(e.Text, ShortID(mute)) {
				t.Errorf("notice about the wrong peer: %q", e.Text)
			}
			notices++
			if !strings.Contains(e.Text, "messages") {
				t.Errorf("notice does not say how much waits: %q", e.Text)
			}
		case PeerState:
			if e.Peer.ID == b.ID() {
				t.Errorf("healthy bob shown %v", e.State)
			}
		}
	}
	if notices != 1 {
		t.Errorf("told %d times that the peer is not reading, want once", notices)
	}
	t.Logf("most queued for the mute peer: %d bytes (limit %d)", maxQueued, limit)
}

// TestLeaveWithPeerNotReading: leaving does not wait on a peer that does
// not read for more than its bound.
func TestLeaveWithPeerNotReading(t *testing.T) {
	a := startNode(t, "alice")
	mute := notReading(t, a)
	next(t, a, func(e PeerUp) bool { return e.Peer.ID == mute })
	// Enough to fill the socket buffers and queue some.
	text := strings.Repeat("y", 16000)
	for range 400 {
		if _, err := a.Say(text); err != nil {
			break
		}
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a.Leave(ctx, "quit")
	if took := time.Since(start); took > leaveTimeout+3*time.Second {
		t.Errorf("Leave took %v with a peer not reading; its bound is %v", took, leaveTimeout)
	}
}
