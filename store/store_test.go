package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(crashChild())
	}
	code := m.Run()
	for _, p := range historyPaths {
		os.RemoveAll(filepath.Dir(p))
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// wait bounds every wait in tests; nothing asserts speed.
const wait = 10 * time.Second

// pid makes a distinct, valid peer id.
func pid(i int) string {
	s := strconv.FormatInt(int64(i), 32)
	s = strings.ToUpper(strings.NewReplacer("0", "Q", "1", "R", "8", "S", "9", "T").Replace(s))
	return s + strings.Repeat("A", IDLen-len(s))
}

func open(t testing.TB, path string, o Options) *Store {
	t.Helper()
	s, err := Open(path, o)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func durable(t testing.TB, c *Commit) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.Wait(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

func appendTo(t testing.TB, s *Store, text string, peers ...string) uint64 {
	t.Helper()
	m := &Out{Text: text, Direct: len(peers) == 1}
	for _, p := range peers {
		m.To = append(m.To, Recipient{ID: p, Name: "n" + p[:3]})
	}
	c, err := s.Append(m)
	if err != nil {
		t.Fatalf("append %q: %v", text, err)
	}
	durable(t, c)
	return m.ID
}

func ids(w []Waiting) []uint64 {
	var out []uint64
	for _, m := range w {
		out = append(out, m.ID)
	}
	return out
}

func TestOutbox(t *testing.T) {
	a, b := pid(1), pid(2)
	tests := []struct {
		name string
		// run does the steps and returns what waits for a and b.
		run        func(t *testing.T, s *Store) []uint64
		wantCountA Count
		wantWindow []uint64
	}{
		{"appended messages wait in id order", func(t *testing.T, s *Store) []uint64 {
			x := appendTo(t, s, "one", a)
			y := appendTo(t, s, "two", a, b)
			return []uint64{x, y}
		}, Count{2, 6}, nil},
		{"an ack removes up to its id", func(t *testing.T, s *Store) []uint64 {
			x := appendTo(t, s, "one", a)
			y := appendTo(t, s, "two", a)
			if n := s.Acked(a, x); n != 1 {
				t.Errorf("acked removed %d, want 1", n)
			}
			if n := s.Acked(a, x); n != 0 {
				t.Errorf("the same ack again removed %d, want 0", n)
			}
			return []uint64{y}
		}, Count{1, 3}, nil},
		{"an ack past every id removes what is there only", func(t *testing.T, s *Store) []uint64 {
			appendTo(t, s, "one", a)
			if n := s.Acked(a, 1<<60); n != 1 {
				t.Errorf("acked removed %d, want 1", n)
			}
			z := appendTo(t, s, "later", a)
			return []uint64{z}
		}, Count{1, 5}, nil},
		{"an ack for another peer leaves a alone", func(t *testing.T, s *Store) []uint64 {
			x := appendTo(t, s, "one", a, b)
			s.Acked(b, x)
			return []uint64{x}
		}, Count{1, 3}, nil},
		{"drop discards and counts", func(t *testing.T, s *Store) []uint64 {
			appendTo(t, s, "one", a)
			appendTo(t, s, "two", a, b)
			n, err := s.Drop(a)
			if err != nil || n != 2 {
				t.Errorf("drop = %d, %v; want 2", n, err)
			}
			if c := s.PendingOf(b); c.Messages != 1 {
				t.Errorf("b has %d waiting, want 1", c.Messages)
			}
			return nil
		}, Count{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s.db")
			s := open(t, path, Options{})
			want := tt.run(t, s)
			if got := s.PendingOf(a); got != tt.wantCountA {
				t.Errorf("count of a = %+v, want %+v", got, tt.wantCountA)
			}
			w, err := s.Outbox(a, 0, 100)
			if err != nil || !slices.Equal(ids(w), want) {
				t.Errorf("outbox of a = %v, %v; want %v", ids(w), err, want)
			}
			// The same after a reopen (acks reach the disk with a commit).
			durable(t, s.flush())
			s.Close()
			s = open(t, path, Options{})
			if got := s.PendingOf(a); got != tt.wantCountA {
				t.Errorf("after reopen: count of a = %+v, want %+v", got, tt.wantCountA)
			}
			w, err = s.Outbox(a, 0, 100)
			if err != nil || !slices.Equal(ids(w), want) {
				t.Errorf("after reopen: outbox of a = %v, %v; want %v", ids(w), err, want)
			}
		})
	}
}

// flush queues nothing but a commit: once it is durable, so is what was
// queued before.
func (s *Store) flush() *Commit {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.enqueueLocked(op{kind: opNop})
}

func TestOutboxWindow(t *testing.T) {
	a := pid(1)
	s := open(t, filepath.Join(t.TempDir(), "s.db"), Options{})
	var all []uint64
	for i := range 25 {
		all = append(all, appendTo(t, s, fmt.Sprint("m", i), a))
	}
	var got []uint64
	after := uint64(0)
	for {
		w, err := s.Outbox(a, after, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(w) == 0 {
			break
		}
		if len(w) > 7 {
			t.Fatalf("window of %d, asked for 7", len(w))
		}
		got = append(got, ids(w)...)
		after = w[len(w)-1].ID
	}
	if !slices.Equal(got, all) {
		t.Fatalf("windows gave %v, want %v", got, all)
	}
	s.Acked(a, all[9])
	w, _ := s.Outbox(a, 0, 3)
	if len(w) == 0 || w[0].ID != all[10] {
		t.Fatalf("after an ack the window starts at %v, want %d", ids(w), all[10])
	}
	if w[0].Text != "m10" || w[0].Queued.IsZero() || w[0].Sent.IsZero() || !w[0].Direct {
		t.Fatalf("window entry %+v", w[0])
	}
}

func TestBounds(t *testing.T) {
	a, b, c := pid(1), pid(2), pid(3)
	small := Options{PeerMessages: 3, PeerBytes: 100, TotalMessages: 5, TotalBytes: 150}
	tests := []struct {
		name  string
		fill  func(t *testing.T, s *Store)
		to    []string
		text  string
		bound string   // "" when accepted by all
		not   []string // peers refused
	}{
		{"peer message bound", func(t *testing.T, s *Store) {
			for range 3 {
				appendTo(t, s, "x", a)
			}
		}, []string{a}, "x", "messages", []string{a}},
		{"peer byte bound", func(t *testing.T, s *Store) {
			appendTo(t, s, strings.Repeat("x", 90), a)
		}, []string{a}, strings.Repeat("y", 11), "bytes", []string{a}},
		{"exactly at the byte bound is fine", func(t *testing.T, s *Store) {
			appendTo(t, s, strings.Repeat("x", 90), a)
		}, []string{a}, strings.Repeat("y", 10), "", nil},
		{"total message bound", func(t *testing.T, s *Store) {
			appendTo(t, s, "x", a)
			appendTo(t, s, "x", a)
			appendTo(t, s, "x", b)
			appendTo(t, s, "x", b)
			appendTo(t, s, "x", c)
		}, []string{c}, "x", "total messages", []string{c}},
		{"total byte bound", func(t *testing.T, s *Store) {
			appendTo(t, s, strings.Repeat("x", 80), a)
			appendTo(t, s, strings.Repeat("x", 60), b)
		}, []string{c}, strings.Repeat("x", 11), "total bytes", []string{c}},
		{"group with one full peer goes to the others", func(t *testing.T, s *Store) {
			for range 3 {
				appendTo(t, s, "x", b)
			}
		}, []string{a, b, c}, "hello", "messages", []string{b}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, filepath.Join(t.TempDir(), "s.db"), small)
			tt.fill(t, s)
			before := s.Pending()
			m := &Out{Text: tt.text, Direct: len(tt.to) == 1}
			for _, p := range tt.to {
				m.To = append(m.To, Recipient{ID: p, Name: "bob"})
			}
			commit, err := s.Append(m)
			if tt.bound == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				durable(t, commit)
				return
			}
			var fe *FullError
			if !errors.As(err, &fe) || fe.Bound != tt.bound || !errors.Is(err, ErrFull) {
				t.Fatalf("err = %v, want a FullError on %q", err, tt.bound)
			}
			if !strings.Contains(err.Error(), "bob") || !strings.Contains(err.Error(), fe.Peer[:8]) {
				t.Errorf("error %q does not name the peer", err)
			}
			if got := Refused(err); !slices.Equal(got, tt.not) {
				t.Errorf("refused %v, want %v", got, tt.not)
			}
			if len(tt.not) == len(tt.to) {
				if commit != nil {
					t.Errorf("a commit for a message queued for no one")
				}
				if got := s.Pending(); !sameCounts(got, before) {
					t.Errorf("pending changed from %v to %v", before, got)
				}
				return
			}
			durable(t, commit)
			for _, p := range tt.to {
				w, _ := s.Outbox(p, 0, 100)
				has := len(w) > 0 && w[len(w)-1].Text == tt.text
				if has == slices.Contains(tt.not, p) {
					t.Errorf("peer %.8s has the message: %v", p, has)
				}
			}
		})
	}
}

func sameCounts(a, b map[string]Count) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestIDsAndEpochAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.db")
	s := open(t, path, Options{})
	epoch := s.Epoch()
	if epoch == 0 {
		t.Fatal("epoch 0")
	}
	last := appendTo(t, s, "one", pid(1))
	s.Close()
	for i := range 3 {
		s = open(t, path, Options{})
		if s.Epoch() != epoch {
			t.Fatalf("epoch changed on reopen: %x, was %x", s.Epoch(), epoch)
		}
		id := appendTo(t, s, "again", pid(1))
		if id <= last {
			t.Fatalf("reopen %d: id %d after %d", i, id, last)
		}
		last = id
		s.Close()
	}
	// A store made anew (the old one moved away) has another epoch.
	os.Rename(path, path+".old")
	s = open(t, path, Options{})
	if s.Epoch() == epoch {
		t.Fatal("a new store has the old epoch")
	}
}

