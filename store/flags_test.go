package store

import (
	"encoding/binary"
	"path/filepath"
	"testing"
	"time"
)

// chatAction is transport.ChatAction (the store does not import transport).
const chatAction = 1

// TestFlagsRoundTrip: a message's chat flags come back from the outbox and
// the history, sent or received, before and after reopening.
func TestFlagsRoundTrip(t *testing.T) {
	a, b := pid(1), pid(2)
	path := filepath.Join(t.TempDir(), "s.db")
	s := open(t, path, Options{})
	tests := []struct {
		name   string
		in     bool
		direct bool
		flags  uint8
	}{
		{"group line sent", false, false, 0},
		{"group action sent", false, false, chatAction},
		{"direct action sent", false, true, chatAction},
		{"unknown bits kept", false, true, 0x81},
		{"line received", true, false, 0},
		{"action received", true, false, chatAction},
		{"direct action received", true, true, chatAction},
	}
	recvID := uint64(0)
	for _, tt := range tests {
		if tt.in {
			recvID++
			_, c, err := s.Receive(In{From: a, Name: "alice", Epoch: 7, ID: recvID, Direct: tt.direct, Text: tt.name, Flags: tt.flags, Sent: time.Unix(1000, 0)})
			if err != nil {
				t.Fatal(err)
			}
			durable(t, c)
			continue
		}
		to := []Recipient{{ID: a, Name: "alice"}, {ID: b, Name: "bob"}}
		if tt.direct {
			to = to[:1]
		}
		c, err := s.Append(&Out{To: to, Direct: tt.direct, Text: tt.name, Flags: tt.flags})
		if err != nil {
			t.Fatal(err)
		}
		durable(t, c)
	}
	check := func(t *testing.T, s *Store) {
		waiting, err := s.Outbox(a, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := s.History("", 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if !tt.in {
					found := false
					for _, w := range waiting {
						if w.Text == tt.name {
							found = true
							if w.Flags != tt.flags || w.Direct != tt.direct {
								t.Errorf("outbox: flags %#x direct %v, want %#x %v", w.Flags, w.Direct, tt.flags, tt.direct)
							}
						}
					}
					if !found {
						t.Errorf("not in the outbox")
					}
				}
				found := false
				for _, l := range lines {
					if l.Text == tt.name {
						found = true
						if l.Flags != tt.flags || l.In != tt.in || l.Direct != tt.direct {
							t.Errorf("history: flags %#x in %v direct %v, want %#x %v %v", l.Flags, l.In, l.Direct, tt.flags, tt.in, tt.direct)
						}
					}
				}
				if !found {
					t.Errorf("not in the history")
				}
			})
		}
	}
	t.Run("open", func(t *testing.T) { check(t, s) })
	s.Close()
	s = open(t, path, Options{})
	t.Run("after reopen", func(t *testing.T) { check(t, s) })
}

// TestFlagsOldRecords: records written before flags were kept (they end
// with the text) read as flags 0, and a record without flags is written
// as before.
func TestFlagsOldRecords(t *testing.T) {
	// The layouts of format 1 as first written.
	oldOut := func(o outRec) []byte {
		b := []byte{recVersion, boolByte(o.direct)}
		b = binary.BigEndian.AppendUint64(b, uint64(o.sent))
		b = binary.BigEndian.AppendUint64(b, uint64(o.queued))
		b = binary.BigEndian.AppendUint64(b, o.seq)
		return seal(appendStr(b, o.text))
	}
	oldHist := func(h histRec) []byte {
		b := []byte{recVersion, boolByte(h.in) | boolByte(h.direct)<<1}
		b = appendStr(b, h.peer)
		b = appendStr(b, h.name)
		for _, v := range []uint64{h.epoch, h.msgID, uint64(h.sent), uint64(h.at)} {
			b = binary.BigEndian.AppendUint64(b, v)
		}
		b = binary.AppendUvarint(b, uint64(len(h.to)))
		for _, r := range h.to {
			b = append(appendStr(appendStr(b, r.id), r.name), r.state)
		}
		return seal(appendStr(b, h.text))
	}
	o := outRec{direct: true, sent: 5, queued: 6, seq: 7, text: "waves"}
	if got, err := decodeOut(oldOut(o)); err != nil || got != o {
		t.Errorf("old outbox record: %+v, %v; want %+v", got, err, o)
	}
	if string(o.encode()) != string(oldOut(o)) {
		t.Error("an outbox record without flags is not written as before")
	}
	h := histRec{direct: true, peer: pid(1), name: "alice", epoch: 1, msgID: 2, sent: 3, at: 4,
		to: []recipientRec{{id: pid(1), name: "alice"}}, text: "waves"}
	got, err := decodeHist(oldHist(h))
	if err != nil || got.chat != 0 || got.text != h.text || got.msgID != 2 || len(got.to) != 1 {
		t.Errorf("old history line: %+v, %v", got, err)
	}
	if string(h.encode()) != string(oldHist(h)) {
		t.Error("a history line without flags is not written as before")
	}
	h.chat = chatAction
	if got, err := decodeHist(h.encode()); err != nil || got.chat != chatAction {
		t.Errorf("history line with flags: %+v, %v", got, err)
	}
}

