package store

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Recipient is a peer a message is for: its id and its name at the time.
type Recipient struct {
	ID   string
	Name string
}

// Out is a message this node sends.
type Out struct {
	// ID is set by Append: it grows across restarts.
	ID     uint64
	To     []Recipient
	Direct bool // to one peer only (To has one entry)
	Text   string
	// Flags are the chat flags (transport.ChatAction, /me), kept with the
	// message and its history line.
	Flags uint8
	// Sent is the sender's time (set by Append when zero); Queued is set
	// by Append.
	Sent, Queued time.Time
}

// Append assigns m.ID, checks the bounds of every recipient and queues m
// for their outboxes (and the history) in the next group commit. It returns
// at once; the message is durable once the Commit is. From then on Outbox
// and Acked see it, so it may be sent while its commit runs; should the
// commit fail, Lost reports its id.
//
// A recipient over a bound is left out: the error then joins a *FullError
// for each (errors.As finds the first; Refused lists them all), and the
// commit is nil only when no recipient was left. When the file system has
// less free space than the queued commits may take, the message is refused
// (ErrDiskFull). Other errors (bad input, a closed store) queue nothing.
func (s *Store) Append(m *Out) (*Commit, error) {
	if err := checkOut(m); err != nil {
		return nil, fmt.Errorf("message not stored: %w", err)
	}
	size := int64(len(m.Text))
	if s.freeStale() {
		s.refreshFree()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reserveIDLocked(); err != nil {
		return nil, err
	}
	var refused []error
	var to []string
	added := Count{}
	for _, r := range m.To {
		ps := s.mem.peers[r.ID]
		var bound string
		var limit int64
		switch {
		case ps.Messages+1 > s.o.PeerMessages:
			bound, limit = "messages", int64(s.o.PeerMessages)
		case ps.Bytes+size > s.o.PeerBytes:
			bound, limit = "bytes", s.o.PeerBytes
		case s.mem.total.Messages+added.Messages+1 > s.o.TotalMessages:
			bound, limit = "total messages", int64(s.o.TotalMessages)
		case s.mem.total.Bytes+added.Bytes+size > s.o.TotalBytes:
			bound, limit = "total bytes", s.o.TotalBytes
		}
		if bound != "" {
			refused = append(refused, &FullError{Peer: r.ID, Name: r.Name, Bound: bound, Limit: limit})
			continue
		}
		to = append(to, r.ID)
		added.Messages++
		added.Bytes += size
	}
	if len(to) == 0 {
		return nil, errors.Join(refused...)
	}
	need := needOf(len(m.Text), len(to))
	if err := s.checkSpaceLocked(need); err != nil {
		return nil, err
	}
	now := s.o.Now()
	if m.Sent.IsZero() {
		m.Sent = now
	}
	m.Queued = now
	m.ID = s.nextID
	s.nextID++
	o := op{kind: opAppend, id: m.ID, peers: to}
	if !s.o.NoHistory {
		s.mem.histSeq++
		h := histRec{direct: m.Direct, msgID: m.ID, epoch: s.epoch, sent: m.Sent.UnixNano(), at: now.UnixNano(), text: m.Text, chat: m.Flags}
		for _, r := range m.To {
			for _, id := range to {
				if id == r.ID {
					h.to = append(h.to, recipientRec{id: r.ID, name: r.Name})
				}
			}
		}
		if m.Direct {
			h.peer, h.name = m.To[0].ID, m.To[0].Name
			o.bypeer = h.peer
		}
		o.seq, o.hist, o.folded = s.mem.histSeq, h.encode(), fold(m.Text)
	}
	o.rec = outRec{direct: m.Direct, sent: m.Sent.UnixNano(), queued: now.UnixNano(), seq: o.seq, text: m.Text, flags: m.Flags}.encode()
	for _, id := range to {
		ps := s.mem.peers[id]
		ps.Messages++
		ps.Bytes += size
		s.mem.peers[id] = ps
	}
	s.mem.total.Messages += added.Messages
	s.mem.total.Bytes += added.Bytes
	s.pendingNeed += need
	s.unsynced = append(s.unsynced, unsynced{peers: to, size: len(m.Text),
		w: Waiting{ID: m.ID, Direct: m.Direct, Text: m.Text, Flags: m.Flags, Sent: m.Sent, Queued: now}})
	return s.enqueueLocked(o), errors.Join(refused...)
}

// reserveIDLocked makes sure nextID is under the ceiling on disk, waiting
// for the commit that raises it when a burst used the lease up.
func (s *Store) reserveIDLocked() error {
	for {
		if s.closed {
			return fmt.Errorf("message not stored: %w", ErrClosed)
		}
		if s.ceilingWant-s.nextID < idLease/2 {
			s.ceilingWant += idLease
		}
		if s.nextID < s.ceilingDur {
			return nil
		}
		c := s.enqueueLocked(op{kind: opNop})
		s.mu.Unlock()
		err := s.waitCommit(c)
		s.mu.Lock()
		if err != nil {
			return fmt.Errorf("message not stored: %w", err)
		}
	}
}

// Refused lists the peers that an error from Append says a message was not
// queued for.
func Refused(err error) []string {
	var ids []string
	var walk func(error)
	walk = func(err error) {
		var fe *FullError
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
		} else if errors.As(err, &fe) {
			ids = append(ids, fe.Peer)
		}
	}
	walk(err)
	return ids
}