func TestIDLeaseRenewed(t *testing.T) {
	// More ids than one lease, without reopening: the ceiling follows.
	s := open(t, filepath.Join(t.TempDir(), "s.db"), Options{PeerMessages: 1 << 30, TotalMessages: 1 << 30})
	s.mu.Lock()
	s.nextID = s.ceilingDur - 3 // as if a lease were nearly used
	s.mu.Unlock()
	prev := uint64(0)
	for i := range 10 {
		id := appendTo(t, s, "x", pid(1))
		if id <= prev {
			t.Fatalf("append %d: id %d after %d", i, id, prev)
		}
		prev = id
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nextID >= s.ceilingDur {
		t.Fatalf("next id %d not under the ceiling on disk %d", s.nextID, s.ceilingDur)
	}
}

func TestReceive(t *testing.T) {
	a := pid(1)
	type step struct {
		epoch, id uint64
		fresh     bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"new ids are fresh", []step{{1, 1, true}, {1, 2, true}, {1, 5, true}}},
		{"the same id is not", []step{{1, 3, true}, {1, 3, false}}},
		{"an older id is not", []step{{1, 3, true}, {1, 2, false}}},
		{"a new epoch starts again", []step{{1, 7, true}, {2, 1, true}, {2, 1, false}, {2, 2, true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s.db")
			s := open(t, path, Options{})
			for i, st := range tt.steps {
				fresh, c, err := s.Receive(In{From: a, Name: "alice", Epoch: st.epoch, ID: st.id, Text: fmt.Sprint("m", i), Sent: time.Now()})
				if err != nil {
					t.Fatal(err)
				}
				if fresh != st.fresh {
					t.Fatalf("step %d (%d/%d): fresh %v, want %v", i, st.epoch, st.id, fresh, st.fresh)
				}
				durable(t, c)
			}
			// After a restart nothing seen before is fresh.
			s.Close()
			s = open(t, path, Options{})
			for _, st := range tt.steps {
				fresh, c, err := s.Receive(In{From: a, Epoch: tt.steps[len(tt.steps)-1].epoch, ID: st.id, Text: "again"})
				if err != nil {
					t.Fatal(err)
				}
				durable(t, c)
				if fresh && st.epoch == tt.steps[len(tt.steps)-1].epoch {
					t.Fatalf("after reopen %d/%d is fresh", st.epoch, st.id)
				}
			}
		})
	}
}

func TestReceiveDuplicateWaitsForTheOriginal(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "s.db"), Options{})
	m := In{From: pid(1), Epoch: 9, ID: 1, Text: "hi"}
	fresh, c1, _ := s.Receive(m)
	again, c2, _ := s.Receive(m)
	if !fresh || again {
		t.Fatalf("fresh %v, again %v", fresh, again)
	}
	durable(t, c2)
	select {
	case <-c1.Done():
	default:
		t.Fatal("the duplicate's commit was done before the original's")
	}
}

