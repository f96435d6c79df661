package transfer

import (
	"errors"
	"fmt"
	"path"
	"time"
)

// checkpointer makes a receiver's data durable off the data path. A
// checkpoint takes a position from the session (ckPoint): it syncs the partial file being written and the
// verified files not yet renamed, records the position in the state
// file, renames the verified files into place and hands the session an
// acknowledgement for the sender. One runs at a time; a request while
// one runs is refused, and the session asks again later.
type checkpointer struct {
	m    *Manager
	t    *tx
	req  chan ckReq
	acks chan ackMsg // cap 1: the latest acknowledgement
	errs chan error  // cap 1: a checkpoint that failed
	quit chan struct{}
	done chan struct{}
	idle chan struct{} // holds a token while no checkpoint runs
}

// ckPoint is a position: entries before next are verified, off bytes of
// entry next are written and hash to prefix.
type ckPoint struct {
	next   int
	off    int64
	prefix []byte
}

type ckReq struct {
	p     ckPoint
	reply chan error // nil: report failures on errs
}

func (m *Manager) newCheckpointer(t *tx) *checkpointer {
	ck := &checkpointer{
		m: m, t: t, req: make(chan ckReq), acks: make(chan ackMsg, 1),
		errs: make(chan error, 1), quit: make(chan struct{}), done: make(chan struct{}),
		idle: make(chan struct{}, 1),
	}
	ck.idle <- struct{}{}
	go ck.run()
	return ck
}

func (ck *checkpointer) run() {
	defer close(ck.done)
	for {
		select {
		case r := <-ck.req:
			err := ck.checkpoint(r.p, r.reply != nil)
			if r.reply != nil {
				r.reply <- err
			} else if err != nil {
				select {
				case ck.errs <- err:
				default:
				}
			}
			ck.idle <- struct{}{}
		case <-ck.quit:
			return
		}
	}
}

// request starts a checkpoint unless one runs; it reports whether it did.
func (ck *checkpointer) request(p ckPoint) bool {
	select {
	case <-ck.idle:
	default:
		return false
	}
	select {
	case ck.req <- ckReq{p: p}:
		return true
	case <-ck.quit:
		return false
	}
}

// final waits for any checkpoint running, then makes one covering
// everything received, and returns its error.
func (ck *checkpointer) final(p ckPoint) error {
	select {
	case <-ck.idle:
	case <-ck.m.ctx.Done():
		return ErrClosed
	}
	reply := make(chan error, 1)
	ck.req <- ckReq{p: p, reply: reply}
	select {
	case err := <-reply:
		return err
	case <-ck.m.ctx.Done():
		return ErrClosed
	}
}

// flush is a final checkpoint whose error is only logged: the stream is
// lost or the disk is full, and what can be kept is kept.
func (ck *checkpointer) flush(p ckPoint) {
	if err := ck.final(p); err != nil && !errors.Is(err, ErrClosed) {
		ck.m.log.Debug("transfer: checkpoint", "id", ck.t.id, "err", err)
	}
}

func (ck *checkpointer) close() {
	close(ck.quit)
	<-ck.done
}

// checkpoint does one checkpoint; last also syncs the folders the files
// were renamed into.
func (ck *checkpointer) checkpoint(p ckPoint, last bool) error {
	m, t := ck.m, ck.t
	next, off, prefix := p.next, p.off, p.prefix
	t.mu.Lock()
	from := t.renamed
	t.mu.Unlock()

	var sync []string
	if off > 0 {
		sync = append(sync, partialName(t.id, next))
	}
	for i := from; i < next; i++ {
		if !t.entries[i].Dir {
			sync = append(sync, partialName(t.id, i))
		}
	}
	if err := m.syncFiles(sync); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	t.mu.Lock()
	t.durNext, t.durOffset, t.durPrefix = next, off, prefix
	t.lastSave = time.Now()
	t.mu.Unlock()
	if err := m.save(t); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	dirs := map[string]bool{}
	fd := newFolders(m.root)
	defer fd.close()
	for i := from; i < next; i++ {
		if t.entries[i].Dir {
			continue
		}
		if err := m.place(t, i, fd); err != nil {
			return err
		}
		dirs[path.Dir(t.localRel(i))] = true
		t.mu.Lock()
		t.renamed = i + 1
		t.mu.Unlock()
	}
	t.mu.Lock()
	t.renamed = max(t.renamed, next)
	t.mu.Unlock()
	if last && len(dirs) > 0 {
		var ds []string
		for d := range dirs {
			ds = append(ds, d)
		}
		if err := m.syncFiles(ds); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
	}
	a := ackMsg{Next: uint32(next), Offset: off}
	select {
	case <-ck.acks:
	default:
	}
	ck.acks <- a
	return nil
}

// syncFiles makes files (or folders) in the download folder durable: one
// by one when they are few, else with one syncfs of the filesystem.
func (m *Manager) syncFiles(names []string) error {
	if len(names) == 0 {
		return nil
	}
	if len(names) > 8 {
		f, err := m.root.Open(".")
		if err == nil {
			err = syncFS(f)
			f.Close()
			if err == nil {
				return nil
			}
		}
	}
	for _, n := range names {
		f, err := m.root.Open(n)
		if err != nil {
			return err
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return fmt.Errorf("sync %s: %w", n, err)
		}
	}
	return nil
}
