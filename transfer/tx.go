package transfer

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// source is where a sender reads one file, and what it looked like when
// offered: a change of size or modification time means it changed.
type source struct {
	path  string
	mtime int64 // Unix ns
}

// tx is one transfer, on either side.
type tx struct {
	m       *Manager
	id      string
	peer    string
	dir     Dir
	alg     hashAlg
	entries []entry
	total   int64
	files   int
	src     []source // sender: per entry (zero for folders)
	names   []string // the first 16 top-level names
	oneTop  bool     // a single top-level entry
	weight  int      // about what the entries take in memory

	kick    chan struct{} // cap 1: try to reach the peer now
	inbound chan *stream  // cap 1: a stream the peer opened for this transfer
	decided chan struct{} // cap 1: a waiting offer was answered, or ended
	slot    chan struct{} // cap 1: held by whoever owns the stream

	expiry *time.Timer // receiver: of a waiting offer
	// skipped counts what a sender's folder held that is not sent
	// (symbolic links, devices, sockets).
	skipped int
	// chatAt is when a chat line last passed with the peer (monoNanos,
	// 0: never), and yielding says that the data is paced for it
	// (pace.go).
	chatAt   atomic.Int64
	yielding atomic.Bool

	mu sync.Mutex // protects following
	// stop is closed when the transfer reaches a final state.
	stop      chan struct{}
	state     State
	code      code
	reason    string
	resumable bool
	byPeer    bool
	accepted  bool // receiver: said yes (state may still be interrupted)
	prepared  bool // receiver: folders made and names checked
	created   time.Time
	started   time.Time
	ended     time.Time
	expires   time.Time
	contact   time.Time // last time a stream worked
	conn      net.Conn  // the current stream
	wire      int64
	done      int64 // bytes done: verified (receiver) or sent (sender)
	filesDone int
	hashes    [][]byte // per entry, once known
	lastSave  time.Time
	lastProg  time.Time
	running   bool // sender: runSend is running
	// Sender: what the receiver acknowledged as durable, snapshots of
	// the running hash at chunk boundaries not yet acknowledged, and how
	// far the state file's hashes go.
	ackNext   int
	ackOffset int64
	snaps     []snap
	spare     []hasher // states of snapshots dropped, to copy the next ones into
	// Receiver: the durable position (see record), the in-memory one
	// (next, offset, h: all bytes written and hashed), names.
	durNext   int
	durOffset int64
	durPrefix []byte
	renamed   int
	next      int
	offset    int64
	h         hasher
	tops      map[string]string
	moved     map[int]string
}

// snap is a copy of a file's hash state after offset bytes.
type snap struct {
	index  int
	offset int64
	h      hasher
}

func newTx(m *Manager, id, peer string, dir Dir, alg hashAlg, es []entry, total int64) *tx {
	t := &tx{
		m: m, id: id, peer: peer, dir: dir, alg: alg, entries: es, total: total,
		kick: make(chan struct{}, 1), inbound: make(chan *stream, 1),
		decided: make(chan struct{}, 1), slot: make(chan struct{}, 1),
		stop: make(chan struct{}), hashes: make([][]byte, len(es)),
		created: time.Now(), contact: time.Now(),
	}
	seen := map[string]bool{}
	for _, e := range es {
		if !e.Dir {
			t.files++
		}
		t.weight += len(e.Path) + 48
		if top := topName(e.Path); !seen[top] {
			seen[top] = true
			if len(t.names) < 16 {
				t.names = append(t.names, top)
			}
		}
	}
	t.oneTop = len(seen) == 1
	return t
}

// acquire takes the stream slot, waiting for the session that holds it
// to end; false when ctx ends first.
func (t *tx) acquire(ctx context.Context) bool {
	select {
	case t.slot <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (t *tx) releaseSlot() { <-t.slot }

// attach makes c the transfer's stream and closes the one before it, so
// that its session ends and lets go of the slot.
func (t *tx) attach(c net.Conn) {
	t.mu.Lock()
	old := t.conn
	t.conn = c
	t.mu.Unlock()
	if old != nil && old != c {
		hardClose(old)
	}
}

func (t *tx) detach(c net.Conn) {
	t.mu.Lock()
	if t.conn == c {
		t.conn = nil
	}
	t.mu.Unlock()
}

func (t *tx) stopped() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stop
}

func (t *tx) lastContactTime() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.contact
}

func (t *tx) info() Info {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.infoLocked()
}

func (t *tx) infoLocked() Info {
	in := Info{
		ID: t.id, Peer: t.peer, Dir: t.dir, State: t.state,
		Files: t.files, Entries: len(t.entries), Bytes: t.total,
		Done: t.done, FilesDone: t.filesDone, Wire: t.wire,
		Hash: t.alg.String(), Created: t.created, Started: t.started, Ended: t.ended,
		Reason: t.reason, Resumable: t.resumable, Skipped: t.skipped,
	}
	if t.state == StateWaiting {
		in.Expires = t.expires
	}
	in.Names = t.names
	if t.dir == Send {
		if len(t.src) > 0 {
			in.Path = t.src[0].path
		}
	} else {
		in.Path = t.m.opt.DownloadDir
		if t.tops != nil && t.oneTop {
			if local, ok := t.tops[t.names[0]]; ok {
				in.Path = t.m.localPath(local)
			}
		}
	}
	return in
}

