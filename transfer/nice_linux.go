package transfer

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// transferNice is the nice value of the threads that move a transfer's
// data: when chat or a command has work, the kernel runs it first, and
// the transfer takes the CPU time left.
const transferNice = 10

// background runs the calling goroutine, until it exits, on a thread of
// its own at nice transferNice (if the kernel refuses, at the priority it
// had), and adds a Go processor for it until done is called (procs.go).
// The priority is never undone, since an unprivileged process cannot
// raise a thread's priority back: a goroutine that exits locked to its
// thread takes the thread with it, so the priority never reaches another
// goroutine, and the runtime starts new threads from a clean one, never
// from a locked thread. Called again on a locked thread it changes the
// priority no more; each call adds a processor.
func background() (done func()) {
	runtime.LockOSThread()
	unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), transferNice)
	return addProc()
}
