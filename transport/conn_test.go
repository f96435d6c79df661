package transport

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// connPair is two Conns over loopback TCP, closed at the end of the test.
func connPair(t *testing.T) (*Conn, *Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	d, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var a net.Conn
	select {
	case a = <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted")
	}
	if a == nil {
		t.Fatal("accept failed")
	}
	ca, cb := NewConn(d, ConnOptions{}), NewConn(a, ConnOptions{})
	t.Cleanup(func() { ca.Close(); cb.Close() })
	return ca, cb
}

// TestConnLetsLargeBuffersGo: a large frame (a peer list, a long message)
// grows a connection's buffers; once the connection is quiet they are let
// go, so that the many idle connections of a large group stay small.
func TestConnLetsLargeBuffersGo(t *testing.T) {
	tests := []struct {
		name string
		big  int // bytes of text in the large frame
	}{
		{"just over the kept size", keepBuffer + 1},
		{"largest message", MaxText},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := connPair(t)
			small := Chat{MsgID: 2, Text: "hi"}
			if err := a.Send(Chat{MsgID: 1, Text: strings.Repeat("x", tt.big)}); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(5 * time.Second)
			if _, p, err := b.Read(deadline); err != nil || len(p) <= tt.big {
				t.Fatalf("large frame: %d bytes, %v", len(p), err)
			}
			if cap(b.buf) <= tt.big {
				t.Fatalf("read buffer of %d bytes holds a frame of more than %d", cap(b.buf), tt.big)
			}
			// Nothing more was waiting: the next read lets it go.
			if err := a.Send(small); err != nil {
				t.Fatal(err)
			}
			if _, _, err := b.Read(deadline); err != nil {
				t.Fatal(err)
			}
			if cap(b.buf) > keepBuffer {
				t.Errorf("read buffer of %d bytes kept after the large frame (keep at most %d)", cap(b.buf), keepBuffer)
			}

			writeBufs := func() int {
				a.mu.Lock()
				defer a.mu.Unlock()
				return max(cap(a.pend), cap(a.spare))
			}
			// Wait for the writer to finish: Trim does not touch a
			// connection that is writing.
			for quiet := false; !quiet; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("writes still under way")
				}
				a.mu.Lock()
				quiet = !a.writing && len(a.pend) == 0
				a.mu.Unlock()
			}
			sent := writeBufs()
			if sent <= tt.big {
				t.Fatalf("write buffers of %d bytes sent a frame of more than %d", sent, tt.big)
			}
			a.Trim(time.Now()) // too soon: kept for the next burst
			if kept := writeBufs(); kept != sent {
				t.Errorf("Trim right after a write let buffers go (%d bytes, had %d)", kept, sent)
			}
			a.Trim(time.Now().Add(trimAfter))
			if left := writeBufs(); left > keepBuffer {
				t.Errorf("Trim after %v of quiet kept %d bytes of write buffer", trimAfter, left)
			}
			// Still usable.
			if err := a.Send(small); err != nil {
				t.Fatal(err)
			}
			if _, p, err := b.Read(deadline); err != nil || !strings.Contains(string(p), "hi") {
				t.Fatalf("after Trim: %q, %v", p, err)
			}
		})
	}
}

// pipePair is two Conns over net.Pipe: a write blocks until the other
// side reads it, so a peer that does not read is one that does not call
// Read.
func pipePair(t *testing.T, opts ConnOptions) (*Conn, *Conn, *countingConn) {
	t.Helper()
	x, y := net.Pipe()
	cx := &countingConn{Conn: x}
	a, b := NewConn(cx, opts), NewConn(y, ConnOptions{})
	t.Cleanup(func() {
		a.Close()
		b.Close()
		a.Wait()
		b.Wait()
	})
	return a, b, cx
}

// countingConn counts the Writes made on it.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// within runs f and fails the test if it has not returned after d: for
// calls that must not wait on the peer.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s still blocked after %v", what, d)
	}
}

// readFrames reads n frames from c and returns their chat ids.
func readFrames(t *testing.T, c *Conn, n int) []uint64 {
	t.Helper()
	var ids []uint64
	deadline := time.Now().Add(10 * time.Second)
	for len(ids) < n {
		typ, p, err := c.Read(deadline)
		if err != nil {
			t.Fatalf("after %d frames: %v", len(ids), err)
		}
		if typ != TypeChat {
			continue
		}
		m, err := DecodeChat(p)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.MsgID)
	}
	return ids
}

