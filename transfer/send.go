package transfer

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Offer offers files and folders (a folder with its tree) to a peer and
// returns at once: the manager reaches the peer in the background, with
// backoff, until the offer is answered or expires. Inside folders,
// symbolic links and special files are skipped (Info.Skipped); a path
// given here that is a symbolic link is followed.
func (m *Manager) Offer(ctx context.Context, peerID string, paths ...string) (Info, error) {
	if !validPeerID(peerID) {
		return Info{}, fmt.Errorf("offer: bad peer id %q", peerID)
	}
	if len(paths) == 0 {
		return Info{}, errors.New("offer: nothing to send")
	}
	es, src, skipped, err := scan(ctx, paths, m.lim)
	if err != nil {
		return Info{}, fmt.Errorf("offer: %w", err)
	}
	total, err := checkOffer(es, m.lim)
	if err != nil {
		return Info{}, fmt.Errorf("offer: %w", err)
	}
	t := newTx(m, "", peerID, Send, m.opt.hash, es, total)
	t.src, t.skipped = src, skipped
	t.state = StateWaiting
	t.expires = t.created.Add(m.opt.OfferExpiry)
	if err := m.register(t); err != nil {
		return Info{}, fmt.Errorf("offer: %w", err)
	}
	if err := m.save(t); err != nil {
		m.mu.Lock()
		delete(m.txs, t.id)
		m.mu.Unlock()
		return Info{}, fmt.Errorf("offer: %w", err)
	}
	m.emit(Offered{Info: t.info()})
	m.startSender(t, nil)
	return t.info(), nil
}

// scan lists what paths hold: entries in offer order (a folder before
// its contents), their sources, and how many special entries it skipped.
func scan(ctx context.Context, paths []string, lim limits) ([]entry, []source, int, error) {
	var es []entry
	var src []source
	skipped := 0
	tops := map[string]bool{}
	add := func(e entry, s source) error {
		if err := checkPath(e.Path); err != nil {
			return fmt.Errorf("cannot send %s: %w", s.path, err)
		}
		if len(es) >= lim.maxFiles {
			return fmt.Errorf("more than %d files and folders", lim.maxFiles)
		}
		es = append(es, e)
		src = append(src, s)
		return nil
	}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, nil, 0, err
		}
		fi, err := os.Stat(abs)
		if err != nil {
			return nil, nil, 0, err
		}
		name := filepath.Base(abs)
		if name == "/" || name == "." {
			return nil, nil, 0, fmt.Errorf("cannot send %s: it has no name", abs)
		}
		if tops[name] {
			return nil, nil, 0, fmt.Errorf("two of the paths are named %q", name)
		}
		tops[name] = true
		switch {
		case fi.Mode().IsRegular():
			if err := add(entry{Path: name, Size: fi.Size()}, source{path: abs, mtime: fi.ModTime().UnixNano()}); err != nil {
				return nil, nil, 0, err
			}
		case fi.IsDir():
			err := filepath.WalkDir(abs, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if err := ctx.Err(); err != nil {
					return err
				}
				rel := name
				if p != abs {
					r, err := filepath.Rel(abs, p)
					if err != nil {
						return err
					}
					rel = name + "/" + filepath.ToSlash(r)
				}
				switch {
				case d.IsDir():
					return add(entry{Path: rel, Dir: true}, source{path: p})
				case d.Type().IsRegular():
					fi, err := d.Info()
					if err != nil {
						return err
					}
					return add(entry{Path: rel, Size: fi.Size()}, source{path: p, mtime: fi.ModTime().UnixNano()})
				default:
					skipped++
					return nil
				}
			})
			if err != nil {
				return nil, nil, 0, err
			}
		default:
			return nil, nil, 0, fmt.Errorf("cannot send %s: not a regular file or folder", abs)
		}
	}
	return es, src, skipped, nil
}

// startSender runs t's sender loop, or hands it s when it runs already.
func (m *Manager) startSender(t *tx, s *stream) {
	t.mu.Lock()
	if t.running {
		t.mu.Unlock()
		if s != nil {
			select {
			case t.inbound <- s:
				t.attach(s.c) // the session on the old stream ends
			default:
				s.close()
			}
		}
		return
	}
	t.running = true
	t.mu.Unlock()
	if !m.spawn(func() { m.runSend(t, s) }) {
		t.mu.Lock()
		t.running = false
		t.mu.Unlock()
		if s != nil {
			s.close()
		}
	}
}

