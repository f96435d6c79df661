package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"lanchat/bench/baseline"
	"lanchat/peer"
	"lanchat/store"
)

// The durable rows (issue 14): nodes wired as the product wires them, each
// with a store on disk and ConfirmShown, measured against nodes without a
// store in the same run, in alternating turns (see interleavedEchoes for
// why turns). The stores go in the system's temporary directory ($TMPDIR):
// it must be on a real disk, since fsync on tmpfs costs nothing; the rows
// name its filesystem.

// durableTurns is how many turns the durable and in-memory figures take.
const durableTurns = 5

// durablePair is two connected nodes with a store each, and what stops
// them.
type durablePair struct {
	ns     []*node
	stores []*store.Store
	dir    string
}

func (p *durablePair) close() {
	stopAll(p.ns)
	for _, st := range p.stores {
		st.Close()
	}
	os.RemoveAll(p.dir)
}

// startDurableOn starts a node on host i of h as main.go starts one: with
// a store at path, and ConfirmShown, its events' reader marking each chat
// message shown once its handler has seen it, as the console does once it
// has written the line out.
func startDurableOn(h baseline.Hosts, i int, name, path string) (*node, *store.Store, error) {
	st, err := store.Open(path, store.Options{})
	if err != nil {
		return nil, nil, err
	}
	n, err := startNodeWith(h, i, peer.Config{Name: name, Store: st, ConfirmShown: true})
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return n, st, nil
}

