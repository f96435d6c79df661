package transfer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// resumeOpts make resumes quick and checkpoints frequent.
var resumeOpts = Options{CheckpointBytes: 1 << 20, CheckpointMin: time.Millisecond, RedialMin: 20 * time.Millisecond, RedialMax: 200 * time.Millisecond}

func isInterrupted(e Event) bool { _, ok := e.(Interrupted); return ok }

func TestCutAndResume(t *testing.T) {
	// Progress often enough, and data enough after the last cut point,
	// that the transfer cannot end between the event that a cut waits
	// for and the cut (at 250 ms a progress event lags by up to 2 MiB at
	// this rate, and a cut found nothing left to cut).
	opts := resumeOpts
	opts.Progress = 20 * time.Millisecond
	l, a, b := pair(t, opts)
	src := filepath.Join(t.TempDir(), "video.mkv")
	data := randomFile(t, src, 8<<20)
	l.rate.Store(8 << 20)
	in := a.offer(b, src)
	b.accept(in.ID)
	const cuts = 3
	for i := 1; i <= cuts; i++ {
		b.wait(20*time.Second, "progress", progressAt(int64(i)*3<<19))
		// Either end may see the cut first; both see it.
		if l.cut() == 0 {
			t.Fatal("nothing to cut")
		}
		a.wait(10*time.Second, "interruption", func(e Event) bool { _, ok := e.(Interrupted); return ok })
		a.emu.Lock()
		a.events = nil
		a.emu.Unlock()
	}
	l.rate.Store(0)
	da, db := a.done(in.ID), b.done(in.ID)
	if got, _ := os.ReadFile(filepath.Join(b.dl, "video.mkv")); string(got) != string(data) {
		t.Fatal("content differs")
	}
	resent := da.Info.Wire - int64(len(data))
	t.Logf("%d cuts: sender sent %d bytes of data for %d (%d re-sent), receiver got %d", cuts, da.Info.Wire, len(data), resent, db.Info.Wire)
	// In-process, the receiver resumes from every byte it wrote: only
	// what was in flight (socket buffers and the pipeline) goes again.
	if resent < 0 || resent > cuts*(2<<20) {
		t.Errorf("re-sent %d bytes over %d cuts", resent, cuts)
	}
	if db.Files[0].Hash != da.Files[0].Hash || da.Files[0].Hash != b3hex(data) {
		t.Errorf("hashes: %s %s", da.Files[0].Hash, db.Files[0].Hash)
	}
}

// TestCutWhileWaiting: a stream lost while the offer waits for the user
// is replaced when the sender redials; the user sees the offer once.
func TestCutWhileWaiting(t *testing.T) {
	l, a, b := pair(t, resumeOpts)
	src := filepath.Join(t.TempDir(), "f")
	randomFile(t, src, 100<<10)
	in := a.offer(b, src)
	b.wait(5*time.Second, "offer", isOffered)
	l.cut()
	time.Sleep(100 * time.Millisecond)
	l.cut()
	if _, err := b.m.AcceptOffer(in.ID); err != nil {
		t.Fatal(err)
	}
	b.done(in.ID)
	a.done(in.ID)
	n := 0
	b.has(func(e Event) bool {
		if isOffered(e) {
			n++
		}
		return false
	})
	if n != 1 {
		t.Errorf("%d offer events", n)
	}
}

func TestReceiverRestart(t *testing.T) {
	l, a, b := pair(t, resumeOpts)
	base := t.TempDir()
	src := filepath.Join(base, "tree")
	first := randomFile(t, filepath.Join(src, "1.bin"), 2<<20)
	randomFile(t, filepath.Join(src, "2.bin"), 3<<20)
	randomFile(t, filepath.Join(src, "3.bin"), 100)
	l.rate.Store(8 << 20)
	in := a.offer(b, src)
	b.accept(in.ID)
	b.wait(20*time.Second, "progress", progressAt(3<<20))
	b.restart()
	a.m.PeerUp(b.id)
	l.rate.Store(0)
	da, db := a.done(in.ID), b.done(in.ID)
	sameTree(t, src, filepath.Join(b.dl, "tree"))
	resent := da.Info.Wire - da.Info.Bytes
	t.Logf("receiver restarted: %d bytes re-sent (checkpoint every %d)", resent, resumeOpts.CheckpointBytes)
	if resent > resumeOpts.CheckpointBytes+2<<20 {
		t.Errorf("re-sent %d bytes", resent)
	}
	if len(db.Files) != 3 || db.Files[0].Hash != b3hex(first) {
		t.Errorf("done: %+v", db.Files)
	}
	if l := leftovers(filepath.Join(b.dl, partialDir)); len(l) > 0 {
		t.Errorf("partial files left: %v", l)
	}
}