func TestBadInput(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "s.db"), Options{})
	good := Recipient{ID: pid(1), Name: "bob"}
	outs := []struct {
		name string
		m    Out
	}{
		{"no recipient", Out{Text: "x"}},
		{"short id", Out{To: []Recipient{{ID: "ABC"}}, Text: "x"}},
		{"lowercase id", Out{To: []Recipient{{ID: strings.ToLower(pid(1))}}, Text: "x"}},
		{"long name", Out{To: []Recipient{{ID: pid(1), Name: strings.Repeat("n", 65)}}, Text: "x"}},
		{"twice the same", Out{To: []Recipient{good, good}, Text: "x"}},
		{"direct to two", Out{Direct: true, To: []Recipient{good, {ID: pid(2)}}, Text: "x"}},
		{"text too long", Out{To: []Recipient{good}, Text: strings.Repeat("x", MaxText+1)}},
		{"not UTF-8", Out{To: []Recipient{good}, Text: "\xff"}},
		{"NUL", Out{To: []Recipient{good}, Text: "a\x00b"}},
	}
	for _, tt := range outs {
		t.Run(tt.name, func(t *testing.T) {
			if c, err := s.Append(&tt.m); err == nil || c != nil {
				t.Fatalf("accepted")
			}
		})
	}
	if _, _, err := s.Receive(In{From: pid(1), ID: 0, Text: "x"}); err == nil {
		t.Error("id 0 accepted")
	}
	if len(s.Pending()) != 0 {
		t.Errorf("pending %v", s.Pending())
	}
}