// runSend reaches the receiver and runs sessions until t ends: it
// redials with jittered exponential backoff, at once when the peer comes
// up (PeerUp) or opens a stream for t itself.
func (m *Manager) runSend(t *tx, s *stream) {
	defer func() {
		t.mu.Lock()
		t.running = false
		var left *stream
		select {
		case left = <-t.inbound:
		default:
		}
		t.mu.Unlock()
		if left != nil {
			left.close()
		}
	}()
	backoff := m.opt.RedialMin
	for {
		stop := t.stopped()
		select {
		case <-stop:
			if s != nil {
				s.sendFinal(t.finalMsg())
			}
			return
		case <-m.ctx.Done():
			if s != nil {
				s.close()
			}
			return
		default:
		}
		if s == nil {
			select {
			case s = <-t.inbound:
			default:
			}
		}
		if s == nil {
			ctx, cancel := context.WithTimeout(m.ctx, m.opt.DialTimeout)
			c, err := m.opt.Dialer.DialTransfer(ctx, t.peer)
			cancel()
			if err == nil && !m.track(c) {
				return
			}
			if err == nil {
				s = m.newStream(c, t.peer, false)
			} else {
				m.interrupted(t, err)
			}
		}
		if s != nil {
			if m.sendSession(t, s) {
				backoff = m.opt.RedialMin
			}
			s = nil
		}
		in := t.info()
		if in.State.Final() {
			continue
		}
		if in.State != StateWaiting && time.Since(t.lastContactTime()) > m.opt.ResumeWindow {
			m.finish(t, StateFailed, codeOther, fmt.Sprintf("the receiver was not reachable for %v", m.opt.ResumeWindow), false)
			continue
		}
		var expire <-chan time.Time
		var et *time.Timer
		if in.State == StateWaiting {
			et = time.NewTimer(time.Until(in.Expires))
			expire = et.C
		}
		wait := time.NewTimer(jitter(backoff))
		backoff = min(2*backoff, m.opt.RedialMax)
		select {
		case <-wait.C:
		case <-t.kick:
		case s = <-t.inbound:
		case <-stop:
		case <-expire:
			m.finish(t, StateExpired, codeExpired, fmt.Sprintf("not answered within %v", m.opt.OfferExpiry), false)
		case <-m.ctx.Done():
		}
		wait.Stop()
		if et != nil {
			et.Stop()
		}
	}
}

// interrupted notes that t's stream is lost while it runs.
func (m *Manager) interrupted(t *tx, err error) {
	t.mu.Lock()
	if t.state != StateRunning {
		t.mu.Unlock()
		return
	}
	t.state = StateInterrupted
	info := t.infoLocked()
	t.mu.Unlock()
	m.log.Debug("transfer: stream lost", "id", t.id, "peer", t.peer, "err", err)
	m.emit(Interrupted{Info: info, Err: err.Error()})
}

// batchLimit is how many bytes of small frames are gathered into one
// write.
const batchLimit = 128 << 10

// sendItem is what the producer hands the session.
type sendItem struct {
	kind  uint8 // itemData, itemEnd, itemFail, itemAll
	buf   []byte
	n     int
	index int
	sum   []byte
	code  code
	err   error
}

const (
	itemData uint8 = iota
	itemEnd
	itemFail
	itemAll
)