// newDurablePair starts a node with a store on each host of h, connects
// them and waits for their datagram channel.
func newDurablePair(h baseline.Hosts) (*durablePair, error) {
	dir, err := os.MkdirTemp("", "lanchat-durable-")
	if err != nil {
		return nil, err
	}
	p := &durablePair{dir: dir}
	for i := range 2 {
		n, st, err := startDurableOn(h, i, fmt.Sprintf("d%d", i), filepath.Join(dir, fmt.Sprintf("d%d", i), "store.db"))
		if err != nil {
			p.close()
			return nil, err
		}
		p.ns, p.stores = append(p.ns, n), append(p.stores, st)
	}
	if _, err := p.ns[1].Connect(context.Background(), p.ns[0].addr(), peer.ViaManual, p.ns[0].ID()); err != nil {
		p.close()
		return nil, err
	}
	if err := waitUDP(p.ns, 10*time.Second); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// fsName names the filesystem dir is on, from its magic number.
func fsName(dir string) string {
	var s unix.Statfs_t
	if err := unix.Statfs(dir, &s); err != nil {
		return "unknown filesystem"
	}
	switch s.Type {
	case unix.EXT4_SUPER_MAGIC:
		return "ext4"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlayfs"
	case unix.F2FS_SUPER_MAGIC:
		return "f2fs"
	}
	return fmt.Sprintf("filesystem 0x%x", s.Type)
}

// syncTimes times n fdatasyncs of a 4 KiB write in place in a file of dir:
// the floor under one commit of the store, which makes two (bbolt syncs
// the pages it wrote, then the meta page that points to them).
func syncTimes(dir string, n int) ([]time.Duration, error) {
	f, err := os.CreateTemp(dir, "sync-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	const span = 64
	buf := make([]byte, 4096)
	if _, err := f.Write(make([]byte, span*len(buf))); err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	out := make([]time.Duration, 0, n)
	for i := range n {
		start := time.Now()
		if _, err := f.WriteAt(buf, int64(i%span*len(buf))); err != nil {
			return nil, err
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}

// commitTimes times n appends to a store in dir, one at a time, each until
// its commit is durable.
func commitTimes(dir string, n, size int) ([]time.Duration, error) {
	sub, err := os.MkdirTemp(dir, "commit-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(sub)
	st, err := store.Open(filepath.Join(sub, "store.db"), store.Options{})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	to := []store.Recipient{{ID: strings.Repeat("A", store.IDLen), Name: "a"}}
	text := fill(size)
	out := make([]time.Duration, 0, n)
	for i := range n {
		start := time.Now()
		c, err := st.Append(&store.Out{To: to, Text: text})
		if err != nil {
			return nil, err
		}
		if err := c.Wait(context.Background()); err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
		if i%256 == 255 {
			st.Acked(to[0].ID, ^uint64(0)) // keep under the outbox bound
		}
	}
	return out, nil
}

// durablePairFigures measures chat between two nodes with stores on the
// hosts h against two without, in turns: one-way latency, and (with
// throughput) the rate of a stream of messages. where is appended to each
// row's name.
func durablePairFigures(r *report, h baseline.Hosts, where string, samples, msgs, size int, throughput bool) error {
	mem, err := pair(h, false)
	if err != nil {
		return err
	}
	defer stopAll(mem)
	dp, err := newDurablePair(h)
	if err != nil {
		return err
	}
	defer dp.close()
	var memLat, durLat, memAck []time.Duration
	var durSent, durAck []time.Duration
	var memTook, durTook time.Duration
	per := max(samples/durableTurns, 1)
	perMsgs := max(msgs/durableTurns, 1)
	for range durableTurns {
		l, err := durableLatency(mem[1], mem[0], per, size)
		if err != nil {
			return err
		}
		memLat, memAck = append(memLat, l.shown...), append(memAck, l.acked...)
		if l, err = durableLatency(dp.ns[1], dp.ns[0], per, size); err != nil {
			return fmt.Errorf("durable chat latency: %w", err)
		}
		durLat, durSent, durAck = append(durLat, l.shown...), append(durSent, l.sent...), append(durAck, l.acked...)
		if !throughput {
			continue
		}
		d, err := chatThroughput(mem[1], mem[0], perMsgs, size)
		if err != nil {
			return err
		}
		memTook += d
		if d, err = chatThroughput(dp.ns[1], dp.ns[0], perMsgs, size); err != nil {
			return fmt.Errorf("durable chat throughput: %w", err)
		}
		durTook += d
	}
	m, d := summarize(memLat), summarize(durLat)
	r.add("durable chat one-way latency p50 (vs no store)"+where, us(d.p50), "µs", us(m.p50), "≤ 500 µs", yes(d.p50 <= 500*time.Microsecond))
	r.add("durable chat one-way latency p99 (vs no store)"+where, us(d.p99), "µs", us(m.p99), "≤ 3 ms", yes(d.p99 <= 3*time.Millisecond))
	ds, da, ma := summarize(durSent), summarize(durAck), summarize(memAck)
	r.add("durable chat: Say until the sender's sent event (its commit) p50"+where, us(ds.p50), "µs", 0, "", nil)
	r.add("durable chat: Say until the sender's sent event p99"+where, us(ds.p99), "µs", 0, "", nil)
	r.add("durable chat: Say until acknowledged, stored on both sides, p50 (vs no store)"+where, us(da.p50), "µs", us(ma.p50), "", nil)
	r.add("durable chat: Say until acknowledged p99 (vs no store)"+where, us(da.p99), "µs", us(ma.p99), "", nil)
	if throughput {
		n := float64(perMsgs * durableTurns)
		rate, memRate := n/durTook.Seconds(), n/memTook.Seconds()
		r.add("durable chat throughput (vs no store)"+where, rate, "msg/s", memRate, "≥ 100,000 msg/s", yes(rate >= 100_000))
	}
	return nil
}

// latencies are, per message, the time from Say to: the Chat event on the
// receiver (shown), the Stored event on the sender (its sent event, once
// its commit is durable), and the Delivered event (acknowledged: stored
// on both sides, and shown).
type latencies struct{ shown, sent, acked []time.Duration }

// durableLatency sends n messages from a to b, one at a time, each once
// the last was acknowledged. Events of other messages (those of an earlier
// throughput turn still coming) are left out.
func durableLatency(a, b *node, n, size int) (latencies, error) {
	type ev struct {
		kind string
		id   uint64
		at   time.Time
	}
	// Never blocks a node's events: a flood of stale ones is dropped.
	evs := make(chan ev, 1<<16)
	put := func(e ev) {
		select {
		case evs <- e:
		default:
		}
	}
	b.on(func(e peer.Event, at time.Time) {
		if c, ok := e.(peer.Chat); ok {
			put(ev{"shown", c.MsgID, at})
		}
	})
	a.on(func(e peer.Event, at time.Time) {
		switch e := e.(type) {
		case peer.Stored:
			put(ev{"sent", e.MsgID, at})
		case peer.Delivered:
			put(ev{"acked", e.MsgID, at})
		}
	})
	defer a.on(func(peer.Event, time.Time) {})
	defer b.on(func(peer.Event, time.Time) {})
	// Let an earlier turn's messages be acknowledged first.
	for deadline := time.Now().Add(10 * time.Second); a.PendingCount() > 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	text := fill(size)
	var l latencies
	for range n {
		start := time.Now()
		sent, err := a.Say(text)
		if err != nil {
			return l, err
		}
		timeout := time.After(10 * time.Second)
		for seen := 0; seen < 3; {
			select {
			case e := <-evs:
				if e.id != sent.MsgID {
					continue
				}
				seen++
				d := e.at.Sub(start)
				switch e.kind {
				case "shown":
					l.shown = append(l.shown, d)
				case "sent":
					l.sent = append(l.sent, d)
				case "acked":
					l.acked = append(l.acked, d)
				}
			case <-timeout:
				return l, errors.New("chat message not shown, stored and acknowledged within 10s")
			}
		}
	}
	return l, nil
}

// durable adds the rows of issue 14, with a history of a million lines.
func durable(r *report, o options, progress func(string)) error {
	return durableFigures(r, o, 1_000_000, true, progress)
}

// durableFigures adds the rows of issue 14: the disk's sync and the
// store's commit, durable chat latency and throughput on loopback (and
// latency between two network namespaces, with o.netns), and a history of
// histLines lines: opening it, searching it, and (with withProc) a node
// process started on it.
func durableFigures(r *report, o options, histLines int, withProc bool, progress func(string)) error {
	dir := os.TempDir()
	fs := fsName(dir)
	if fs == "tmpfs" {
		progress("the stores are on tmpfs (" + dir + "), where fsync costs nothing: set TMPDIR to a directory on a disk")
	}
	progress(fmt.Sprintf("the disk under the stores (%s, %s)", dir, fs))
	syncs, err := syncTimes(dir, min(o.samples, 1000))
	if err != nil {
		return err
	}
	commits, err := commitTimes(dir, min(o.samples, 1000), o.size)
	if err != nil {
		return err
	}
	sd, cd := summarize(syncs), summarize(commits)
	r.add("fdatasync of 4 KiB on the stores' disk ("+fs+"), p50", us(sd.p50), "µs", 0, "", nil)
	r.add("fdatasync of 4 KiB, p99", us(sd.p99), "µs", 0, "", nil)
	r.add("one store commit (append until durable) p50 (vs fdatasync)", us(cd.p50), "µs", us(sd.p50), "", nil)
	r.add("one store commit p99 (vs fdatasync)", us(cd.p99), "µs", us(sd.p99), "", nil)

	progress("two nodes with stores on loopback, against two without")
	samples, msgs := min(o.samples, 1000), int(o.duration.Seconds()*100_000)
	if err := durablePairFigures(r, baseline.Loopback, "", samples, msgs, o.size, true); err != nil {
		return err
	}
	if o.netns {
		progress("two nodes with stores between two network namespaces")
		l, err := newLAN(2)
		if err != nil {
			return err
		}
		err = durablePairFigures(r, l.hosts2(), " (netns)", samples, msgs, o.size, false)
		l.close()
		if err != nil {
			return err
		}
	}
	progress(fmt.Sprintf("a history of %d lines", histLines))
	return historyFigures(r, dir, histLines, withProc)
}

// The history's words: rareWord is in histRare lines (spread over it),
// commonWord in about one line in five.
const (
	rareWord   = "zanzibar"
	commonWord = "coffee"
	histRare   = 10
	// histSenders is how many peers the history's lines are from or to.
	histSenders = 8
)

var histWords = strings.Fields("the quick brown fox jumps over lazy dog meeting lunch build release deploy review merge branch " +
	"test fails again tomorrow morning printer network server laptop déjà vu café naïve straße hello world ok thanks see you later maybe")

// histText is line i's text: 16 to 120 bytes of words.
func histText(r *rand.Rand, i, lines int) string {
	var b strings.Builder
	n := 16 + r.IntN(105)
	if i%max(lines/histRare, 1) == 7 {
		b.WriteString(rareWord)
	}
	for b.Len() < n {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		if r.IntN(40) == 0 {
			b.WriteString(commonWord)
		} else {
			b.WriteString(histWords[r.IntN(len(histWords))])
		}
	}
	return b.String()
}

// histPeer is the id of the history's peer g.
func histPeer(g int) string { return strings.Repeat(string(rune('A'+g)), store.IDLen) }

// buildHistory fills a new store at path with lines history lines through
// the store's own API, as a node gets them: four in five received from
// histSenders peers, one in five sent to one of them (and acknowledged).
// Commits are grouped: each writer waits for one every 512 lines.
func buildHistory(path string, lines int) error {
	st, err := store.Open(path, store.Options{})
	if err != nil {
		return err
	}
	errs := make([]error, histSenders)
	var wg sync.WaitGroup
	for g := range histSenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[g] = func() error {
				r := rand.New(rand.NewPCG(uint64(g), 14))
				peerID := histPeer(g)
				to := []store.Recipient{{ID: peerID, Name: fmt.Sprintf("peer%d", g)}}
				epoch := uint64(g + 1)
				var last *store.Commit
				var recvID uint64
				for i := g; i < lines; i += histSenders {
					text := histText(r, i, lines)
					var c *store.Commit
					var err error
					if i%5 == 4 {
						c, err = st.Append(&store.Out{To: to, Direct: true, Text: text})
					} else {
						recvID++
						_, c, err = st.Receive(store.In{From: peerID, Name: to[0].Name, Epoch: epoch, ID: recvID, Text: text,
							Sent: time.Now()})
					}
					if err != nil {
						return err
					}
					last = c
					if (i/histSenders)%512 == 511 {
						if err := last.Wait(context.Background()); err != nil {
							return err
						}
						st.Acked(peerID, ^uint64(0))
					}
				}
				if last != nil {
					if err := last.Wait(context.Background()); err != nil {
						return err
					}
				}
				st.Acked(peerID, ^uint64(0))
				return nil
			}()
		}()
	}
	wg.Wait()
	return errors.Join(append(errs, st.Close())...)
}

// historyFigures builds a history of lines lines in dir and measures
// opening it (as a node does at start: Open, then History), searching it
// for a rare and a common word as /search does, and, with withProc, a
// node process started on it: the time until it is ready, and its resident
// memory, idle and after a /search.
func historyFigures(r *report, dir string, lines int, withProc bool) error {
	sub, err := os.MkdirTemp(dir, "lanchat-history-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(sub)
	path := filepath.Join(sub, "store.db")
	start := time.Now()
	if err := buildHistory(path, lines); err != nil {
		return fmt.Errorf("building a history of %d lines: %w", lines, err)
	}
	built := time.Since(start)
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	label := fmt.Sprintf("%d lines", lines)
	if lines == 1_000_000 {
		label = "1M lines"
	}
	r.add("history of "+label+": written through the store", float64(lines)/built.Seconds(), "lines/s", 0, "", nil)
	r.add("history of "+label+": file size", float64(fi.Size())/(1<<20), "MiB", 0, "", nil)

	var opens []time.Duration
	for range 5 {
		start := time.Now()
		st, err := store.Open(path, store.Options{})
		if err != nil {
			return err
		}
		_, err = st.History("", 20)
		opens = append(opens, time.Since(start))
		if cerr := st.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	r.add("history of "+label+": open + first /history, p50", ms(summarize(opens).p50), "ms", 0, "", nil)

	st, err := store.Open(path, store.Options{})
	if err != nil {
		return err
	}
	for _, w := range []struct{ word, kind string }{{rareWord, "a rare word"}, {commonWord, "a common word"}} {
		var took []time.Duration
		found := 0
		for range 9 {
			start := time.Now()
			ls, err := st.Search("", w.word, 100) // as the console's /search
			if err != nil {
				st.Close()
				return err
			}
			took = append(took, time.Since(start))
			found = len(ls)
		}
		if w.word == rareWord && found != min(histRare, lines) {
			st.Close()
			return fmt.Errorf("search for %q found %d lines, want %d", w.word, found, min(histRare, lines))
		}
		d := summarize(took)
		r.add(fmt.Sprintf("/search over %s, %s (%d found), p50", label, w.kind, found), ms(d.p50), "ms", 0, "≤ 100 ms", yes(d.p50 <= 100*time.Millisecond))
	}
	if err := st.Close(); err != nil {
		return err
	}
	if withProc {
		return historyProc(r, sub, path, label)
	}
	return nil
}

// historyProc starts a node process whose store is the history at path:
// a first run makes the identity (and an empty store), which the history
// then replaces, where main.go keeps the store of that identity.
func historyProc(r *report, dir, path, label string) error {
	// No mDNS, no broadcast beacon: nothing leaves this host.
	args := []string{"--no-broadcast"}
	p, err := startProc(dir, "hist", local, args...)
	if err != nil {
		return err
	}
	p.quit()
	own := filepath.Join(dir, "hist", "lanchat", "store-"+p.id[:16]+".db")
	if _, err := os.Stat(own); err != nil {
		return fmt.Errorf("the node's store is not where the bench expects it: %w", err)
	}
	if err := os.Rename(path, own); err != nil {
		return err
	}
	if p, err = startProc(dir, "hist", local, args...); err != nil {
		return err
	}
	defer p.quit()
	ready := p.readyAt.Sub(p.started)
	time.Sleep(settle)
	idle, err := peakRSS([]*proc{p}, idleWindow)
	if err != nil {
		return err
	}
	if err := p.send("/search " + rareWord); err != nil {
		return err
	}
	if _, err := p.wait("search", 10*time.Second); err != nil {
		return err
	}
	after, err := peakRSS([]*proc{p}, time.Second)
	if err != nil {
		return err
	}
	r.add("node process with a history of "+label+": start until ready", ms(ready), "ms", 0, "", nil)
	r.add("node process with a history of "+label+": resident memory, idle", float64(idle[0])/(1<<20), "MiB", 0, "≤ 15 MB", yes(float64(idle[0]) <= 15e6))
	r.add("the same after a /search over it", float64(after[0])/(1<<20), "MiB", 0, "≤ 15 MB", yes(float64(after[0]) <= 15e6))
	return nil
}
