package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// In is a chat message received from a peer.
type In struct {
	From   string // sender's id
	Name   string // sender's name now
	Epoch  uint64 // sender's store epoch
	ID     uint64 // sender's message id, from 1
	Direct bool
	Text   string
	Flags  uint8     // the chat flags (transport.ChatAction, /me)
	Sent   time.Time // the sender's time
}

// MarkShown records that the messages of sender from, in epoch, up to id
// were shown to the user (the console confirmed them), with the next
// commit, which it asks for.
func (s *Store) MarkShown(from string, epoch, id uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rr, ok := s.mem.senders[from]
	if s.closed || !ok || rr.epoch != epoch || id <= rr.shown {
		return
	}
	rr.shown = min(id, rr.last)
	s.mem.senders[from] = rr
	if n := len(s.queue); n > 0 && s.queue[n-1].kind == opRecv && s.queue[n-1].peer == from {
		// The last operation queued is this sender's (a message received
		// or shown): the commit writes the sender's record as the last of
		// its operations left it, so that one carries the mark, and a
		// stream of messages shown one by one queues one operation each,
		// not two.
		s.queue[n-1].rr = rr
		return
	}
	s.enqueueLocked(op{kind: opRecv, peer: from, rr: rr})
}

// Resurface reports whether message id of sender from, in epoch, was
// recorded by an earlier run and never confirmed shown (MarkShown), and
// not let through by Resurface in this run yet: a process killed between
// storing a message and showing it gets it again from its sender, which
// was not acknowledged, and shows it then, once. Messages of this run are
// not: a resend of one is a duplicate (Receive), shown or about to be.
func (s *Store) Resurface(from string, epoch, id uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.opened[from]
	if !ok || o.epoch != epoch || id <= max(o.shown, s.resurfaced[from]) || id > o.last {
		return false
	}
	s.resurfaced[from] = id
	return true
}