// TestShownMarks: what an earlier run received and never confirmed shown
// resurfaces once after a reopen (a kill between storing and showing);
// what was shown does not; records written before shown marks count as
// shown.
func TestShownMarks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	from := pid(1)
	var last *Commit
	for id := uint64(1); id <= 5; id++ {
		fresh, c, err := s.Receive(In{From: from, Name: "alice", Epoch: 7, ID: id, Text: "hi", Sent: time.Now()})
		if err != nil || !fresh {
			t.Fatalf("receive %d: fresh %v, %v", id, fresh, err)
		}
		last = c
	}
	if err := s.waitCommit(last); err != nil {
		t.Fatal(err)
	}
	s.MarkShown(from, 7, 3)
	if err := s.waitCommit(s.flush()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tests := []struct {
		epoch, id uint64
		want      bool
	}{
		{7, 2, false}, // shown
		{7, 3, false}, // shown
		{7, 4, true},  // stored, not shown: shown now
		{7, 4, false}, // once
		{7, 5, true},
		{7, 6, false}, // not received: fresh, not resurfaced
		{8, 4, false}, // another epoch
	}
	for _, tt := range tests {
		if got := s.Resurface(from, tt.epoch, tt.id); got != tt.want {
			t.Errorf("Resurface(epoch %d, id %d) = %v, want %v", tt.epoch, tt.id, got, tt.want)
		}
	}
	// What this run receives is never resurfaced: a resend of it is a
	// duplicate.
	if _, _, err := s.Receive(In{From: from, Name: "alice", Epoch: 7, ID: 6, Text: "hi", Sent: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if s.Resurface(from, 7, 6) {
		t.Error("a message of this run resurfaced")
	}
	// A record of the old format (no shown mark) counts as all shown.
	r, err := decodeRecv(seal(append(binary.BigEndian.AppendUint64(nil, 7), binary.BigEndian.AppendUint64(nil, 5)...)))
	if err != nil || r.shown != 5 {
		t.Errorf("old record: %+v, %v; want shown 5", r, err)
	}
}

// TestShownMarkQueued: a shown mark given while the messages it covers
// are still queued rides on the sender's last queued operation (no
// operation of its own), and is on disk with them; one given after
// another sender's operation is queued on its own.
func TestShownMarkQueued(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	gate, writing := make(chan struct{}), make(chan struct{}, 1)
	hook := func() error {
		select {
		case writing <- struct{}{}:
		default:
		}
		<-gate
		return nil
	}
	s, err := Open(path, Options{BeforeCommit: hook})
	if err != nil {
		t.Fatal(err)
	}
	a, b := pid(1), pid(2)
	recv := func(from string, id uint64) *Commit {
		t.Helper()
		fresh, c, err := s.Receive(In{From: from, Name: "x", Epoch: 7, ID: id, Text: "hi", Sent: time.Now()})
		if err != nil || !fresh {
			t.Fatalf("receive %d: fresh %v, %v", id, fresh, err)
		}
		return c
	}
	queued := func() int {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.queue)
	}
	recv(a, 1)
	<-writing // its commit waits at the gate: what follows stays queued
	for id := uint64(2); id <= 4; id++ {
		recv(a, id)
	}
	n := queued()
	s.MarkShown(a, 7, 3)
	if got := queued(); got != n {
		t.Errorf("shown mark after the sender's own message: %d operations queued, want %d", got, n)
	}
	recv(b, 1)
	s.MarkShown(a, 7, 3) // already marked: nothing
	s.MarkShown(b, 7, 1)
	if got := queued(); got != n+1 {
		t.Errorf("%d operations queued, want %d", got, n+1)
	}
	last := recv(a, 5)
	close(gate)
	if err := s.waitCommit(last); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(path, Options{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tt := range []struct {
		from string
		id   uint64
		want bool
	}{{a, 3, false}, {a, 4, true}, {a, 5, true}, {b, 1, false}} {
		if got := s.Resurface(tt.from, 7, tt.id); got != tt.want {
			t.Errorf("Resurface(%.4s, %d) = %v, want %v", tt.from, tt.id, got, tt.want)
		}
	}
}