func TestHistoryAndSearch(t *testing.T) {
	a, b := pid(1), pid(2)
	path := filepath.Join(t.TempDir(), "s.db")
	s := open(t, path, Options{})
	// Enough lines for several search blocks.
	for i := range 300 {
		text := fmt.Sprintf("line %d of the lunch talk", i)
		switch i {
		case 100:
			text = "Meet at the CAFÉ at noon"
		case 251:
			text = "the café is closed"
		}
		if i%2 == 0 {
			_, c, err := s.Receive(In{From: a, Name: "alice", Epoch: 1, ID: uint64(i + 1), Text: text, Sent: time.Unix(1000, 0)})
			if err != nil {
				t.Fatal(err)
			}
			durable(t, c)
		} else {
			appendTo(t, s, text, b)
		}
	}
	group := appendTo(t, s, "to everyone", a, b)
	s.Acked(a, group)
	check := func(t *testing.T, s *Store) {
		tests := []struct {
			name  string
			peer  string
			query string
			limit int
			want  []string
		}{
			{"case-insensitive, newest first", "", "café", 10, []string{"the café is closed", "Meet at the CAFÉ at noon"}},
			{"upper case query", "", "CAFÉ", 10, []string{"the café is closed", "Meet at the CAFÉ at noon"}},
			{"limit", "", "lunch", 3, []string{"line 299 of the lunch talk", "line 298 of the lunch talk", "line 297 of the lunch talk"}},
			{"peer filter", a, "café", 10, []string{"Meet at the CAFÉ at noon"}},
			{"no match", "", "zebra", 10, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				lines, err := s.Search(tt.peer, tt.query, tt.limit)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, l := range lines {
					got = append(got, l.Text)
				}
				if !slices.Equal(got, tt.want) {
					t.Fatalf("got %q, want %q", got, tt.want)
				}
			})
		}
		last, err := s.History("", 3)
		if err != nil || len(last) != 3 {
			t.Fatalf("history: %v, %v", last, err)
		}
		g := last[2]
		if g.Text != "to everyone" || g.In || g.Peer != "" || len(g.To) != 2 {
			t.Fatalf("last line %+v", g)
		}
		for _, d := range g.To {
			want := map[string]DeliveryState{a: StateDelivered, b: StateWaiting}[d.Peer]
			if d.State != want {
				t.Errorf("delivery to %.8s: %v, want %v", d.Peer, d.State, want)
			}
		}
		ofA, _ := s.History(a, 2)
		if len(ofA) != 2 || !ofA[1].In || ofA[1].Peer != a || ofA[1].PeerName != "alice" || ofA[1].Text != "line 298 of the lunch talk" {
			t.Fatalf("history of a: %+v", ofA)
		}
		if !ofA[1].Sent.Equal(time.Unix(1000, 0)) || ofA[1].At.IsZero() || ofA[1].Epoch != 1 || ofA[1].MsgID != 299 {
			t.Fatalf("times and ids of a line: %+v", ofA[1])
		}
		ofB, _ := s.History(b, 1)
		if len(ofB) != 1 || ofB[0].In || !ofB[0].Direct || ofB[0].Peer != b || ofB[0].To[0].State != StateWaiting {
			t.Fatalf("history of b: %+v", ofB)
		}
		if n, err := s.CountSince(time.Time{}); err != nil || n != 150 {
			t.Fatalf("count since the start: %d, %v; want 150", n, err)
		}
		if n, _ := s.CountSince(time.Now().Add(time.Hour)); n != 0 {
			t.Fatalf("count since the future: %d", n)
		}
	}
	t.Run("open", func(t *testing.T) { check(t, s) })
	durable(t, s.flush())
	s.Close()
	s = open(t, path, Options{})
	t.Run("after reopen", func(t *testing.T) { check(t, s) })
	if _, err := s.Search("", "", 5); err == nil {
		t.Error("an empty search was accepted")
	}
	// A drop shows in the history.
	if n, err := s.Drop(b); err != nil || n != 151 {
		t.Fatalf("drop b: %d, %v", n, err)
	}
	last, _ := s.History("", 1)
	for _, d := range last[0].To {
		if d.Peer == b && d.State != StateDropped {
			t.Fatalf("dropped message shows %v", d.State)
		}
	}
}

