package transfer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"time"
)

// handleOffer answers an offer: a new one is checked and waits for the
// user (or the accept policy); a known one resumes, or is answered with
// how it ended.
func (m *Manager) handleOffer(s *stream, off offerMsg) {
	peer := s.peer
	total, err := checkOffer(off.Entries, m.lim)
	if err != nil {
		m.log.Info("transfer: offer refused", "peer", peer, "id", off.ID, "err", err)
		m.mu.Lock()
		known := m.txs[off.ID] != nil
		m.mu.Unlock()
		if !known {
			m.emit(Rejected{Info: Info{ID: off.ID, Peer: peer, Dir: Receive, State: StateRejected, Created: time.Now(), Reason: "refused an offer: " + err.Error()}})
		}
		s.sendFinal(rejectMsg{ID: off.ID, Code: codeInvalid, Reason: err.Error()})
		return
	}
	m.mu.Lock()
	t := m.txs[off.ID]
	if t == nil {
		if m.closed {
			m.mu.Unlock()
			s.close()
			return
		}
		waiting, fromPeer := 0, 0
		weight, peerWeight := offerWeight(off.Entries), offerWeight(off.Entries)
		for _, o := range m.txs {
			if o.dir == Receive && o.info().State == StateWaiting {
				waiting++
				w := o.weight
				weight += w
				if o.peer == peer {
					fromPeer++
					peerWeight += w
				}
			}
		}
		if waiting >= maxWaiting || fromPeer >= maxWaitingPerPeer || weight > maxWaitingBytes || peerWeight > maxWaitingBytesPerPeer {
			m.mu.Unlock()
			s.sendFinal(rejectMsg{ID: off.ID, Code: codeBusy, Reason: "too many offers waiting for an answer"})
			return
		}
		t = newTx(m, off.ID, peer, Receive, off.Hash, off.Entries, total)
		t.state = StateWaiting
		t.expires = t.created.Add(m.opt.OfferExpiry)
		m.txs[off.ID] = t
		m.mu.Unlock()
		if free, err := m.opt.freeSpace(m.opt.DownloadDir); err == nil && free < total {
			m.finish(t, StateRejected, codeNoSpace, fmt.Sprintf("not enough free space on the receiver: %s offered, %s free", sizeString(total), sizeString(free)), false)
			s.sendFinal(t.finalMsg())
			return
		}
		auto := m.opt.AcceptFrom != nil && m.opt.AcceptFrom(peer)
		t.mu.Lock()
		t.accepted = auto
		if !auto {
			t.expiry = time.AfterFunc(m.opt.OfferExpiry, func() {
				m.finish(t, StateExpired, codeExpired, fmt.Sprintf("not answered within %v", m.opt.OfferExpiry), false)
			})
		}
		info := t.infoLocked()
		t.mu.Unlock()
		m.emit(Offered{Info: info, Auto: auto})
		m.recvSession(t, s)
		return
	}
	m.mu.Unlock()
	if t.peer != peer || t.dir != Receive {
		s.sendFinal(errorMsg{ID: off.ID, Code: codeUnknown, Reason: "this transfer id is taken here"})
		return
	}
	if !sameOffer(t, off) {
		m.fail(t, s, codeProtocol, "the offer of a known transfer changed")
		return
	}
	if in := t.info(); in.State.Final() {
		s.sendFinal(t.finalMsg())
		return
	}
	m.recvSession(t, s)
}

// offerWeight is about what an offer's entries take in memory.
func offerWeight(es []entry) int {
	n := 0
	for _, e := range es {
		n += len(e.Path) + 48
	}
	return n
}

func sameOffer(t *tx, off offerMsg) bool {
	if off.Hash != t.alg || len(off.Entries) != len(t.entries) {
		return false
	}
	for i, e := range off.Entries {
		if e != t.entries[i] {
			return false
		}
	}
	return true
}

