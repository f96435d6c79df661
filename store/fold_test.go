package store

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
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

// TestScanFoldMatchesCursor: the search index read from the file (pread,
// scanFold) gives the blocks bbolt's cursor gives, in the same order,
// over a tree of more than one level of pages.
func TestScanFoldMatchesCursor(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "s.db"), Options{})
	const lines = 60_000
	var last *Commit
	for i := 1; i <= lines; i++ {
		text := fmt.Sprintf("line %d ", i) + strings.Repeat("x", i%97)
		_, c, err := s.Receive(In{From: pid(i % 3), Name: "p", Epoch: 1, ID: uint64(i/3 + 1), Text: text, Sent: time.Unix(1000, 0)})
		if err != nil {
			t.Fatal(err)
		}
		last = c
		if i%5000 == 0 {
			durable(t, c)
		}
	}
	durable(t, last)
	type kv struct{ k, v string }
	var viaCursor, viaFile []kv
	var depth int
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bFold)
		depth = b.Stats().Depth
		c := b.Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			viaCursor = append(viaCursor, kv{string(k), string(v)})
		}
		return scanFold(tx, func(k, v []byte) (bool, error) {
			viaFile = append(viaFile, kv{string(k), string(v)})
			return true, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if depth < 2 {
		t.Errorf("index tree depth %d: the test wants branch pages", depth)
	}
	if len(viaFile) != len(viaCursor) {
		t.Fatalf("%d blocks read from the file, %d through the cursor", len(viaFile), len(viaCursor))
	}
	for i := range viaCursor {
		if viaFile[i] != viaCursor[i] {
			t.Fatalf("block %d differs (key %x, cursor key %x)", i, viaFile[i].k, viaCursor[i].k)
		}
	}
	// Stopping early stops.
	n := 0
	err = s.db.View(func(tx *bolt.Tx) error {
		return scanFold(tx, func(k, v []byte) (bool, error) { n++; return n < 3, nil })
	})
	if err != nil || n != 3 {
		t.Errorf("stopped after %d blocks (%v), want 3", n, err)
	}
}
