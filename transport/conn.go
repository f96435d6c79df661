package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// Defaults of ConnOptions.
const (
	// DefaultQueueLimit bounds the bytes waiting to be written to one
	// peer.
	DefaultQueueLimit = 4 << 20
	// DefaultStallTimeout is how long a peer may accept no data while
	// some waits for it before the connection is closed (ErrStalled).
	DefaultStallTimeout = 10 * time.Second
	// DefaultReadBuffer suits a plain stream: it saves a system call per
	// small frame. A TLS stream needs less (see ConnOptions.ReadBuffer).
	DefaultReadBuffer = 4 << 10
)

const (
	// controlFrame and controlReserve: frames of at most controlFrame
	// bytes (acknowledgements, heartbeats, goodbyes, time requests) may
	// use controlReserve bytes beyond the queue limit, so that a queue
	// full of chat still carries them, while bounding what a peer that
	// never reads can make this node hold.
	controlFrame   = 256
	controlReserve = 64 << 10
	// writeChunk is the most handed to one Write: a stall is noticed
	// as a chunk that does not go out, and the queue's space comes back
	// as chunks go, not only after a whole batch.
	writeChunk = 64 << 10
	// deadlineSlack: the write deadline is moved forward when less than
	// StallTimeout-deadlineSlack of it is left, not before every write
	// (each move costs the runtime a poller update).
	deadlineSlack = 100 * time.Millisecond
	// keepBuffer: a frame or write buffer larger than this (a peer list,
	// a long message, a burst) is not kept once the connection has gone
	// quiet; see Read and Trim.
	keepBuffer = 1 << 10
	// trimAfter is the quiet after which Trim lets large write buffers go.
	trimAfter = time.Second
)

var (
	// ErrQueueFull is wrapped by Send when a frame does not fit in the
	// write queue: the peer is reading slower than this node writes, or
	// not at all. Nothing was queued; OnSpace tells when to try again.
	ErrQueueFull = errors.New("write queue full")
	// ErrStalled is wrapped by the error of a connection closed because
	// the peer accepted no data for the stall timeout while data waited.
	ErrStalled = errors.New("peer stopped reading")
)

// ConnOptions tunes a Conn; zero values take the defaults.
type ConnOptions struct {
	// ReadBuffer is the size of the read buffer. Over TLS a small one
	// is enough: TLS keeps the record being read already, so refilling
	// from it costs a copy, not a system call, and a large group holds
	// many idle connections.
	ReadBuffer int
	// QueueLimit bounds the bytes queued and being written.
	QueueLimit int
	// StallTimeout: see DefaultStallTimeout.
	StallTimeout time.Duration
}

// Conn is a framed stream connection. One goroutine, the owner, reads
// with Read. Any goroutine may Send: Send encodes the frame into the
// connection's write queue and returns at once, never waiting on the
// network. A writer goroutine, started when the queue becomes non-empty,
// writes until it is empty and then exits: an idle connection holds no
// writer, and a burst goes out in a few large writes. The owner may
// instead write a reply itself (Reply), which saves the hand-off to a
// writer when nothing else is being written.
//
// The queue is bounded in bytes (ConnOptions.QueueLimit). A frame that
// does not fit is refused with ErrQueueFull; once the queue has drained
// to half, the function given to OnSpace is called. When the peer accepts
// no data for ConnOptions.StallTimeout while some waits, the connection
// is closed and Err wraps ErrStalled.
//
// Close, Shutdown and FlushClose may be called more than once and from
// any goroutine; Close never writes, so it never blocks on the peer.
type Conn struct {
	nc net.Conn
	// raw is what Close closes: the stream under TLS, since closing a
	// TLS connection first writes an alert, which blocks when the peer
	// has stopped reading.
	raw   io.Closer
	opts  ConnOptions
	br    *bufio.Reader
	buf   []byte // the frame being read; owner only
	reply []byte // Reply's frame; owner only
	// readDeadline is the deadline last set, so it is set only when it
	// changes: each change costs the runtime a poller update.
	readDeadline time.Time
	// writeDeadline is the write deadline in force; only the side that
	// holds writing uses it.
	writeDeadline time.Time
	wg            sync.WaitGroup // the writer goroutine

	mu sync.Mutex // protects following
	// pend holds encoded frames not yet taken by a writer; spare is the
	// other buffer, swapped in while pend is being written.
	pend, spare []byte
	// inflight is how many bytes taken by the writer are not written yet.
	inflight int
	// writing is set while a writer goroutine, or the owner in Reply,
	// holds the stream's write side.
	writing bool
	// idle, when not nil, is closed when writing ends: Shutdown and
	// FlushClose wait on it. It is made only by them, so that writes
	// cost no allocation.
	idle chan struct{}
	// full is set when a Send was refused; onSpace is due once the
	// queue drains to half.
	full    bool
	onSpace func()
	// stopping refuses new frames (Shutdown, FlushClose); halfClose asks
	// the writer to close the write side once the queue is written.
	stopping, halfClose bool
	closed              bool
	// err is what broke writing, if anything did.
	err error
	// lastWrite is when the last write ended; waiting is when the queue
	// last went from empty to not empty.
	lastWrite, waiting time.Time

	done      chan struct{} // closed by Close
	closeOnce sync.Once
}

