package transfer

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Dialer opens a new authenticated transfer stream to the peer with this
// node id (TLS 1.3 with ALPN "lanchat-transfer/1", the peer's id proven).
type Dialer interface {
	DialTransfer(ctx context.Context, peerID string) (net.Conn, error)
}

// Errors callers may test for.
var (
	ErrClosed     = errors.New("transfer manager closed")
	ErrNotFound   = errors.New("no such transfer")
	ErrAmbiguous  = errors.New("transfer id prefix matches more than one transfer")
	ErrNotWaiting = errors.New("transfer is not waiting for an answer")
	ErrFinished   = errors.New("transfer already ended")
	ErrNoSpace    = errors.New("not enough free space")
)

// Options configure a Manager. Dialer, StateDir and DownloadDir are
// required; zero values of the others take the defaults given.
type Options struct {
	Dialer Dialer
	// StateDir holds one state file per transfer (created 0700).
	StateDir string
	// DownloadDir is where received files land (created 0700 if missing).
	DownloadDir string
	// AcceptFrom, when set and true for the sender, accepts an offer
	// without asking.
	AcceptFrom func(peerID string) bool
	Log        *slog.Logger
	// OfferExpiry: an offer not answered in this time expires on both
	// sides (10 minutes).
	OfferExpiry time.Duration
	// Progress is the shortest time between two Progress events of one
	// transfer (250 ms).
	Progress time.Duration
	// Checkpoints: the receiver records how far its data is durable,
	// and tells the sender, once CheckpointBytes (8 MiB) have arrived
	// since the last one but not within CheckpointMin (500 ms) of it,
	// and at least every CheckpointEvery (2 s) while data arrives. A
	// crash loses what came after the last one: at most 8 MiB or half
	// a second of data, whichever is more, and never more than 2 s of
	// it. The minimum spaces the fsyncs of a fast transfer (the data is
	// flushed as it arrives anyway, see flush.go).
	CheckpointBytes int64
	CheckpointEvery time.Duration
	CheckpointMin   time.Duration
	// RedialMin and RedialMax bound the sender's backoff between attempts
	// to reach the receiver (500 ms, 30 s); the delay is jittered ±25%.
	RedialMin, RedialMax time.Duration
	// IdleTimeout: a stream on which nothing arrives for this long is
	// broken (30 s); each side pings after a third of it.
	IdleTimeout time.Duration
	// DialTimeout bounds one dial (10 s).
	DialTimeout time.Duration
	// ResumeWindow: an interrupted transfer whose peer does not come back
	// within this time fails (7 days).
	ResumeWindow time.Duration
	// MaxFiles bounds the entries of one offer (100,000); MaxBytes its
	// size (0: only the free space).
	MaxFiles int
	MaxBytes int64
	// KeepFinished is how many ended transfers are kept for List and
	// their state files (100).
	KeepFinished int
	// ChatShare is the share of its rate a transfer keeps while chat
	// lines pass between the two peers, within ChatWindow (10 s) of the
	// last one (see pace.go): 0.5 by default; 1 or more never slows it.
	ChatShare  float64
	ChatWindow time.Duration

	// hash overrides the offered hash (tests and benchmarks).
	hash hashAlg
	// freeSpace overrides the free-space probe (tests).
	freeSpace func(dir string) (int64, error)
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.OfferExpiry, 10*time.Minute)
	def(&o.Progress, 250*time.Millisecond)
	def(&o.CheckpointEvery, 2*time.Second)
	def(&o.CheckpointMin, 500*time.Millisecond)
	def(&o.RedialMin, 500*time.Millisecond)
	def(&o.RedialMax, 30*time.Second)
	def(&o.IdleTimeout, 30*time.Second)
	def(&o.DialTimeout, 10*time.Second)
	def(&o.ResumeWindow, 7*24*time.Hour)
	if o.RedialMax < o.RedialMin {
		o.RedialMax = o.RedialMin
	}
	if o.CheckpointBytes <= 0 {
		o.CheckpointBytes = 8 << 20
	}
	if o.MaxFiles <= 0 {
		o.MaxFiles = 100_000
	}
	o.MaxFiles = min(o.MaxFiles, maxOfferEntries)
	if o.ChatShare <= 0 {
		o.ChatShare = 0.5
	}
	def(&o.ChatWindow, 10*time.Second)
	if o.KeepFinished <= 0 {
		o.KeepFinished = 100
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if !o.hash.valid() {
		o.hash = defaultHash
	}
	if o.freeSpace == nil {
		o.freeSpace = freeSpace
	}
}

