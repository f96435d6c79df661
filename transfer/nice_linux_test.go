package transfer

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// threadNice is the nice value of the calling goroutine's thread (the
// system call gives 20 - nice).
func threadNice(t *testing.T) int {
	p, err := unix.Getpriority(unix.PRIO_PROCESS, unix.Gettid())
	if err != nil {
		t.Fatal(err)
	}
	return 20 - p
}

// background lowers its own thread's priority, and the priority goes
// with that thread: goroutines that run after it ended, on whatever
// thread, keep the process's.
func TestBackgroundStaysOnItsThread(t *testing.T) {
	runtime.LockOSThread()
	base := threadNice(t)
	runtime.UnlockOSThread()
	got := make(chan int)
	for range 4 {
		go func() {
			defer background()()
			got <- threadNice(t)
		}()
		if n := <-got; n != transferNice && n != base {
			t.Fatalf("nice %d in background, want %d (or %d if refused)", n, transferNice, base)
		}
	}
	for range 16 {
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			got <- threadNice(t)
		}()
		if n := <-got; n != base {
			t.Fatalf("a goroutine after the background ones runs at nice %d, want %d", n, base)
		}
	}
}