// Receive decides at once whether m is fresh: its id is above the last one
// recorded for its sender and epoch (a new epoch starts again). A fresh
// message is recorded (last id, history line) in the next group commit. The
// returned commit is durable once m is, or once the copy that made it not
// fresh is: show a fresh message and acknowledge either only after it.
func (s *Store) Receive(m In) (fresh bool, c *Commit, err error) {
	if err := checkIn(m); err != nil {
		return false, nil, fmt.Errorf("message from %.8s not stored: %w", m.From, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, nil, fmt.Errorf("message from %.8s not stored: %w", m.From, ErrClosed)
	}
	last, known := s.mem.senders[m.From]
	if known && last.epoch == m.Epoch && m.ID <= last.last {
		if d := s.dur.senders[m.From]; d.epoch == m.Epoch && m.ID <= d.last {
			return false, doneCommit, nil
		}
		// The copy that was fresh is in a commit still running: this
		// commit comes after it.
		return false, s.enqueueLocked(op{kind: opNop}), nil
	}
	rr := recvRec{epoch: m.Epoch, last: m.ID}
	if known && last.epoch == m.Epoch {
		rr.shown = last.shown
	}
	s.mem.senders[m.From] = rr
	o := op{kind: opRecv, peer: m.From, rr: rr}
	if !s.o.NoHistory {
		s.mem.histSeq++
		h := histRec{in: true, direct: m.Direct, peer: m.From, name: m.Name, epoch: m.Epoch, msgID: m.ID,
			sent: m.Sent.UnixNano(), at: s.o.Now().UnixNano(), text: m.Text, chat: m.Flags}
		o.seq, o.hist, o.folded, o.bypeer = s.mem.histSeq, h.encode(), fold(m.Text), m.From
	}
	s.pendingNeed += needOf(len(m.Text), 0)
	return true, s.enqueueLocked(o), nil
}

func checkIn(m In) error {
	if err := checkID(m.From); err != nil {
		return err
	}
	if m.ID == 0 {
		return errors.New("message id 0")
	}
	if err := checkName(m.Name); err != nil {
		return err
	}
	return checkText(m.Text)
}

// DeliveryState is where a sent message stands with one recipient.
type DeliveryState uint8

const (
	StateWaiting   DeliveryState = iota // in the outbox
	StateDelivered                      // acknowledged by the peer
	StateDropped                        // discarded by Drop
)

func (d DeliveryState) String() string {
	switch d {
	case StateWaiting:
		return "waiting"
	case StateDelivered:
		return "delivered"
	case StateDropped:
		return "dropped"
	}
	return "unknown"
}

// Delivery is a recipient of a sent line.
type Delivery struct {
	Peer, Name string
	State      DeliveryState
}

// Line is a history line.
type Line struct {
	Seq uint64 // its place in the history
	In  bool   // received; false: sent by this node
	// Peer is the sender of a received line and the recipient of a direct
	// one sent; "" for a group message sent. PeerName is its name then.
	Peer, PeerName string
	Direct         bool
	Text           string
	// Flags are the chat flags (transport.ChatAction, /me); 0 for lines
	// stored before they were kept.
	Flags uint8
	// Sent is the sender's time; At is when it arrived (received) or was
	// queued (sent).
	Sent, At time.Time
	// MsgID and Epoch identify the message (Epoch is this store's for a
	// line sent).
	MsgID, Epoch uint64
	// To is the delivery of a line sent, per recipient.
	To []Delivery
}

// MaxLines bounds what one History or Search call returns.
const MaxLines = 10_000

// settle waits, at most Options.CloseWait, for what is queued or being
// written: a message is shown while its commit runs, and History and
// Search, which read the file, then find it. A failed commit is not its
// caller's error: the lines that are on disk are read.
func (s *Store) settle() {
	s.mu.Lock()
	c := s.writing
	if len(s.queue) > 0 {
		c = s.cur
		s.poke() // acknowledgements alone would wait lazyDelay
	}
	s.mu.Unlock()
	if c != nil {
		s.waitCommit(c)
	}
}

// History returns the last n lines (oldest first), of all conversations
// when peer is "", or of one: what peer sent, and direct messages to it.
// It waits for the commits under way first (settle).
func (s *Store) History(peer string, n int) ([]Line, error) {
	n = min(max(n, 0), MaxLines)
	if n == 0 {
		return nil, nil
	}
	s.settle()
	acked := s.ackedSnapshot()
	var lines []Line
	err := s.view(func(tx *bolt.Tx) error {
		hist := tx.Bucket(bHist)
		if peer != "" {
			defer dropPages(tx)
			return s.eachLine(tx, func(b foldBlock, i int) (bool, error) {
				return s.collect(tx, hist, b, i, peer, acked, &lines, n)
			}, nil)
		}
		c := hist.Cursor()
		for k, _ := c.Last(); k != nil && len(lines) < n; k, _ = c.Prev() {
			l, err := s.line(tx, hist, k, acked)
			if err != nil {
				return err
			}
			lines = append(lines, l)
		}
		return nil
	})
	slices.Reverse(lines)
	return lines, err
}

// collect appends line i of block b to lines when it is of peer's
// conversation ("" for all), and says whether to go on.
func (s *Store) collect(tx *bolt.Tx, hist *bolt.Bucket, b foldBlock, i int, peer string, acked map[string]uint64, lines *[]Line, limit int) (bool, error) {
	if peer != "" && !bytes.Equal(b.tag(i), tagOf(peer)) {
		return true, nil
	}
	l, err := s.line(tx, hist, key(b.first+uint64(i)), acked)
	if err != nil {
		return false, err
	}
	if peer == "" || l.Peer == peer {
		*lines = append(*lines, l)
	}
	return len(*lines) < limit, nil
}

// eachLine calls f for the lines of the search index, newest first: every
// line, or with q those whose text contains q, until f says stop.
func (s *Store) eachLine(tx *bolt.Tx, f func(b foldBlock, i int) (bool, error), q []byte) error {
	var idx []int
	return scanFold(tx, func(k, v []byte) (bool, error) {
		b, err := decodeFold(k, v)
		if err != nil {
			return false, fmt.Errorf("%w: search index block %x: %w", ErrCorrupt, k, err)
		}
		idx = idx[:0]
		if q == nil {
			for i := range b.n {
				idx = append(idx, i)
			}
		} else {
			line, at := 0, 0
			for {
				i := bytes.Index(b.texts[at:], q)
				if i < 0 {
					break
				}
				line += bytes.Count(b.texts[at:at+i], []byte{0})
				idx = append(idx, line)
				// Go on after the end of this line: one hit per line.
				e := bytes.IndexByte(b.texts[at+i:], 0)
				if e < 0 {
					break
				}
				at += i + e + 1
				line++
			}
		}
		for j := len(idx) - 1; j >= 0; j-- {
			more, err := f(b, idx[j])
			if err != nil || !more {
				return false, err
			}
		}
		return true, nil
	})
}

// Search returns up to limit lines whose text contains text, ignoring case
// (as strings.ToLower folds it), newest first; of one peer's conversation
// when peer is not "" (as History).
func (s *Store) Search(peer, text string, limit int) ([]Line, error) {
	q := []byte(fold(text))
	if len(q) == 0 || bytes.IndexByte(q, 0) >= 0 {
		return nil, errors.New("search: give a text to look for")
	}
	limit = min(max(limit, 0), MaxLines)
	if limit == 0 {
		return nil, nil
	}
	s.settle()
	acked := s.ackedSnapshot()
	var lines []Line
	err := s.view(func(tx *bolt.Tx) error {
		defer dropPages(tx)
		hist := tx.Bucket(bHist)
		return s.eachLine(tx, func(b foldBlock, i int) (bool, error) {
			return s.collect(tx, hist, b, i, peer, acked, &lines, limit)
		}, q)
	})
	return lines, err
}

// CountSince counts the lines received at or after t (scanning back from
// the newest until an older line).
func (s *Store) CountSince(t time.Time) (int, error) {
	n := 0
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bHist).Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			h, err := decodeHist(v)
			if err != nil {
				return fmt.Errorf("%w: history line %x: %w", ErrCorrupt, k, err)
			}
			if h.at < t.UnixNano() {
				break
			}
			if h.in {
				n++
			}
		}
		return nil
	})
	return n, err
}

