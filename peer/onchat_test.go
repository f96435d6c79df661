package peer

import (
	"sync"
	"testing"
	"time"

	"lanchat/store"
)

// chatSeen records the peers Config.OnChat was called for.
type chatSeen struct {
	mu  sync.Mutex
	ids []string
}

func (c *chatSeen) add(id string) {
	c.mu.Lock()
	c.ids = append(c.ids, id)
	c.mu.Unlock()
}

// waitFor waits until OnChat was called for id n times in all.
func (c *chatSeen) waitFor(t *testing.T, who, id string, n int) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		c.mu.Lock()
		got := 0
		for _, x := range c.ids {
			if x == id {
				got++
			}
		}
		c.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: OnChat for %s %d times, want %d", who, ShortID(id), got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestOnChat: every chat line sent to or received from a connected peer
// is reported (transfers yield to it), with and without a store, over
// TCP and UDP.
func TestOnChat(t *testing.T) {
	for _, durable := range []bool{false, true} {
		t.Run(map[bool]string{false: "memory", true: "store"}[durable], func(t *testing.T) {
			var sa, sb chatSeen
			start := func(name string, seen *chatSeen) *testNode {
				cfg := Config{Name: name, OnChat: seen.add}
				if durable {
					h := newHost(t, name)
					st, err := store.Open(h.path, store.Options{})
					if err != nil {
						t.Fatal(err)
					}
					cfg.Identity, cfg.Known, cfg.Store = h.id, h.known, st
				}
				return startNodeWith(t, cfg)
			}
			a, b := start("alice", &sa), start("bob", &sb)
			connected(t, a, b)
			if _, err := a.Say("hello"); err != nil {
				t.Fatal(err)
			}
			next(t, b, func(e Chat) bool { return e.Text == "hello" })
			sa.waitFor(t, "alice", b.ID(), 1)
			sb.waitFor(t, "bob", a.ID(), 1)
			if _, err := b.Tell("alice", "psst"); err != nil {
				t.Fatal(err)
			}
			next(t, a, func(e Chat) bool { return e.Text == "psst" })
			sa.waitFor(t, "alice", b.ID(), 2)
			sb.waitFor(t, "bob", a.ID(), 2)
			if _, err := a.TellUDP("bob", "over udp", false); err != nil {
				t.Fatal(err)
			}
			sa.waitFor(t, "alice", b.ID(), 3)
			next(t, b, func(e Chat) bool { return e.Text == "over udp" })
			sb.waitFor(t, "bob", a.ID(), 3)
		})
	}
}