// recvSession serves one stream of a received transfer: it waits for the
// user's answer if there is none yet, then receives from where the data
// is verified.
func (m *Manager) recvSession(t *tx, s *stream) {
	t.attach(s.c)
	if !t.acquire(m.ctx) {
		s.close()
		return
	}
	defer t.releaseSlot()
	defer t.detach(s.c)
	defer s.close()
	stop := t.stopped()
	ticker := time.NewTicker(m.opt.IdleTimeout / 3)
	defer ticker.Stop()
	for !t.isAccepted() {
		select {
		case <-t.decided:
		case <-stop:
			s.sendFinal(t.finalMsg())
			return
		case x := <-s.in:
			if _, ok := x.(error); ok {
				// The offer keeps waiting; the sender redials.
				return
			}
			if !m.recvControl(t, s, x) {
				return
			}
		case <-ticker.C:
			if s.ping() != nil {
				return
			}
		case <-m.ctx.Done():
			return
		}
	}
	select {
	case <-stop:
		s.sendFinal(t.finalMsg())
		return
	default:
	}
	if err := m.prepare(t); err != nil {
		m.finish(t, StateRejected, codeInvalid, err.Error(), false)
		s.sendFinal(t.finalMsg())
		return
	}
	next, off, prefix, err := m.resumePoint(t, s)
	if err != nil {
		m.fail(t, s, codeIO, err.Error())
		return
	}
	resumed, info := t.markRunning()
	if err := s.send(acceptMsg{Next: uint32(next), Offset: off, Prefix: prefix}); err != nil {
		m.interrupted(t, err)
		return
	}
	m.save(t)
	m.emit(Accepted{Info: info, Resumed: resumed, Offset: info.Done})
	m.receive(t, s, next, off, ticker)
}

// recvControl handles a control message outside the data; it returns
// false when the session is over.
func (m *Manager) recvControl(t *tx, s *stream, x any) bool {
	switch msg := x.(type) {
	case pingMsg:
		t.touch()
		return true
	case cancelMsg:
		m.finish(t, StateCancelled, codeOther, peerReason("cancelled by the peer", msg.Reason), true)
	case errorMsg:
		m.finish(t, failState(msg.Code), msg.Code, peerReason("the sender reports", msg.Reason), true)
	case dataItem:
		s.release(msg.buf)
		m.fail(t, s, codeProtocol, "data before the offer was accepted")
	default:
		m.fail(t, s, codeProtocol, fmt.Sprintf("unexpected %T from the sender", msg))
	}
	return false
}

func (t *tx) isAccepted() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.accepted
}

func (t *tx) markRunning() (bool, Info) {
	t.mu.Lock()
	defer t.mu.Unlock()
	resumed := !t.started.IsZero()
	if !resumed {
		t.started = time.Now()
	}
	t.state = StateRunning
	t.contact = time.Now()
	if t.expiry != nil {
		t.expiry.Stop()
	}
	return resumed, t.infoLocked()
}

// partialName is where entry i is written until verified.
func partialName(id string, i int) string {
	return partialDir + "/" + id + "/" + strconv.Itoa(i)
}

// nextFile is the first entry at or after i that is a file.
func (t *tx) nextFile(i int) int {
	for i < len(t.entries) && t.entries[i].Dir {
		i++
	}
	return i
}

