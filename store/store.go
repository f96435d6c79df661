package store

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Default bounds. The totals allow a dozen peers at the per-peer bound of
// messages, or four at the per-peer bound of bytes.
const (
	DefaultPeerMessages  = 10_000
	DefaultPeerBytes     = 64 << 20
	DefaultTotalMessages = 100_000
	DefaultTotalBytes    = 256 << 20
)

// idLease is how many message ids one ceiling on disk covers; a new one is
// written once half of it is used, and a crash wastes at most this many.
const idLease = 1 << 16

// formatVersion is the layout of the file; a newer one is refused.
const formatVersion = 1

// Options tune a store; the zero value is the default.
type Options struct {
	// NoHistory keeps no history: outboxes and received ids stay durable.
	NoHistory bool
	// Bounds of what waits for delivery, per peer and in all: messages
	// and bytes of text. Zero means the default.
	PeerMessages  int
	PeerBytes     int64
	TotalMessages int
	TotalBytes    int64
	// LockWait is how long Open waits for another process to let the file
	// go (default 1 s).
	LockWait time.Duration
	// CloseWait bounds how long Close, Drop and an Append waiting for an id
	// lease wait for a commit (default 5 s).
	CloseWait time.Duration
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// BeforeCommit, when set (tests), runs on the committer before each
	// commit is written: it may delay it, and an error fails it as a
	// failed write would.
	BeforeCommit func() error
}

func (o Options) withDefaults() Options {
	if o.PeerMessages <= 0 {
		o.PeerMessages = DefaultPeerMessages
	}
	if o.PeerBytes <= 0 {
		o.PeerBytes = DefaultPeerBytes
	}
	if o.TotalMessages <= 0 {
		o.TotalMessages = DefaultTotalMessages
	}
	if o.TotalBytes <= 0 {
		o.TotalBytes = DefaultTotalBytes
	}
	if o.LockWait <= 0 {
		o.LockWait = time.Second
	}
	if o.CloseWait <= 0 {
		o.CloseWait = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Errors, for errors.Is.
var (
	// ErrLocked: another process has the store open.
	ErrLocked = errors.New("in use by another process")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store closed")
	// ErrFull is wrapped by *FullError.
	ErrFull = errors.New("outbox full")
	// ErrCorrupt: the file is damaged.
	ErrCorrupt = errors.New("store damaged")
	// ErrDiskFull: a write failed for want of space; nothing stored was
	// lost, and writes work again once there is space.
	ErrDiskFull = errors.New("disk full")
)

// FullError refuses a message to one peer: a bound was reached. Nothing was
// written for that peer.
type FullError struct {
	Peer string // the peer's id
	Name string
	// Bound is what was reached: "messages" or "bytes" for the peer,
	// "total messages" or "total bytes" over all peers.
	Bound string
	Limit int64
}

func (e *FullError) Error() string {
	what := fmt.Sprintf("%d messages", e.Limit)
	if e.Bound == "bytes" || e.Bound == "total bytes" {
		what = fmt.Sprintf("%d MiB", e.Limit>>20)
	}
	scope := "to it"
	if e.Bound == "total messages" || e.Bound == "total bytes" {
		scope = "to all peers"
	}
	name := e.Name
	if name == "" {
		name = "peer"
	}
	return fmt.Sprintf("not queued for %s (%.8s): %v: %s waiting %s, the limit", name, e.Peer, ErrFull, what, scope)
}

func (e *FullError) Unwrap() error { return ErrFull }

// Count is what waits for one peer (or all).
type Count struct {
	Messages int
	Bytes    int64
}

type peerState struct {
	Count
	// ackedUpto: ids up to it are acknowledged or dropped; they may still
	// be on disk until the next commit, and are not counted or listed.
	ackedUpto uint64
}

// state is the in-memory view of what is (or will be, once the queue is
// committed) on disk.
type state struct {
	peers   map[string]peerState
	senders map[string]recvRec
	total   Count
	histSeq uint64 // last history sequence used
}

func (st state) clone() state {
	st.peers = maps.Clone(st.peers)
	st.senders = maps.Clone(st.senders)
	return st
}

// Store is the durable store of one identity. Its methods are safe for
// concurrent use.
type Store struct {
	path       string
	o          Options
	db         *bolt.DB
	lock       *os.File
	epoch      uint64
	movedAside string
	movedWhy   error
	lastActive time.Time

	wake chan struct{} // buffered 1: the committer has work
	stop chan struct{} // closed by Close
	done chan struct{} // closed when the committer has returned
	// fold is the committer's: the block of the search index being filled.
	fold foldState
	// marked is set once the file was marked damaged.
	marked atomic.Bool

	mu     sync.Mutex // protects following
	closed bool
	queue  []op
	spare  []op    // the queue's other buffer
	cur    *Commit // the commit the queued operations will be part of
	// writing is the commit being written, nil between commits.
	writing *Commit
	mem     state // with the queue applied
	dur     state // as on disk
	// nextID is the next message id; it never goes back. Ids below
	// ceilingDur may be used; ceilingWant is written with the next commit.
	nextID, ceilingDur, ceilingWant uint64
	// firstID is the first id of this run: ids below it were given by
	// earlier ones.
	firstID uint64
	// opened is what was known of each sender when the store was
	// opened; resurfaced the highest id of each that Resurface let be
	// shown again in this run.
	opened     map[string]recvRec
	resurfaced map[string]uint64
	// lazy wakes the committer for operations queued without waking it.
	lazy *time.Timer
	// unsynced are the messages appended and not yet durable, in id
	// order: Outbox and Acked see them as if they were on disk, since
	// they go to their peers while their commit runs.
	unsynced []unsynced
	// lost holds the ranges of ids whose commit failed (the latest
	// lostKept of them).
	lost [][2]uint64
	// pendingNeed is what the operations queued, and those of the commit
	// being written (writingNeed), may take on disk.
	pendingNeed, writingNeed int64

	// free is the space the file system had for this file at the last
	// look (freeAt, Unix nanoseconds), and freelist what bbolt's list of
	// free pages takes (written with every commit); -1 when unknown.
	free, freeAt, freelist atomic.Int64
	// statfs reports the bytes available to this process on the file
	// system of path (a variable for tests).
	statfs func(path string) (int64, error)
}

// unsynced is a message appended whose commit has not finished.
type unsynced struct {
	w     Waiting
	peers []string
	size  int // of the text
}

// Commit is one group commit, shared by every operation queued while the
// previous one ran.
type Commit struct {
	done chan struct{}
	err  error
}

func newCommit() *Commit { return &Commit{done: make(chan struct{})} }

func (c *Commit) finish(err error) {
	c.err = err
	close(c.done)
}

// Done is closed once the commit is over; Err then says how.
func (c *Commit) Done() <-chan struct{} { return c.done }

// Err is nil once the commit is durable, or why it failed; valid after Done.
func (c *Commit) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return errors.New("commit not finished")
	}
}

