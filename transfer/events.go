package transfer

import (
	"time"
)

// Dir says which side of a transfer this node is.
type Dir uint8

const (
	Send    Dir = 1
	Receive Dir = 2
)

func (d Dir) String() string {
	if d == Send {
		return "send"
	}
	return "receive"
}

// State is where a transfer stands.
type State uint8

const (
	// StateWaiting: offered, not yet answered.
	StateWaiting State = iota + 1
	// StateRunning: accepted, data is moving.
	StateRunning
	// StateInterrupted: accepted, the stream is lost; it resumes when
	// the sender reaches the receiver again.
	StateInterrupted
	StateDone
	StateFailed
	StateCancelled
	StateRejected
	StateExpired
)

var stateNames = [...]string{"", "waiting", "running", "interrupted", "done", "failed", "cancelled", "rejected", "expired"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "unknown"
}

// Final reports a state a transfer never leaves (but see Info.Resumable).
func (s State) Final() bool { return s >= StateDone }

// Info is a snapshot of one transfer, safe to keep.
type Info struct {
	ID    string
	Peer  string // the other node's id
	Dir   Dir
	State State
	// Names are the offered top-level names (at most 16 of them); Files
	// counts regular files, Entries files and folders.
	Names   []string
	Files   int
	Entries int
	Bytes   int64 // total size of the files
	// Progress: bytes and files verified on the receiver (on the
	// sender, sent so far).
	Done      int64
	FilesDone int
	// Wire is the file data sent (sender) or received (receiver) over
	// every stream of this transfer, re-sent bytes included.
	Wire int64
	// Path: on the receiver, where the transfer lands (its top-level
	// entry when there is one, else the download folder); on the sender,
	// the first path given to Offer.
	Path    string
	Hash    string // "blake3" or "sha256"
	Created time.Time
	Started time.Time // first accepted
	Ended   time.Time
	// Reason says why a transfer failed, was rejected or cancelled.
	Reason string
	// Resumable: a failed transfer whose partial data is kept (the
	// receiver's disk was full); the receiver's AcceptOffer resumes it.
	Resumable bool
	Expires   time.Time // of a waiting offer
	// Skipped: on the sender, entries of the offered folders that are
	// not sent (symbolic links, devices, sockets); not kept on disk.
	Skipped int
}

// FileResult is one verified file of a finished transfer.
type FileResult struct {
	Path  string // as offered, relative, "/" between names
	Local string // on the receiver: where it was written; on the sender: the source
	Size  int64
	Hash  string // lower-case hex
}

// Event is something the user should hear about. Every event names its
// transfer and the other node.
type Event interface{ isEvent() }

// Offered: a transfer was offered. On the receiver (Dir Receive) it waits
// for AcceptOffer or Reject unless the accept policy took it.
type Offered struct {
	Info Info
	Auto bool // accepted by Options.AcceptFrom, no question asked
}

// Accepted: the receiver accepted; data is about to move. Resumed is set
// when an interrupted transfer goes on, from Offset bytes in.
type Accepted struct {
	Info    Info
	Resumed bool
	Offset  int64 // bytes already verified on the receiver
}

// Progress of a running transfer, at most once per Options.Progress.
type Progress struct {
	ID, Peer  string
	Dir       Dir
	Bytes     int64 // done so far
	Total     int64
	Files     int // files done so far
	Rate      float64
	ETA       time.Duration // 0 when unknown
	FileCount int
	// Yielding: the sender paces its data while chat passes with the
	// peer (Manager.Chatting), so Rate is lower for now.
	Yielding bool
}

// Done: every file arrived and was verified. Both sides get it.
type Done struct {
	Info    Info
	Files   []FileResult
	Seconds float64 // from first acceptance to the end
	Rate    float64 // bytes per second over Seconds
}

// Failed: the transfer stopped for good (or, Info.Resumable, until the
// receiver resumes it).
type Failed struct{ Info Info }

// Cancelled: one side cancelled; ByPeer is set when it was the other
// node.
type Cancelled struct {
	Info   Info
	ByPeer bool
}

// Rejected: the receiver said no (ByPeer on the sender), or this node
// refused an offer it could not take (a safety rule, no space).
type Rejected struct {
	Info   Info
	ByPeer bool
}

// Expired: an offer was not answered in time. Both sides get it.
type Expired struct{ Info Info }

// Interrupted: the stream broke; the sender redials with backoff and the
// transfer resumes where it stopped.
type Interrupted struct {
	Info Info
	Err  string
}

func (Offered) isEvent()     {}
func (Accepted) isEvent()    {}
func (Progress) isEvent()    {}
func (Done) isEvent()        {}
func (Failed) isEvent()      {}
func (Cancelled) isEvent()   {}
func (Rejected) isEvent()    {}
func (Expired) isEvent()     {}
func (Interrupted) isEvent() {}