// prepare runs once, when an offer is first accepted: it picks local
// names for the top-level entries that take nothing existing ("name (1)"),
// makes the folders, and checks that the filesystem can hold every file
// name, so that a name it cannot hold is refused before any data moves.
func (m *Manager) prepare(t *tx) (err error) {
	t.mu.Lock()
	done := t.prepared
	t.mu.Unlock()
	if done {
		return nil
	}
	r := m.root
	tops := map[string]string{}
	var made []string
	defer func() {
		if err != nil {
			for _, d := range made {
				r.RemoveAll(d)
			}
		}
	}()
	cannot := func(name string, err error) error {
		return fmt.Errorf("the download folder cannot hold %q: %w", name, err)
	}
	for _, e := range t.entries {
		if strings.Contains(e.Path, "/") {
			continue
		}
		for n := 0; ; n++ {
			cand := e.Path
			if n > 0 {
				cand = variant(e.Path, n, e.Dir)
			}
			if n > 10000 {
				return cannot(e.Path, fs.ErrExist)
			}
			if e.Dir {
				err := r.Mkdir(cand, 0o755)
				if errors.Is(err, fs.ErrExist) {
					continue
				}
				if err != nil {
					return cannot(e.Path, err)
				}
				made = append(made, cand)
			} else {
				if _, err := r.Lstat(cand); err == nil {
					continue
				}
				if err := probe(r, cand); errors.Is(err, fs.ErrExist) {
					continue
				} else if err != nil {
					return cannot(e.Path, err)
				}
			}
			tops[e.Path] = cand
			break
		}
	}
	for _, e := range t.entries {
		if !strings.Contains(e.Path, "/") {
			continue
		}
		top := topName(e.Path)
		local := tops[top] + e.Path[len(top):]
		if e.Dir {
			if err := r.Mkdir(local, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return cannot(e.Path, err)
			}
		} else if unusualName(path.Base(local)) {
			if err := probe(r, local); err != nil && !errors.Is(err, fs.ErrExist) {
				return cannot(e.Path, err)
			}
		}
	}
	if err := r.MkdirAll(partialDir+"/"+t.id, 0o700); err != nil {
		return fmt.Errorf("make the partial folder in the download folder: %w", err)
	}
	t.mu.Lock()
	t.tops, t.moved, t.prepared = tops, map[int]string{}, true
	t.next, t.offset, t.h = t.nextFile(0), 0, t.alg.new()
	t.durNext = 0
	t.mu.Unlock()
	if err := m.save(t); err != nil {
		return err
	}
	return nil
}

// unusualName reports a name some filesystem in use could refuse: one
// with a character outside letters, digits, space and "._-+,=@~()[]{}#%&!'",
// or longer than 143 bytes (eCryptfs). Other names every common
// filesystem holds, so they need no probe.
func unusualName(name string) bool {
	if len(name) > 143 {
		return true
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte(" ._-+,=@~()[]{}#%&!'", c) >= 0:
		default:
			return true
		}
	}
	return false
}

// probe creates and removes name: an error says the filesystem cannot
// hold it (or, fs.ErrExist, that it is taken).
func probe(r *os.Root, name string) error {
	f, err := r.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	return r.Remove(name)
}

// resumePoint finds where the data goes on: in memory, the point every
// byte written so far reached; after a restart, the durable point, once
// the partial file is read back and matches its recorded hash (if not,
// that file starts again). The partial file is cut to that point.
func (m *Manager) resumePoint(t *tx, s *stream) (int, int64, []byte, error) {
	t.mu.Lock()
	next, off, h := t.nextFile(t.next), t.offset, t.h
	if next != t.next {
		off = 0
	}
	durPrefix := t.durPrefix
	t.mu.Unlock()
	if next == len(t.entries) {
		return next, 0, nil, nil
	}
	name := partialName(t.id, next)
	if off > 0 {
		fi, err := m.root.Lstat(name)
		switch {
		case err != nil || !fi.Mode().IsRegular() || fi.Size() < off:
			off, h = 0, nil
		case h == nil:
			// After a restart: read the durable prefix back.
			got, err := m.rehashPartial(t, s, name, off)
			if err != nil {
				return 0, 0, nil, err
			}
			if got != nil && bytes.Equal(got.Clone().Sum(), durPrefix) {
				h = got
			} else {
				m.log.Warn("transfer: partial file does not match its checkpoint; starting that file again", "id", t.id, "file", t.entries[next].Path)
				off, h = 0, nil
			}
		}
	}
	if off > 0 {
		f, err := openRegular(m.root, name, os.O_WRONLY)
		if err == nil {
			err = f.Truncate(off)
			f.Close()
		}
		if err != nil {
			return 0, 0, nil, fmt.Errorf("partial file of %s: %w", t.entries[next].Path, err)
		}
	}
	if h == nil {
		off, h = 0, t.alg.new()
	}
	var prefix []byte
	if off > 0 {
		prefix = h.Clone().Sum()
	}
	t.mu.Lock()
	t.next, t.offset, t.h = next, off, h
	var done int64
	files := 0
	for i := range next {
		done += t.entries[i].Size
		if !t.entries[i].Dir {
			files++
		}
	}
	t.done, t.filesDone = done+off, files
	t.mu.Unlock()
	return next, off, prefix, nil
}

