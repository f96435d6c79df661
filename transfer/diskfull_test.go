package transfer

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// smallDisk mounts a tmpfs of size bytes for the test; it needs root.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs (the full-disk case is not tested)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("timeout", "10", "mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("timeout", "10", "umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

func TestDiskFull(t *testing.T) {
	disk := smallDisk(t, "4m")
	l := newLAN()
	a := newNode(t, l, resumeOpts)
	b := newNode(t, l, Options{DownloadDir: disk, CheckpointBytes: 512 << 10, CheckpointMin: time.Millisecond, RedialMin: 20 * time.Millisecond})
	base := t.TempDir()

	// Larger than the free space: refused up front.
	big := filepath.Join(base, "big")
	randomFile(t, big, 5<<20)
	in := a.offer(b, big)
	r := a.wait(5*time.Second, "refusal", func(e Event) bool { r, ok := e.(Rejected); return ok && r.ByPeer }).(Rejected)
	if r.Info.ID != in.ID || !strings.Contains(r.Info.Reason, "free space") {
		t.Errorf("refusal: %+v", r.Info)
	}

	// Fits, until something else fills the disk.
	src := filepath.Join(base, "fits")
	data := randomFile(t, src, 3<<20)
	l.rate.Store(4 << 20)
	in = a.offer(b, src)
	b.accept(in.ID)
	b.wait(10*time.Second, "progress", progressAt(1<<20))
	filler := filepath.Join(disk, "filler")
	os.WriteFile(filler, make([]byte, 2<<20), 0o600)
	for _, n := range []*node{a, b} {
		f := n.wait(10*time.Second, "disk full", func(e Event) bool { f, ok := e.(Failed); return ok && f.Info.ID == in.ID }).(Failed)
		if !f.Info.Resumable || !strings.Contains(f.Info.Reason, "disk full") {
			t.Errorf("%s: %+v", n.id[:8], f.Info)
		}
	}
	part, err := os.Stat(filepath.Join(disk, partialDir, in.ID, "0"))
	if err != nil || part.Size() == 0 {
		t.Fatalf("partial file not kept: %v %v", part, err)
	}
	t.Logf("disk full after %d bytes", part.Size())

	// Freed: the receiver resumes.
	os.Remove(filler)
	l.rate.Store(0)
	if _, err := b.m.AcceptOffer(in.ID); err != nil {
		t.Fatal(err)
	}
	da, _ := a.done(in.ID), b.done(in.ID)
	if got, _ := os.ReadFile(filepath.Join(disk, "fits")); string(got) != string(data) {
		t.Fatal("content differs")
	}
	t.Logf("re-sent after the resume: %d bytes", da.Info.Wire-da.Info.Bytes)
}