func checkOut(m *Out) error {
	if len(m.To) == 0 || len(m.To) > MaxRecipients {
		return fmt.Errorf("%d recipients", len(m.To))
	}
	if m.Direct && len(m.To) != 1 {
		return errors.New("a direct message has one recipient")
	}
	var seen map[string]bool // a message to one peer needs none
	if len(m.To) > 1 {
		seen = make(map[string]bool, len(m.To))
	}
	for _, r := range m.To {
		if err := checkID(r.ID); err != nil {
			return err
		}
		if err := checkName(r.Name); err != nil {
			return err
		}
		if seen[r.ID] {
			return fmt.Errorf("recipient %.8s named twice", r.ID)
		}
		if seen != nil {
			seen[r.ID] = true
		}
	}
	return checkText(m.Text)
}

// Waiting is a message in a peer's outbox.
type Waiting struct {
	ID           uint64
	Direct       bool
	Text         string
	Flags        uint8 // as in Out
	Sent, Queued time.Time
}

// Outbox returns up to max messages waiting for peer with ids above
// afterID, in id order: the window to send. It lists the messages whose
// commit is still running as well (Append), after those on disk.
func (s *Store) Outbox(peer string, afterID uint64, max int) ([]Waiting, error) {
	// Memory first, then the file: a message whose commit ends between
	// the two is read from the file, never missed.
	s.mu.Lock()
	afterID = maxU(afterID, s.mem.peers[peer].ackedUpto)
	var early []Waiting
	for _, u := range s.unsyncedAfterLocked(afterID) {
		if len(early) == max {
			break
		}
		if slices.Contains(u.peers, peer) {
			early = append(early, u.w)
		}
	}
	s.mu.Unlock()
	var w []Waiting
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bOut).Bucket([]byte(peer))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Seek(key(afterID + 1)); k != nil && len(w) < max; k, v = c.Next() {
			r, err := decodeOut(v)
			if err != nil || len(k) != 8 {
				return fmt.Errorf("%w: outbox of %.8s: %w", ErrCorrupt, peer, errors.Join(err, errShort))
			}
			w = append(w, Waiting{ID: binary.BigEndian.Uint64(k), Direct: r.direct, Text: r.text, Flags: r.flags,
				Sent: time.Unix(0, r.sent), Queued: time.Unix(0, r.queued)})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return mergeByID(w, early, max, func(m Waiting) uint64 { return m.ID }), nil
}

// unsyncedAfterLocked is the tail of s.unsynced with ids above id.
func (s *Store) unsyncedAfterLocked(id uint64) []unsynced {
	i, _ := slices.BinarySearchFunc(s.unsynced, id+1, func(u unsynced, id uint64) int { return cmp.Compare(u.w.ID, id) })
	return s.unsynced[i:]
}