// localRel is where entry i lands, relative to the download folder
// (receiver, after accept). Caller holds t.mu.
func (t *tx) localRelLocked(i int) string {
	if p, ok := t.moved[i]; ok {
		return p
	}
	p := t.entries[i].Path
	top := topName(p)
	return t.tops[top] + p[len(top):]
}

func (t *tx) localRel(i int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.localRelLocked(i)
}

// record is the state file content, or nil when t is not to be kept on
// disk (a receiver's offer never accepted).
func (t *tx) record() *record {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dir == Receive && !t.prepared {
		return nil
	}
	r := &record{
		Version: recordVersion, ID: t.id, Peer: t.peer, Dir: t.dir.String(),
		State: t.state.String(), Hash: t.alg.String(),
		Created: t.created, Started: t.started, Ended: t.ended,
		Reason: t.reason, Code: int(t.code), Resumable: t.resumable, Wire: t.wire,
	}
	if t.state == StateWaiting {
		r.Expires = t.expires
	}
	r.Entries = make([]recEntry, len(t.entries))
	for i, e := range t.entries {
		r.Entries[i] = recEntry{Path: e.Path, Dir: e.Dir, Size: e.Size}
		if t.dir == Send {
			r.Entries[i].Source = t.src[i].path
			if !e.Dir {
				r.Entries[i].MTime = t.src[i].mtime
			}
		}
	}
	next := t.ackNext
	if t.dir == Receive {
		next = t.durNext
		r.Offset = t.durOffset
		if r.Offset > 0 {
			r.Prefix = hex.EncodeToString(t.durPrefix)
		}
		r.Renamed = t.renamed
		r.Tops = t.tops
		if len(t.moved) > 0 {
			r.Moved = t.moved
		}
	} else {
		r.Offset = 0
	}
	if t.state == StateDone {
		next = len(t.entries)
		r.Offset = 0
	}
	r.Next = next
	// A receiver keeps its hashes only once done: files verified before
	// a restart are read back at the end instead, so that a checkpoint
	// does not rewrite a hash per file received.
	if t.dir == Send || t.state == StateDone {
		r.Hashes = make([]string, next)
		for i := range next {
			r.Hashes[i] = hex.EncodeToString(t.hashes[i])
		}
	}
	return r
}

func txFromRecord(m *Manager, r *record) (*tx, error) {
	dir := Send
	if r.Dir == Receive.String() {
		dir = Receive
	}
	alg, _ := parseHashAlg(r.Hash)
	es := r.entries()
	var total int64
	for _, e := range es {
		total += e.Size
	}
	t := newTx(m, r.ID, r.Peer, dir, alg, es, total)
	st, _ := stateOf(r.State)
	t.state = st
	t.code = code(r.Code)
	if t.code > maxCode {
		t.code = codeOther
	}
	t.reason = cleanText(r.Reason)
	t.resumable = r.Resumable && st == StateFailed
	t.created, t.started, t.ended, t.expires = r.Created, r.Started, r.Ended, r.Expires
	t.contact = time.Now()
	t.wire = r.Wire
	for i, h := range r.Hashes {
		t.hashes[i], _ = hex.DecodeString(h)
	}
	if st.Final() {
		close(t.stop)
	}
	var doneBytes int64
	for i := range r.Next {
		doneBytes += es[i].Size
		if !es[i].Dir {
			t.filesDone++
		}
	}
	t.done = doneBytes + r.Offset
	if st == StateDone {
		t.done, t.filesDone = total, t.files
	}
	if dir == Send {
		t.src = make([]source, len(es))
		for i, e := range r.Entries {
			t.src[i] = source{path: e.Source, mtime: e.MTime}
		}
		t.ackNext, t.ackOffset = r.Next, r.Offset
		if st == StateRunning {
			t.state = StateInterrupted
		}
		return t, nil
	}
	if !st.Final() && st != StateRunning && st != StateInterrupted {
		return nil, fmt.Errorf("a received transfer in state %s", st)
	}
	if st == StateRunning {
		t.state = StateInterrupted
	}
	t.accepted, t.prepared = true, true
	t.durNext, t.durOffset, t.renamed = r.Next, r.Offset, r.Renamed
	t.durPrefix, _ = hex.DecodeString(r.Prefix)
	t.next, t.offset = r.Next, r.Offset
	t.tops = r.Tops
	if t.tops == nil {
		t.tops = map[string]string{}
	}
	for _, e := range es {
		if _, ok := t.tops[topName(e.Path)]; !ok {
			return nil, fmt.Errorf("no local name for %q", topName(e.Path))
		}
	}
	t.moved = r.Moved
	return t, nil
}

// finalMsg is what tells the peer how t ended.
func (t *tx) finalMsg() message {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch t.state {
	case StateCancelled:
		return cancelMsg{ID: t.id, Reason: t.reason}
	case StateRejected:
		c := t.code
		if c == codeOther {
			c = codeRejected
		}
		return rejectMsg{ID: t.id, Code: c, Reason: t.reason}
	case StateExpired:
		if t.dir == Receive {
			return rejectMsg{ID: t.id, Code: codeExpired, Reason: t.reason}
		}
		return errorMsg{ID: t.id, Code: codeExpired, Reason: t.reason}
	case StateDone:
		return doneMsg{ID: t.id}
	}
	return errorMsg{ID: t.id, Code: t.code, Reason: t.reason}
}

func (t *tx) hashOf(i int) []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.hashes[i]
}