// ackedSnapshot is how far each peer's outbox is acknowledged in memory.
func (s *Store) ackedSnapshot() map[string]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]uint64, len(s.mem.peers))
	for id, ps := range s.mem.peers {
		m[id] = ps.ackedUpto
	}
	return m
}

// line reads history line k and works out the delivery of a sent one: a
// recipient whose outbox still holds it (and did not acknowledge it) is
// waiting for it.
func (s *Store) line(tx *bolt.Tx, hist *bolt.Bucket, k []byte, acked map[string]uint64) (Line, error) {
	v := hist.Get(k)
	if v == nil || len(k) != 8 {
		return Line{}, fmt.Errorf("%w: history line %x missing", ErrCorrupt, k)
	}
	h, err := decodeHist(v)
	if err != nil {
		return Line{}, fmt.Errorf("%w: history line %x: %w", ErrCorrupt, k, err)
	}
	l := Line{Seq: binary.BigEndian.Uint64(k), In: h.in, Peer: h.peer, PeerName: h.name, Direct: h.direct,
		Text: h.text, Flags: h.chat, Sent: time.Unix(0, h.sent), At: time.Unix(0, h.at), MsgID: h.msgID, Epoch: h.epoch}
	if !h.in {
		outs := tx.Bucket(bOut)
		for _, r := range h.to {
			d := Delivery{Peer: r.id, Name: r.name, State: StateDelivered}
			switch {
			case r.state == stateDropped:
				d.State = StateDropped
			case h.msgID > acked[r.id]:
				if b := outs.Bucket([]byte(r.id)); b != nil && b.Get(key(h.msgID)) != nil {
					d.State = StateWaiting
				}
			}
			l.To = append(l.To, d)
		}
	}
	return l, nil
}

// dropPages lets go of the pages of the file that a scan mapped in: they
// stay in the page cache, but no longer count in the process's resident
// memory. The search index is read with pread (scanFold), but the lines
// found, up to MaxLines of them, are read through the mapping. It must
// run inside a transaction, which keeps bbolt from remapping the file.
func dropPages(tx *bolt.Tx) {
	addr := tx.DB().Info().Data
	if addr == 0 || tx.Size() <= 0 {
		return
	}
	syscall.Syscall(syscall.SYS_MADVISE, addr, uintptr(tx.Size()), syscall.MADV_DONTNEED)
}
