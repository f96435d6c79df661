package store

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// fill makes a store with n history lines and a few waiting messages, and
// closes it.
func fill(t *testing.T, path string, n int) {
	t.Helper()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var last *Commit
	for i := range n {
		c, err := s.Append(&Out{To: []Recipient{{ID: pid(1), Name: "bob"}}, Direct: true, Text: fmt.Sprintf("message number %d with some words", i)})
		if err != nil {
			t.Fatal(err)
		}
		last = c
		if i%100 == 99 {
			durable(t, c)
			w, _ := s.Outbox(pid(1), 0, 100)
			s.Acked(pid(1), w[len(w)-1].ID)
		}
	}
	durable(t, last)
	if _, err := s.Append(&Out{To: []Recipient{{ID: pid(2)}}, Text: "UNIQUE-MARKER-TEXT"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptMovedAside(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		{"truncated to half", func(t *testing.T, path string) {
			fi, _ := os.Stat(path)
			os.Truncate(path, fi.Size()/2)
		}},
		{"truncated to one page", func(t *testing.T, path string) { os.Truncate(path, 4096) }},
		{"header overwritten", func(t *testing.T, path string) { overwrite(t, path, 0, 8192) }},
		{"not a store at all", func(t *testing.T, path string) {
			os.WriteFile(path, []byte("hello, I am a text file\n"), 0o600)
		}},
		{"marked damaged by an earlier run", func(t *testing.T, path string) {
			os.WriteFile(path+".damaged", []byte("checksum mismatch"), 0o600)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "s.db")
			fill(t, path, 2000)
			s0, _ := Open(path, Options{})
			epoch := s0.Epoch()
			s0.Close()
			tt.damage(t, path)
			before, _ := os.ReadFile(path)
			s, err := Open(path, Options{})
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			defer s.Close()
			name, why := s.MovedAside()
			if name == "" || why == nil || !strings.HasPrefix(name, path+".corrupt-") {
				t.Fatalf("moved aside to %q (%v)", name, why)
			}
			if got, _ := os.ReadFile(name); !bytes.Equal(got, before) {
				t.Fatal("the damaged file was not kept as it was")
			}
			if s.Epoch() == epoch {
				t.Fatal("the fresh store has the old epoch")
			}
			if len(s.Pending()) != 0 {
				t.Fatalf("fresh store has pending %v", s.Pending())
			}
			appendTo(t, s, "works", pid(1))
			if _, err := os.Stat(path + ".damaged"); err == nil {
				t.Fatal("the damage mark is still there")
			}
		})
	}
}

func overwrite(t *testing.T, path string, off, n int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(off), uint64(n)))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// Damage that Open does not read (an old line) is found when it is read:
// the read fails with ErrCorrupt, never a panic or a wrong line, and the
// next Open moves the file aside.
func TestCorruptFoundLater(t *testing.T) {
	for _, where := range []string{"in a line's text", "random bytes in the middle"} {
		t.Run(where, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s.db")
			fill(t, path, 2000)
			b, _ := os.ReadFile(path)
			switch where {
			case "in a line's text":
				i := bytes.Index(b, []byte("message number 1000 "))
				if i < 0 {
					t.Fatal("text not found in the file")
				}
				overwrite(t, path, int64(i), 4)
			default:
				overwrite(t, path, int64(len(b)/2), 512)
			}
			s, err := Open(path, Options{})
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			name, _ := s.MovedAside()
			readErr := func() error {
				if _, err := s.History("", MaxLines); err != nil {
					return err
				}
				_, err := s.Search("", "message", MaxLines)
				return err
			}()
			s.Close()
			switch {
			case name != "":
				t.Logf("moved aside at Open: the damage was in what Open reads")
			case readErr == nil && where == "in a line's text":
				t.Fatal("a damaged line was read without error")
			case readErr == nil:
				t.Logf("the damage fell where nothing reads (free pages)")
				return
			case !errors.Is(readErr, ErrCorrupt):
				t.Fatalf("read error %v, want ErrCorrupt", readErr)
			default:
				s, err := Open(path, Options{})
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				if name, _ := s.MovedAside(); name == "" {
					t.Fatal("a store found damaged was not moved aside at the next Open")
				}
			}
		})
	}
}