// sendSession offers t on s and, once accepted, sends the files. It
// returns whether it got anywhere (an answer, or data moved), which
// resets the backoff.
func (m *Manager) sendSession(t *tx, s *stream) (progressed bool) {
	t.attach(s.c)
	if !t.acquire(m.ctx) {
		s.close()
		return false
	}
	defer t.releaseSlot()
	defer t.detach(s.c)
	defer s.close()
	stop := t.stopped()
	select {
	case <-stop:
		s.sendFinal(t.finalMsg())
		return false
	default:
	}
	ticker := time.NewTicker(m.opt.IdleTimeout / 3)
	defer ticker.Stop()
	if err := s.send(offerMsg{ID: t.id, Hash: t.alg, Entries: t.entries}); err != nil {
		m.interrupted(t, err)
		return false
	}
	var expire <-chan time.Time
	if in := t.info(); in.State == StateWaiting {
		et := time.NewTimer(time.Until(in.Expires))
		defer et.Stop()
		expire = et.C
	}
	var acc acceptMsg
answer:
	for {
		select {
		case x := <-s.in:
			switch msg := x.(type) {
			case acceptMsg:
				acc = msg
				break answer
			case pingMsg:
				t.touch()
				progressed = true
			case error:
				m.interrupted(t, msg)
				return progressed
			default:
				m.sendEnded(t, s, msg)
				return true
			}
		case <-stop:
			s.sendFinal(t.finalMsg())
			return progressed
		case <-expire:
			m.finish(t, StateExpired, codeExpired, fmt.Sprintf("not answered within %v", m.opt.OfferExpiry), false)
			s.sendFinal(t.finalMsg())
			return progressed
		case <-ticker.C:
			if err := s.ping(); err != nil {
				m.interrupted(t, err)
				return progressed
			}
		case <-m.ctx.Done():
			return progressed
		}
	}
	next, off := int(acc.Next), acc.Offset
	if err := t.checkResume(next, off); err != nil {
		m.protocolError(t, s, err)
		return true
	}
	resumed, info := t.markAccepted(next, off)
	m.save(t)
	m.emit(Accepted{Info: info, Resumed: resumed, Offset: info.Done})

	var h hasher
	var fromSnap bool
	if off > 0 {
		var err error
		var c code
		h, fromSnap, c, err = m.prefixHash(t, s, next, off, acc.Prefix)
		if err != nil {
			if c == codeOther {
				m.interrupted(t, err)
				return true
			}
			m.fail(t, s, c, err.Error())
			return true
		}
	}

	// From here on this goroutine sends data; it keeps its thread until
	// the transfer ends (see background).
	defer background()()
	ctx, cancel := context.WithCancel(m.ctx)
	items := make(chan sendItem, poolBuffers)
	free := make(chan []byte, poolBuffers)
	for range poolBuffers {
		free <- nil
	}
	var pwg sync.WaitGroup
	var verified chan error
	if fromSnap {
		verified = make(chan error, 1)
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			verified <- m.verifyPrefix(ctx, t, next, off, acc.Prefix)
		}()
	}
	pwg.Add(1)
	go func() {
		defer pwg.Done()
		defer background()()
		t.produce(ctx, next, off, h, verified, items, free)
	}()
	defer pwg.Wait()
	defer cancel()

	start, startDone := time.Now(), info.Done
	toSend, endsSent := 0, 0
	for _, e := range t.entries[next:] {
		if !e.Dir {
			toSend++
		}
	}
	var batch []byte
	for {
		select {
		case it := <-items:
			// A whole chunk goes as it is; small frames (small files,
			// file ends) are gathered with what else is ready into one
			// write, so a folder of small files costs few records and
			// system calls.
			var failed *sendItem
			for whole := false; !whole; {
				switch it.kind {
				case itemData:
					if len(batch) == 0 && it.n == ChunkSize {
						whole = true
						err := s.write(it.buf)
						free <- it.buf[:cap(it.buf)]
						if err != nil {
							m.sendBroken(t, s, err)
							return true
						}
					} else {
						batch = append(batch, it.buf...)
						free <- it.buf[:cap(it.buf)]
					}
					progressed = true
					m.sent(t, it.n, start, startDone)
				case itemEnd:
					endsSent++
					batch, _ = appendFrame(batch, fileEndMsg{Index: uint32(it.index), Hash: it.sum})
					t.mu.Lock()
					t.hashes[it.index] = it.sum
					t.filesDone++
					t.mu.Unlock()
				case itemFail:
					failed = &it
				case itemAll:
					items = nil
				}
				if whole || failed != nil || items == nil || len(batch) >= batchLimit {
					break
				}
				var more bool
				select {
				case it, more = <-items:
				default:
				}
				if !more {
					break
				}
			}
			if len(batch) > 0 {
				err := s.write(batch)
				batch = batch[:0]
				if err != nil {
					m.sendBroken(t, s, err)
					return true
				}
			}
			if failed != nil {
				m.fail(t, s, failed.code, failed.err.Error())
				return true
			}
		case x := <-s.in:
			progressed = true
			switch msg := x.(type) {
			case error:
				m.interrupted(t, msg)
				return true
			case ackMsg:
				if err := m.acked(t, msg); err != nil {
					m.protocolError(t, s, err)
					return true
				}
			case pingMsg:
				t.touch()
			case doneMsg:
				// Done is due once every file end went out (at once when
				// nothing was left to send).
				if endsSent < toSend || msg.ID != t.id {
					m.protocolError(t, s, fmt.Errorf("%w: done before every file was sent", errProtocol))
					return true
				}
				s.close()
				m.completeSend(t)
				return true
			default:
				m.sendEnded(t, s, msg)
				return true
			}
		case <-stop:
			s.sendFinal(t.finalMsg())
			return progressed
		case <-ticker.C:
			if err := s.ping(); err != nil {
				m.interrupted(t, err)
				return progressed
			}
		case <-m.ctx.Done():
			return progressed
		}
	}
}