// checkpointDue says whether a receiver makes a checkpoint now: written
// bytes arrived since the last one, made at last.
func (o *Options) checkpointDue(written int64, last time.Time) bool {
	since := time.Since(last)
	return written >= o.CheckpointBytes && since >= o.CheckpointMin || since >= o.CheckpointEvery
}

// Limits on what peers can make a manager hold.
const (
	maxInbound        = 64 // streams being served at once
	maxWaitingPerPeer = 16 // unanswered offers from one peer
	maxWaiting        = 64 // unanswered offers in all
	// The names of unanswered offers held in memory, from one peer and
	// in all (see offerWeight).
	maxWaitingBytesPerPeer = 32 << 20
	maxWaitingBytes        = 64 << 20
	eventQueueLimit        = 4096
	partialDir             = reservedPrefix + "partial"
	shortestIdleForTry     = 100 * time.Millisecond
)

// Manager runs the transfers of one node: offers it makes and receives,
// the streams that carry them, their state on disk. All methods are safe
// for concurrent use; none blocks on the network.
type Manager struct {
	opt  Options
	log  *slog.Logger
	root *os.Root // the download folder
	lim  limits

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	events chan Event
	saveq  chan saveReq
	// bigReads bounds the large offers being read at once.
	bigReads chan struct{}
	// producing counts the senders reading data now (Chatting has
	// nothing to do without one).
	producing atomic.Int32

	// Lock order: Manager.mu, then tx.mu. No I/O under either.
	mu      sync.Mutex // protects following
	txs     map[string]*tx
	conns   map[net.Conn]struct{}
	inbound int
	queue   []Event
	qsignal chan struct{}
	closed  bool
}

// New opens the state and download folders, loads the transfers a
// previous run left (the sender's resume at once), and starts.
func New(opt Options) (*Manager, error) {
	opt.defaults()
	if opt.Dialer == nil || opt.StateDir == "" || opt.DownloadDir == "" {
		return nil, errors.New("transfer: Dialer, StateDir and DownloadDir are required")
	}
	for _, d := range []string{opt.StateDir, opt.DownloadDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("transfer: %w", err)
		}
	}
	root, err := os.OpenRoot(opt.DownloadDir)
	if err != nil {
		return nil, fmt.Errorf("transfer: open download folder: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		opt: opt, log: opt.Log, root: root,
		lim: limits{maxFiles: opt.MaxFiles, maxBytes: opt.MaxBytes},
		ctx: ctx, cancel: cancel,
		events: make(chan Event, 64), saveq: make(chan saveReq, 64),
		bigReads: make(chan struct{}, 4),
		txs:      make(map[string]*tx), conns: make(map[net.Conn]struct{}),
		qsignal: make(chan struct{}, 1),
	}
	m.wg.Add(2)
	go m.pumpEvents()
	go m.persister()
	m.load()
	return m, nil
}

// Events delivers events in order. It is closed after Close. Progress
// events are dropped when the consumer falls behind; no other kind is.
func (m *Manager) Events() <-chan Event { return m.events }

// Close stops every transfer (their state stays on disk for the next
// run), closes every stream and waits for every goroutine, at most until
// ctx is done.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	conns := make([]net.Conn, 0, len(m.conns))
	for c := range m.conns {
		conns = append(conns, c)
	}
	m.mu.Unlock()
	m.cancel()
	for _, c := range conns {
		hardClose(c)
	}
	done := make(chan struct{})
	go func() {
		m.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		m.root.Close()
		return nil
	case <-ctx.Done():
		return fmt.Errorf("transfer: close: %w", ctx.Err())
	}
}

// hardClose closes c from a goroutine that does not own it: the socket
// under a TLS connection is closed at once, since closing the TLS
// connection itself waits for a write in progress to end.
func hardClose(c net.Conn) {
	if nc, ok := c.(interface{ NetConn() net.Conn }); ok {
		nc.NetConn().Close()
		return
	}
	c.Close()
}

