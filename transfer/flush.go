package transfer

import (
	"fmt"
	"os"
)

// Received data is written out to the disk as it arrives, a window at a
// time, by a goroutine of the session's, the flusher: the receiving
// goroutine hands it the position each time a window is full, and goes
// on.
//
// Why: an fsync on a disk with a write cache (an SSD, a virtual disk)
// writes out everything written to that disk since the last one, not
// only its own file. The chat store fsyncs every message; were the
// partial file left to the page cache and to checkpoints, each of those
// fsyncs would pay for the megabytes the transfer wrote since the last
// flush, and the page cache would write the rest in bursts that stall
// every fsync for a while. Writing its own data out in small windows,
// the transfer pays for its writes itself, and other fsyncs find little
// to wait for. It writes the data only (sync_file_range), without the
// journal commit and the flush of the disk's cache an fdatasync of each
// window would add, which other fsyncs would queue behind. A window
// written out is dropped from the page cache: a large file received
// does not push the user's files out of memory, and the pages are reused
// at once (fresh ones cost more to fill).
//
// The flusher is not what makes a checkpoint durable (the checkpointer
// syncs what a checkpoint covers itself); it only keeps the data moving
// to the disk. A flusher that falls more than flushAhead windows behind
// (a disk slower than the network) holds the receiving goroutine back
// to the disk's pace.
const (
	flushWindow = 4 << 20
	flushAhead  = 2
)

// flusher flushes windows of partial files of one session, in order.
type flusher struct {
	root *os.Root // the transfer's partial folder
	reqs chan flushReq
	errs chan error // cap 1: the first flush that failed
	quit chan struct{}
	done chan struct{}

	// The receiving goroutine's own: the file being written, where its
	// last window handed to the flusher ends, and whether anything since
	// went through the page cache.
	name   string
	handed int64
	cached bool
}

// flushReq asks for name's data from from to to to be written out and
// dropped from the cache.
type flushReq struct {
	name     string
	from, to int64
}

func newFlusher(root *os.Root) *flusher {
	fl := &flusher{root: root, reqs: make(chan flushReq, flushAhead), errs: make(chan error, 1),
		quit: make(chan struct{}), done: make(chan struct{})}
	go fl.run()
	return fl
}

func (fl *flusher) run() {
	defer close(fl.done)
	for {
		select {
		case r := <-fl.reqs:
			if err := fl.flush(r); err != nil {
				select {
				case fl.errs <- err:
				default:
				}
			}
		case <-fl.quit:
			return
		}
	}
}

// flush opens the file again (the receiving goroutine may close its own
// at any time), flushes it, and drops the window from the cache.
func (fl *flusher) flush(r flushReq) error {
	f, err := openRegular(fl.root, r.name, os.O_RDONLY)
	if err != nil {
		return fmt.Errorf("flush a partial file: %w", err)
	}
	defer f.Close()
	if err := flushData(f, r.from, r.to); err != nil {
		return fmt.Errorf("flush a partial file: %w", err)
	}
	return nil
}

// start says that name is written from pos on.
func (fl *flusher) start(name string, pos int64) {
	fl.name, fl.handed, fl.cached = name, pos, false
}

// wrote says that the file being written holds every byte before pos,
// the last of them written with direct I/O or not; each full window
// that went through the page cache, even in part, goes to the flusher
// (one written directly has nothing there). It waits while the flusher
// is flushAhead windows behind, unless stop is closed meanwhile (then
// the window goes with a later one).
func (fl *flusher) wrote(pos int64, direct bool, stop, cancel <-chan struct{}) {
	fl.cached = fl.cached || !direct
	if pos-fl.handed < flushWindow {
		return
	}
	if !fl.cached {
		fl.handed = pos
		return
	}
	select {
	case fl.reqs <- flushReq{name: fl.name, from: fl.handed, to: pos}:
		fl.handed, fl.cached = pos, false
	case <-stop:
	case <-cancel:
	}
}

// close stops the flusher and waits for it; windows not flushed yet are
// left to the checkpoints.
func (fl *flusher) close() {
	close(fl.quit)
	<-fl.done
}