// TestDiskFull fills a small tmpfs: the message that does not fit is
// refused by Append, which looks at the free space (or, with that look
// blinded, its commit fails with ErrDiskFull); nothing stored before is
// lost, and appends work again once there is space.
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	tests := []struct {
		name string
		// blind makes the store's look at the free space fail: only
		// the commit finds the disk full.
		blind bool
	}{
		{"refused up front", false},
		{"commit fails", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			mnt := filepath.Join(dir, "small")
			os.Mkdir(mnt, 0o700)
			if out, err := exec.Command("timeout", "10", "mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt).CombinedOutput(); err != nil {
				t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
			}
			t.Cleanup(func() {
				if out, err := exec.Command("timeout", "10", "umount", mnt).CombinedOutput(); err != nil {
					t.Errorf("umount %s: %v: %s", mnt, err, out)
				}
			})
			filler := filepath.Join(mnt, "filler")
			os.WriteFile(filler, make([]byte, 256<<10), 0o600)
			path := filepath.Join(mnt, "s.db")
			s, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if tt.blind {
				s.statfs = func(string) (int64, error) { return 0, errors.New("blind") }
				s.refreshFree()
			}
			text := strings.Repeat("x", 2000)
			stored := 0
			var full error
			upFront := false
			for i := 0; i < 2000 && full == nil; i++ {
				c, err := s.Append(&Out{To: []Recipient{{ID: pid(1)}}, Text: fmt.Sprint(i, text)})
				if err != nil {
					full, upFront = err, true
					break
				}
				if err := c.Wait(t.Context()); err != nil {
					full = err
					break
				}
				stored++
			}
			if !errors.Is(full, ErrDiskFull) {
				t.Fatalf("after %d appends: %v, want ErrDiskFull", stored, full)
			}
			if upFront == tt.blind {
				t.Fatalf("refused by Append: %v, want %v (%v)", upFront, !tt.blind, full)
			}
			if tt.blind && !errors.Is(full, syscall.ENOSPC) {
				t.Fatalf("commit failed with %v, want ENOSPC", full)
			}
			if !strings.Contains(full.Error(), path) || !strings.Contains(full.Error(), "space") {
				t.Errorf("error %q does not name the store and the space", full)
			}
			if stored == 0 {
				t.Errorf("nothing fitted")
			}
			if got := s.PendingOf(pid(1)).Messages; got != stored {
				t.Fatalf("count %d after the failure, %d stored", got, stored)
			}
			if w, _ := s.Outbox(pid(1), 0, 10_000); len(w) != stored {
				t.Fatalf("outbox %d after the failure, %d stored", len(w), stored)
			}
			os.Remove(filler)
			s.refreshFree()
			appendTo(t, s, "space again", pid(1))
			s.Close()
			s2, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s2.Close()
			if name, _ := s2.MovedAside(); name != "" {
				t.Fatal("moved aside after a full disk")
			}
			if w, _ := s2.Outbox(pid(1), 0, 10_000); len(w) != stored+1 || w[len(w)-1].Text != "space again" {
				t.Fatalf("after reopen %d waiting, want %d", len(w), stored+1)
			}
			t.Logf("%d messages of 2 KB fitted; the next failed with: %v", stored, full)
		})
	}
}

func FuzzDecode(f *testing.F) {
	h := histRec{in: true, direct: true, peer: pid(1), name: "alice", epoch: 3, msgID: 9, sent: 5, at: 6, text: "héllo"}
	g := histRec{peer: "", msgID: 10, to: []recipientRec{{id: pid(1), name: "a"}, {id: pid(2), state: stateDropped}}, text: "all"}
	o := outRec{direct: true, sent: 1, queued: 2, seq: 3, text: "hi"}
	for _, seed := range [][]byte{h.encode(), g.encode(), o.encode(), recvRec{1, 2, 1}.encode(), seal([]byte("\x00\x02AAAAAAAA\x00\x00\x00\x00\x00\x00\x00\x00a\x00b\x00")), nil, {1, 2, 3, 4, 5}} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if h, err := decodeHist(b); err == nil {
			if h2, err := decodeHist(h.encode()); err != nil || h2.text != h.text || len(h2.to) != len(h.to) {
				t.Fatalf("history line does not round-trip: %v", err)
			}
		}
		if o, err := decodeOut(b); err == nil {
			n, err := outTextLen(b)
			if err != nil || n != len(o.text) {
				t.Fatalf("outTextLen %d, %v; text %d", n, err, len(o.text))
			}
		}
		decodeRecv(b)
		loadFold(make([]byte, 8), b)
		u64val(b)
	})
}