// spawn runs f on a goroutine Close waits for, unless the manager is
// closed.
func (m *Manager) spawn(f func()) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		f()
	}()
	return true
}

// track registers a stream's connection so that Close can close it; it
// reports false (and closes c) when the manager is closed.
func (m *Manager) track(c net.Conn) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		c.Close()
		return false
	}
	m.conns[c] = struct{}{}
	return true
}

func (m *Manager) untrack(c net.Conn) {
	m.mu.Lock()
	delete(m.conns, c)
	m.mu.Unlock()
}

// emit queues an event; it never blocks. Past the queue's limit a
// progress event is dropped; anything else is dropped with a log line.
func (m *Manager) emit(e Event) {
	m.mu.Lock()
	if len(m.queue) >= eventQueueLimit {
		m.mu.Unlock()
		if _, ok := e.(Progress); !ok {
			m.log.Warn("transfer: event queue full, event dropped", "event", fmt.Sprintf("%T", e))
		}
		return
	}
	if _, ok := e.(Progress); ok && len(m.queue) > 0 {
		// A consumer that is behind only needs the latest progress.
		if p, ok := m.queue[len(m.queue)-1].(Progress); ok && p.ID == e.(Progress).ID {
			m.queue[len(m.queue)-1] = e
			m.mu.Unlock()
			return
		}
	}
	m.queue = append(m.queue, e)
	m.mu.Unlock()
	select {
	case m.qsignal <- struct{}{}:
	default:
	}
}

func (m *Manager) pumpEvents() {
	defer m.wg.Done()
	defer close(m.events)
	for {
		m.mu.Lock()
		var e Event
		if len(m.queue) > 0 {
			e = m.queue[0]
			m.queue[0] = nil
			m.queue = m.queue[1:]
			if len(m.queue) == 0 {
				m.queue = nil
			}
		}
		m.mu.Unlock()
		if e == nil {
			select {
			case <-m.qsignal:
				continue
			case <-m.ctx.Done():
				return
			}
		}
		select {
		case m.events <- e:
		case <-m.ctx.Done():
			return
		}
	}
}

type saveReq struct {
	t    *tx
	done chan error
}

// persister writes state files, one at a time, each from the
// transfer's state at the moment it is written, so the last write is
// always the newest state.
func (m *Manager) persister() {
	defer m.wg.Done()
	for {
		select {
		case r := <-m.saveq:
			rec := r.t.record()
			var err error
			if rec == nil {
				err = removeRecord(m.opt.StateDir, r.t.id)
			} else {
				err = saveRecord(m.opt.StateDir, rec)
			}
			if err != nil {
				m.log.Warn("transfer: save state", "id", r.t.id, "err", err)
			}
			r.done <- err
		case <-m.ctx.Done():
			return
		}
	}
}

// save writes t's state file and waits until it is on disk.
func (m *Manager) save(t *tx) error {
	r := saveReq{t: t, done: make(chan error, 1)}
	select {
	case m.saveq <- r:
	case <-m.ctx.Done():
		return ErrClosed
	}
	select {
	case err := <-r.done:
		return err
	case <-m.ctx.Done():
		return ErrClosed
	}
}

// register adds t under a fresh id no transfer here has: 8 characters
// of a-z and 2-7 (40 random bits).
func (m *Manager) register(t *tx) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	for {
		var b [8]byte
		rand.Read(b[:])
		for i := range b {
			b[i] = idAlphabet[b[i]&31]
		}
		if id := string(b[:]); m.txs[id] == nil {
			t.id = id
			m.txs[id] = t
			return nil
		}
	}
}

// find resolves an id or a unique id prefix.
func (m *Manager) find(id string) (*tx, error) {
	id = strings.ToLower(strings.TrimSpace(id))
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.txs[id]; ok {
		return t, nil
	}
	var found *tx
	for k, t := range m.txs {
		if id != "" && strings.HasPrefix(k, id) {
			if found != nil {
				return nil, fmt.Errorf("%w: %q", ErrAmbiguous, id)
			}
			found = t
		}
	}
	if found == nil {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return found, nil
}

// List returns every transfer this manager knows, newest first.
func (m *Manager) List() []Info {
	m.mu.Lock()
	ts := make([]*tx, 0, len(m.txs))
	for _, t := range m.txs {
		ts = append(ts, t)
	}
	m.mu.Unlock()
	out := make([]Info, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.info())
	}
	slices.SortFunc(out, func(a, b Info) int { return b.Created.Compare(a.Created) })
	return out
}

