package transfer

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zeebo/blake3"
)

func b3hex(b []byte) string {
	s := blake3.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestSendFile(t *testing.T) {
	_, a, b := pair(t, Options{})
	src := filepath.Join(t.TempDir(), "report.bin")
	data := randomFile(t, src, 3<<20+12345)
	in := a.offer(b, src)
	b.accept(in.ID)
	db := b.done(in.ID)
	da := a.done(in.ID)
	got, err := os.ReadFile(filepath.Join(b.dl, "report.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(data) {
		t.Fatal("content differs")
	}
	want := b3hex(data)
	for _, d := range []Done{da, db} {
		if len(d.Files) != 1 || d.Files[0].Hash != want || d.Info.Bytes != int64(len(data)) || d.Info.Hash != "blake3" {
			t.Errorf("%v done: %+v", d.Info.Dir, d)
		}
	}
	if db.Files[0].Local != filepath.Join(b.dl, "report.bin") || db.Info.Path != filepath.Join(b.dl, "report.bin") {
		t.Errorf("receiver paths: %+v", db)
	}
	if l := leftovers(b.dl, "report.bin", partialDir); len(l) > 0 {
		t.Errorf("left in download folder: %v", l)
	}
	if des, _ := os.ReadDir(filepath.Join(b.dl, partialDir)); len(des) > 0 {
		t.Errorf("partial folder not cleaned: %v", des)
	}
	for _, n := range []*node{a, b} {
		in, err := n.m.Get(in.ID)
		if err != nil || in.State != StateDone {
			t.Errorf("%v: %+v %v", n.id[:8], in, err)
		}
	}
}

func TestSendTree(t *testing.T) {
	_, a, b := pair(t, Options{})
	base := t.TempDir()
	src := filepath.Join(base, "photos")
	randomFile(t, filepath.Join(src, "a.jpg"), 300<<10)
	randomFile(t, filepath.Join(src, "2024", "b.jpg"), 1<<20+7)
	randomFile(t, filepath.Join(src, "2024", "deep", "er", "c.txt"), 10)
	randomFile(t, filepath.Join(src, "empty.txt"), 0)
	os.MkdirAll(filepath.Join(src, "nothing", "here"), 0o755)
	os.Symlink("/etc/passwd", filepath.Join(src, "link"))
	in := a.offer(b, src)
	if in.Files != 4 || in.Entries != 10 || in.Skipped != 1 {
		t.Errorf("offer: %+v", in)
	}
	b.accept(in.ID)
	d := b.done(in.ID)
	a.done(in.ID)
	os.Remove(filepath.Join(src, "link"))
	sameTree(t, src, filepath.Join(b.dl, "photos"))
	if len(d.Files) != 4 || d.Info.Path != filepath.Join(b.dl, "photos") {
		t.Errorf("done: %+v", d)
	}
}

func TestEmptyFileAndFolder(t *testing.T) {
	_, a, b := pair(t, Options{})
	base := t.TempDir()
	randomFile(t, filepath.Join(base, "zero"), 0)
	os.MkdirAll(filepath.Join(base, "void", "deeper"), 0o755)
	for _, p := range []string{"zero", "void"} {
		in := a.offer(b, filepath.Join(base, p))
		b.accept(in.ID)
		b.done(in.ID)
		a.done(in.ID)
	}
	sameTree(t, filepath.Join(base, "void"), filepath.Join(b.dl, "void"))
	if fi, err := os.Stat(filepath.Join(b.dl, "zero")); err != nil || fi.Size() != 0 {
		t.Errorf("empty file: %v %v", fi, err)
	}
}

func TestSeveralPathsAndNamesTaken(t *testing.T) {
	_, a, b := pair(t, Options{})
	base := t.TempDir()
	one := randomFile(t, filepath.Join(base, "notes.txt"), 100)
	randomFile(t, filepath.Join(base, "dir", "x"), 5)
	os.WriteFile(filepath.Join(b.dl, "notes.txt"), []byte("mine"), 0o644)
	os.WriteFile(filepath.Join(b.dl, "notes (1).txt"), []byte("mine too"), 0o644)
	os.Mkdir(filepath.Join(b.dl, "dir"), 0o755)
	in := a.offer(b, filepath.Join(base, "notes.txt"), filepath.Join(base, "dir"))
	b.accept(in.ID)
	d := b.done(in.ID)
	for name, want := range map[string]string{"notes.txt": "mine", "notes (1).txt": "mine too", "notes (2).txt": string(one)} {
		if got, _ := os.ReadFile(filepath.Join(b.dl, name)); string(got) != want {
			t.Errorf("%s: %q", name, got)
		}
	}
	if _, err := os.Stat(filepath.Join(b.dl, "dir (1)", "x")); err != nil {
		t.Error(err)
	}
	if d.Info.Path != b.dl || d.Files[0].Local != filepath.Join(b.dl, "notes (2).txt") {
		t.Errorf("done: %+v", d)
	}
}

func TestAutoAccept(t *testing.T) {
	l := newLAN()
	a := newNode(t, l, Options{})
	b := newNode(t, l, Options{AcceptFrom: func(id string) bool { return id == a.id }})
	src := filepath.Join(t.TempDir(), "f")
	randomFile(t, src, 1000)
	in := a.offer(b, src)
	o := b.wait(5*time.Second, "offer", isOffered).(Offered)
	if !o.Auto {
		t.Error("not auto-accepted")
	}
	b.done(in.ID)
	a.done(in.ID)
}

func TestReject(t *testing.T) {
	_, a, b := pair(t, Options{})
	src := filepath.Join(t.TempDir(), "f")
	randomFile(t, src, 1000)
	in := a.offer(b, src)
	b.wait(5*time.Second, "offer", isOffered)
	if err := b.m.Reject(in.ID[:4]); err != nil {
		t.Fatal(err)
	}
	r := a.wait(5*time.Second, "rejected", func(e Event) bool { r, ok := e.(Rejected); return ok && r.ByPeer }).(Rejected)
	if r.Info.State != StateRejected {
		t.Errorf("%+v", r)
	}
	if err := b.m.Reject(in.ID); err == nil {
		t.Error("rejected twice")
	}
	if _, err := b.m.AcceptOffer(in.ID); err == nil {
		t.Error("accepted after reject")
	}
	if l := leftovers(b.dl); len(l) > 0 {
		t.Errorf("left: %v", l)
	}
}

func TestExpiry(t *testing.T) {
	_, a, b := pair(t, Options{OfferExpiry: 300 * time.Millisecond})
	src := filepath.Join(t.TempDir(), "f")
	randomFile(t, src, 1000)
	in := a.offer(b, src)
	for _, n := range []*node{a, b} {
		e := n.wait(5*time.Second, "expiry", func(e Event) bool { _, ok := e.(Expired); return ok }).(Expired)
		if e.Info.ID != in.ID || e.Info.State != StateExpired {
			t.Errorf("%+v", e)
		}
	}
	if _, err := b.m.AcceptOffer(in.ID); err == nil {
		t.Error("accepted after expiry")
	}
}

func TestCancel(t *testing.T) {
	for _, tc := range []struct {
		name      string
		receiver  bool // the receiver cancels
		beforeAcc bool // while the offer waits
	}{
		{"sender waiting", false, true},
		{"sender running", false, false},
		{"receiver running", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, a, b := pair(t, Options{})
			src := filepath.Join(t.TempDir(), "big")
			randomFile(t, src, 8<<20)
			l.rate.Store(4 << 20)
			in := a.offer(b, src)
			if !tc.beforeAcc {
				b.accept(in.ID)
				b.wait(10*time.Second, "progress", progressAt(1<<20))
			} else {
				b.wait(5*time.Second, "offer", isOffered)
			}
			by, other := a, b
			if tc.receiver {
				by, other = b, a
			}
			if err := by.m.Cancel(in.ID); err != nil {
				t.Fatal(err)
			}
			c := other.wait(10*time.Second, "cancel", func(e Event) bool { c, ok := e.(Cancelled); return ok && c.ByPeer }).(Cancelled)
			if c.Info.State != StateCancelled {
				t.Errorf("%+v", c)
			}
			by.wait(time.Second, "own cancel", func(e Event) bool { c, ok := e.(Cancelled); return ok && !c.ByPeer })
			// The receiver's partial files go.
			deadline := time.Now().Add(5 * time.Second)
			for {
				des, _ := os.ReadDir(filepath.Join(b.dl, partialDir))
				if len(des) == 0 && len(leftovers(b.dl, partialDir)) == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("left: %v %v", des, leftovers(b.dl, partialDir))
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err := by.m.Cancel(in.ID); err == nil {
				t.Error("cancelled twice")
			}
		})
	}
}

func TestExpiryUnreachable(t *testing.T) {
	l, a, b := pair(t, Options{OfferExpiry: 300 * time.Millisecond, RedialMin: 20 * time.Millisecond})
	b.stop()
	l.mu.Lock()
	l.addrs[b.id] = "127.0.0.1:1"
	l.mu.Unlock()
	src := filepath.Join(t.TempDir(), "f")
	randomFile(t, src, 10)
	in := a.offer(b, src)
	e := a.wait(5*time.Second, "expiry", func(e Event) bool { _, ok := e.(Expired); return ok }).(Expired)
	if e.Info.ID != in.ID {
		t.Errorf("%+v", e)
	}
	if n := l.dials.Load(); n < 2 {
		t.Errorf("%d dials: no redial", n)
	}
}