// Wait waits until the commit is durable (nil) or failed, or ctx ends.
func (c *Commit) Wait(ctx context.Context) error {
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return fmt.Errorf("waiting for the store: %w", ctx.Err())
	}
}

// done is a finished, successful commit.
var doneCommit = func() *Commit { c := newCommit(); c.finish(nil); return c }()

// Bucket names.
var (
	bMeta = []byte("meta")
	bOut  = []byte("out")
	bRecv = []byte("recv")
	bHist = []byte("hist")
	bFold = []byte("fold")

	kFormat  = []byte("format")
	kEpoch   = []byte("epoch")
	kCeiling = []byte("ceiling")
)

// Open opens (or makes) the store at path: directory 0700, file 0600. A
// corrupt or unreadable file is moved aside and a fresh store made: see
// MovedAside. Another process holding the file gets ErrLocked after
// o.LockWait.
func Open(path string, o Options) (*Store, error) {
	o = o.withDefaults()
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if fi, err := os.Stat(dir); err == nil && fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
	}
	lock, err := lockFile(path+".lock", o.LockWait)
	if err != nil {
		return nil, err
	}
	s := &Store{
		path: path, o: o, lock: lock,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		cur: newCommit(), statfs: statfs,
	}
	if err := s.openDB(); err != nil {
		lock.Close()
		return nil, err
	}
	s.refreshFree()
	go s.run()
	return s, nil
}

// openDB opens the file, moving it aside once when it is damaged.
func (s *Store) openDB() error {
	if b, err := os.ReadFile(s.path + ".damaged"); err == nil {
		if err := s.moveAside(fmt.Errorf("%w: %s", ErrCorrupt, b)); err != nil {
			return err
		}
	}
	for attempt := 0; ; attempt++ {
		err := s.tryOpen()
		if err == nil {
			break
		}
		if attempt > 0 || !movable(err) {
			return fmt.Errorf("store %s: %w", s.path, err)
		}
		if err := s.moveAside(err); err != nil {
			return err
		}
	}
	if err := os.Chmod(s.path, 0o600); err != nil {
		s.db.Close()
		return fmt.Errorf("store: %w", err)
	}
	return syncDir(filepath.Dir(s.path))
}

