package transfer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// errProtocol is wrapped when the peer sends something the protocol does
// not allow at that point.
var errProtocol = errors.New("protocol violation")

// dataItem is a data frame read into a buffer of the stream's pool; its
// receiver gives buf back with stream.release.
type dataItem struct {
	buf    []byte // the pool buffer
	index  uint32
	offset int64
	data   []byte // the file bytes, inside buf
}

// stream is one transfer stream: a reader goroutine decodes frames into
// in (control messages as message values, data frames as dataItem), and
// the goroutine that owns the stream writes. Every read and write has a
// deadline of the idle timeout.
type stream struct {
	c    net.Conn
	peer string
	idle time.Duration

	// in carries, in order, control messages (message values), data
	// frames (dataItem) and, last, the error that ended the reading.
	in   chan any
	quit chan struct{} // closed by close
	done chan struct{} // closed when the reader has returned

	// free holds data buffers; nil until data is allowed.
	free chan []byte

	// Written only by the owner.
	wbuf      []byte
	lastWrite time.Time

	closeOnce sync.Once
	m         *Manager
}

// poolBuffers is how many data buffers a stream has: enough to keep the
// network and the disk busy at once.
const poolBuffers = 8

func (m *Manager) newStream(c net.Conn, peer string, data bool) *stream {
	s := &stream{
		c: c, peer: peer, idle: m.opt.IdleTimeout, m: m,
		in:   make(chan any, 8),
		quit: make(chan struct{}), done: make(chan struct{}),
		lastWrite: time.Now(),
	}
	if data {
		s.free = make(chan []byte, poolBuffers)
		for range poolBuffers {
			s.free <- nil // allocated when first needed
		}
	}
	go s.read()
	return s
}

// close stops the reader and closes the connection; it returns once the
// reader has returned. Safe to call more than once.
func (s *stream) close() {
	s.closeOnce.Do(func() {
		close(s.quit)
		s.c.Close()
		s.m.untrack(s.c)
	})
	<-s.done
}

func (s *stream) release(buf []byte) {
	select {
	case s.free <- buf:
	default:
	}
}

// fail hands the reader's final error to the owner, after everything
// read before it.
func (s *stream) fail(err error) {
	select {
	case s.in <- err:
	case <-s.quit:
	}
}

func (s *stream) read() {
	defer close(s.done)
	var hdr [frameHeader + dataHeader]byte
	bg := false // running as background, from the first data frame on
	for {
		s.c.SetReadDeadline(time.Now().Add(s.idle))
		typ, n, err := readHeader(s.c, hdr[:])
		if err != nil {
			s.fail(err)
			return
		}
		if typ != typeData {
			// Large offers are read a few at a time: memory for offers
			// in flight stays bounded whatever peers send.
			big := n > maxControlFrame
			if big {
				select {
				case s.m.bigReads <- struct{}{}:
				case <-s.quit:
					s.fail(net.ErrClosed)
					return
				}
			}
			p, err := readPayload(s.c, nil, n)
			var m message
			if err == nil {
				m, err = decode(typ, p)
			}
			if big {
				<-s.m.bigReads
			}
			if err != nil {
				s.fail(err)
				return
			}
			select {
			case s.in <- m:
			case <-s.quit:
				s.fail(net.ErrClosed)
				return
			}
			continue
		}
		if s.free == nil {
			s.fail(fmt.Errorf("%w: data where none may come", errProtocol))
			return
		}
		if n <= dataHeader {
			s.fail(fmt.Errorf("%w: data frame of %d bytes", ErrMalformed, n))
			return
		}
		if !bg {
			defer background()()
			bg = true
		}
		if _, err := io.ReadFull(s.c, hdr[frameHeader:]); err != nil {
			s.fail(err)
			return
		}
		index := binary.BigEndian.Uint32(hdr[frameHeader:])
		offset := binary.BigEndian.Uint64(hdr[frameHeader+4:])
		if offset > maxFileSize {
			s.fail(fmt.Errorf("%w: data offset %d", ErrMalformed, offset))
			return
		}
		var buf []byte
		select {
		case buf = <-s.free:
		case <-s.quit:
			s.fail(net.ErrClosed)
			return
		}
		if buf == nil {
			buf = alignedBuffer(ChunkSize) // for direct writes (direct.go)
		}
		k := n - dataHeader
		// The deadline covers a whole chunk.
		s.c.SetReadDeadline(time.Now().Add(s.idle))
		if _, err := io.ReadFull(s.c, buf[:k]); err != nil {
			s.release(buf)
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			s.fail(err)
			return
		}
		select {
		case s.in <- dataItem{buf: buf, index: index, offset: int64(offset), data: buf[:k]}:
		case <-s.quit:
			s.fail(net.ErrClosed)
			return
		}
	}
}

// send writes one message.
func (s *stream) send(m message) error { return s.sendWithin(m, s.idle) }

func (s *stream) sendWithin(m message, d time.Duration) error {
	b, err := appendFrame(s.wbuf[:0], m)
	if err != nil {
		return err
	}
	s.wbuf = b
	if cap(s.wbuf) > 64<<10 {
		s.wbuf = nil // an offer's buffer is not kept
	}
	return s.writeWithin(b, d)
}

// write writes whole frames with the idle timeout as deadline.
func (s *stream) write(b []byte) error { return s.writeWithin(b, s.idle) }

func (s *stream) writeWithin(b []byte, d time.Duration) error {
	s.c.SetWriteDeadline(time.Now().Add(d))
	_, err := s.c.Write(b)
	s.lastWrite = time.Now()
	if err != nil {
		return fmt.Errorf("write to peer: %w", err)
	}
	return nil
}

// ping keeps the stream alive when nothing was written for a third of the
// idle timeout.
func (s *stream) ping() error {
	if time.Since(s.lastWrite) < s.idle/3 {
		return nil
	}
	return s.send(pingMsg{})
}

// sendFinal writes a last message and closes the stream; errors are of no
// interest any more. It closes its writing side first and waits briefly
// for the peer to close: closing at once while the peer still sends
// would reset the connection, and the reset can destroy the message
// before the peer reads it.
func (s *stream) sendFinal(m message) {
	if s.sendWithin(m, min(s.idle, 5*time.Second)) == nil {
		if cw, ok := s.c.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		s.lastWords(2 * time.Second)
	}
	s.close()
}

// lastWords reads what the peer still sends, for at most d or until it
// closes, and returns the first message that ends a transfer (nil if
// none came): a write that failed may have failed because the peer said
// something and hung up.
func (s *stream) lastWords(d time.Duration) any {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case x := <-s.in:
			switch msg := x.(type) {
			case dataItem:
				s.release(msg.buf)
			case cancelMsg, errorMsg, rejectMsg, doneMsg:
				return msg
			case error:
				return nil
			}
		case <-timer.C:
			return nil
		}
	}
}
