package store

import (
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// onDisk counts what the file holds in peer's outbox.
func onDisk(t *testing.T, s *Store, peer string) int {
	t.Helper()
	n := 0
	if err := s.view(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bOut).Bucket([]byte(peer)); b != nil {
			n = b.Stats().KeyN
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestAckedReachesDisk: an acknowledgement asks for no commit of its own,
// yet its removal reaches the disk within lazyDelay when nothing else is
// written; and with the next commit when something is.
func TestAckedReachesDisk(t *testing.T) {
	a, b := pid(1), pid(2)
	s := open(t, filepath.Join(t.TempDir(), "s.db"), Options{})
	id := appendTo(t, s, "one", a)
	if n := s.Acked(a, id); n != 1 {
		t.Fatalf("acked %d, want 1", n)
	}
	if n := s.PendingOf(a).Messages; n != 0 {
		t.Fatalf("%d pending in memory after the ack", n)
	}
	deadline := time.Now().Add(lazyDelay + wait)
	for onDisk(t, s, a) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the ack did not reach the disk within %v", lazyDelay+wait)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// With the next commit.
	id = appendTo(t, s, "two", a)
	s.Acked(a, id)
	appendTo(t, s, "to b", b)
	if n := onDisk(t, s, a); n != 0 {
		t.Fatalf("%d messages on disk for a after the next commit", n)
	}
}