// NewConn wraps nc, which the Conn owns from now on.
func NewConn(nc net.Conn, opts ConnOptions) *Conn {
	if opts.ReadBuffer <= 0 {
		opts.ReadBuffer = DefaultReadBuffer
	}
	if opts.QueueLimit <= 0 {
		opts.QueueLimit = DefaultQueueLimit
	}
	if opts.StallTimeout <= 0 {
		opts.StallTimeout = DefaultStallTimeout
	}
	var raw io.Closer = nc
	if u, ok := nc.(interface{ NetConn() net.Conn }); ok {
		raw = u.NetConn()
	}
	return &Conn{
		nc:   nc,
		raw:  raw,
		opts: opts,
		br:   bufio.NewReaderSize(nc, opts.ReadBuffer),
		done: make(chan struct{}),
	}
}

// RemoteAddr is the address of the other end.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// LocalAddr is the address of this end.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// OnSpace sets the function called, on the writer goroutine and with no
// lock of the Conn held, when the queue has drained to half its limit
// after a Send was refused. It may Send.
func (c *Conn) OnSpace(f func()) {
	c.mu.Lock()
	c.onSpace = f
	c.mu.Unlock()
}

// Read reads the next frame. The payload is valid until the next Read. A
// non-zero deadline bounds the wait; zero waits for ever (the connection's
// close ends it).
func (c *Conn) Read(deadline time.Time) (Type, []byte, error) {
	if !deadline.Equal(c.readDeadline) {
		if err := c.nc.SetReadDeadline(deadline); err != nil {
			return 0, nil, err
		}
		c.readDeadline = deadline
	}
	if c.br.Buffered() == 0 {
		// The burst that needed them is over: do not hold large
		// buffers while waiting, perhaps for a long time.
		if cap(c.buf) > keepBuffer {
			c.buf = nil
		}
		if cap(c.reply) > keepBuffer {
			c.reply = nil
		}
	}
	t, p, buf, err := ReadFrame(c.br, c.buf)
	c.buf = buf
	return t, p, err
}

// Buffered reports whether more input is already read and waiting: the
// reader may then put off work (such as an acknowledgement) that the next
// frames will make redundant.
func (c *Conn) Buffered() bool { return c.br.Buffered() > 0 }

// Send queues m for the writer and returns at once. It fails when the
// connection is closed or broken, is shutting down, or when m does not
// fit in the queue (ErrQueueFull; nothing was queued).
func (c *Conn) Send(m Message) error {
	c.mu.Lock()
	err := c.queueLocked(m)
	if err == nil && !c.writing {
		c.startWriterLocked()
	}
	c.mu.Unlock()
	return err
}