func writing(c *Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writing
}

// TestSendDoesNotWaitForThePeer: Send only queues; a writer goroutine
// does the I/O, writes a burst in a few large writes, and exits once the
// queue is empty.
func TestSendDoesNotWaitForThePeer(t *testing.T) {
	a, b, counted := pipePair(t, ConnOptions{})
	const n = 1000
	within(t, 5*time.Second, "1000 Sends to a peer that is not reading", func() {
		for i := 1; i <= n; i++ {
			if err := a.Send(Chat{MsgID: uint64(i), Text: "hello"}); err != nil {
				t.Errorf("Send %d: %v", i, err)
				return
			}
		}
	})
	if !writing(a) {
		t.Fatal("frames queued but no writer running")
	}
	ids := readFrames(t, b, n)
	for i, id := range ids {
		if id != uint64(i+1) {
			t.Fatalf("frame %d has id %d: order lost", i, id)
		}
	}
	within(t, 5*time.Second, "the writer's exit after the queue emptied", a.Wait)
	if writing(a) {
		t.Error("writer still marked running with nothing queued")
	}
	if w := counted.writes.Load(); w > 20 {
		t.Errorf("%d frames took %d writes: a burst should go out in a few", n, w)
	}
	// An idle connection starts a new writer for the next frame.
	if err := a.Send(Chat{MsgID: n + 1, Text: "again"}); err != nil {
		t.Fatal(err)
	}
	if got := readFrames(t, b, 1); got[0] != n+1 {
		t.Fatalf("got id %d after idle, want %d", got[0], n+1)
	}
}

// TestQueueBound: a peer that does not read cannot make the queue grow
// past its limit; small control frames have a reserve of their own; once
// the queue drains to half, OnSpace is called and Send works again.
func TestQueueBound(t *testing.T) {
	const limit = 8 << 10
	a, b, _ := pipePair(t, ConnOptions{QueueLimit: limit})
	spaced := make(chan struct{}, 10)
	a.OnSpace(func() { spaced <- struct{}{} })
	text := strings.Repeat("x", 1000)
	sent := 0
	var err error
	within(t, 5*time.Second, "Sends until the queue is full", func() {
		for i := 1; i < 1000; i++ {
			if err = a.Send(Chat{MsgID: uint64(i), Text: text}); err != nil {
				return
			}
			sent++
		}
	})
	if !errors.Is(err, ErrQueueFull) {
		t.Fatalf("after %d frames of 1 KB: %v, want ErrQueueFull", sent, err)
	}
	if q := a.Queued(); q > limit {
		t.Errorf("%d bytes queued, limit %d", q, limit)
	}
	// Acknowledgements and heartbeats still fit, within their reserve.
	acks := 0
	for ; acks < 100000; acks++ {
		if err := a.Send(Ack{Upto: uint64(acks)}); err != nil {
			if !errors.Is(err, ErrQueueFull) {
				t.Fatal(err)
			}
			break
		}
	}
	if acks == 0 {
		t.Error("no control frame fits in a queue full of chat")
	}
	if q := a.Queued(); q > limit+controlReserve {
		t.Errorf("%d bytes queued, limit %d plus reserve %d", q, limit, controlReserve)
	}
	select {
	case <-spaced:
		t.Fatal("OnSpace called before the peer read anything")
	default:
	}
	// The peer reads: space comes back, and OnSpace says so.
	go func() {
		for {
			if _, _, err := b.Read(time.Now().Add(10 * time.Second)); err != nil {
				return
			}
		}
	}()
	select {
	case <-spaced:
	case <-time.After(10 * time.Second):
		t.Fatal("OnSpace not called after the peer read the queue")
	}
	if err := a.Send(Chat{MsgID: 5000, Text: text}); err != nil {
		t.Fatalf("Send after OnSpace: %v", err)
	}
}

