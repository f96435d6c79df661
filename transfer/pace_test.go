package transfer

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock drives a pacer: sleeping advances it.
type fakeClock struct {
	t     time.Time
	slept time.Duration
}

func (c *fakeClock) now() time.Time { return c.t }
func (c *fakeClock) sleep(_ context.Context, d time.Duration) bool {
	c.t = c.t.Add(d)
	c.slept += d
	return true
}

// TestPacer runs a pacer over chunks that the rest of the pipeline takes
// chunkTime each to move, with chat passing or not, and checks the rate
// it lets through.
func TestPacer(t *testing.T) {
	const chunk = 256 << 10
	const chunkTime = time.Millisecond // 262 MB/s unpaced
	unpaced := float64(chunk) / chunkTime.Seconds()
	cases := []struct {
		name    string
		share   float64
		chatAgo time.Duration // -1: never
		// want: rate over the second half, as a share of unpaced
		want      float64
		yielding  bool
		sleepsAny bool
	}{
		{"no chat", 0.5, -1, 1, false, false},
		{"chat long ago", 0.5, time.Minute, 1, false, false},
		{"chatting", 0.5, 0, 0.5, true, true},
		{"chatting, a quarter", 0.25, 0, 0.25, true, true},
		{"chatting, yield off", 1, 0, 1, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := &fakeClock{t: time.Unix(1_000_000, 0)}
			var chatAt atomic.Int64
			var yielding atomic.Bool
			p := &pacer{chatAt: &chatAt, yielding: &yielding, window: 10 * time.Second, share: tc.share,
				now: clk.now, sleep: clk.sleep}
			var start time.Time
			const chunks = 2000
			for i := range chunks {
				if tc.chatAgo >= 0 {
					chatAt.Store(monoNanos(clk.t.Add(-tc.chatAgo)))
				}
				if i == chunks/2 {
					start = clk.t
				}
				if !p.wait(context.Background(), chunk) {
					t.Fatal("wait ended")
				}
				clk.t = clk.t.Add(chunkTime)
			}
			got := float64(chunk*chunks/2) / clk.t.Sub(start).Seconds() / unpaced
			if math.Abs(got-tc.want) > 0.02 {
				t.Errorf("rate %.3f of unpaced, want %.2f", got, tc.want)
			}
			if yielding.Load() != tc.yielding {
				t.Errorf("yielding %v, want %v", yielding.Load(), tc.yielding)
			}
			if (clk.slept > 0) != tc.sleepsAny {
				t.Errorf("slept %v", clk.slept)
			}
		})
	}
}

// TestPacerConversationPauses: pacing starts with the chat and ends a
// window after its last line; no credit is kept for time spent elsewhere.
func TestPacerConversationPauses(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_000_000, 0)}
	var chatAt atomic.Int64
	var yielding atomic.Bool
	p := &pacer{chatAt: &chatAt, yielding: &yielding, window: time.Second, share: 0.5, now: clk.now, sleep: clk.sleep}
	step := func(n int, chat bool) {
		for range n {
			if chat {
				chatAt.Store(monoNanos(clk.t))
			}
			p.wait(context.Background(), 1000)
			clk.t = clk.t.Add(time.Millisecond)
		}
	}
	step(800, false) // 1 MB/s measured (after a first span not taken)
	if yielding.Load() || clk.slept != 0 {
		t.Fatalf("paced without chat: slept %v", clk.slept)
	}
	step(100, true)
	if !yielding.Load() || clk.slept < 90*time.Millisecond {
		t.Fatalf("chatting: yielding %v, slept %v (want about 100 ms)", yielding.Load(), clk.slept)
	}
	// The receiver stalls for a second: no burst after it.
	clk.t = clk.t.Add(time.Second / 2)
	chatAt.Store(monoNanos(clk.t))
	before := clk.slept
	step(10, false)
	if d := clk.slept - before; d < 9*time.Millisecond {
		t.Errorf("after a stall, 10 chunks slept %v: a burst", d)
	}
	clk.t = clk.t.Add(2 * time.Second) // the conversation pauses
	before = clk.slept
	step(10, false)
	if yielding.Load() || clk.slept != before {
		t.Errorf("a window after the last line: yielding %v, slept %v", yielding.Load(), clk.slept-before)
	}
}

