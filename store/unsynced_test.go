package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// gate is a BeforeCommit hook: while closed, commits wait; fail makes the
// next commits fail.
type gate struct {
	mu   sync.Mutex
	open chan struct{} // nil: commits pass
	fail error
	held chan struct{} // gets a token each time a commit waits
}

func newGate() *gate { return &gate{held: make(chan struct{}, 100)} }

func (g *gate) hook() error {
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	if open != nil {
		g.held <- struct{}{}
		select {
		case <-open:
		case <-time.After(wait):
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.fail
}

// close makes the next commits wait for release.
func (g *gate) close() {
	g.mu.Lock()
	g.open = make(chan struct{})
	g.mu.Unlock()
}

// release lets the commits waiting (and the next) go; fail, if not nil,
// fails them.
func (g *gate) release(fail error) {
	g.mu.Lock()
	if g.open != nil {
		close(g.open)
		g.open = nil
	}
	g.fail = fail
	g.mu.Unlock()
}

// waitHeld waits until a commit waits at the gate.
func (g *gate) waitHeld(t *testing.T) {
	t.Helper()
	select {
	case <-g.held:
	case <-time.After(wait):
		t.Fatal("no commit reached the gate")
	}
}

// TestSendWhileCommitting: a message appended is listed and can be
// acknowledged while its commit runs; an ack before the commit is not
// undone by it; a failed commit loses its messages for good (Lost), and
// the counts go back to what is on disk.
func TestSendWhileCommitting(t *testing.T) {
	a, b := pid(1), pid(2)
	tests := []struct {
		name string
		run  func(t *testing.T, s *Store, g *gate, path string)
	}{
		{"listed before its commit", func(t *testing.T, s *Store, g *gate, path string) {
			x := appendTo(t, s, "durable", a)
			g.close()
			m := &Out{To: []Recipient{{ID: a}, {ID: b}}, Text: "in flight"}
			c, err := s.Append(m)
			if err != nil {
				t.Fatal(err)
			}
			g.waitHeld(t)
			for _, p := range []string{a, b} {
				w, err := s.Outbox(p, 0, 10)
				if want := []uint64{x, m.ID}; p == b {
					want = want[1:]
					if err != nil || !slices.Equal(ids(w), want) {
						t.Errorf("outbox of %.4s while committing: %v, %v; want %v", p, ids(w), err, want)
					}
				} else if err != nil || !slices.Equal(ids(w), want) {
					t.Errorf("outbox of %.4s while committing: %v, %v; want %v", p, ids(w), err, want)
				}
			}
			if w, _ := s.Outbox(a, 0, 1); !slices.Equal(ids(w), []uint64{x}) {
				t.Errorf("window of 1: %v, want [%d]", ids(w), x)
			}
			g.release(nil)
			durable(t, c)
			if w, _ := s.Outbox(a, x, 10); !slices.Equal(ids(w), []uint64{m.ID}) {
				t.Errorf("after the commit: %v, want [%d]", ids(w), m.ID)
			}
		}},
		{"acknowledged before its commit", func(t *testing.T, s *Store, g *gate, path string) {
			g.close()
			m := &Out{To: []Recipient{{ID: a}}, Direct: true, Text: "fast peer"}
			c, err := s.Append(m)
			if err != nil {
				t.Fatal(err)
			}
			g.waitHeld(t)
			if n := s.Acked(a, m.ID); n != 1 {
				t.Fatalf("Acked before the commit removed %d, want 1", n)
			}
			if n := s.PendingOf(a).Messages; n != 0 {
				t.Fatalf("%d pending after the ack", n)
			}
			g.release(nil)
			durable(t, c)
			if w, _ := s.Outbox(a, 0, 10); len(w) != 0 {
				t.Fatalf("resurrected by its commit: %v", ids(w))
			}
			durable(t, s.flush())
			s.Close()
			s2 := open(t, path, Options{})
			if w, _ := s2.Outbox(a, 0, 10); len(w) != 0 || s2.PendingOf(a).Messages != 0 {
				t.Fatalf("on disk after the ack: %v", ids(w))
			}
		}},
		{"commit fails after it went", func(t *testing.T, s *Store, g *gate, path string) {
			x := appendTo(t, s, "stays", a)
			g.close()
			m := &Out{To: []Recipient{{ID: a}}, Direct: true, Text: "lost"}
			c, err := s.Append(m)
			if err != nil {
				t.Fatal(err)
			}
			g.waitHeld(t)
			if w, _ := s.Outbox(a, x, 10); !slices.Equal(ids(w), []uint64{m.ID}) {
				t.Fatalf("in flight: %v", ids(w))
			}
			g.release(syscall.ENOSPC)
			if err := c.Wait(t.Context()); !errors.Is(err, ErrDiskFull) {
				t.Fatalf("commit: %v, want ErrDiskFull", err)
			}
			g.release(nil)
			if !s.Lost(m.ID) || s.Lost(x) {
				t.Errorf("Lost(%d) = %v, Lost(%d) = %v", m.ID, s.Lost(m.ID), x, s.Lost(x))
			}
			if w, _ := s.Outbox(a, 0, 10); !slices.Equal(ids(w), []uint64{x}) {
				t.Errorf("after the failure: %v, want [%d]", ids(w), x)
			}
			if n := s.Acked(a, m.ID); n != 1 {
				t.Errorf("an ack covering both removed %d, want 1 (the one stored)", n)
			}
			if n := s.PendingOf(a).Messages; n != 0 {
				t.Errorf("%d pending", n)
			}
			y := appendTo(t, s, "after", a)
			if y <= m.ID {
				t.Errorf("id %d after the lost %d", y, m.ID)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGate()
			path := filepath.Join(t.TempDir(), "s.db")
			s := open(t, path, Options{BeforeCommit: g.hook})
			defer g.release(nil)
			tt.run(t, s, g, path)
		})
	}
}

// TestFreeSpaceRefusal: Append refuses a message when the file system's
// free space does not cover it, what is queued before it, and the margin
// of a commit; nothing is queued then.
func TestFreeSpaceRefusal(t *testing.T) {
	a := pid(1)
	one := needOf(100, 1)
	tests := []struct {
		name string
		free int64
		// inFlight messages of 100 bytes are appended (their commit
		// held) before the one checked.
		inFlight int
		refused  bool
	}{
		{"plenty", 1 << 30, 0, false},
		{"just enough", commitMargin + one, 0, false},
		{"short by a byte", commitMargin + one - 1, 0, true},
		{"room for one, one in flight", commitMargin + one, 1, true},
		{"room for two, one in flight", commitMargin + 2*one, 1, false},
		{"unknown", -1, 3, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGate()
			s := open(t, filepath.Join(t.TempDir(), "s.db"), Options{BeforeCommit: g.hook})
			defer g.release(nil)
			var mu sync.Mutex
			free := int64(1 << 30)
			s.statfs = func(string) (int64, error) {
				mu.Lock()
				defer mu.Unlock()
				if free < 0 {
					return 0, errors.New("no statfs")
				}
				return free, nil
			}
			s.freelist.Store(0)
			g.close()
			for i := range tt.inFlight {
				if _, err := s.Append(&Out{To: []Recipient{{ID: a}}, Text: strings.Repeat("x", 100)}); err != nil {
					t.Fatalf("in flight %d: %v", i, err)
				}
			}
			mu.Lock()
			free = tt.free
			mu.Unlock()
			s.refreshFree()
			s.freelist.Store(0) // bbolt's free list: not what is tested
			before := s.PendingOf(a)
			_, err := s.Append(&Out{To: []Recipient{{ID: a}}, Text: strings.Repeat("y", 100)})
			if refused := err != nil; refused != tt.refused {
				t.Fatalf("refused %v (%v), want %v", refused, err, tt.refused)
			}
			if err == nil {
				return
			}
			if !errors.Is(err, ErrDiskFull) || !strings.Contains(err.Error(), "space") {
				t.Errorf("error %q: want ErrDiskFull, saying space", err)
			}
			if got := s.PendingOf(a); got != before {
				t.Errorf("pending %+v after the refusal, %+v before", got, before)
			}
		})
	}
}

// TestLostKept: Lost remembers the latest failures only.
func TestLostKept(t *testing.T) {
	g := newGate()
	s := open(t, filepath.Join(t.TempDir(), "s.db"), Options{BeforeCommit: g.hook})
	g.release(syscall.EIO)
	var first, last uint64
	for i := range lostKept + 1 {
		m := &Out{To: []Recipient{{ID: pid(1)}}, Text: fmt.Sprint(i)}
		c, err := s.Append(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Wait(t.Context()); err == nil {
			t.Fatal("commit did not fail")
		}
		if i == 0 {
			first = m.ID
		}
		last = m.ID
	}
	if s.Lost(first) || !s.Lost(last) {
		t.Errorf("Lost(first) = %v, Lost(last) = %v; want false, true", s.Lost(first), s.Lost(last))
	}
	g.release(nil)
}