func TestSenderRestart(t *testing.T) {
	l, a, b := pair(t, resumeOpts)
	src := filepath.Join(t.TempDir(), "big.iso")
	data := randomFile(t, src, 5<<20)
	l.rate.Store(8 << 20)
	in := a.offer(b, src)
	b.accept(in.ID)
	b.wait(20*time.Second, "progress", progressAt(2<<20))
	a.restart()
	l.rate.Store(0)
	a.done(in.ID)
	db := b.done(in.ID)
	if got, _ := os.ReadFile(filepath.Join(b.dl, "big.iso")); string(got) != string(data) {
		t.Fatal("content differs")
	}
	if !b.has(func(e Event) bool { a, ok := e.(Accepted); return ok && a.Resumed && a.Offset > 0 }) {
		t.Errorf("no resumed accept on the receiver: %s", b.eventList())
	}
	t.Logf("sender restarted: receiver got %d bytes for %d", db.Info.Wire, len(data))
}

func TestRestartWhileWaiting(t *testing.T) {
	_, a, b := pair(t, resumeOpts)
	src := filepath.Join(t.TempDir(), "f")
	randomFile(t, src, 1000)
	in := a.offer(b, src)
	b.wait(5*time.Second, "offer", isOffered)
	a.restart()
	b.accept(in.ID)
	b.done(in.ID)
	a.done(in.ID)
}

func TestSourceChanged(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, l *lan, a, b *node, path string)
	}{
		{"before accept", func(t *testing.T, l *lan, a, b *node, path string) {
			os.WriteFile(path, []byte("another version"), 0o644)
		}},
		{"while sending", func(t *testing.T, l *lan, a, b *node, path string) {
			b.wait(20*time.Second, "progress", progressAt(1<<20))
			f, _ := os.OpenFile(path, os.O_WRONLY, 0)
			f.WriteAt([]byte("scribble"), 4<<20)
			f.Close()
		}},
		{"between resumes, time put back", func(t *testing.T, l *lan, a, b *node, path string) {
			b.wait(20*time.Second, "progress", progressAt(1<<20))
			fi, _ := os.Stat(path)
			l.rate.Store(1 << 10) // hold the transfer while the file changes
			l.cut()
			f, _ := os.OpenFile(path, os.O_WRONLY, 0)
			f.WriteAt([]byte("scribble"), 0)
			f.WriteAt([]byte("scribble"), 5<<20)
			f.Close()
			os.Chtimes(path, fi.ModTime(), fi.ModTime())
			l.rate.Store(0)
		}},
		{"across a sender restart, time put back", func(t *testing.T, l *lan, a, b *node, path string) {
			b.wait(20*time.Second, "progress", progressAt(1<<20))
			fi, _ := os.Stat(path)
			a.stop()
			f, _ := os.OpenFile(path, os.O_WRONLY, 0)
			f.WriteAt([]byte("scribble"), 0)
			f.Close()
			os.Chtimes(path, fi.ModTime(), fi.ModTime())
			a.start()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, a, b := pair(t, resumeOpts)
			src := filepath.Join(t.TempDir(), "doc")
			randomFile(t, src, 6<<20)
			in := a.offer(b, src)
			l.rate.Store(4 << 20)
			b.accept(in.ID)
			tc.change(t, l, a, b, src)
			l.rate.Store(0)
			for _, n := range []*node{a, b} {
				f := n.wait(20*time.Second, "failure", isFailed).(Failed)
				if f.Info.ID != in.ID || !strings.Contains(f.Info.Reason, "changed since it was offered") {
					t.Errorf("%s: %+v", n.id[:8], f.Info)
				}
			}
			if _, err := os.Stat(filepath.Join(b.dl, "doc")); err == nil {
				t.Error("a changed file was placed")
			}
		})
	}
}