// Get returns one transfer by id or unique id prefix.
func (m *Manager) Get(id string) (Info, error) {
	t, err := m.find(id)
	if err != nil {
		return Info{}, err
	}
	return t.info(), nil
}

// LatestOffer is the newest offer waiting for this node's answer.
func (m *Manager) LatestOffer() (Info, bool) {
	for _, in := range m.List() {
		if in.Dir == Receive && in.State == StateWaiting {
			return in, true
		}
	}
	return Info{}, false
}

// PeerUp tells the manager a peer is connected: transfers waiting to reach
// it try at once.
func (m *Manager) PeerUp(peerID string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, t := range m.txs {
		if t.peer == peerID {
			select {
			case t.kick <- struct{}{}:
			default:
			}
		}
	}
}

// Chatting tells the manager that a chat line just passed to or from
// peerID: the transfers sending to it make room for chat (pace.go). It
// never blocks and costs next to nothing while nothing is being sent.
func (m *Manager) Chatting(peerID string) {
	if m.producing.Load() == 0 {
		return
	}
	now := monoNanos(time.Now())
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, t := range m.txs {
		if t.peer == peerID && t.dir == Send {
			t.chatAt.Store(now)
		}
	}
}

// Cancel stops a transfer from this side: the peer is told, partial files
// on this side are removed (completed ones stay).
func (m *Manager) Cancel(id string) error {
	t, err := m.find(id)
	if err != nil {
		return err
	}
	if !m.finish(t, StateCancelled, codeOther, "cancelled here", false) {
		return fmt.Errorf("cancel %s: %w (%s)", t.id, ErrFinished, t.info().State)
	}
	return nil
}

// Reject answers no to an offer waiting for this node.
func (m *Manager) Reject(id string) error {
	t, err := m.find(id)
	if err != nil {
		return err
	}
	if t.dir != Receive || t.info().State != StateWaiting {
		return fmt.Errorf("reject %s: %w", t.id, ErrNotWaiting)
	}
	if !m.finish(t, StateRejected, codeRejected, "rejected here", false) {
		return fmt.Errorf("reject %s: %w", t.id, ErrNotWaiting)
	}
	return nil
}

// AcceptOffer answers yes to an offer waiting for this node, or resumes a
// transfer that failed because this node's disk was full. It checks the
// free space; the files start to move as soon as the sender's stream is
// there.
func (m *Manager) AcceptOffer(id string) (Info, error) {
	t, err := m.find(id)
	if err != nil {
		return Info{}, err
	}
	if t.dir != Receive {
		return Info{}, fmt.Errorf("accept %s: %w (this node is its sender)", t.id, ErrNotWaiting)
	}
	in := t.info()
	if need := in.Bytes - in.Done; need > 0 {
		if free, err := m.opt.freeSpace(m.opt.DownloadDir); err == nil && free < need {
			return in, fmt.Errorf("accept %s: %w in %s: %s needed, %s free", t.id, ErrNoSpace, m.opt.DownloadDir, sizeString(need), sizeString(free))
		}
	}
	t.mu.Lock()
	switch {
	case t.state == StateWaiting:
		t.accepted = true
		if t.expiry != nil {
			t.expiry.Stop()
		}
		t.state = StateInterrupted // until the session has sent the answer
		if t.conn != nil {
			t.state = StateRunning
		}
	case t.state == StateFailed && t.resumable:
		t.state, t.resumable, t.reason, t.code = StateInterrupted, false, "", codeOther
		t.ended = time.Time{}
		t.stop = make(chan struct{})
		t.contact = time.Now()
		t.mu.Unlock()
		m.save(t)
		m.spawn(func() { m.resumeReceive(t) })
		return t.info(), nil
	default:
		st := t.state
		t.mu.Unlock()
		return in, fmt.Errorf("accept %s: %w (%s)", t.id, ErrNotWaiting, st)
	}
	t.mu.Unlock()
	select {
	case t.decided <- struct{}{}:
	default:
	}
	return t.info(), nil
}