// movable tells damage (move the file aside) from trouble of the disk or
// the system (report it, touch nothing).
func movable(err error) bool {
	for _, e := range []error{syscall.ENOSPC, syscall.EDQUOT, syscall.EROFS, syscall.ENOMEM, syscall.EMFILE, syscall.ENFILE, errNewer} {
		if errors.Is(err, e) {
			return false
		}
	}
	return true
}

var errNewer = errors.New("written by a newer lanchat")

func (s *Store) tryOpen() (err error) {
	if fi, err := os.Stat(s.path); err == nil && fi.Size() > 0 {
		s.lastActive = fi.ModTime()
	}
	var db *bolt.DB
	err = guard(func() error {
		var err error
		db, err = bolt.Open(s.path, 0o600, &bolt.Options{Timeout: s.o.LockWait, FreelistType: bolt.FreelistMapType})
		return err
	})
	if err != nil {
		// After a panic inside Open the half-open handle is lost: its
		// descriptor and mapping stay until the process ends. The file
		// is renamed, so they hold nothing anyone needs.
		return err
	}
	s.db = db
	if err := s.load(); err != nil {
		guard(db.Close)
		s.db = nil
		return err
	}
	return nil
}

// load reads what the store keeps in memory (and checks it), then makes
// the buckets, the epoch and a new id lease in one commit.
func (s *Store) load() error {
	st := state{peers: map[string]peerState{}, senders: map[string]recvRec{}}
	var epoch, ceiling uint64
	var fold foldState
	err := guard(func() error {
		return s.db.View(func(tx *bolt.Tx) error {
			if m := tx.Bucket(bMeta); m != nil {
				if v := m.Get(kFormat); v != nil {
					f, err := u64val(v)
					if err != nil {
						return fmt.Errorf("format: %w", err)
					}
					if f > formatVersion {
						return fmt.Errorf("%w (format %d)", errNewer, f)
					}
				}
				for _, kv := range []struct {
					k []byte
					v *uint64
				}{{kEpoch, &epoch}, {kCeiling, &ceiling}} {
					if v := m.Get(kv.k); v != nil {
						n, err := u64val(v)
						if err != nil {
							return fmt.Errorf("meta %s: %w", kv.k, err)
						}
						*kv.v = n
					}
				}
			}
			if b := tx.Bucket(bRecv); b != nil {
				if err := b.ForEach(func(k, v []byte) error {
					r, err := decodeRecv(v)
					if err == nil {
						err = checkID(string(k))
					}
					if err != nil {
						return fmt.Errorf("received ids: %w", err)
					}
					st.senders[string(k)] = r
					return nil
				}); err != nil {
					return err
				}
			}
			if b := tx.Bucket(bOut); b != nil {
				if err := b.ForEachBucket(func(k []byte) error {
					if err := checkID(string(k)); err != nil {
						return fmt.Errorf("outbox: %w", err)
					}
					var c Count
					if err := b.Bucket(k).ForEach(func(id, v []byte) error {
						n, err := outTextLen(v)
						if err != nil || len(id) != 8 {
							return fmt.Errorf("outbox of %.8s: %w", k, errShort)
						}
						c.Messages++
						c.Bytes += int64(n)
						return nil
					}); err != nil {
						return err
					}
					if c.Messages > 0 {
						st.peers[string(k)] = peerState{Count: c}
						st.total.Messages += c.Messages
						st.total.Bytes += c.Bytes
					}
					return nil
				}); err != nil {
					return err
				}
			}
			if b := tx.Bucket(bHist); b != nil {
				if k, v := b.Cursor().Last(); k != nil {
					if _, err := decodeHist(v); err != nil || len(k) != 8 {
						return fmt.Errorf("history: last line: %w", errShort)
					}
					st.histSeq = binary.BigEndian.Uint64(k)
				}
			}
			if b := tx.Bucket(bFold); b != nil {
				if k, v := b.Cursor().Last(); k != nil {
					f, err := loadFold(k, v)
					if err != nil {
						return fmt.Errorf("search index: %w", err)
					}
					if f.first+uint64(f.n)-1 != st.histSeq {
						return fmt.Errorf("search index ends at line %d, history at %d", f.first+uint64(f.n)-1, st.histSeq)
					}
					fold = f
				}
			}
			return nil
		})
	})
	if err != nil {
		if errors.Is(err, errNewer) {
			return err
		}
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if epoch == 0 {
		var b [8]byte
		for epoch == 0 {
			rand.Read(b[:])
			epoch = binary.BigEndian.Uint64(b[:])
		}
	}
	next := max(ceiling, 1)
	want := next + idLease
	err = guard(func() error {
		return s.db.Update(func(tx *bolt.Tx) error {
			for _, n := range [][]byte{bMeta, bOut, bRecv, bHist, bFold} {
				if _, err := tx.CreateBucketIfNotExists(n); err != nil {
					return err
				}
			}
			m := tx.Bucket(bMeta)
			for _, kv := range []struct {
				k []byte
				v uint64
			}{{kFormat, formatVersion}, {kEpoch, epoch}, {kCeiling, want}} {
				if err := m.Put(kv.k, seal(key(kv.v))); err != nil {
					return err
				}
			}
			return nil
		})
	})
	if err != nil {
		return diskErr(err)
	}
	s.epoch, s.fold = epoch, fold
	s.mem, s.dur = st, st.clone()
	s.opened, s.resurfaced = maps.Clone(st.senders), map[string]uint64{}
	s.nextID, s.ceilingDur, s.ceilingWant = next, want, want
	s.firstID = next
	return nil
}

func u64val(v []byte) (uint64, error) {
	body, err := unseal(v)
	if err != nil {
		return 0, err
	}
	if len(body) != 8 {
		return 0, errShort
	}
	return binary.BigEndian.Uint64(body), nil
}

// moveAside renames the damaged file to PATH.corrupt-TIMESTAMP.
func (s *Store) moveAside(why error) error {
	base := s.path + ".corrupt-" + s.o.Now().UTC().Format("20060102T150405Z")
	name := base
	for i := 2; ; i++ {
		if _, err := os.Lstat(name); errors.Is(err, fs.ErrNotExist) {
			break
		}
		name = fmt.Sprintf("%s-%d", base, i)
	}
	if err := os.Rename(s.path, name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("store %s is damaged (%v) and cannot be moved aside: %w", s.path, why, err)
	}
	os.Remove(s.path + ".damaged")
	s.movedAside, s.movedWhy = name, why
	return nil
}

// MovedAside reports the name a damaged file was moved to at Open, and why
// it was judged damaged; "" and nil when it was not.
func (s *Store) MovedAside() (string, error) { return s.movedAside, s.movedWhy }

// Epoch is the random number made with the file.
func (s *Store) Epoch() uint64 { return s.epoch }

// FirstID is the first message id of this run: messages with lower ids
// were written by an earlier run of this identity.
func (s *Store) FirstID() uint64 { return s.firstID }

// Path is the file.
func (s *Store) Path() string { return s.path }

// LastActive is when the file was last written before this Open (its
// modification time; zero for a new store): roughly when the node last ran.
func (s *Store) LastActive() time.Time { return s.lastActive }

// Close waits (at most Options.CloseWait) for what is queued to be
// committed, stops the committer and closes the file. It is safe to call
// more than once.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	t := time.NewTimer(s.o.CloseWait)
	defer t.Stop()
	select {
	case <-s.done:
	case <-t.C:
		return fmt.Errorf("store %s: pending commits not finished after %v", s.path, s.o.CloseWait)
	}
	s.mu.Lock()
	if s.lazy != nil {
		s.lazy.Stop()
		s.lazy = nil
	}
	s.mu.Unlock()
	err := guard(s.db.Close)
	s.lock.Close()
	if err != nil {
		return fmt.Errorf("store %s: %w", s.path, err)
	}
	return nil
}