// TestYieldToChat: a transfer whose peer is chatting says it yields, and
// stops yielding once the chat pauses; what arrives is intact. With
// ChatShare 1 it never yields.
func TestYieldToChat(t *testing.T) {
	for _, share := range []float64{0, 1} {
		t.Run(map[float64]string{0: "default", 1: "off"}[share], func(t *testing.T) {
			l, a, b := pair(t, Options{Progress: 20 * time.Millisecond, ChatShare: share, ChatWindow: 300 * time.Millisecond})
			l.rate.Store(8 << 20)
			src := filepath.Join(t.TempDir(), "big.bin")
			data := randomFile(t, src, 8<<20)
			in := a.offer(b, src)
			b.accept(in.ID)
			a.wait(10*time.Second, "first progress", progressAt(1))
			// Chat lines pass until the sender yields (default) or for
			// a second (off).
			yielded := func(e Event) bool { p, ok := e.(Progress); return ok && p.Yielding }
			for deadline := time.Now().Add(time.Second); ; {
				a.m.Chatting(b.id)
				if share == 0 && a.has(yielded) || share == 1 && time.Now().After(deadline) {
					break
				}
				if share == 0 && time.Now().After(deadline.Add(10*time.Second)) {
					t.Fatalf("no yielding progress; events: %s", a.eventList())
				}
				time.Sleep(20 * time.Millisecond)
			}
			b.m.Chatting(a.id) // a receiver has nothing to pace
			if share == 1 && a.has(yielded) {
				t.Fatal("yielded with ChatShare 1")
			}
			da := a.done(in.ID)
			b.done(in.ID)
			if share == 0 {
				// The last progress events, a window after the chat,
				// are at full speed again.
				var last Progress
				a.emu.Lock()
				for _, e := range a.events {
					if p, ok := e.(Progress); ok {
						last = p
					}
				}
				a.emu.Unlock()
				if last.Yielding {
					t.Errorf("still yielding at the end: %+v", last)
				}
			}
			got, err := os.ReadFile(filepath.Join(b.dl, "big.bin"))
			if err != nil || string(got) != string(data) || da.Files[0].Hash != b3hex(data) {
				t.Fatalf("content differs (err %v)", err)
			}
		})
	}
}

// TestPacerWarmUp: the first span, in which the buffers fill faster than
// the path drains them, does not count towards the rate.
func TestPacerWarmUp(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_000_000, 0)}
	var chatAt atomic.Int64
	var yielding atomic.Bool
	p := &pacer{chatAt: &chatAt, yielding: &yielding, window: 10 * time.Second, share: 0.5, now: clk.now, sleep: clk.sleep}
	chatAt.Store(monoNanos(clk.t))
	const n = 1000
	// Buffers fill: 250 ms at 10 MB/s, then the path's 1 MB/s.
	for clk.t.Before(time.Unix(1_000_000, 0).Add(measureSpan)) {
		p.wait(context.Background(), n)
		clk.t = clk.t.Add(100 * time.Microsecond)
	}
	for range 2000 {
		chatAt.Store(monoNanos(clk.t))
		p.wait(context.Background(), n)
		clk.t = clk.t.Add(time.Millisecond)
	}
	if got := p.rate; math.Abs(got-1e6) > 0.05e6 {
		t.Errorf("rate %.0f B/s, want the path's 1e6", got)
	}
	if !yielding.Load() {
		t.Error("not yielding")
	}
}

// TestPacerStall: a span that held a stall (a cut the stream rode out)
// does not lower the rate.
func TestPacerStall(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_000_000, 0)}
	var chatAt atomic.Int64
	var yielding atomic.Bool
	p := &pacer{chatAt: &chatAt, yielding: &yielding, window: 10 * time.Second, share: 0.5, now: clk.now, sleep: clk.sleep}
	run := func(chunks int) {
		for range chunks {
			p.wait(context.Background(), 1000)
			clk.t = clk.t.Add(time.Millisecond)
		}
	}
	run(1000) // 1 MB/s
	clk.t = clk.t.Add(30 * time.Second)
	run(1000)
	if math.Abs(p.rate-1e6) > 0.05e6 {
		t.Errorf("rate %.0f B/s after a stall, want 1e6", p.rate)
	}
}