func TestNoHistory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s := open(t, path, Options{NoHistory: true})
	id := appendTo(t, s, "secret", pid(1))
	_, c, _ := s.Receive(In{From: pid(2), Epoch: 1, ID: 4, Text: "secret too"})
	durable(t, c)
	s.Close()
	s = open(t, path, Options{NoHistory: true})
	if l, _ := s.History("", 10); len(l) != 0 {
		t.Fatalf("history kept: %+v", l)
	}
	if l, _ := s.Search("", "secret", 10); len(l) != 0 {
		t.Fatalf("search found %+v", l)
	}
	if w, _ := s.Outbox(pid(1), 0, 10); len(w) != 1 || w[0].ID != id {
		t.Fatalf("outbox not kept: %+v", w)
	}
	if fresh, _, _ := s.Receive(In{From: pid(2), Epoch: 1, ID: 4, Text: "again"}); fresh {
		t.Fatal("received id forgotten")
	}
	// History on again starts where it is.
	s.Close()
	s = open(t, path, Options{})
	appendTo(t, s, "public", pid(1))
	if l, _ := s.Search("", "public", 10); len(l) != 1 {
		t.Fatalf("search after history on: %+v", l)
	}
}

func TestSecondOpenRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	open(t, path, Options{})
	start := time.Now()
	_, err := Open(path, Options{LockWait: 100 * time.Millisecond})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), path) {
		t.Fatalf("second open: %v", err)
	}
	if time.Since(start) > wait {
		t.Fatal("the second open was not bounded")
	}
}