// finish moves t to a final state unless it is in one; it returns whether
// it did. It tells the peer (through the session that holds the stream,
// or a short dial of its own), saves the state, emits the event and, on
// the receiver, cleans up partial files. It does no I/O itself.
func (m *Manager) finish(t *tx, st State, c code, reason string, byPeer bool) bool {
	t.mu.Lock()
	if t.state.Final() {
		t.mu.Unlock()
		return false
	}
	wasWaiting := t.state == StateWaiting
	t.state, t.code, t.reason = st, c, reason
	t.resumable = st == StateFailed && c == codeNoSpace
	t.ended = time.Now()
	t.byPeer = byPeer
	hasConn := t.conn != nil
	close(t.stop)
	info := t.infoLocked()
	t.mu.Unlock()
	select {
	case t.decided <- struct{}{}:
	default:
	}
	t.mu.Lock()
	if t.expiry != nil {
		t.expiry.Stop()
	}
	prepared := t.prepared
	t.mu.Unlock()
	m.spawn(func() {
		// Wait for the session to let go of the stream: it tells the peer
		// and stops writing partial files.
		if !t.acquire(m.ctx) {
			return
		}
		defer t.releaseSlot()
		if !byPeer && !hasConn && !(t.dir == Receive && wasWaiting && st == StateExpired) {
			m.notify(t, st, c, reason)
		}
		if t.dir == Receive && !info.Resumable {
			m.cleanup(t)
		}
		if t.dir == Send || prepared {
			m.save(t)
		}
		m.prune()
	})
	switch st {
	case StateCancelled:
		m.emit(Cancelled{Info: info, ByPeer: byPeer})
	case StateRejected:
		m.emit(Rejected{Info: info, ByPeer: byPeer})
	case StateExpired:
		m.emit(Expired{Info: info})
	case StateFailed:
		m.emit(Failed{Info: info})
	}
	return true
}

// notify tells the peer that t ended here, on a stream of its own, when
// no session was there to do it. One attempt, bounded.
func (m *Manager) notify(t *tx, st State, c code, reason string) {
	var msg message
	switch st {
	case StateCancelled:
		msg = cancelMsg{ID: t.id, Reason: reason}
	case StateRejected, StateExpired:
		if t.dir != Receive {
			msg = errorMsg{ID: t.id, Code: c, Reason: reason}
		} else {
			msg = rejectMsg{ID: t.id, Code: c, Reason: reason}
		}
	case StateFailed:
		msg = errorMsg{ID: t.id, Code: c, Reason: reason}
	default:
		return
	}
	if t.dir == Receive {
		// The receiver's answers to a sender that is away reach it
		// when it redials; only a cancel or failure of an accepted
		// transfer is worth a dial.
		if st == StateRejected || st == StateExpired {
			return
		}
	}
	ctx, cancel := context.WithTimeout(m.ctx, m.opt.DialTimeout)
	defer cancel()
	c2, err := m.opt.Dialer.DialTransfer(ctx, t.peer)
	if err != nil {
		return
	}
	if !m.track(c2) {
		return
	}
	s := m.newStream(c2, t.peer, false)
	s.sendFinal(msg)
}

// Accept takes an inbound transfer stream from peerID, already
// authenticated; the manager owns c from then on.
func (m *Manager) Accept(peerID string, c net.Conn) {
	m.mu.Lock()
	if m.closed || m.inbound >= maxInbound {
		m.mu.Unlock()
		c.Close()
		return
	}
	m.inbound++
	m.wg.Add(1)
	m.mu.Unlock()
	go func() {
		defer m.wg.Done()
		defer func() {
			m.mu.Lock()
			m.inbound--
			m.mu.Unlock()
		}()
		if !m.track(c) {
			return
		}
		m.serveInbound(peerID, c)
	}()
}