// sendBroken handles a write that failed: the receiver may have said why
// before it closed.
func (m *Manager) sendBroken(t *tx, s *stream, err error) {
	if msg := s.lastWords(time.Second); msg != nil {
		m.sendEnded(t, s, msg)
		return
	}
	m.interrupted(t, err)
}

// sendEnded handles the receiver's reject, cancel, error or early done.
func (m *Manager) sendEnded(t *tx, s *stream, msg any) {
	switch msg := msg.(type) {
	case rejectMsg:
		m.finish(t, rejectState(msg.Code), msg.Code, peerReason("rejected", msg.Reason), true)
	case cancelMsg:
		m.finish(t, StateCancelled, codeOther, peerReason("cancelled by the peer", msg.Reason), true)
	case errorMsg:
		m.finish(t, failState(msg.Code), msg.Code, peerReason("the receiver reports", msg.Reason), true)
	case doneMsg:
		// The receiver has it all; this side had not heard (a lost
		// stream, a restart).
		s.close()
		m.completeSend(t)
		return
	case dataItem:
		s.release(msg.buf)
		m.protocolError(t, s, fmt.Errorf("%w: the receiver sent data", errProtocol))
		return
	default:
		m.protocolError(t, s, fmt.Errorf("%w: unexpected %T from the receiver", errProtocol, msg))
		return
	}
	s.close()
}

// protocolError ends t because the peer broke the protocol.
func (m *Manager) protocolError(t *tx, s *stream, err error) {
	m.fail(t, s, codeProtocol, err.Error())
}

// fail ends t with a failure this side found, and tells the peer.
func (m *Manager) fail(t *tx, s *stream, c code, reason string) {
	m.finish(t, StateFailed, c, reason, false)
	s.sendFinal(t.finalMsg())
}

func (t *tx) touch() {
	t.mu.Lock()
	t.contact = time.Now()
	t.mu.Unlock()
}

// checkResume checks a receiver's resume point against the offer.
func (t *tx) checkResume(next int, off int64) error {
	switch {
	case next > len(t.entries):
		return fmt.Errorf("%w: accept from entry %d of %d", errProtocol, next, len(t.entries))
	case next == len(t.entries) && off != 0,
		next < len(t.entries) && (off < 0 || off > t.entries[next].Size || off > 0 && t.entries[next].Dir):
		return fmt.Errorf("%w: accept at offset %d of entry %d", errProtocol, off, next)
	}
	return nil
}

// markAccepted records an accept and returns whether it resumes.
func (t *tx) markAccepted(next int, off int64) (bool, Info) {
	t.mu.Lock()
	defer t.mu.Unlock()
	resumed := !t.started.IsZero()
	if !resumed {
		t.started = time.Now()
	}
	t.state = StateRunning
	t.contact = time.Now()
	var done int64
	files := 0
	for i := range next {
		done += t.entries[i].Size
		if !t.entries[i].Dir {
			files++
		}
	}
	t.done, t.filesDone = done+off, files
	// The receiver's answer is the new baseline, backwards too (a
	// partial file found damaged is received again).
	t.ackNext, t.ackOffset = next, off
	return resumed, t.infoLocked()
}