// Reply sends m from the owner's goroutine (the reader), typically a
// reply to the frame just read: when nothing else is queued or being
// written, the owner writes it itself, with no hand-off to a writer
// goroutine; otherwise it is queued as by Send. While the peer does not
// read, this blocks the owner's reading too, for StallTimeout at most.
// Only the goroutine that calls Read may call Reply.
func (c *Conn) Reply(m Message) error {
	c.mu.Lock()
	if err := c.refuseLocked(); err != nil {
		c.mu.Unlock()
		return err
	}
	if c.writing || len(c.pend) > 0 {
		err := c.queueLocked(m)
		if err == nil && !c.writing {
			c.startWriterLocked()
		}
		c.mu.Unlock()
		return err
	}
	var err error
	if c.reply, err = AppendFrame(c.reply[:0], m); err != nil {
		c.mu.Unlock()
		return err
	}
	c.writing = true
	c.mu.Unlock()

	_, err = c.write(c.reply)

	c.mu.Lock()
	c.lastWrite = time.Now()
	if err != nil {
		err = c.failLocked(err)
		c.mu.Unlock()
		c.raw.Close()
		return err
	}
	if len(c.pend) > 0 || c.halfClose {
		// Frames were queued meanwhile: they are the writer's.
		c.startWriterLocked()
	} else {
		c.endWritingLocked()
	}
	c.mu.Unlock()
	return nil
}

// refuseLocked returns why nothing more can be queued, if so.
func (c *Conn) refuseLocked() error {
	switch {
	case c.err != nil:
		return c.err
	case c.closed || c.stopping:
		return ErrClosed
	}
	return nil
}

// queueLocked encodes m at the end of the queue, within the limit.
func (c *Conn) queueLocked(m Message) error {
	if err := c.refuseLocked(); err != nil {
		return err
	}
	start := len(c.pend)
	var err error
	if c.pend, err = AppendFrame(c.pend, m); err != nil {
		c.pend = c.pend[:start]
		return err
	}
	n := len(c.pend) - start
	queued := start + c.inflight
	if queued == 0 {
		c.waiting = time.Now()
	}
	limit := c.opts.QueueLimit
	if n <= controlFrame {
		limit += controlReserve
	}
	// A frame larger than the limit still goes when nothing waits, so
	// that a small limit (tests) never blocks a connection for good.
	if queued > 0 && queued+n > limit {
		c.pend = c.pend[:start]
		c.full = true
		return fmt.Errorf("send %v: %w: %d bytes wait for the peer already", m.Type(), ErrQueueFull, queued)
	}
	return nil
}

// Queued is how many bytes wait to be written.
func (c *Conn) Queued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pend) + c.inflight
}

// Waiting is how long queued data has waited without any of it being
// written, at now: 0 when nothing waits.
func (c *Conn) Waiting(now time.Time) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pend)+c.inflight == 0 {
		return 0
	}
	return now.Sub(later(c.lastWrite, c.waiting))
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// startWriterLocked hands the write side to a new writer goroutine.
func (c *Conn) startWriterLocked() {
	c.writing = true
	c.wg.Add(1)
	go c.writeLoop()
}

// endWritingLocked gives the write side up and wakes whoever waits for it.
func (c *Conn) endWritingLocked() {
	c.writing = false
	if c.idle != nil {
		close(c.idle)
		c.idle = nil
	}
}

// writeLoop writes the queue until it is empty, then half-closes if
// Shutdown asked for it, and exits.
func (c *Conn) writeLoop() {
	defer c.wg.Done()
	c.mu.Lock()
	for len(c.pend) > 0 && c.err == nil && !c.closed {
		out := c.pend
		c.pend, c.spare = c.spare[:0], nil
		c.inflight = len(out)
		c.mu.Unlock()
		err := c.writeOut(out)
		c.mu.Lock()
		c.inflight = 0
		if cap(out) <= 2*c.opts.QueueLimit {
			c.spare = out[:0]
		}
		if err != nil {
			c.failLocked(err)
			c.mu.Unlock()
			// A broken stream cannot be resumed: close it, so that
			// its reader stops too.
			c.raw.Close()
			c.mu.Lock()
			break
		}
	}
	half := c.halfClose && c.err == nil && !c.closed
	c.halfClose = false
	if !half {
		c.endWritingLocked()
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	// The queue is written: tell the peer nothing more comes. Over TLS
	// this writes an alert, so it too may wait on the peer; Close ends
	// the wait.
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		c.extendWriteDeadline()
		cw.CloseWrite()
	}
	c.mu.Lock()
	c.endWritingLocked()
	c.mu.Unlock()
}

