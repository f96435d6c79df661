package transfer

import (
	"runtime"
	"sync"
)

// Go runs goroutines on at most GOMAXPROCS threads at a time: a
// goroutine needs one of that many processors (Ps), and the goroutines
// made ready wait in a processor's queue. A data goroutine runs on a
// thread of its own at a low priority (background) and holds a P while
// it runs. When the kernel sets that thread aside for one that matters
// more, its P waits with it, and so does every goroutine queued on it:
// with as many Ps as CPUs, two busy data goroutines held both Ps, and a
// chat line waited for the scheduler's next preemption (10 ms) or for a
// data goroutine to block. So each data goroutine brings a P of its own
// while it runs: chat and commands always find a free one, and the
// kernel's priorities decide who gets the CPUs. (BENCHMARKS.md: chat
// p99 during a transfer.)
//
// Changing GOMAXPROCS stops the world: it waits until every running
// goroutine reaches a safe point, and a data goroutine whose thread the
// kernel has set aside reaches it only when the kernel runs that thread
// again, which at nice 10 on a busy machine can take tens of
// milliseconds, chat stopped meanwhile. So processors are only added
// while data goroutines start (when the others of their transfer
// mostly wait for them) and all given back at once when the last data
// goroutine ends, never one by one while others still run.
var spareProcs struct {
	sync.Mutex
	n     int // data goroutines running
	added int // processors added since n was last 0
	base  int // GOMAXPROCS before the first of them
}

// maxSpareProcs bounds the processors added, however many transfers run.
const maxSpareProcs = 8

// addProc adds a processor for a data goroutine until release is called
// (once; later calls do nothing).
func addProc() (release func()) {
	sp := &spareProcs
	sp.Lock()
	if sp.n == 0 {
		sp.base = runtime.GOMAXPROCS(0)
		sp.added = 0
	}
	sp.n++
	if sp.n > sp.added && sp.added < maxSpareProcs {
		sp.added++
		runtime.GOMAXPROCS(sp.base + sp.added)
	}
	sp.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			sp.Lock()
			sp.n--
			if sp.n == 0 && sp.added > 0 {
				runtime.GOMAXPROCS(sp.base)
				sp.added = 0
			}
			sp.Unlock()
		})
	}
}
