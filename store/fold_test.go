package store

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSearchIndexInBursts: lines committed in bursts (several index blocks
// closed in one commit, a block filled over several) are each found once,
// in their conversation, before and after reopening.
func TestSearchIndexInBursts(t *testing.T) {
	a := pid(1)
	path := filepath.Join(t.TempDir(), "s.db")
	s := open(t, path, Options{})
	const lines = 1000
	word := func(i int) string { return fmt.Sprintf("w%04dx", i) }
	id := uint64(0)
	for burst, size := range []int{1, 700, 3, 1, 200, 95} {
		var last *Commit
		for range size {
			id++
			i := int(id)
			// Long lines close blocks by bytes, short ones by lines.
			text := word(i) + strings.Repeat(" pad", (i%7)*40)
			_, c, err := s.Receive(In{From: a, Name: "alice", Epoch: 1, ID: id, Text: text, Sent: time.Unix(1000, 0)})
			if err != nil {
				t.Fatalf("burst %d: %v", burst, err)
			}
			last = c
		}
		durable(t, last)
	}
	if id != lines {
		t.Fatalf("%d lines written, want %d", id, lines)
	}
	check := func(t *testing.T, s *Store) {
		for i := 1; i <= lines; i++ {
			for _, peer := range []string{"", a} {
				got, err := s.Search(peer, strings.ToUpper(word(i)), 10)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != 1 || got[0].MsgID != uint64(i) {
					t.Fatalf("search for line %d (peer %q): %d lines found", i, peer, len(got))
				}
			}
		}
		all, err := s.History(a, lines+1)
		if err != nil || len(all) != lines {
			t.Fatalf("history of a: %d lines, %v", len(all), err)
		}
	}
	t.Run("open", func(t *testing.T) { check(t, s) })
	s.Close()
	s = open(t, path, Options{})
	t.Run("after reopen", func(t *testing.T) { check(t, s) })
}
