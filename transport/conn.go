package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
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

	queue    chan []byte
	stop     chan struct{} // closed to ask the writer to flush and exit
	abort    chan struct{} // closed to make the writer exit at once
	done     chan struct{} // closed when the writer has exited
	flushed  chan struct{} // closed when the writer has flushed and half-closed on stop
	stopOnce sync.Once
	abrtOnce sync.Once

	errMu sync.Mutex // protects writeErr
	// writeErr is the error that ended the writer, if any.
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
	if err := c.nc.SetReadDeadline(deadline); err != nil {
		return 0, nil, err
	}
	t, p, buf, err := ReadFrame(c.br, c.buf)
	c.buf = buf
	return t, p, err
}

// Send queues m for writing. It waits while the queue is full, for at most
// WriteTimeout, and fails once the connection is closed.
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
	t := time.NewTimer(WriteTimeout)
	defer t.Stop()
	select {
	case c.queue <- f:
		return nil
	case <-c.stop:
		return ErrClosed
	case <-c.done:
		return c.err()
	case <-t.C:
		return fmt.Errorf("send %v: peer is not reading (queue of %d frames full for %v)", m.Type(), sendQueue, WriteTimeout)
	}
}

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
	bw := bufio.NewWriterSize(c.nc, 64<<10)
	write := func(f []byte) bool {
		if _, err := bw.Write(f); err != nil {
			c.setErr(err)
			return false
		}
		return true
	}
	// flushQueued writes what is queued now and flushes once: frames that
	// pile up while a flush is in progress go out in one write.
	flushQueued := func() bool {
		for {
			select {
			case f := <-c.queue:
				if !write(f) {
					return false
				}
				continue
			default:
			}
			break
		}
		if bw.Buffered() == 0 {
			return true
		}
		c.nc.SetWriteDeadline(time.Now().Add(WriteTimeout))
		if err := bw.Flush(); err != nil {
			c.setErr(err)
			return false
		}
		return true
	}
	for {
		select {
		case f := <-c.queue:
			if !write(f) || !flushQueued() {
				return
			}
		case <-c.stop:
			flushQueued()
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