// sent counts n bytes sent and emits progress, at most once per
// Options.Progress.
func (m *Manager) sent(t *tx, n int, start time.Time, startDone int64) {
	t.mu.Lock()
	t.done += int64(n)
	t.wire += int64(n)
	t.contact = time.Now()
	var p *Progress
	if time.Since(t.lastProg) >= m.opt.Progress {
		t.lastProg = time.Now()
		p = t.progressLocked(start, startDone)
	}
	t.mu.Unlock()
	if p != nil {
		m.emit(*p)
	}
}

func (t *tx) progressLocked(start time.Time, startDone int64) *Progress {
	p := &Progress{ID: t.id, Peer: t.peer, Dir: t.dir, Bytes: t.done, Total: t.total, Files: t.filesDone, FileCount: t.files,
		Yielding: t.yielding.Load()}
	if el := time.Since(start).Seconds(); el > 0 {
		p.Rate = float64(t.done-startDone) / el
		if p.Rate > 0 {
			p.ETA = time.Duration(float64(t.total-t.done) / p.Rate * float64(time.Second))
		}
	}
	return p
}

// acked records the receiver's durable point and drops the hash
// snapshots before it; the state file follows at most once per
// checkpoint interval.
func (m *Manager) acked(t *tx, a ackMsg) error {
	next, off := int(a.Next), a.Offset
	if err := t.checkResume(next, off); err != nil {
		return err
	}
	t.mu.Lock()
	if next < t.ackNext || next == t.ackNext && off < t.ackOffset {
		t.mu.Unlock()
		return fmt.Errorf("%w: acknowledgement goes backwards", errProtocol)
	}
	for i := t.ackNext; i < next; i++ {
		if !t.entries[i].Dir && t.hashes[i] == nil {
			t.mu.Unlock()
			return fmt.Errorf("%w: acknowledges entry %d before its end was sent", errProtocol, i)
		}
	}
	t.ackNext, t.ackOffset = next, off
	keep := t.snaps[:0]
	for _, sn := range t.snaps {
		if sn.index > next || sn.index == next && sn.offset >= off {
			keep = append(keep, sn)
		} else if len(t.spare) < maxSnaps {
			t.spare = append(t.spare, sn.h)
		}
	}
	clear(t.snaps[len(keep):])
	t.snaps = keep
	t.contact = time.Now()
	due := time.Since(t.lastSave) >= m.opt.CheckpointEvery
	if due {
		t.lastSave = time.Now()
	}
	t.mu.Unlock()
	if due {
		m.save(t)
	}
	return nil
}

// maxSnaps bounds the hash snapshots a sender keeps: enough for the
// chunks in flight between two acknowledgements.
const maxSnaps = 128

func (t *tx) addSnap(index int, offset int64, h hasher) {
	t.mu.Lock()
	var dst hasher
	if n := len(t.spare); n > 0 {
		dst, t.spare[n-1], t.spare = t.spare[n-1], nil, t.spare[:n-1]
	}
	t.mu.Unlock()
	c := copyHash(dst, h)
	t.mu.Lock()
	if len(t.snaps) >= maxSnaps {
		// Keep the oldest (likely the receiver's durable point) and
		// drop the next one.
		t.spare = append(t.spare, t.snaps[1].h)
		copy(t.snaps[1:], t.snaps[2:])
		t.snaps = t.snaps[:len(t.snaps)-1]
	}
	t.snaps = append(t.snaps, snap{index: index, offset: offset, h: c})
	t.mu.Unlock()
}

// prefixHash gives the hash state of the first off bytes of entry i and
// checks it against what the receiver has (a difference means the source
// changed). It takes a snapshot kept from sending those bytes when there
// is one (fromSnap; the caller then has the source read again in the
// background by verifyPrefix), else reads the source now. The code is
// codeOther when the stream broke meanwhile.
func (m *Manager) prefixHash(t *tx, s *stream, i int, off int64, want []byte) (h hasher, fromSnap bool, c code, err error) {
	t.mu.Lock()
	for _, sn := range t.snaps {
		if sn.index == i && sn.offset == off {
			h = sn.h.Clone()
		}
	}
	t.mu.Unlock()
	fromSnap = h != nil
	if h == nil {
		h, c, err = m.readPrefix(t, i, off, func() error {
			// Reading back a large prefix takes a while: keep the
			// stream alive, and stop when told.
			select {
			case <-t.stopped():
				return errors.New("stopped")
			case <-m.ctx.Done():
				return m.ctx.Err()
			default:
			}
			return s.ping()
		})
		if err != nil {
			return nil, false, c, err
		}
	}
	if got := h.Clone().Sum(); !bytes.Equal(got, want) {
		return nil, false, codeSourceChanged, fmt.Errorf("%s changed since it was offered: its first %d bytes no longer hash to what the receiver has", t.src[i].path, off)
	}
	return h, fromSnap, 0, nil
}