// guard runs f, turning a panic or a memory fault (bbolt reads the file
// through a mapping, and trusts what it reads) into ErrCorrupt.
func guard(f func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", ErrCorrupt, p)
		}
	}()
	return f()
}

// diskErr words a failed write.
func diskErr(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", ErrDiskFull, err)
	}
	return err
}

// damaged marks the file so that the next Open moves it aside, and returns
// err wrapped in ErrCorrupt.
func (s *Store) damaged(err error) error {
	if !errors.Is(err, ErrCorrupt) {
		err = fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if s.marked.CompareAndSwap(false, true) {
		os.WriteFile(s.path+".damaged", []byte(err.Error()), 0o600)
	}
	return fmt.Errorf("store %s: %w (it will be moved aside when lanchat next starts)", s.path, err)
}

// view runs a read transaction; a panic or a fault in it marks the file.
func (s *Store) view(f func(tx *bolt.Tx) error) error {
	err := guard(func() error { return s.db.View(f) })
	if errors.Is(err, ErrCorrupt) {
		return s.damaged(err)
	}
	return err
}

func lockFile(path string, wait time.Duration) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	deadline := time.Now().Add(wait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, fmt.Errorf("store %s: %w (waited %v)", path[:len(path)-len(".lock")], ErrLocked, wait)
			}
			return nil, fmt.Errorf("store: locking %s: %w", path, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("store: syncing %s: %w", dir, err)
	}
	return nil
}