// rehashPartial hashes the first off bytes of a partial file; nil when it
// cannot be read.
func (m *Manager) rehashPartial(t *tx, s *stream, name string, off int64) (hasher, error) {
	f, err := openRegular(m.root, name, os.O_RDONLY)
	if err != nil {
		return nil, nil
	}
	defer f.Close()
	h := t.alg.new()
	buf := make([]byte, ChunkSize)
	for pos := int64(0); pos < off; {
		n := min(int64(len(buf)), off-pos)
		if _, err := f.ReadAt(buf[:n], pos); err != nil {
			return nil, nil
		}
		h.Write(buf[:n])
		pos += n
		if err := s.ping(); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// openRegular opens an existing file that must be a regular file (not a
// symbolic link, not anything else).
func openRegular(r *os.Root, name string, flag int) (*os.File, error) {
	fi, err := r.Lstat(name)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", name)
	}
	f, err := r.OpenFile(name, flag, 0)
	if err != nil {
		return nil, err
	}
	if fi2, err := f.Stat(); err != nil || !os.SameFile(fi, fi2) {
		f.Close()
		return nil, fmt.Errorf("%s: replaced while opened", name)
	}
	return f, nil
}

// createPartial makes a fresh partial file; O_EXCL never follows a link.
func createPartial(r *os.Root, name string) (*os.File, error) {
	f, err := r.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		if err := r.Remove(name); err != nil {
			return nil, err
		}
		f, err = r.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	}
	return f, err
}