// readPrefix hashes the first off bytes of entry i's source; tick runs
// after every chunk and stops the reading with its error (codeOther).
func (m *Manager) readPrefix(t *tx, i int, off int64, tick func() error) (hasher, code, error) {
	e, src := t.entries[i], t.src[i]
	f, err := os.Open(src.path)
	if err != nil {
		return nil, codeSourceChanged, fmt.Errorf("%s: %w", src.path, err)
	}
	defer f.Close()
	if err := sameSource(f, e, src); err != nil {
		return nil, codeSourceChanged, err
	}
	h := t.alg.new()
	buf := make([]byte, ChunkSize)
	for pos := int64(0); pos < off; {
		n := min(int64(len(buf)), off-pos)
		if _, err := f.ReadAt(buf[:n], pos); err != nil {
			return nil, codeSourceChanged, fmt.Errorf("%s changed since it was offered: %w", src.path, err)
		}
		h.Write(buf[:n])
		pos += n
		if err := tick(); err != nil {
			return nil, codeOther, err
		}
	}
	return h, 0, nil
}

// verifyPrefix reads the first off bytes of entry i again and compares
// them with want, the hash of what was sent before the stream broke: a
// source rewritten meanwhile (even with its size and modification time
// put back) must not be finished as a splice of two versions. It runs
// beside the sending; the file's end waits for its answer.
func (m *Manager) verifyPrefix(ctx context.Context, t *tx, i int, off int64, want []byte) error {
	h, _, err := m.readPrefix(t, i, off, func() error { return ctx.Err() })
	if err != nil {
		return err
	}
	if !bytes.Equal(h.Sum(), want) {
		return fmt.Errorf("%s changed since it was offered: its first %d bytes differ from what was sent", t.src[i].path, off)
	}
	return nil
}

// sameSource checks an open source against what was offered.
func sameSource(f *os.File, e entry, src source) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%s: %w", src.path, err)
	}
	switch {
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s changed since it was offered: no longer a regular file", src.path)
	case fi.Size() != e.Size:
		return fmt.Errorf("%s changed since it was offered: %d bytes, offered with %d", src.path, fi.Size(), e.Size)
	case fi.ModTime().UnixNano() != src.mtime:
		return fmt.Errorf("%s changed since it was offered: modified at %v", src.path, fi.ModTime().Format(time.RFC3339Nano))
	}
	return nil
}