func TestCloseWithPending(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var commits []*Commit
	for i := range 200 {
		c, err := s.Append(&Out{To: []Recipient{{ID: pid(1)}}, Text: fmt.Sprint(i)})
		if err != nil {
			t.Fatal(err)
		}
		commits = append(commits, c)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range commits {
		if c.Err() != nil {
			t.Fatalf("a commit pending at Close: %v", c.Err())
		}
	}
	if _, err := s.Append(&Out{To: []Recipient{{ID: pid(1)}}, Text: "late"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	s = open(t, path, Options{})
	if c := s.PendingOf(pid(1)); c.Messages != 200 {
		t.Fatalf("after reopen %d waiting, want 200", c.Messages)
	}
}

func TestFilePermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "lanchat")
	path := filepath.Join(dir, "s.db")
	open(t, path, Options{}).Close()
	os.Chmod(dir, 0o755) // made by another part of lanchat, say
	os.Chmod(path, 0o644)
	open(t, path, Options{})
	for p, want := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, path: 0o600} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode() != want {
			t.Errorf("%s: %v, %v; want %v", p, fi.Mode(), err, want)
		}
	}
}

func TestConcurrentAppendAck(t *testing.T) {
	// Many appenders share commits; acks run beside them.
	s := open(t, filepath.Join(t.TempDir(), "s.db"), Options{})
	var wg sync.WaitGroup
	const per, workers = 100, 8
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := pid(w)
			for i := range per {
				c, err := s.Append(&Out{To: []Recipient{{ID: p}}, Direct: true, Text: fmt.Sprint(i)})
				if err != nil {
					t.Error(err)
					return
				}
				if i%10 == 9 {
					durable(t, c)
					w, _ := s.Outbox(p, 0, 5)
					if len(w) > 0 {
						s.Acked(p, w[len(w)-1].ID)
					}
				}
			}
		}()
	}
	wg.Wait()
	durable(t, s.flush())
	total := 0
	for w := range workers {
		p := pid(w)
		list, _ := s.Outbox(p, 0, 1000)
		if got := s.PendingOf(p).Messages; got != len(list) {
			t.Errorf("peer %d: count %d, outbox %d", w, got, len(list))
		}
		total += len(list)
	}
	if s.Total().Messages != total {
		t.Errorf("total %d, sum %d", s.Total().Messages, total)
	}
}

// The crash test: a child process appends and receives in a loop and
// prints what it saw durable; it is killed with SIGKILL; every printed
// message must be there after reopening, and ids never repeat.

const childEnv = "LANCHAT_STORE_CRASH_CHILD"