// receive is the data phase: frames are checked against the offer (the
// right file, the right offset, never past its size), written to the
// partial file and hashed; a file is done when the sender's hash
// matches. A checkpointer makes the data durable every few MiB and
// renames verified files into place; its acknowledgements go back to the
// sender.
func (m *Manager) receive(t *tx, s *stream, cur int, pos int64, ticker *time.Ticker) {
	defer background()()
	stop := t.stopped()
	t.mu.Lock()
	h := t.h
	startDone := t.done
	t.mu.Unlock()
	start := time.Now()
	// The partial folder is opened once: names in it are one step.
	pr, err := m.root.OpenRoot(partialDir + "/" + t.id)
	if err != nil {
		m.fail(t, s, codeIO, fmt.Sprintf("open the partial folder: %v", err))
		return
	}
	defer pr.Close()
	ck := m.newCheckpointer(t)
	defer ck.close()
	fl := newFlusher(pr)
	defer fl.close()
	var f *partialFile
	defer func() {
		if f != nil {
			f.close()
		}
	}()
	var sinceCk int64
	lastCk := time.Now()
	dirty := false // something to checkpoint since the last one
	// point is the position for a checkpoint; h is this goroutine's.
	point := func() ckPoint {
		p := ckPoint{next: cur, off: pos}
		if pos > 0 {
			p.prefix = h.Clone().Sum()
		}
		return p
	}
	finished := func() {
		if err := ck.final(point()); err != nil {
			m.fail(t, s, codeIO, err.Error())
			return
		}
		// Files verified before a restart: their hashes are read back
		// from where they were placed.
		for i, e := range t.entries {
			if !e.Dir && t.hashOf(i) == nil {
				if sum, err := hashFile(t.alg, m.localPath(t.localRel(i))); err == nil {
					t.mu.Lock()
					t.hashes[i] = sum
					t.mu.Unlock()
				}
			}
		}
		m.complete(t)
		s.sendFinal(doneMsg{ID: t.id})
	}
	if cur == len(t.entries) {
		finished()
		return
	}
	violation := func(format string, args ...any) {
		m.fail(t, s, codeProtocol, fmt.Sprintf(format, args...))
	}
	for {
		select {
		case x := <-s.in:
			switch msg := x.(type) {
			case error:
				m.interrupted(t, msg)
				ck.flush(point())
				return
			case dataItem:
				n := int64(len(msg.data))
				switch {
				case cur >= len(t.entries) || int(msg.index) >= len(t.entries):
					s.release(msg.buf)
					violation("data for an entry that was not offered (%d)", msg.index)
					return
				case int(msg.index) != cur || msg.offset != pos:
					s.release(msg.buf)
					violation("data for entry %d at %d where entry %d at %d was due", msg.index, msg.offset, cur, pos)
					return
				case pos+n > t.entries[cur].Size:
					s.release(msg.buf)
					violation("more bytes than offered for %q (%d)", t.entries[cur].Path, t.entries[cur].Size)
					return
				}
				if f == nil {
					var err error
					if f, err = openPartial(pr, cur, pos, t.entries[cur].Size); err != nil {
						s.release(msg.buf)
						m.writeFailed(t, s, ck, point(), err)
						return
					}
					fl.start(strconv.Itoa(cur), pos)
				}
				direct, err := f.writeAt(msg.data, pos)
				if err != nil {
					s.release(msg.buf)
					m.writeFailed(t, s, ck, point(), err)
					return
				}
				h.Write(msg.data)
				s.release(msg.buf)
				pos += n
				fl.wrote(pos, direct, stop, m.ctx.Done())
				sinceCk += n
				dirty = true
				m.received(t, cur, pos, n, start, startDone)
				if m.opt.checkpointDue(sinceCk, lastCk) && ck.request(point()) {
					sinceCk, lastCk, dirty = 0, time.Now(), false
				}
			case fileEndMsg:
				if cur >= len(t.entries) || int(msg.Index) != cur {
					violation("end of entry %d where entry %d was due", msg.Index, cur)
					return
				}
				e := t.entries[cur]
				if pos != e.Size {
					violation("%q ended after %d of %d bytes", e.Path, pos, e.Size)
					return
				}
				if f == nil {
					var err error
					if f, err = openPartial(pr, cur, pos, t.entries[cur].Size); err != nil {
						m.writeFailed(t, s, ck, point(), err)
						return
					}
				}
				f.close()
				f = nil
				sum := h.Sum()
				if !bytes.Equal(sum, msg.Hash) {
					m.fail(t, s, codeHashMismatch, fmt.Sprintf("%q: the bytes received hash to %x, the sender's to %x (%s)", e.Path, sum, msg.Hash, t.alg))
					return
				}
				cur, pos, h = t.nextFile(cur+1), 0, t.alg.new()
				t.mu.Lock()
				t.hashes[msg.Index] = sum
				t.filesDone++
				t.next, t.offset, t.h = cur, 0, h
				t.mu.Unlock()
				dirty = true
				if cur == len(t.entries) {
					finished()
					return
				}
				if m.opt.checkpointDue(sinceCk, lastCk) && ck.request(point()) {
					sinceCk, lastCk, dirty = 0, time.Now(), false
				}
			default:
				if !m.recvControl(t, s, x) {
					return
				}
			}
		case a := <-ck.acks:
			if err := s.send(a); err != nil {
				m.recvBroken(t, s, err)
				ck.flush(point())
				return
			}
		case err := <-ck.errs:
			m.writeFailed(t, s, ck, point(), err)
			return
		case err := <-fl.errs:
			m.writeFailed(t, s, ck, point(), err)
			return
		case <-stop:
			s.sendFinal(t.finalMsg())
			return
		case <-ticker.C:
			if err := s.ping(); err != nil {
				m.recvBroken(t, s, err)
				ck.flush(point())
				return
			}
			if dirty && time.Since(lastCk) >= m.opt.CheckpointEvery && ck.request(point()) {
				sinceCk, lastCk, dirty = 0, time.Now(), false
			}
		case <-m.ctx.Done():
			return
		}
	}
}

