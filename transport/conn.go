package transport

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// WriteTimeout bounds one write of pending frames to the kernel.
	WriteTimeout = 10 * time.Second
	// maxPending bounds the frames waiting to be written; beyond it the
	// peer is not reading and Send fails.
	maxPending = 4 << 20
	// burstGap: a Send this soon after the last write is part of a
	// burst and is left to a flush goroutine, which writes the burst at
	// once. Longer gaps (a typed line) write directly, saving the
	// hand-off.
	burstGap = 10 * time.Microsecond
	// readBuffer is the size of a TLS connection's read buffer. Small,
	// because a large group holds many idle connections: TLS keeps the
	// record being read already, so refilling from it costs a copy, not
	// a system call; frames larger than this are read past it. A plain
	// stream (measurements only) has nothing below it: plainReadBuffer
	// saves it a system call per frame.
	readBuffer      = 512
	plainReadBuffer = 4 << 10
	// keepBuffer: a frame buffer larger than this (a peer list, a long
	// message) is not kept for the next frame once the connection has
	// gone quiet; see Read and Trim.
	keepBuffer = 1 << 10
	// trimAfter is the quiet after which Trim lets large write buffers go.
	trimAfter = time.Second
)

// Conn is a framed stream connection. One goroutine (the owner) reads with
// Read; any goroutine may Send. Close and Shutdown may be called more than
// once and from any goroutine.
//
// Writes combine: a Send on an idle connection writes its frame at once,
// in the caller's goroutine (no hand-off, the fastest round trip); Sends
// that arrive while a write is under way only append to the pending
// buffer, and the writing caller writes everything pending before it
// returns. So a burst of messages goes out in a few large writes, not one
// system call each.
type Conn struct {
	nc  net.Conn
	br  *bufio.Reader
	buf []byte
	// readDeadline is the deadline last set, so it is set only when it
	// changes: each change costs the runtime a poller update.
	readDeadline time.Time
	// readSinceWrite is set when a frame has been read since the last
	// write ended: a Send then answers it, or follows its answer.
	readSinceWrite atomic.Bool

	mu sync.Mutex // protects following
	// pend holds encoded frames not yet written; spare is the other
	// buffer, swapped in while pend is being written.
	pend, spare []byte
	// writing is set while a caller is writing pending frames.
	writing bool
	// writeDeadline is the write deadline in force, moved forward at most
	// once a second rather than for every write.
	writeDeadline time.Time
	// stopping refuses new frames (Shutdown); closed is set by Close.
	stopping, closed bool
	// err is what broke writing, if anything did.
	err error
	// lastWrite is when the last write ended.
	lastWrite time.Time
	// flushing is set from starting a flush goroutine until it runs.
	flushing bool

	done      chan struct{} // closed by Close
	closeOnce sync.Once
}

// NewConn wraps nc.
func NewConn(nc net.Conn) *Conn {
	size := readBuffer
	if _, ok := nc.(*tls.Conn); !ok {
		size = plainReadBuffer
	}
	return &Conn{
		nc:   nc,
		br:   bufio.NewReaderSize(nc, size),
		done: make(chan struct{}),
	}
}

// flush writes a burst: started by a Send that found a write just done,
// it yields once so that the sender can add more, then writes all
// pending. It lives only as long as the burst (an idle connection has no
// goroutine of its own besides its reader); a write it is blocked in ends
// with Close at the latest.
func (c *Conn) flush() {
	runtime.Gosched()
	c.mu.Lock()
	c.flushing = false
	if c.writing || len(c.pend) == 0 || c.closed {
		c.mu.Unlock()
		return
	}
	c.writePending(time.Time{})
}

// RemoteAddr is the address of the other end.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// LocalAddr is the address of this end.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

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
	if cap(c.buf) > keepBuffer && c.br.Buffered() == 0 {
		// The burst that needed it is over: do not hold a large
		// buffer while waiting, perhaps for a long time.
		c.buf = nil
	}
	t, p, buf, err := ReadFrame(c.br, c.buf)
	c.buf = buf
	if err == nil {
		c.readSinceWrite.Store(true)
	}
	return t, p, err
}

// Buffered reports whether more input is already read and waiting: the
// reader may then put off work (such as an acknowledgement) that the next
// frames will make redundant.
func (c *Conn) Buffered() bool { return c.br.Buffered() > 0 }

