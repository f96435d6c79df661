package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

type opKind uint8

const (
	opNop opKind = iota // only makes a commit happen
	opAppend
	opRecv
	opAck
	opDrop
)

// op is one queued change; the committer applies a batch of them in one
// transaction, in queue order.
type op struct {
	kind opKind
	id   uint64 // append: message id; recv: sender's id
	// append: the peers whose outboxes get rec.
	peers []string
	rec   []byte
	// append and recv: the history line, its sequence and the lowercased
	// text for the search index; bypeer is the conversation it belongs to
	// ("" for a group message sent).
	seq    uint64
	hist   []byte
	folded string
	bypeer string
	// recv: the sender and what to record of it.
	peer string
	rr   recvRec
	// ack: ids in (lo, hi] leave peer's outbox; drop: every id up to hi.
	lo, hi uint64
}

// keptQueue is the capacity up to which a queue's buffer is kept for the
// next commit whatever it held: under a steady stream, commits alternate
// between large and small (the sender's window fills while one runs), and
// letting a buffer go after each small one cost an allocation per
// operation to grow it again.
const keptQueue = 4096

// enqueueLocked queues o and wakes the committer; it returns the commit o
// will be part of.
func (s *Store) enqueueLocked(o op) *Commit {
	s.queue = append(s.queue, o)
	s.poke()
	return s.cur
}

// poke wakes the committer.
func (s *Store) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// lazyDelay bounds how long an operation queued by enqueueLazyLocked waits
// for a commit that another one asks for.
const lazyDelay = 200 * time.Millisecond

// enqueueLazyLocked queues o without waking the committer: it goes with
// the next commit, at most lazyDelay later. An acknowledgement's removal
// then costs no commit of its own, and the next message sent does not
// wait behind one.
func (s *Store) enqueueLazyLocked(o op) {
	s.queue = append(s.queue, o)
	if s.lazy == nil {
		s.lazy = time.AfterFunc(lazyDelay, s.poke)
	}
}

// run is the committer: it commits whatever is queued, one transaction at a
// time, until Close and an empty queue.
func (s *Store) run() {
	defer close(s.done)
	for {
		select {
		case <-s.wake:
		case <-s.stop:
		}
		s.mu.Lock()
		q, c := s.queue, s.cur
		if len(q) == 0 {
			s.mu.Unlock()
			select {
			case <-s.stop:
				return
			default:
				continue
			}
		}
		// The queue's two buffers take turns: one fills while the other
		// is written.
		next := s.spare
		if next == nil {
			next = make([]op, 0, len(q))
		}
		s.queue, s.spare, s.cur, s.writing = next, nil, newCommit(), c
		if s.lazy != nil {
			s.lazy.Stop() // what it waited for is in this commit
			s.lazy = nil
		}
		snap := s.mem.clone()
		ceilFrom, ceilTo := s.ceilingDur, s.ceilingWant
		// Every id under nextID was queued with its message (Append
		// does both under mu): this commit holds them, or an earlier.
		upto := s.nextID - 1
		s.writingNeed, s.pendingNeed = s.pendingNeed, 0
		s.mu.Unlock()

		err := s.write(q, ceilFrom, ceilTo)
		s.refreshFree()

		var behind *Commit
		clear(q) // let the texts go
		s.mu.Lock()
		if len(q) >= cap(q)/4 || cap(q) <= keptQueue {
			s.spare = q[:0] // else it is much larger than the traffic: let it go
		}
		s.writingNeed, s.writing = 0, nil
		if err == nil {
			s.dur = snap
			s.ceilingDur = ceilTo
			s.syncedLocked(upto)
		} else {
			// What is queued behind was decided on state that is now
			// lost: fail it too, and go back to what is on disk.
			if len(s.queue) > 0 {
				s.queue = nil
				behind = s.cur
				s.cur = newCommit()
			}
			if s.lazy != nil {
				s.lazy.Stop()
				s.lazy = nil
			}
			s.mem = s.dur.clone()
			s.pendingNeed = 0
			s.loseUnsyncedLocked()
		}
		s.mu.Unlock()
		c.finish(err)
		if behind != nil {
			behind.finish(err)
		}
	}
}

