package transfer

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The flusher takes each full window, in order, and holds the writer
// back only when it is flushAhead windows behind; a window it cannot
// flush is reported.
func TestFlusher(t *testing.T) {
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	f, err := root.OpenFile("0", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fl := newFlusher(root)
	stop := make(chan struct{})
	fl.start("0", 0)
	chunk := bytes.Repeat([]byte{7}, 1<<20)
	var pos int64
	for range 3*flushWindow/len(chunk) + 1 {
		if _, err := f.WriteAt(chunk, pos); err != nil {
			t.Fatal(err)
		}
		pos += int64(len(chunk))
		fl.wrote(pos, false, stop, nil)
	}
	if fl.handed != 3*flushWindow {
		t.Errorf("handed up to %d of %d written, want %d", fl.handed, pos, 3*flushWindow)
	}
	// A file that is not there (removed under the flusher) is an error.
	fl.start("gone", 0)
	fl.wrote(flushWindow, false, stop, nil)
	select {
	case err := <-fl.errs:
		t.Logf("reported: %v", err)
	case <-time.After(10 * time.Second):
		t.Error("a failed flush was not reported")
	}
	fl.close()
	got, err := os.ReadFile(filepath.Join(dir, "0"))
	if err != nil || int64(len(got)) != pos || !bytes.Equal(got[:len(chunk)], chunk) {
		t.Fatalf("file after flushing: %d bytes, %v", len(got), err)
	}

	// A writer whose flusher is stuck waits, and stop frees it.
	stuck := &flusher{reqs: make(chan flushReq, flushAhead), quit: make(chan struct{})}
	for i := range flushAhead {
		stuck.wrote(int64(i+1)*flushWindow, false, stop, nil)
	}
	done := make(chan struct{})
	go func() {
		stuck.wrote(int64(flushAhead+1)*flushWindow, false, stop, nil)
		close(done)
	}()
	select {
	case <-done:
		t.Fatal("the writer went on past flushAhead windows")
	case <-time.After(50 * time.Millisecond):
	}
	close(stop)
	<-done
}

func TestCheckpointDue(t *testing.T) {
	o := Options{}
	o.defaults()
	now := time.Now()
	for _, c := range []struct {
		written int64
		ago     time.Duration
		due     bool
	}{
		{0, 0, false},
		{8 << 20, 100 * time.Millisecond, false}, // bytes enough, too soon
		{8 << 20, 600 * time.Millisecond, true},
		{1 << 20, time.Second, false},
		{1, 2100 * time.Millisecond, true}, // time alone
	} {
		if got := o.checkpointDue(c.written, now.Add(-c.ago)); got != c.due {
			t.Errorf("%d bytes, last %v ago: due %v, want %v", c.written, c.ago, got, c.due)
		}
	}
}