// Send writes m, or adds it to what the caller writing now will write. It
// fails once the connection is closed or broken, or when the peer has
// stopped reading and maxPending bytes wait.
func (c *Conn) Send(m Message) error {
	c.mu.Lock()
	switch {
	case c.err != nil:
		err := c.err
		c.mu.Unlock()
		return err
	case c.closed || c.stopping:
		c.mu.Unlock()
		return ErrClosed
	case len(c.pend) > maxPending:
		c.mu.Unlock()
		return fmt.Errorf("send %v: peer is not reading (%d bytes waiting)", m.Type(), maxPending)
	}
	start := len(c.pend)
	var err error
	if c.pend, err = AppendFrame(c.pend, m); err != nil {
		c.pend = c.pend[:start]
		c.mu.Unlock()
		return err
	}
	if c.writing {
		c.mu.Unlock()
		return nil
	}
	// A Send soon after the last write is part of a burst, unless a
	// frame came in between: then it is a reply, or a request after a
	// reply, and waiting would add to a round trip.
	if time.Since(c.lastWrite) < burstGap && !c.readSinceWrite.Load() {
		if !c.flushing {
			c.flushing = true
			go c.flush()
		}
		c.mu.Unlock()
		return nil
	}
	return c.writePending(time.Time{})
}

// writePending writes pending frames until none is left. It is called
// with mu held and writing unset, and returns with mu released. A
// non-zero deadline replaces the usual WriteTimeout.
func (c *Conn) writePending(deadline time.Time) error {
	c.writing = true
	for len(c.pend) > 0 {
		out := c.pend
		c.pend, c.spare = c.spare[:0], nil
		if deadline.IsZero() {
			c.extendWriteDeadline()
		} else {
			c.nc.SetWriteDeadline(deadline)
			c.writeDeadline = deadline
		}
		c.mu.Unlock()
		_, err := c.nc.Write(out)
		c.mu.Lock()
		c.lastWrite = time.Now()
		c.readSinceWrite.Store(false)
		c.spare = out[:0]
		if err != nil {
			if c.err == nil {
				c.err = fmt.Errorf("write to %v: %w", c.nc.RemoteAddr(), err)
			}
			c.writing = false
			c.pend = nil
			err = c.err
			c.mu.Unlock()
			// A broken stream cannot be resumed: close it, so that its
			// reader stops too.
			c.nc.Close()
			return err
		}
	}
	c.writing = false
	c.mu.Unlock()
	return nil
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

// extendWriteDeadline keeps a write from blocking much longer than
// WriteTimeout; it runs under mu, by the writing caller.
func (c *Conn) extendWriteDeadline() {
	now := time.Now()
	if c.writeDeadline.Sub(now) < WriteTimeout-time.Second {
		c.writeDeadline = now.Add(WriteTimeout)
		c.nc.SetWriteDeadline(c.writeDeadline)
	}
}

// flushAll writes whatever is pending, waiting for a writer under way to
// finish first, within deadline. It refuses further frames.
func (c *Conn) flushAll(deadline time.Time) {
	c.mu.Lock()
	c.stopping = true
	for c.writing && time.Now().Before(deadline) {
		c.mu.Unlock()
		time.Sleep(time.Millisecond)
		c.mu.Lock()
	}
	if c.writing || c.err != nil || c.closed || len(c.pend) == 0 {
		c.mu.Unlock()
		return
	}
	c.writePending(deadline)
}

// Close closes the connection at once, dropping pending frames.
func (c *Conn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		err = c.nc.Close()
		close(c.done)
	})
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// Shutdown writes what is pending, half-closes, and waits for the reader
// to see the peer close (the reader then calls Close), until ctx is done
// at most; then the connection is closed at once. Half-closing and waiting
// matters: closing with unread input would send a reset that can destroy
// the frames just written before the peer reads them.
func (c *Conn) Shutdown(ctx context.Context) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(WriteTimeout)
	}
	c.flushAll(deadline)
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		c.Close()
		return ctx.Err()
	}
}

// FlushClose writes what is pending (waiting at most timeout) and closes,
// without waiting for the peer: for refusing a connection with a reason.
func (c *Conn) FlushClose(timeout time.Duration) {
	c.flushAll(time.Now().Add(timeout))
	c.Close()
}