// write applies q in one transaction.
func (s *Store) write(q []op, ceilFrom, ceilTo uint64) error {
	if h := s.o.BeforeCommit; h != nil {
		if err := h(); err != nil {
			return fmt.Errorf("store %s: %w", s.path, diskErr(err))
		}
	}
	fold := s.fold.clone()
	err := guard(func() error {
		return s.db.Update(func(tx *bolt.Tx) error {
			return s.apply(tx, q, &fold, ceilFrom, ceilTo)
		})
	})
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			return s.damaged(err)
		}
		return fmt.Errorf("store %s: %w", s.path, diskErr(err))
	}
	s.fold = fold
	return nil
}

func (s *Store) apply(tx *bolt.Tx, q []op, fold *foldState, ceilFrom, ceilTo uint64) error {
	meta, outs, recv := tx.Bucket(bMeta), tx.Bucket(bOut), tx.Bucket(bRecv)
	hist, fb := tx.Bucket(bHist), tx.Bucket(bFold)
	hist.FillPercent = 1 // keys only grow
	if ceilTo > ceilFrom {
		if err := meta.Put(kCeiling, seal(key(ceilTo))); err != nil {
			return err
		}
	}
	boxes := map[string]*bolt.Bucket{}
	box := func(peer string, create bool) (*bolt.Bucket, error) {
		if b := boxes[peer]; b != nil {
			return b, nil
		}
		b := outs.Bucket([]byte(peer))
		if b == nil && create {
			var err error
			if b, err = outs.CreateBucket([]byte(peer)); err != nil {
				return nil, err
			}
		}
		if b != nil {
			b.FillPercent = 0.9
			boxes[peer] = b
		}
		return b, nil
	}
	addLine := func(o op) error {
		if o.hist == nil {
			return nil
		}
		k := key(o.seq)
		if err := hist.Put(k, o.hist); err != nil {
			return err
		}
		return fold.add(o.seq, o.bypeer, o.folded)
	}
	var last map[string]recvRec
	for _, o := range q {
		switch o.kind {
		case opAppend:
			k := key(o.id)
			for _, p := range o.peers {
				b, err := box(p, true)
				if err != nil {
					return err
				}
				if err := b.Put(k, o.rec); err != nil {
					return err
				}
			}
			if err := addLine(o); err != nil {
				return err
			}
		case opRecv:
			// Only the last of a sender's ids in this commit matters.
			if last == nil {
				last = map[string]recvRec{}
			}
			last[o.peer] = o.rr
			if err := addLine(o); err != nil {
				return err
			}
		case opAck, opDrop:
			b, err := box(o.peer, false)
			if err != nil || b == nil {
				return err
			}
			var ks [][]byte
			c := b.Cursor()
			for k, v := c.Seek(key(o.lo + 1)); k != nil && binary.BigEndian.Uint64(k) <= o.hi; k, v = c.Next() {
				ks = append(ks, k)
				if o.kind == opDrop {
					if err := markDropped(hist, o.peer, v); err != nil {
						return err
					}
				}
			}
			for _, k := range ks {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
		}
	}
	for peer, rr := range last {
		if err := recv.Put([]byte(peer), rr.encode()); err != nil {
			return err
		}
	}
	return fold.flush(fb)
}

// markDropped records in the history line of an outbox record that it was
// dropped for peer.
func markDropped(hist *bolt.Bucket, peer string, v []byte) error {
	r, err := decodeOut(v)
	if err != nil {
		return fmt.Errorf("%w: outbox of %.8s: %w", ErrCorrupt, peer, err)
	}
	if r.seq == 0 {
		return nil
	}
	hv := hist.Get(key(r.seq))
	if hv == nil {
		return nil
	}
	h, err := decodeHist(hv)
	if err != nil {
		return fmt.Errorf("%w: history line %d: %w", ErrCorrupt, r.seq, err)
	}
	for i := range h.to {
		if h.to[i].id == peer {
			h.to[i].state = stateDropped
		}
	}
	return hist.Put(key(r.seq), h.encode())
}

// Search index blocks: up to foldLines consecutive lines, closed before
// the stored block would pass foldBytes. A block is: the number of lines n
// (u16), n tags (the first tagLen bytes of the line's conversation, its
// Peer, or zeros), then the lowercased texts, each followed by NUL. The
// tags let History of one peer read the blocks instead of a second index,
// whose pages every commit would have to write too.
//
// A block larger than a page takes pages of its own, whole: foldBytes
// fills two of 4 KiB, with the headers bbolt puts before it. (Blocks were
// closed at 4 KiB of text once, which left most of a second page empty:
// a search maps in every page of the index, and mapping pages is most of
// its cost.)
const (
	foldLines = 128
	foldBytes = 2<<12 - 64
	tagLen    = 8
)

// foldState is the block being filled, and blocks changed in the current
// transaction. A block is encoded once per transaction, when it is closed
// or flushed, not once per line added.
type foldState struct {
	first uint64 // sequence of the block's first line
	n     int
	tags  []byte
	texts []byte
	// changed is set when the block being filled has lines added in the
	// current transaction; closed holds the encodings of the blocks
	// closed in it.
	changed bool
	closed  map[uint64][]byte
}

func (f foldState) clone() foldState {
	f.tags, f.texts = bytes.Clone(f.tags), bytes.Clone(f.texts)
	f.changed, f.closed = false, nil
	return f
}

// encode is the block being filled, as stored (without its CRC).
func (f *foldState) encode() []byte {
	v := make([]byte, 0, 2+len(f.tags)+len(f.texts)+4)
	v = binary.BigEndian.AppendUint16(v, uint16(f.n))
	return append(append(v, f.tags...), f.texts...)
}

// foldBlock is a decoded block.
type foldBlock struct {
	first uint64
	n     int
	tags  []byte
	texts []byte
}

func decodeFold(k, v []byte) (foldBlock, error) {
	body, err := unseal(v)
	if err != nil {
		return foldBlock{}, err
	}
	if len(k) != 8 || len(body) < 2 {
		return foldBlock{}, errShort
	}
	n := int(binary.BigEndian.Uint16(body))
	if n == 0 || n > foldLines || len(body) < 2+n*tagLen {
		return foldBlock{}, errShort
	}
	b := foldBlock{first: binary.BigEndian.Uint64(k), n: n, tags: body[2 : 2+n*tagLen], texts: body[2+n*tagLen:]}
	if len(b.texts) == 0 || b.texts[len(b.texts)-1] != 0 || bytes.Count(b.texts, []byte{0}) != n {
		return foldBlock{}, errors.New("lines and texts do not agree")
	}
	return b, nil
}

func (b foldBlock) tag(i int) []byte { return b.tags[i*tagLen : (i+1)*tagLen] }

func loadFold(k, v []byte) (foldState, error) {
	b, err := decodeFold(k, v)
	if err != nil {
		return foldState{}, err
	}
	return foldState{first: b.first, n: b.n, tags: bytes.Clone(b.tags), texts: bytes.Clone(b.texts)}, nil
}

// tagOf is the tag of a conversation.
func tagOf(peer string) []byte {
	t := make([]byte, tagLen)
	copy(t, peer)
	return t
}

// add appends line seq's text; seq follows the last line added.
func (f *foldState) add(seq uint64, peer, folded string) error {
	if f.n > 0 && seq != f.first+uint64(f.n) {
		return fmt.Errorf("%w: search index: line %d after %d", ErrCorrupt, seq, f.first+uint64(f.n)-1)
	}
	// The block stored with this line: count, tags, texts, CRC.
	size := 2 + (f.n+1)*tagLen + len(f.texts) + len(folded) + 1 + 4
	if f.n == 0 || f.n >= foldLines || size > foldBytes {
		if f.changed {
			if f.closed == nil {
				f.closed = map[uint64][]byte{}
			}
			f.closed[f.first] = f.encode()
		}
		f.first, f.n, f.tags, f.texts = seq, 0, make([]byte, 0, foldLines*tagLen), make([]byte, 0, foldBytes)
	}
	var tag [tagLen]byte
	copy(tag[:], peer)
	f.tags = append(f.tags, tag[:]...)
	f.texts = append(f.texts, folded...)
	f.texts = append(f.texts, 0)
	f.n++
	f.changed = true
	return nil
}

func (f *foldState) flush(b *bolt.Bucket) error {
	b.FillPercent = 1
	for k, v := range f.closed {
		if err := b.Put(key(k), seal(v)); err != nil {
			return err
		}
	}
	if f.changed && f.n > 0 {
		if err := b.Put(key(f.first), seal(f.encode())); err != nil {
			return err
		}
	}
	f.changed, f.closed = false, nil
	return nil
}

// fold is the form of a text that Search compares.
func fold(s string) string { return strings.ToLower(s) }

// waitCommit waits for c, at most CloseWait.
func (s *Store) waitCommit(c *Commit) error {
	t := time.NewTimer(s.o.CloseWait)
	defer t.Stop()
	select {
	case <-c.done:
		return c.err
	case <-t.C:
		return fmt.Errorf("store %s: no commit within %v", s.path, s.o.CloseWait)
	}
}