// writeOut writes one batch in chunks, giving queue space back as each
// goes and calling onSpace when it is due.
func (c *Conn) writeOut(out []byte) error {
	for len(out) > 0 {
		n, err := c.write(out[:min(len(out), writeChunk)])
		out = out[n:]
		c.mu.Lock()
		c.lastWrite = time.Now()
		c.inflight = len(out)
		var space func()
		if c.full && err == nil && len(c.pend)+c.inflight <= c.opts.QueueLimit/2 {
			c.full, space = false, c.onSpace
		}
		c.mu.Unlock()
		if err != nil {
			return err
		}
		if space != nil {
			space()
		}
	}
	return nil
}

// write writes b under a deadline that keeps a stall from lasting more
// than StallTimeout; it is called by whoever holds writing.
func (c *Conn) write(b []byte) (int, error) {
	c.extendWriteDeadline()
	n, err := c.nc.Write(b)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("%w: it accepted no data for %v", ErrStalled, c.opts.StallTimeout)
	}
	return n, err
}

// extendWriteDeadline moves the write deadline to StallTimeout from now
// when less than that, by deadlineSlack, is left.
func (c *Conn) extendWriteDeadline() {
	now := time.Now()
	if c.writeDeadline.Sub(now) < c.opts.StallTimeout-deadlineSlack {
		c.writeDeadline = now.Add(c.opts.StallTimeout)
		c.nc.SetWriteDeadline(c.writeDeadline)
	}
}

// failLocked records what broke writing and drops what was queued. The
// caller closes the stream, outside the lock.
func (c *Conn) failLocked(err error) error {
	if c.err == nil {
		c.err = fmt.Errorf("write to %v: %w", c.nc.RemoteAddr(), err)
	}
	c.pend, c.spare = nil, nil
	c.endWritingLocked()
	return c.err
}

// Err is what broke writing, nil if nothing did.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Trim lets go of large write buffers once the connection has been quiet
// for trimAfter: a burst grows them, and an idle connection (most of them,
// in a large group) should not keep them. The owner calls it now and then.
func (c *Conn) Trim(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.writing || len(c.pend) > 0 || now.Sub(c.lastWrite) < trimAfter {
		return
	}
	if cap(c.pend) > keepBuffer {
		c.pend = nil
	}
	if cap(c.spare) > keepBuffer {
		c.spare = nil
	}
}

// drain refuses further frames and waits, until deadline at most, for
// what is queued to be written. It reports whether it was.
func (c *Conn) drain(ctx context.Context, halfClose bool) bool {
	c.mu.Lock()
	c.stopping = true
	if c.err != nil || c.closed {
		c.mu.Unlock()
		return false
	}
	if halfClose {
		c.halfClose = true
		if !c.writing {
			c.startWriterLocked()
		}
	}
	if !c.writing {
		c.mu.Unlock()
		return true
	}
	if c.idle == nil {
		c.idle = make(chan struct{})
	}
	idle := c.idle
	c.mu.Unlock()
	select {
	case <-idle:
		return c.Err() == nil
	case <-ctx.Done():
		return false
	}
}

// Close closes the connection at once, dropping what is queued. It does
// not wait for the writer (see Wait).
func (c *Conn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.pend, c.spare = nil, nil
		c.mu.Unlock()
		err = c.raw.Close()
		close(c.done)
	})
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// Wait waits for the writer goroutine, if one runs, to exit. After Close
// that is prompt: its write fails.
func (c *Conn) Wait() { c.wg.Wait() }

// Shutdown writes what is queued, half-closes, and waits for the reader
// to see the peer close (the reader then calls Close), until ctx is done
// at most; then the connection is closed at once. Half-closing and
// waiting matters: closing with unread input would send a reset that can
// destroy the frames just written before the peer reads them.
func (c *Conn) Shutdown(ctx context.Context) error {
	c.drain(ctx, true)
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		c.Close()
		return ctx.Err()
	}
}

// FlushClose writes what is queued (waiting at most timeout) and closes,
// without waiting for the peer: for refusing a connection with a reason.
func (c *Conn) FlushClose(timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c.drain(ctx, false)
	c.Close()
}