// recvBroken handles a write that failed: the sender may have said why
// before it closed.
func (m *Manager) recvBroken(t *tx, s *stream, err error) {
	if msg := s.lastWords(time.Second); msg != nil {
		m.recvControl(t, s, msg)
		return
	}
	m.interrupted(t, err)
}

// received publishes the position and emits progress.
func (m *Manager) received(t *tx, cur int, pos, n int64, start time.Time, startDone int64) {
	t.mu.Lock()
	t.next, t.offset = cur, pos
	t.done += n
	t.wire += n
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

// openPartial opens entry i's partial file (of size bytes) to write at
// pos, with direct I/O too where it can when the file is large
// (direct.go). pr is the transfer's partial folder.
func openPartial(pr *os.Root, i int, pos, size int64) (*partialFile, error) {
	name := strconv.Itoa(i)
	var f *os.File
	var err error
	if pos == 0 {
		f, err = createPartial(pr, name)
	} else {
		f, err = openRegular(pr, name, os.O_WRONLY)
	}
	if err != nil {
		return nil, err
	}
	pf := &partialFile{f: f}
	if size >= directMin {
		pf.d = openDirect(pr, name, f)
	}
	return pf, nil
}

// writeFailed ends a transfer on a local write error. A full disk keeps
// the partial data, durable up to here, for a resume.
func (m *Manager) writeFailed(t *tx, s *stream, ck *checkpointer, p ckPoint, err error) {
	if isNoSpace(err) {
		ck.flush(p)
		in := t.info()
		m.fail(t, s, codeNoSpace, fmt.Sprintf("disk full in %s after %s of %s (the part received is kept: free space, then accept %s again to resume)",
			m.opt.DownloadDir, sizeString(in.Done), sizeString(in.Bytes), t.id))
		return
	}
	m.fail(t, s, codeIO, fmt.Sprintf("write in %s: %v", m.opt.DownloadDir, err))
}

// recoverReceive finishes, after a restart, the renames a checkpoint had
// started.
func (m *Manager) recoverReceive(t *tx) {
	t.mu.Lock()
	from, to := t.renamed, t.durNext
	t.mu.Unlock()
	fd := newFolders(m.root)
	defer fd.close()
	for i := from; i < to; i++ {
		if t.entries[i].Dir {
			continue
		}
		if err := m.place(t, i, fd); err != nil {
			m.log.Warn("transfer: finish renaming a verified file", "id", t.id, "file", t.entries[i].Path, "err", err)
			return
		}
		t.mu.Lock()
		t.renamed = i + 1
		t.mu.Unlock()
	}
	t.mu.Lock()
	t.renamed = to
	t.mu.Unlock()
}

// place renames entry i's verified partial file into place without ever
// replacing anything (then "name (1).ext" and so on): with one rename
// that fails if the name is taken where the system has it, else by
// linking the new name and removing the partial one. A name that exists
// already as the same file (a crash between the link and the removal)
// counts as done. d holds the folders opened for a run of placements
// (nil: opened for this one).
func (m *Manager) place(t *tx, i int, d *folders) error {
	if d == nil {
		d = newFolders(m.root)
		defer d.close()
	}
	tmp := partialName(t.id, i)
	want := t.localRel(i)
	dir, base := path.Split(want)
	done, err := m.placeRename(t, i, d, tmp, dir, base)
	if done || err != nil {
		return err
	}
	r := m.root
	if _, err := r.Lstat(tmp); errors.Is(err, fs.ErrNotExist) {
		return nil // placed before a restart
	}
	for n := 0; n <= 10000; n++ {
		name := want
		if n > 0 {
			name = dir + variant(base, n, false)
		}
		err := r.Link(tmp, name)
		if errors.Is(err, fs.ErrExist) {
			if sameFile(r, tmp, name) {
				err = nil
			} else {
				continue
			}
		}
		if err != nil && linkUnsupported(err) {
			// No hard links here (FAT, exFAT): check, then rename.
			if _, lerr := r.Lstat(name); lerr == nil {
				continue
			}
			if err = r.Rename(tmp, name); err == nil {
				m.placed(t, i, name, want)
				return nil
			}
		}
		if err != nil {
			return fmt.Errorf("place %q: %w", name, err)
		}
		if err := r.Remove(tmp); err != nil {
			return fmt.Errorf("remove partial file of %q: %w", name, err)
		}
		m.placed(t, i, name, want)
		return nil
	}
	return fmt.Errorf("place %q: every variant of the name is taken", want)
}

// placeRename is place with renameNoReplace, in folders opened once;
// done is false (and err nil) when the system cannot rename so.
func (m *Manager) placeRename(t *tx, i int, d *folders, tmp, dir, base string) (done bool, err error) {
	pd, err := d.get(path.Dir(tmp), nil)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return true, nil // the partial folder is gone: placed before a restart
		}
		return true, fmt.Errorf("place %q: %w", dir+base, err)
	}
	dd, err := d.get(dir, pd)
	if err != nil {
		return true, fmt.Errorf("place %q: %w", dir+base, err)
	}
	from := path.Base(tmp)
	for n := 0; n <= 10000; n++ {
		name := base
		if n > 0 {
			name = variant(base, n, false)
		}
		err := renameNoReplace(pd, from, dd, name)
		switch {
		case err == nil:
			m.placed(t, i, dir+name, dir+base)
			return true, nil
		case renameNoReplaceUnsupported(err):
			return false, nil
		case errors.Is(err, fs.ErrExist):
			if !sameFile(m.root, tmp, dir+name) {
				continue
			}
			if err := m.root.Remove(tmp); err != nil {
				return true, fmt.Errorf("remove partial file of %q: %w", dir+name, err)
			}
			m.placed(t, i, dir+name, dir+base)
			return true, nil
		case errors.Is(err, fs.ErrNotExist):
			if _, lerr := m.root.Lstat(tmp); errors.Is(lerr, fs.ErrNotExist) {
				return true, nil // placed before a restart
			}
			return true, fmt.Errorf("place %q: %w", dir+name, err)
		default:
			return true, fmt.Errorf("place %q: %w", dir+name, err)
		}
	}
	return true, fmt.Errorf("place %q: every variant of the name is taken", dir+base)
}

