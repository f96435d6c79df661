package store

import (
	"fmt"
	"path/filepath"
	"syscall"
	"time"
)

// Free space. A message goes to its peers while its commit runs, so a
// commit that fails for want of space would leave a message delivered
// that the sender was told was not sent. Append therefore refuses up
// front when the file system has less room than the queued commits may
// take: what they write, with margin.
//
// What a commit takes: bbolt never writes a page in place (but the meta
// page): each record written, and every page of the tree above it up to
// its bucket's root, goes to a new page, and so does the list of free
// pages, with every commit. The file itself grows by ftruncate (to the
// size needed while under bbolt's AllocSize, 16 MiB, then by AllocSize),
// which reserves no blocks on Linux's file systems: the blocks are taken
// as the pages are written.
const (
	// commitMargin covers the pages above the records of one commit:
	// the branch and leaf pages of the buckets it touches.
	commitMargin = 256 << 10
	// recordOverhead covers, per record, its key, its other fields, its
	// CRC and bbolt's element header.
	recordOverhead = 128
	// pageCost is charged per outbox a message goes to: the leaf and
	// branch page written in each.
	pageCost = 8 << 10
	// freeFresh is how old the last look at the free space may be when
	// Append checks it; each commit looks again.
	freeFresh = 100 * time.Millisecond
	// lostKept is how many ranges of lost ids Lost remembers.
	lostKept = 64
)

// needOf is what a message of size bytes to peers recipients may take on
// disk: its outbox records, its history line and its search text, and a
// leaf path per outbox.
func needOf(size, peers int) int64 {
	return int64(size+recordOverhead)*int64(peers+2) + int64(peers)*pageCost
}

// statfs is the space available to an unprivileged process on path's file
// system (root may use a reserve beyond it: not counted).
func statfs(path string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// refreshFree looks at the free space again, and at the size of bbolt's
// free list. It takes no lock: the committer calls it after each commit,
// Append when the last look is older than freeFresh.
func (s *Store) refreshFree() {
	free, err := s.statfs(filepath.Dir(s.path))
	if err != nil {
		free = -1 // unknown: no refusal up front, the commit tells
	}
	if s.db != nil {
		s.freelist.Store(int64(s.db.Stats().FreelistInuse))
	}
	s.free.Store(free)
	s.freeAt.Store(s.o.Now().UnixNano())
}

// checkSpaceLocked refuses a message that needs need bytes when the free
// space does not cover it, what is queued and being written before it, and
// commitMargin.
func (s *Store) checkSpaceLocked(need int64) error {
	free := s.free.Load()
	if free < 0 {
		return nil
	}
	want := need + s.pendingNeed + s.writingNeed + commitMargin + s.freelist.Load()
	if free >= want {
		return nil
	}
	return fmt.Errorf("store %s: %w: only %s of space left, and storing it may take %s", s.path, ErrDiskFull, kib(free), kib(want))
}

func kib(n int64) string {
	if n >= 10<<20 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", (n+1023)>>10)
}

// freeStale reports whether Append should look at the free space again.
func (s *Store) freeStale() bool {
	return s.o.Now().UnixNano()-s.freeAt.Load() > int64(freeFresh)
}

// Lost reports whether message id was handed out by Append and its commit
// failed: it is not on disk, and must not be sent again. Only the latest
// failures are remembered, which covers what a caller can still hold of
// them: a window read while the commit ran.
func (s *Store) Lost(id uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lostLocked(id)
}

func (s *Store) lostLocked(id uint64) bool {
	for _, r := range s.lost {
		if id >= r[0] && id <= r[1] {
			return true
		}
	}
	return false
}

// loseUnsyncedLocked records the messages whose commit failed as lost.
func (s *Store) loseUnsyncedLocked() {
	if len(s.unsynced) == 0 {
		return
	}
	s.lost = append(s.lost, [2]uint64{s.unsynced[0].w.ID, s.unsynced[len(s.unsynced)-1].w.ID})
	if len(s.lost) > lostKept {
		s.lost = s.lost[1:]
	}
	clear(s.unsynced)
	s.unsynced = nil
}

// syncedLocked forgets the unsynced messages with ids up to upto: their
// commit is durable.
func (s *Store) syncedLocked(upto uint64) {
	k := 0
	for k < len(s.unsynced) && s.unsynced[k].w.ID <= upto {
		k++
	}
	if k == 0 {
		return
	}
	clear(s.unsynced[:k]) // let the texts go
	s.unsynced = s.unsynced[k:]
	if len(s.unsynced) == 0 {
		s.unsynced = nil
	}
}