// mergeByID merges two lists in id order into one, each id once, at most
// max long.
func mergeByID[T any](a, b []T, max int, id func(T) uint64) []T {
	if len(b) == 0 {
		return a[:min(len(a), max)]
	}
	out := make([]T, 0, min(len(a)+len(b), max))
	for len(out) < max && (len(a) > 0 || len(b) > 0) {
		switch {
		case len(b) == 0 || len(a) > 0 && id(a[0]) < id(b[0]):
			out, a = append(out, a[0]), a[1:]
		case len(a) == 0 || id(b[0]) < id(a[0]):
			out, b = append(out, b[0]), b[1:]
		default: // the same: committed while read
			out, a, b = append(out, a[0]), a[1:], b[1:]
		}
	}
	return out
}

// Acked removes from peer's outbox the messages with ids up to upto, and
// reports how many. The removal reaches the disk with the next commit, at
// most lazyDelay later; it is not waited for (a lost ack only causes a
// resend).
func (s *Store) Acked(peer string, upto uint64) (removed int) {
	s.mu.Lock()
	lo := s.mem.peers[peer].ackedUpto
	s.mu.Unlock()
	if upto <= lo {
		return 0
	}
	type entry struct {
		id   uint64
		size int
	}
	// Messages whose commit still runs may be acknowledged already: they
	// went while it ran. Memory first, then the file, as in Outbox; the
	// removal is queued after their append, so it is applied after it.
	var early []entry
	s.mu.Lock()
	for _, u := range s.unsyncedAfterLocked(lo) {
		if u.w.ID > upto {
			break
		}
		if slices.Contains(u.peers, peer) {
			early = append(early, entry{u.w.ID, u.size})
		}
	}
	s.mu.Unlock()
	var found []entry
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bOut).Bucket([]byte(peer))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Seek(key(lo + 1)); k != nil; k, v = c.Next() {
			id := binary.BigEndian.Uint64(k)
			if id > upto {
				break
			}
			n, err := outTextLen(v)
			if err != nil {
				return fmt.Errorf("%w: outbox of %.8s: %w", ErrCorrupt, peer, err)
			}
			found = append(found, entry{id, n})
		}
		return nil
	})
	if err != nil {
		return 0
	}
	found = mergeByID(found, early, len(found)+len(early), func(e entry) uint64 { return e.id })
	if len(found) == 0 {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0
	}
	ps := s.mem.peers[peer]
	from := ps.ackedUpto
	for _, e := range found {
		if e.id <= ps.ackedUpto || s.lostLocked(e.id) {
			continue // counted by a concurrent Acked, or its commit failed
		}
		ps.Messages--
		ps.Bytes -= int64(e.size)
		s.mem.total.Messages--
		s.mem.total.Bytes -= int64(e.size)
		ps.ackedUpto = e.id
		removed++
	}
	if removed == 0 {
		return 0
	}
	s.mem.peers[peer] = ps
	s.enqueueLazyLocked(op{kind: opAck, peer: peer, lo: from, hi: ps.ackedUpto})
	return removed
}

// Drop discards every message waiting for peer, durably, and says how many
// there were. Their history lines record them as dropped for that peer.
func (s *Store) Drop(peer string) (int, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, ErrClosed
	}
	ps := s.mem.peers[peer]
	n := ps.Messages
	if n == 0 {
		s.mu.Unlock()
		return 0, nil
	}
	upto := s.nextID - 1
	s.mem.total.Messages -= ps.Messages
	s.mem.total.Bytes -= ps.Bytes
	s.mem.peers[peer] = peerState{ackedUpto: upto}
	c := s.enqueueLocked(op{kind: opDrop, peer: peer, hi: upto})
	s.mu.Unlock()
	if err := s.waitCommit(c); err != nil {
		return 0, err
	}
	return n, nil
}

// Pending returns, per peer with messages waiting, their count and bytes
// (queued ones included). It reads memory only.
func (s *Store) Pending() map[string]Count {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]Count, len(s.mem.peers))
	for id, ps := range s.mem.peers {
		if ps.Messages > 0 {
			m[id] = ps.Count
		}
	}
	return m
}

// PendingOf is Pending for one peer.
func (s *Store) PendingOf(peer string) Count {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mem.peers[peer].Count
}

// Total is what waits for all peers.
func (s *Store) Total() Count {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mem.total
}

func maxU(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}