// folders holds folders of the download folder opened for a run of
// placements: a name in an open folder is one step, where a path through
// the root walks (opens and closes) every folder on the way.
type folders struct {
	r    *os.Root
	open map[string]*os.File
}

// maxOpenFolders bounds the folders a run keeps open.
const maxOpenFolders = 64

func newFolders(r *os.Root) *folders { return &folders{r: r, open: map[string]*os.File{}} }

// get opens dir ("" or "a/b/", relative to the root) or returns it open.
// Making room, it closes the folders it holds, except keep.
func (d *folders) get(dir string, keep *os.File) (*os.File, error) {
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" {
		dir = "."
	}
	if f := d.open[dir]; f != nil {
		return f, nil
	}
	if len(d.open) >= maxOpenFolders {
		for k, f := range d.open {
			if f != keep {
				f.Close()
				delete(d.open, k)
			}
		}
	}
	f, err := d.r.Open(dir)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err != nil || !fi.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%s: not a folder", dir)
	}
	d.open[dir] = f
	return f, nil
}

func (d *folders) close() {
	for k, f := range d.open {
		f.Close()
		delete(d.open, k)
	}
}

func (m *Manager) placed(t *tx, i int, name, want string) {
	if name == want {
		return
	}
	t.mu.Lock()
	if t.moved == nil {
		t.moved = map[int]string{}
	}
	t.moved[i] = name
	if !strings.Contains(t.entries[i].Path, "/") {
		t.tops[t.entries[i].Path] = name
		delete(t.moved, i)
	}
	t.mu.Unlock()
}