// serveInbound reads a stream's first message and hands the stream to
// what it asks for.
func (m *Manager) serveInbound(peer string, c net.Conn) {
	s := m.newStream(c, peer, true)
	var first any
	select {
	case first = <-s.in:
	case <-m.ctx.Done():
		s.close()
		return
	}
	if err, ok := first.(error); ok {
		m.log.Debug("transfer: inbound stream", "peer", peer, "err", err)
		s.close()
		return
	}
	switch msg := first.(type) {
	case offerMsg:
		m.handleOffer(s, msg)
	case resumeMsg:
		m.handleResume(s, msg)
	case cancelMsg:
		if t := m.lookup(msg.ID, peer); t != nil {
			m.finish(t, StateCancelled, codeOther, peerReason("cancelled by the peer", msg.Reason), true)
		}
		s.close()
	case errorMsg:
		if t := m.lookup(msg.ID, peer); t != nil {
			m.finish(t, failState(msg.Code), msg.Code, peerReason("the peer reports", msg.Reason), true)
		}
		s.close()
	case rejectMsg:
		if t := m.lookup(msg.ID, peer); t != nil && t.dir == Send {
			m.finish(t, rejectState(msg.Code), msg.Code, peerReason("rejected", msg.Reason), true)
		}
		s.close()
	default:
		if d, ok := first.(dataItem); ok {
			s.release(d.buf)
		}
		m.log.Debug("transfer: inbound stream starts with an unexpected message", "peer", peer)
		s.close()
	}
}

// lookup finds transfer id of peer, or nil.
func (m *Manager) lookup(id, peer string) *tx {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t := m.txs[id]; t != nil && t.peer == peer {
		return t
	}
	return nil
}

func failState(c code) State {
	switch c {
	case codeRejected:
		return StateRejected
	case codeExpired:
		return StateExpired
	}
	return StateFailed
}

// rejectState is where a reject leaves a transfer: expired when the
// offer was not answered in time, else rejected.
func rejectState(c code) State {
	if c == codeExpired {
		return StateExpired
	}
	return StateRejected
}

func peerReason(what, reason string) string {
	if reason == "" {
		return what
	}
	return what + ": " + reason
}

// prune forgets the oldest ended transfers beyond KeepFinished, and their
// state files.
func (m *Manager) prune() {
	m.mu.Lock()
	var ended []*tx
	for _, t := range m.txs {
		if in := t.info(); in.State.Final() && !in.Resumable {
			ended = append(ended, t)
		}
	}
	if len(ended) <= m.opt.KeepFinished {
		m.mu.Unlock()
		return
	}
	slices.SortFunc(ended, func(a, b *tx) int { return b.info().Ended.Compare(a.info().Ended) })
	drop := ended[m.opt.KeepFinished:]
	for _, t := range drop {
		delete(m.txs, t.id)
	}
	m.mu.Unlock()
	for _, t := range drop {
		removeRecord(m.opt.StateDir, t.id)
	}
}

// load restores the transfers of a previous run.
func (m *Manager) load() {
	recs, errs := loadRecords(m.opt.StateDir, limits{maxFiles: maxOfferEntries})
	for _, err := range errs {
		m.log.Warn("transfer: state file ignored", "err", err)
	}
	for _, r := range recs {
		t, err := txFromRecord(m, r)
		if err != nil {
			m.log.Warn("transfer: state file ignored", "id", r.ID, "err", err)
			continue
		}
		m.mu.Lock()
		m.txs[t.id] = t
		m.mu.Unlock()
	}
	for _, t := range m.snapshot() {
		in := t.info()
		switch {
		case in.State.Final():
		case t.dir == Send && in.State == StateWaiting && time.Now().After(in.Expires):
			m.finish(t, StateExpired, codeExpired, "not answered in time", false)
		case t.dir == Send:
			m.startSender(t, nil)
		case time.Since(t.lastContactTime()) > m.opt.ResumeWindow:
			m.finish(t, StateFailed, codeOther, fmt.Sprintf("the sender did not come back within %v", m.opt.ResumeWindow), false)
		default:
			m.recoverReceive(t)
		}
	}
	m.prune()
}

func (m *Manager) snapshot() []*tx {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*tx, 0, len(m.txs))
	for _, t := range m.txs {
		out = append(out, t)
	}
	return out
}

// jitter spreads d by ±25%.
func jitter(d time.Duration) time.Duration {
	var b [2]byte
	rand.Read(b[:])
	f := float64(uint16(b[0])<<8|uint16(b[1]))/65535*0.5 + 0.75
	return time.Duration(float64(d) * f)
}

func sizeString(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for v := n / unit; v >= unit; v /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// localPath joins the download folder and a slash-separated path.
func (m *Manager) localPath(rel string) string {
	return filepath.Join(m.opt.DownloadDir, filepath.FromSlash(rel))
}