// TestStall: a peer that accepts nothing for the stall timeout while data
// waits gets its connection closed, with an error that says so.
func TestStall(t *testing.T) {
	a, _, _ := pipePair(t, ConnOptions{StallTimeout: 200 * time.Millisecond})
	if err := a.Send(Chat{MsgID: 1, Text: "anyone?"}); err != nil {
		t.Fatal(err)
	}
	within(t, 10*time.Second, "the writer of a stalled connection", a.Wait)
	if err := a.Err(); !errors.Is(err, ErrStalled) {
		t.Fatalf("Err() = %v, want ErrStalled", err)
	}
	if err := a.Send(Chat{MsgID: 2, Text: "more"}); !errors.Is(err, ErrStalled) {
		t.Errorf("Send on a stalled connection: %v, want the stall error", err)
	}
	// The stream is closed: the owner's Read ends.
	if _, _, err := a.Read(time.Now().Add(5 * time.Second)); err == nil {
		t.Error("Read on a stalled connection succeeded")
	}
}

// TestReply: the owner writes a reply itself when nothing else is
// queued, and queues it behind a busy writer without waiting.
func TestReply(t *testing.T) {
	a, b, counted := pipePair(t, ConnOptions{})
	got := make(chan []uint64, 1)
	go func() { got <- readFrames(t, b, 1) }()
	if err := a.Reply(Chat{MsgID: 1, Text: "inline"}); err != nil {
		t.Fatal(err)
	}
	// net.Pipe: the write returned, so the peer has read it already,
	// and no writer goroutine was involved.
	select {
	case ids := <-got:
		if ids[0] != 1 {
			t.Fatalf("got %v", ids)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reply not read")
	}
	if writing(a) {
		t.Error("a writer runs after an inline reply")
	}
	if w := counted.writes.Load(); w != 1 {
		t.Errorf("inline reply took %d writes, want 1", w)
	}
	// A writer busy with a frame the peer does not read: the reply
	// queues behind it and Reply returns at once.
	if err := a.Send(Chat{MsgID: 2, Text: "queued"}); err != nil {
		t.Fatal(err)
	}
	within(t, 5*time.Second, "Reply behind a blocked writer", func() {
		if err := a.Reply(Chat{MsgID: 3, Text: "reply"}); err != nil {
			t.Error(err)
		}
	})
	if ids := readFrames(t, b, 2); ids[0] != 2 || ids[1] != 3 {
		t.Fatalf("order %v, want [2 3]", ids)
	}
}

// TestShutdown writes what is queued and waits for the peer to hang up;
// with a peer that does not read, it returns when its context ends.
func TestShutdown(t *testing.T) {
	t.Run("flushes then half-closes", func(t *testing.T) {
		a, b := connPair(t)
		for i := 1; i <= 100; i++ {
			if err := a.Send(Chat{MsgID: uint64(i), Text: "bye soon"}); err != nil {
				t.Fatal(err)
			}
		}
		go func() {
			// The peer reads everything, sees the end, and closes.
			for {
				if _, _, err := b.Read(time.Now().Add(10 * time.Second)); err != nil {
					b.Close()
					return
				}
			}
		}()
		// a's reader: sees b close, then closes a (as a node's does).
		go func() {
			for {
				if _, _, err := a.Read(time.Time{}); err != nil {
					a.Close()
					return
				}
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		if err := a.Send(Chat{MsgID: 101, Text: "late"}); err == nil {
			t.Error("Send after Shutdown succeeded")
		}
	})
	t.Run("peer not reading", func(t *testing.T) {
		a, _, _ := pipePair(t, ConnOptions{})
		if err := a.Send(Chat{MsgID: 1, Text: "never read"}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		within(t, 5*time.Second, "Shutdown with a peer that does not read", func() {
			if err := a.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Shutdown: %v, want the context's deadline", err)
			}
		})
		within(t, 5*time.Second, "the writer after Shutdown gave up", a.Wait)
	})
}

// TestCloseEndsABlockedWriter: Close does not write, so it returns at
// once even while the writer is blocked, and the writer then exits.
func TestCloseEndsABlockedWriter(t *testing.T) {
	a, _, _ := pipePair(t, ConnOptions{})
	if err := a.Send(Chat{MsgID: 1, Text: "stuck"}); err != nil {
		t.Fatal(err)
	}
	within(t, 5*time.Second, "Close", func() { a.Close() })
	within(t, 5*time.Second, "the writer after Close", a.Wait)
	if err := a.Send(Chat{MsgID: 2, Text: "x"}); err == nil {
		t.Error("Send after Close succeeded")
	}
}
