package transfer

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// transferNice is the nice value of the threads that move a transfer's
// data, which also run under SCHED_IDLE (see background): when chat or
// a command has work, the kernel runs it first, and the transfer takes
// the CPU time left. The nice value is what is left of the priority
// where SCHED_IDLE is refused.
const transferNice = 10

// background runs the calling goroutine, until it exits, on a thread of
// its own under SCHED_IDLE and at nice transferNice (what the kernel
// refuses is left as it was), and adds a Go processor for it until done
// is called (procs.go). Under SCHED_IDLE a thread that wakes up with
// normal priority (chat, a command) takes the CPU from the transfer at
// once; at nice 10 alone it could wait for the scheduler's next tick.
// The priority is never undone, since an unprivileged process cannot
// raise a thread's priority back: a goroutine that exits locked to its
// thread takes the thread with it, so the priority never reaches another
// goroutine, and the runtime starts new threads from a clean one, never
// from a locked thread. Called again on a locked thread it changes the
// priority no more; each call adds a processor.
func background() (done func()) {
	runtime.LockOSThread()
	unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), transferNice)
	unix.SchedSetAttr(0, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_IDLE, Nice: transferNice}, 0)
	return addProc()
}