func crashChild() int {
	s, err := Open(os.Getenv(childEnv), Options{PeerMessages: 1 << 20, TotalMessages: 1 << 20})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	print := func(format string, args ...any) {
		mu.Lock()
		fmt.Fprintf(out, format, args...)
		out.Flush()
		mu.Unlock()
	}
	print("epoch %d\n", s.Epoch())
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				if w == 3 {
					id := uint64(time.Now().UnixNano())
					fresh, c, err := s.Receive(In{From: pid(99), Epoch: 5, ID: id, Text: "in"})
					if err == nil && fresh && c.Wait(context.Background()) == nil {
						print("recv %d\n", id)
					}
					continue
				}
				m := &Out{To: []Recipient{{ID: pid(w)}, {ID: pid(w + 10)}}, Text: fmt.Sprintf("w%d-%d", w, i)}
				c, err := s.Append(m)
				if err != nil {
					print("error %v\n", err)
					return
				}
				if c.Wait(context.Background()) == nil {
					print("ok %d %s\n", m.ID, m.Text)
				}
			}
		}()
	}
	wg.Wait()
	return 0
}

func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	path := filepath.Join(t.TempDir(), "s.db")
	seen := map[uint64]string{}
	var lastRecv uint64
	var epoch string
	for round := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+path)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		n := 0
		var roundIDs []uint64
	read:
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			switch f[0] {
			case "epoch":
				if epoch != "" && f[1] != epoch {
					t.Fatalf("round %d: epoch %s, was %s", round, f[1], epoch)
				}
				epoch = f[1]
			case "ok":
				id, _ := strconv.ParseUint(f[1], 10, 64)
				if _, dup := seen[id]; dup {
					t.Fatalf("round %d: id %d used twice", round, id)
				}
				seen[id] = f[2]
				roundIDs = append(roundIDs, id)
				n++
			case "recv":
				lastRecv, _ = strconv.ParseUint(f[1], 10, 64)
			case "error":
				t.Fatalf("child: %s", sc.Text())
			}
			if n == 300+round*200 {
				cmd.Process.Signal(syscall.SIGKILL)
				break read
			}
		}
		cmd.Process.Signal(syscall.SIGKILL)
		ended := make(chan struct{})
		go func() { cmd.Wait(); close(ended) }()
		select {
		case <-ended:
		case <-time.After(wait):
			t.Fatal("child did not end")
		}
		cancel()
		s, err := Open(path, Options{PeerMessages: 1 << 20, TotalMessages: 1 << 20})
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		if name, _ := s.MovedAside(); name != "" {
			t.Fatalf("round %d: moved aside after a kill", round)
		}
		// Every message seen durable is in both outboxes, intact.
		have := map[uint64]string{}
		for w := range 3 {
			for _, p := range []string{pid(w), pid(w + 10)} {
				list, err := s.Outbox(p, 0, 1<<20)
				if err != nil {
					t.Fatalf("round %d: outbox: %v", round, err)
				}
				for _, m := range list {
					if prev, ok := have[m.ID]; ok && prev != m.Text {
						t.Fatalf("id %d: %q and %q", m.ID, prev, m.Text)
					}
					have[m.ID] = m.Text
				}
			}
		}
		for id, text := range seen {
			if have[id] != text {
				t.Fatalf("round %d: durable message %d %q lost (found %q)", round, id, text, have[id])
			}
		}
		// History holds each message once.
		lines, err := s.History("", MaxLines)
		if err != nil {
			t.Fatal(err)
		}
		outLines := map[uint64]int{}
		for _, l := range lines {
			if !l.In {
				outLines[l.MsgID]++
			}
		}
		for id := range seen {
			if len(lines) < MaxLines && outLines[id] != 1 {
				t.Fatalf("round %d: message %d in the history %d times", round, id, outLines[id])
			}
		}
		if lastRecv != 0 {
			if fresh, _, _ := s.Receive(In{From: pid(99), Epoch: 5, ID: lastRecv, Text: "again"}); fresh {
				t.Fatalf("round %d: a message received durably is fresh again", round)
			}
		}
		next := appendTo(t, s, "after", pid(0))
		for id := range seen {
			if next <= id {
				t.Fatalf("round %d: id %d after %d", round, next, id)
			}
		}
		seen[next] = "after"
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: %d messages seen durable before the kill, %d waiting after", round, len(roundIDs), len(have))
	}
}