func sameFile(r *os.Root, a, b string) bool {
	fa, err1 := r.Lstat(a)
	fb, err2 := r.Lstat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}

// cleanup, after a receiver's transfer ended for good: verified files
// still waiting for their rename are placed (they are complete), the
// partial folder is removed.
func (m *Manager) cleanup(t *tx) {
	t.mu.Lock()
	prepared := t.prepared
	from, to := t.renamed, t.next
	t.mu.Unlock()
	if !prepared {
		return
	}
	fd := newFolders(m.root)
	defer fd.close()
	for i := from; i < to && i < len(t.entries); i++ {
		if !t.entries[i].Dir {
			if err := m.place(t, i, fd); err != nil {
				m.log.Warn("transfer: place a verified file", "id", t.id, "err", err)
			}
		}
	}
	t.mu.Lock()
	if to > t.renamed {
		t.renamed = to
	}
	t.mu.Unlock()
	if err := m.root.RemoveAll(partialDir + "/" + t.id); err != nil {
		m.log.Warn("transfer: remove partial files", "id", t.id, "err", err)
	}
}

// resumeReceive asks the sender of a transfer that failed on a full disk
// to go on: it dials, sends resume, and serves the offer that comes back.
func (m *Manager) resumeReceive(t *tx) {
	stop := t.stopped()
	backoff := m.opt.RedialMin
	for {
		ctx, cancel := context.WithTimeout(m.ctx, m.opt.DialTimeout)
		c, err := m.opt.Dialer.DialTransfer(ctx, t.peer)
		cancel()
		if err == nil {
			if !m.track(c) {
				return
			}
			s := m.newStream(c, t.peer, true)
			if err := s.send(resumeMsg{ID: t.id}); err != nil {
				s.close()
			} else {
				select {
				case x := <-s.in:
					switch msg := x.(type) {
					case offerMsg:
						m.handleOffer(s, msg)
						return
					case dataItem:
						s.release(msg.buf)
						s.close()
					case error:
						s.close()
					default:
						s.close()
						m.sendEnded(t, s, msg)
						return
					}
				case <-stop:
					s.sendFinal(t.finalMsg())
					return
				case <-m.ctx.Done():
					s.close()
					return
				}
			}
		}
		if time.Since(t.lastContactTime()) > m.opt.ResumeWindow {
			m.finish(t, StateFailed, codeOther, fmt.Sprintf("the sender was not reachable for %v", m.opt.ResumeWindow), false)
			return
		}
		wait := time.NewTimer(jitter(backoff))
		backoff = min(2*backoff, m.opt.RedialMax)
		select {
		case <-wait.C:
		case <-t.kick:
			wait.Stop()
		case <-stop:
			wait.Stop()
			return
		case <-m.ctx.Done():
			wait.Stop()
			return
		}
	}
}

// handleResume serves a receiver's request to go on with a transfer this
// node sends.
func (m *Manager) handleResume(s *stream, msg resumeMsg) {
	t := m.lookup(msg.ID, s.peer)
	if t == nil || t.dir != Send {
		s.sendFinal(errorMsg{ID: msg.ID, Code: codeUnknown, Reason: "no such transfer"})
		return
	}
	t.mu.Lock()
	switch {
	case t.state == StateFailed && t.resumable:
		t.state, t.resumable, t.reason, t.code = StateInterrupted, false, "", codeOther
		t.ended = time.Time{}
		t.stop = make(chan struct{})
		t.contact = time.Now()
	case t.state.Final():
		t.mu.Unlock()
		s.sendFinal(t.finalMsg())
		return
	}
	t.mu.Unlock()
	m.save(t)
	m.startSender(t, s)
}