// produce reads the files from entry from (at offset off, with h the hash
// of what comes before), hashes them and hands the frames to the
// session, which gives the buffers back through free. When verified is
// set, the end of entry from waits for its answer (see verifyPrefix),
// and a failure seen earlier ends the sending at once.
func (t *tx) produce(ctx context.Context, from int, off int64, h hasher, verified <-chan error, items chan<- sendItem, free chan []byte) {
	put := func(it sendItem) bool {
		select {
		case items <- it:
			return true
		case <-ctx.Done():
			return false
		}
	}
	failf := func(c code, err error) { put(sendItem{kind: itemFail, code: c, err: err}) }
	t.m.producing.Add(1)
	defer t.m.producing.Add(-1)
	defer t.yielding.Store(false)
	pace := t.newPacer(&t.m.opt)
	for i := from; i < len(t.entries); i++ {
		e, src := t.entries[i], t.src[i]
		if e.Dir {
			continue
		}
		pos, hh := int64(0), t.alg.new()
		if i == from && off > 0 {
			pos, hh = off, h
		}
		f, err := os.Open(src.path)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				failf(codeSourceChanged, fmt.Errorf("%s was removed since it was offered", src.path))
			} else {
				failf(codeIO, err)
			}
			return
		}
		if err := sameSource(f, e, src); err != nil {
			f.Close()
			failf(codeSourceChanged, err)
			return
		}
		for pos < e.Size {
			// A prefix found changed ends the transfer at once.
			select {
			case err := <-verified:
				verified = nil
				if err != nil {
					f.Close()
					failf(codeSourceChanged, err)
					return
				}
			default:
			}
			// Chunks end at multiples of ChunkSize, even after a resume
			// point between two: the receiver can write them directly
			// (direct.go).
			n := int(min(ChunkSize-pos%ChunkSize, e.Size-pos))
			if !pace.wait(ctx, n) {
				f.Close()
				return
			}
			var buf []byte
			select {
			case buf = <-free:
			case <-ctx.Done():
				f.Close()
				return
			}
			if buf == nil {
				buf = make([]byte, frameHeader+dataHeader+ChunkSize)
			}
			data := buf[frameHeader+dataHeader : frameHeader+dataHeader+n]
			if _, err := f.ReadAt(data, pos); err != nil {
				f.Close()
				if err == io.EOF {
					failf(codeSourceChanged, fmt.Errorf("%s changed since it was offered: shorter than %d bytes", src.path, e.Size))
				} else {
					failf(codeIO, fmt.Errorf("read %s: %w", src.path, err))
				}
				return
			}
			hh.Write(data)
			putDataHeader(buf, uint32(i), pos, n)
			pos += int64(n)
			t.addSnap(i, pos, hh)
			if !put(sendItem{kind: itemData, buf: buf[:frameHeader+dataHeader+n], n: n}) {
				f.Close()
				return
			}
		}
		// A file written to while it was read has a new modification
		// time: what was sent may mix two versions.
		err = sameSource(f, e, src)
		f.Close()
		if err == nil && verified != nil {
			select {
			case err = <-verified:
				verified = nil
			case <-ctx.Done():
				return
			}
		}
		if err != nil {
			failf(codeSourceChanged, err)
			return
		}
		if !put(sendItem{kind: itemEnd, index: i, sum: hh.Sum()}) {
			return
		}
	}
	put(sendItem{kind: itemAll})
}

// completeSend records that the receiver has verified everything.
func (m *Manager) completeSend(t *tx) {
	// Hashes of files acknowledged before a restart of this side that
	// the state file did not have yet are read again.
	for i, e := range t.entries {
		t.mu.Lock()
		missing := !e.Dir && t.hashes[i] == nil
		t.mu.Unlock()
		if !missing {
			continue
		}
		if sum, err := hashFile(t.alg, t.src[i].path); err == nil {
			t.mu.Lock()
			t.hashes[i] = sum
			t.mu.Unlock()
		}
	}
	m.complete(t)
}

func hashFile(alg hashAlg, path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := alg.new()
	buf := make([]byte, 64<<10)
	for {
		n, err := f.Read(buf)
		h.Write(buf[:n])
		if err == io.EOF {
			return h.Sum(), nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// complete ends t as done on either side: state, state file, event.
func (m *Manager) complete(t *tx) {
	t.mu.Lock()
	if t.state.Final() {
		t.mu.Unlock()
		return
	}
	t.state = StateDone
	t.ended = time.Now()
	t.done, t.filesDone = t.total, t.files
	t.snaps, t.spare = nil, nil
	close(t.stop)
	info := t.infoLocked()
	files := make([]FileResult, 0, t.files)
	for i, e := range t.entries {
		if e.Dir {
			continue
		}
		r := FileResult{Path: e.Path, Size: e.Size, Hash: hex.EncodeToString(t.hashes[i])}
		if t.dir == Send {
			r.Local = t.src[i].path
		} else {
			r.Local = m.localPath(t.localRelLocked(i))
		}
		files = append(files, r)
	}
	t.mu.Unlock()
	if t.dir == Receive {
		if err := m.root.RemoveAll(partialDir + "/" + t.id); err != nil {
			m.log.Warn("transfer: remove partial folder", "id", t.id, "err", err)
		}
	}
	m.save(t)
	secs := info.Ended.Sub(info.Started).Seconds()
	var rate float64
	if secs > 0 {
		rate = float64(info.Bytes) / secs
	}
	m.emit(Done{Info: info, Files: files, Seconds: secs, Rate: rate})
	m.prune()
}
