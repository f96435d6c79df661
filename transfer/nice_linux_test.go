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

// threadPolicy is the scheduling policy of the calling goroutine's thread.
func threadPolicy(t *testing.T) uint32 {
	a, err := unix.SchedGetAttr(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return a.Policy
}

// background lowers its own thread's priority, and the priority goes
// with that thread: goroutines that run after it ended, on whatever
// thread, keep the process's.
func TestBackgroundStaysOnItsThread(t *testing.T) {
	runtime.LockOSThread()
	base := threadNice(t)
	basePolicy := threadPolicy(t)
	runtime.UnlockOSThread()
	type prio struct {
		nice   int
		policy uint32
	}
	got := make(chan prio)
	for range 4 {
		go func() {
			defer background()()
			got <- prio{threadNice(t), threadPolicy(t)}
		}()
		if p := <-got; p.nice != transferNice && p.nice != base || p.policy != unix.SCHED_IDLE && p.policy != basePolicy {
			t.Fatalf("nice %d, policy %d in background, want %d and %d (SCHED_IDLE), or %d and %d if refused", p.nice, p.policy, transferNice, unix.SCHED_IDLE, base, basePolicy)
		}
	}
	for range 16 {
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			got <- prio{threadNice(t), threadPolicy(t)}
		}()
		if p := <-got; p.nice != base || p.policy != basePolicy {
			t.Fatalf("a goroutine after the background ones runs at nice %d, policy %d, want %d and %d", p.nice, p.policy, base, basePolicy)
		}
	}
}
