package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Timeouts for stream I/O.
const (
	// WriteTimeout bounds one flush of queued frames to the kernel.
	WriteTimeout = 10 * time.Second
	// sendQueue is how many frames may wait for the writer.
	sendQueue = 4096
)

// Conn is a framed stream connection. One goroutine (the owner) reads with
// Read; any goroutine may Send. Close and Shutdown may be called more than
// once and from any goroutine.
type Conn struct {
	nc  net.Conn
	br  *bufio.Reader
	buf []byte
	// readDeadline is the deadline last set, so it is set only when it
	// changes: each change costs the runtime a poller update.
	readDeadline time.Time
	// writeDeadline is the write deadline in force (under wmu); it is
	// moved forward at most once a second rather than for every write.
	writeDeadline time.Time

	queue    chan []byte
	stop     chan struct{} // closed to ask the writer to flush and exit
	abort    chan struct{} // closed to make the writer exit at once
	done     chan struct{} // closed when the writer has exited
	flushed  chan struct{} // closed when the writer has flushed and half-closed on stop
	stopOnce sync.Once
	abrtOnce sync.Once

	// wmu is held by whoever writes to bw: the writer goroutine, or a
	// sender writing directly because nothing was queued (which saves
	// the hand-off to the writer, a large part of a round trip).
	wmu sync.Mutex
	bw  *bufio.Writer
	// queued counts frames handed to the writer and not yet written; a
	// direct write is allowed only when it is zero, to keep the order.
	queued atomic.Int64

	errMu sync.Mutex // protects writeErr
	// writeErr is the error that ended writing, if any.
	writeErr error
}

// NewConn wraps nc and starts its writer goroutine, which ends when the
// connection is closed or shut down.
func NewConn(nc net.Conn) *Conn {
	c := &Conn{
		nc:      nc,
		br:      bufio.NewReaderSize(nc, 32<<10),
		queue:   make(chan []byte, sendQueue),
		stop:    make(chan struct{}),
		abort:   make(chan struct{}),
		done:    make(chan struct{}),
		flushed: make(chan struct{}),
		bw:      bufio.NewWriterSize(nc, 64<<10),
	}
	go c.writer()
	return c
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
	t, p, buf, err := ReadFrame(c.br, c.buf)
	c.buf = buf
	return t, p, err
}

// Send writes m: at once when nothing is queued and no one is writing,
// otherwise through the writer's queue, waiting while the queue is full
// for at most WriteTimeout. It fails once the connection is closed.
func (c *Conn) Send(m Message) error {
	f, err := AppendFrame(nil, m)
	if err != nil {
		return err
	}
	select {
	case <-c.stop:
		return ErrClosed
	case <-c.done:
		return c.err()
	default:
	}
	if c.queued.Load() == 0 && c.wmu.TryLock() {
		if c.queued.Load() == 0 {
			err := c.writeDirect(f)
			c.wmu.Unlock()
			return err
		}
		c.wmu.Unlock()
	}
	c.queued.Add(1)
	t := time.NewTimer(WriteTimeout)
	defer t.Stop()
	select {
	case c.queue <- f:
		return nil
	case <-c.stop:
		err = ErrClosed
	case <-c.done:
		err = c.err()
	case <-t.C:
		err = fmt.Errorf("send %v: peer is not reading (queue of %d frames full for %v)", m.Type(), sendQueue, WriteTimeout)
	}
	c.queued.Add(-1)
	return err
}

// extendWriteDeadline keeps a write from blocking longer than about
// WriteTimeout; it runs under wmu.
func (c *Conn) extendWriteDeadline() {
	now := time.Now()
	if c.writeDeadline.Sub(now) < WriteTimeout-time.Second {
		c.writeDeadline = now.Add(WriteTimeout)
		c.nc.SetWriteDeadline(c.writeDeadline)
	}
}

// writeDirect writes and flushes one frame; it runs under wmu. A failed
// write breaks the connection: it is closed, so that its reader stops.
func (c *Conn) writeDirect(f []byte) error {
	if c.err() != ErrClosed {
		return c.err()
	}
	c.extendWriteDeadline()
	if _, err := c.bw.Write(f); err == nil {
		err = c.bw.Flush()
		if err == nil {
			return nil
		}
		c.setErr(err)
	} else {
		c.setErr(err)
	}
	c.nc.Close()
	return c.err()
}

// err is the error that broke writing, or ErrClosed.
func (c *Conn) err() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	if c.writeErr != nil {
		return c.writeErr
	}
	return ErrClosed
}

func (c *Conn) writer() {
	defer close(c.done)
	defer c.nc.Close()
	// writeQueued writes f and whatever else is queued now, then flushes
	// once: frames that pile up while a flush is in progress go out in
	// one write. It runs under wmu.
	writeQueued := func(f []byte) bool {
		for {
			_, err := c.bw.Write(f)
			c.queued.Add(-1)
			if err != nil {
				c.setErr(err)
				return false
			}
			select {
			case f = <-c.queue:
				continue
			default:
			}
			break
		}
		c.extendWriteDeadline()
		if err := c.bw.Flush(); err != nil {
			c.setErr(err)
			return false
		}
		return true
	}
	for {
		select {
		case f := <-c.queue:
			c.wmu.Lock()
			ok := writeQueued(f)
			c.wmu.Unlock()
			if !ok {
				return
			}
		case <-c.stop:
			c.wmu.Lock()
			select {
			case f := <-c.queue:
				writeQueued(f)
			default:
			}
			c.wmu.Unlock()
			// Half-close and let the reader see the peer's EOF: closing
			// with unread input would send a reset that can destroy the
			// frames just written before the peer reads them.
			if tc, ok := c.nc.(interface{ CloseWrite() error }); ok {
				tc.CloseWrite()
			}
			close(c.flushed)
			<-c.abort
			return
		case <-c.abort:
			return
		}
	}
}

func (c *Conn) setErr(err error) {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	if c.writeErr == nil {
		c.writeErr = fmt.Errorf("write to %v: %w", c.nc.RemoteAddr(), err)
	}
}

// Close closes the connection at once, dropping queued frames.
func (c *Conn) Close() error {
	c.abrtOnce.Do(func() { close(c.abort) })
	err := c.nc.Close()
	<-c.done
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// Shutdown writes what is queued, half-closes, and waits for the reader to
// see the peer close (the reader then calls Close), until ctx is done at
// most; then the connection is closed at once.
func (c *Conn) Shutdown(ctx context.Context) error {
	c.stopOnce.Do(func() { close(c.stop) })
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
	c.stopOnce.Do(func() { close(c.stop) })
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-c.flushed:
	case <-c.done:
	case <-t.C:
	}
	c.Close()
}

// Done is closed once the writer has ended and the connection is closed.
func (c *Conn) Done() <-chan struct{} { return c.done }
