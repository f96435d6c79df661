package bench

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zeebo/blake3"
	"golang.org/x/sys/unix"

	"lanchat/bench/baseline"
	"lanchat/identity"
)

// File transfers (issue 13), between two node processes on two hosts of
// a namespaced LAN (veth pairs and a bridge), against baselines between
// the same two hosts in the same run: raw TCP, Go TLS 1.3, TLS with
// BLAKE3 on both ends, and tar | raw TCP | untar for a folder. Node
// processes rather than in-process nodes, so that each side's resident
// memory is its own, and chat is measured as a user gets it: from the
// line written to the sender's stdin to the receiver's chat event, both
// sides storing the message on disk as they do.
//
// Raw and lanchat take turns (see BENCHMARKS.md: on this machine the rate
// a block gets moves by tens of percent with the mode the machine is in),
// and each figure is the bytes (or files) of every turn over their time.

// transferPlan is what transferFigures measures.
type transferPlan struct {
	size      int64 // the one large file
	files     int   // the folder's files
	fileSize  int   // each of them
	turns     int
	chatEvery time.Duration
	// cuts are the lengths of the cuts made to measure resume cost, one
	// transfer each; none skips it.
	cuts []time.Duration
	// noYield: the nodes send at full speed while chatting.
	noYield bool
}

// Cut lengths. A cut shorter than the transfer streams' idle timeout
// (30 s) is ridden out by TCP's retransmissions and the stream goes on;
// a longer one breaks the stream on both sides, and the transfer resumes
// on a new stream once the peers are connected again.
const (
	shortCut = 5 * time.Second
	longCut  = 35 * time.Second
)

func defaultTransferPlan(size int64) transferPlan {
	return transferPlan{size: size, files: 10000, fileSize: 4096, turns: 3,
		chatEvery: 20 * time.Millisecond, cuts: []time.Duration{shortCut, longCut}}
}

// xproc is a node process of the transfer measurements: its events are
// routed by one goroutine, which ends when the process's output does.
type xproc struct {
	*proc
	name string
	wmu  sync.Mutex // serializes lines written to stdin

	xfers chan map[string]any // transfer_* events
	amu   sync.Mutex          // protects following
	// arrived maps the text of each chat line received to when its event
	// was written.
	arrived map[string]time.Time
	// echoes are the round trips of the /echo series it ran.
	echoes []echoed

	echoed chan struct{} // cap 1: an /echo series ended
}

// echoed is one echo's round trip and when its event came.
type echoed struct {
	at  time.Time
	rtt time.Duration
}

func newXproc(p *proc, name string) *xproc {
	return &xproc{proc: p, name: name, xfers: make(chan map[string]any, 1<<12), arrived: map[string]time.Time{},
		echoed: make(chan struct{}, 1)}
}

// route reads the process's events until its output ends.
func (x *xproc) route() {
	for ev := range x.events {
		kind, _ := ev["event"].(string)
		switch {
		case kind == "chat" || kind == "sent":
			// A sent event (on the sender: the line is stored and on its
			// way) is kept apart, for LANCHAT_BENCH_DEBUG's split.
			text, _ := ev["text"].(string)
			if kind == "sent" {
				text = "\x00sent " + text
			}
			x.amu.Lock()
			x.arrived[text] = ts(ev)
			x.amu.Unlock()
		case kind == "echo":
			if rtt, ok := ev["rtt_ms"].(float64); ok && ev["ok"] == true {
				x.amu.Lock()
				x.echoes = append(x.echoes, echoed{ts(ev), time.Duration(rtt * 1e6)})
				x.amu.Unlock()
			}
		case kind == "echo_summary":
			select {
			case x.echoed <- struct{}{}:
			default:
			}
		case strings.HasPrefix(kind, "transfer_"):
			select {
			case x.xfers <- ev:
			default: // only progress piles up, and nobody waits for old progress
			}
		}
	}
	close(x.xfers)
}

func (x *xproc) say(line string) error {
	x.wmu.Lock()
	defer x.wmu.Unlock()
	return x.send(line)
}

func (x *xproc) arrival(text string) (time.Time, bool) {
	x.amu.Lock()
	defer x.amu.Unlock()
	at, ok := x.arrived[text]
	return at, ok
}

// runTransfers adds the transfer rows, unless --skip-transfers leaves
// them out; they run between network namespaces only (--netns).
func runTransfers(r *report, o options, progress func(string)) error {
	switch {
	case o.transferSize == 0:
		progress("file transfers: left out (--skip-transfers)")
		return nil
	case !o.netns:
		progress("file transfers: not measured; they run between network namespaces (--netns)")
		return nil
	}
	p := defaultTransferPlan(o.transferSize)
	p.noYield = o.noYield
	return transferFigures(r, p, progress)
}

// transferFigures adds the transfer rows to r.
func transferFigures(r *report, p transferPlan, progress func(string)) error {
	l, dir, cleanup, err := lanWithHomes(2)
	if err != nil {
		return err
	}
	defer cleanup()
	h := l.hosts2() // host 0 receives (listens), host 1 sends (dials)

	progress(fmt.Sprintf("transfers: writing %s of random data and a folder of %d files of %d bytes", sizeName(p.size), p.files, p.fileSize))
	data := filepath.Join(dir, "data")
	big := filepath.Join(data, "bulk.bin")
	bigSum, err := writeRandomFile(big, p.size)
	if err != nil {
		return err
	}
	folder := filepath.Join(data, "folder")
	folderSums, err := writeFolder(folder, p.files, p.fileSize)
	if err != nil {
		return err
	}
	dl, untarDir := filepath.Join(dir, "dl"), filepath.Join(dir, "untar")
	for _, d := range []string{dl, untarDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	if err := syncFS(dir); err != nil {
		return err
	}

	snd, rcv, stop, err := startTransferPair(l, 0, 1, dir, dl, p.noYield)
	if err != nil {
		return err
	}
	defer stop()

	var raw, tl, tlh, xfer, chatting time.Duration
	// Memory while idle is read before any transfer: a process keeps
	// some of what a transfer made it take (the runtime gives memory
	// back slowly).
	pre, err := watching(snd, rcv, p.chatEvery, "idle", func() error {
		time.Sleep(2 * time.Second)
		return nil
	})
	if err != nil {
		return err
	}
	idleLat, idleEcho, idleRSS := pre.chat, pre.echo, pre.peaks
	var busyLat, busyEcho []time.Duration
	var busyRSS [2]int64
	for turn := range p.turns {
		progress(fmt.Sprintf("transfers: %s, turn %d of %d: raw TCP, TLS, TLS + BLAKE3, lanchat", sizeName(p.size), turn+1, p.turns))
		before, err := linkRx(l.hosts[0])
		if err != nil {
			return err
		}
		d, err := baseline.Bulk(h, baseline.BulkTCP, p.size)
		if err != nil {
			return err
		}
		after, err := linkRx(l.hosts[0])
		if err != nil {
			return err
		}
		// The raw figure must have crossed the veth pairs and the bridge:
		// the receiving host's interface counts every byte it was sent.
		if after-before < p.size {
			return fmt.Errorf("raw TCP baseline: %d bytes sent, %d counted on %s's eth0: it did not cross the link", p.size, after-before, l.hosts[0])
		}
		raw += d
		if d, err = baseline.Bulk(h, baseline.BulkTLS, p.size); err != nil {
			return err
		}
		tl += d
		if d, err = baseline.Bulk(h, baseline.BulkTLSHashed, p.size); err != nil {
			return err
		}
		tlh += d

		// The transfer alone, timed, as the baselines run alone.
		if err := clearDir(dl); err != nil {
			return err
		}
		alone, err := watching(snd, rcv, 0, "", func() error {
			took, err := sendChecked(snd, rcv, big, map[string]string{filepath.Base(big): bigSum}, true)
			xfer += took
			return err
		})
		if err != nil {
			return err
		}
		// Chat and /echo with the nodes idle, for as long as a transfer
		// takes, then during another transfer, not timed: the probes cost
		// both sides CPU and fsyncs that the baselines do not pay.
		idleFor := min(max(xfer/time.Duration(turn+1), time.Second), 10*time.Second)
		idle, err := watching(snd, rcv, p.chatEvery, fmt.Sprintf("idle%d", turn), func() error {
			time.Sleep(idleFor)
			return nil
		})
		if err != nil {
			return err
		}
		if err := clearDir(dl); err != nil {
			return err
		}
		busy, err := watching(snd, rcv, p.chatEvery, fmt.Sprintf("busy%d", turn), func() error {
			took, err := sendChecked(snd, rcv, big, map[string]string{filepath.Base(big): bigSum}, false)
			chatting += took
			return err
		})
		if err != nil {
			return err
		}
		idleLat, busyLat = append(idleLat, idle.chat...), append(busyLat, busy.chat...)
		idleEcho, busyEcho = append(idleEcho, idle.echo...), append(busyEcho, busy.echo...)
		for i := range 2 {
			busyRSS[i] = max(busyRSS[i], alone.peaks[i], busy.peaks[i])
		}
	}
	mbs := func(d time.Duration) float64 { return float64(p.size) * float64(p.turns) / 1e6 / d.Seconds() }
	name := fmt.Sprintf("%s file sent", sizeName(p.size))
	rate := mbs(xfer)
	r.add(name+" vs raw TCP, hash checked (netns)", rate, "MB/s", mbs(raw), "≥ 0.6× raw (goal 0.75×)", yes(rate >= 0.6*mbs(raw)))
	r.add(name+" vs Go TLS 1.3 (netns)", rate, "MB/s", mbs(tl), "", nil)
	r.add(name+" vs TLS + BLAKE3 on both ends (netns)", rate, "MB/s", mbs(tlh), "", nil)
	yields := "baseline: sent alone; it yields to chat"
	if p.noYield {
		yields = "baseline: sent alone; --yield-to-chat=false"
	}
	r.add(name+" while chatting with the receiver (netns)", mbs(chatting), "MB/s", rate, yields, nil)
	il, bl := summarize(idleLat), summarize(busyLat)
	r.add("chat one-way latency p50 to the receiver during it (netns)", ms(bl.p50), "ms", ms(il.p50), "baseline: nodes idle", nil)
	r.add("chat one-way latency p99 to the receiver during it (netns)", ms(bl.p99), "ms", ms(il.p99), "≤ 5 ms", yes(bl.p99 <= 5*time.Millisecond))
	ie, be := summarize(idleEcho), summarize(busyEcho)
	r.add("/echo -tcp round trip p50 to the receiver during it (netns)", ms(be.p50), "ms", ms(ie.p50), "baseline: nodes idle", nil)
	r.add("/echo -tcp round trip p99 to the receiver during it (netns)", ms(be.p99), "ms", ms(ie.p99), "", nil)
	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	r.add("resident memory of the sender during it, peak (netns)", mib(busyRSS[0]), "MiB", mib(idleRSS[0]), "baseline: idle before", nil)
	r.add("resident memory of the receiver during it, peak (netns)", mib(busyRSS[1]), "MiB", mib(idleRSS[1]), "baseline: idle before", nil)

	var tarT, folderT time.Duration
	for turn := range p.turns {
		progress(fmt.Sprintf("transfers: folder of %d files, turn %d of %d: tar | raw TCP | untar, lanchat", p.files, turn+1, p.turns))
		// Nothing is removed between turns: on ext4 without a journal,
		// as here, creating files right after removing thousands scans
		// past every inode freed in the last minutes, and each turn
		// would be slower than the one before. The receiver puts each
		// copy beside the last ("folder (1)"), tar into a folder of its
		// own.
		into := filepath.Join(untarDir, strconv.Itoa(turn))
		if err := os.Mkdir(into, 0o700); err != nil {
			return err
		}
		d, err := baseline.TarTCP(h, folder, into)
		if err != nil {
			return err
		}
		tarT += d
		if d, err = sendChecked(snd, rcv, folder, folderSums, false); err != nil {
			return err
		}
		folderT += d
	}
	fps := func(d time.Duration) float64 { return float64(p.files) * float64(p.turns) / d.Seconds() }
	rate = fps(folderT)
	r.add(fmt.Sprintf("folder of %d files of %d bytes sent, hash checked (netns)", p.files, p.fileSize), rate, "files/s", fps(tarT),
		"≥ 0.6× tar | raw TCP (goal 0.75×)", yes(rate >= 0.6*fps(tarT)))

	for _, cut := range p.cuts {
		progress(fmt.Sprintf("transfers: %s with the path cut for %v at a quarter", sizeName(p.size), cut))
		if err := clearDir(dl); err != nil {
			return err
		}
		resent, broke, resumed, err := sendWithCut(l, snd, rcv, big, bigSum, p.size, cut)
		if err != nil {
			return err
		}
		measure := fmt.Sprintf("bytes re-sent after a %v cut, %s (netns)", cut, broke)
		if resent < 0 {
			r.add(measure+": not measured, the transfer ended before the cut", 0, "", 0, "", nil)
			continue
		}
		r.add(measure, mib(resent), "MiB", 0, "", nil)
		if resumed > 0 {
			r.add(fmt.Sprintf("resumed after the %v cut was healed (netns)", cut), resumed.Seconds(), "s", 0, "", nil)
		}
	}
	return nil
}

// startTransferPair starts the receiver on host r and the sender on
// host s of l; the receiver accepts offers from the sender by itself
// (it is trusted in the receiver's known_peers, written before it
// starts) into dl. It waits until they are connected. stop quits both and
// waits for their event routers.
func startTransferPair(l *lan, r, s int, dir, dl string, noYield bool) (snd, rcv *xproc, stop func(), err error) {
	on := func(i int) func(exe string, args ...string) *exec.Cmd {
		return func(exe string, args ...string) *exec.Cmd {
			return l.command(i, exe, args...)
		}
	}
	quiet := []string{"--no-mdns", "--no-broadcast"}
	if noYield {
		quiet = append(quiet, "--yield-to-chat=false")
	}
	sp, err := startProc(dir, "xs", on(s), quiet...)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("transfers: sender: %w", err)
	}
	home := filepath.Join(dir, "xr")
	if err := os.MkdirAll(home, 0o700); err != nil {
		sp.quit()
		return nil, nil, nil, err
	}
	known, _, err := identity.OpenKnown(filepath.Join(home, identity.KnownPeersFile), identity.KnownOptions{})
	if err == nil {
		err = known.Trust("xs", sp.id)
	}
	if err != nil {
		sp.quit()
		return nil, nil, nil, fmt.Errorf("transfers: trust the sender: %w", err)
	}
	rp, err := startProc(dir, "xr", on(r), append(quiet, "--accept-from", "trusted", "--download-dir", dl,
		"--peer", fmt.Sprintf("%s@%s.%d:%d", sp.id, l.subnet, s+1, sp.port))...)
	if err != nil {
		sp.quit()
		return nil, nil, nil, fmt.Errorf("transfers: receiver: %w", err)
	}
	for _, pr := range [][2]*proc{{sp, rp}, {rp, sp}} {
		if _, err := peersUp(pr[0], map[string]bool{pr[1].id: true}, 1, 10*time.Second); err != nil {
			sp.quit()
			rp.quit()
			return nil, nil, nil, fmt.Errorf("transfers: sender and receiver: %w", err)
		}
	}
	if os.Getenv("LANCHAT_BENCH_DEBUG") != "" {
		// For lining up what a node logs against its own start (GODEBUG=gctrace=1).
		fmt.Fprintf(os.Stderr, "transfers: sender pid %d started at %s, receiver pid %d at %s\n",
			sp.cmd.Process.Pid, sp.started.Format("15:04:05.000"), rp.cmd.Process.Pid, rp.started.Format("15:04:05.000"))
	}
	snd, rcv = newXproc(sp, "sender"), newXproc(rp, "receiver")
	var wg sync.WaitGroup
	for _, x := range []*xproc{snd, rcv} {
		wg.Add(1)
		go func() { defer wg.Done(); x.route() }()
	}
	return snd, rcv, func() {
		var qw sync.WaitGroup
		for _, x := range []*xproc{snd, rcv} {
			qw.Add(1)
			go func() { defer qw.Done(); x.quit() }()
		}
		qw.Wait()
		wg.Wait()
	}, nil
}

// probe is what watching measured.
type probe struct {
	// chat: each line's one-way latency, from its write to the
	// sender's stdin to the receiver's chat event.
	chat []time.Duration
	// echo: the round trips /echo -tcp reported, over the same
	// connection: the network and both nodes, without the console or the
	// store on the way.
	echo []time.Duration
	// peaks: the highest resident memory of the sender and the receiver.
	peaks [2]int64
}

// echoArgs make one /echo command of watching: its count and interval
// (a series lasts half a second).
const echoArgs = "-n 25 -i 20ms"

// watching runs f while both processes' resident memory is read every
// 100 ms and, unless every is 0, the sender writes a chat line every
// every (tagged with tag) and runs /echo -tcp series to the receiver
// back to back.
func watching(snd, rcv *xproc, every time.Duration, tag string, f func() error) (probe, error) {
	var pr probe
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex // protects sent and errs
	var sent []time.Time
	var errs []error
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	snd.amu.Lock()
	echoFrom := len(snd.echoes)
	snd.amu.Unlock()
	if every > 0 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			t := time.NewTicker(every)
			defer t.Stop()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-t.C:
				}
				at := time.Now()
				mu.Lock()
				sent = append(sent, at)
				mu.Unlock()
				if err := snd.say(fmt.Sprintf("%s %d", tag, i)); err != nil {
					fail(err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			// Each series ends with its summary, which the next waits
			// for, so that no series runs past the measurement.
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := snd.say("/echo -tcp " + echoArgs + " " + rcv.id); err != nil {
					fail(err)
					return
				}
				select {
				case <-snd.echoed:
				case <-time.After(10 * time.Second):
					fail(errors.New("an /echo series did not end within 10 s"))
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			for i, x := range []*xproc{snd, rcv} {
				v, err := x.rss()
				if err != nil {
					fail(err)
					return
				}
				pr.peaks[i] = max(pr.peaks[i], v)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	began := time.Now()
	err := f()
	ended := time.Now()
	close(stop)
	wg.Wait()
	if err := errors.Join(append(errs, err)...); err != nil {
		return pr, err
	}
	// The last series ends after f: only echoes back while f ran count.
	snd.amu.Lock()
	for _, e := range snd.echoes[echoFrom:] {
		if !e.at.Before(began) && !e.at.After(ended) {
			pr.echo = append(pr.echo, e.rtt)
		}
	}
	snd.amu.Unlock()
	// Every line is stored on both sides and delivered: wait for the
	// last ones.
	deadline := time.Now().Add(10 * time.Second)
	var stored, carried []time.Duration
	for i, at := range sent {
		text := fmt.Sprintf("%s %d", tag, i)
		for {
			if got, ok := rcv.arrival(text); ok {
				pr.chat = append(pr.chat, got.Sub(at))
				st, ok := snd.arrival("\x00sent " + text)
				if ok {
					stored, carried = append(stored, st.Sub(at)), append(carried, got.Sub(st))
				}
				if os.Getenv("LANCHAT_BENCH_DEBUG") != "" && every > 0 && got.Sub(at) > 5*time.Millisecond {
					fmt.Fprintf(os.Stderr, "chat %s: slow line at %s: one way %v, to the sender's sent event %v\n",
						text, at.Format("15:04:05.000"), got.Sub(at), st.Sub(at))
				}
				break
			}
			if time.Now().After(deadline) {
				return pr, fmt.Errorf("chat line %q not received within 10 s", text)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if os.Getenv("LANCHAT_BENCH_DEBUG") != "" && every > 0 {
		a, b, c, e := summarize(pr.chat), summarize(stored), summarize(carried), summarize(pr.echo)
		fmt.Fprintf(os.Stderr, "chat %s: %d lines, one way p50 %v p99 %v max %v; of which to the sender's sent event p50 %v p99 %v max %v, from there to the receiver's chat event p50 %v p99 %v max %v; /echo round trip p50 %v p99 %v max %v (%d)\n",
			tag, len(sent), a.p50, a.p99, a.max, b.p50, b.p99, b.max, c.p50, c.p99, c.max, e.p50, e.p99, e.max, e.n)
	}
	return pr, nil
}

// transferTimeout bounds one transfer of the measurements.
const transferTimeout = 10 * time.Minute

// sendChecked sends path from snd to rcv and returns the time from the
// /send line to the sender's transfer_done (the receiver has verified,
// synced and placed every file). Both sides must report, for every
// file, the BLAKE3 hash in want (by path as offered); with onDisk the
// received files are also read back and hashed.
func sendChecked(snd, rcv *xproc, path string, want map[string]string, onDisk bool) (time.Duration, error) {
	start := time.Now()
	if err := snd.say("/send " + rcv.id + " " + path); err != nil {
		return 0, err
	}
	sdone, err := waitTransfer(snd)
	if err != nil {
		return 0, err
	}
	took := ts(sdone).Sub(start)
	if os.Getenv("LANCHAT_BENCH_DEBUG") != "" {
		fmt.Fprintf(os.Stderr, "transfer of %s: %v from /send to done, of which %.3f s from the sender's accept to done\n",
			filepath.Base(path), took, sdone["seconds"])
	}
	rdone, err := waitTransfer(rcv)
	if err != nil {
		return 0, err
	}
	for _, ev := range []map[string]any{sdone, rdone} {
		if err := checkHashes(ev, want, onDisk && ev["direction"] == "receive"); err != nil {
			return 0, err
		}
	}
	return took, nil
}

// waitTransfer reads x's transfer events until transfer_done, which it
// returns. A failure or cancel is an error.
func waitTransfer(x *xproc) (map[string]any, error) {
	timeout := time.NewTimer(transferTimeout)
	defer timeout.Stop()
	for {
		select {
		case ev, ok := <-x.xfers:
			if !ok {
				return nil, fmt.Errorf("transfers: the %s exited", x.name)
			}
			switch ev["event"] {
			case "transfer_done":
				return ev, nil
			case "transfer_failed", "transfer_cancelled":
				return nil, fmt.Errorf("transfers: on the %s: %s: %v", x.name, ev["event"], ev["reason"])
			}
		case <-timeout.C:
			return nil, fmt.Errorf("transfers: no transfer_done on the %s within %v", x.name, transferTimeout)
		}
	}
}

// checkHashes compares a transfer_done event's files with want; with
// onDisk it also hashes each file where the receiver put it.
func checkHashes(ev map[string]any, want map[string]string, onDisk bool) error {
	files, _ := ev["files"].([]any)
	if len(files) != len(want) {
		return fmt.Errorf("transfers: %v reports %d files, %d were sent", ev["direction"], len(files), len(want))
	}
	for _, f := range files {
		m, _ := f.(map[string]any)
		path, _ := m["path"].(string)
		sum, _ := m["blake3"].(string)
		if want[path] == "" || sum != want[path] {
			return fmt.Errorf("transfers: %v reports BLAKE3 %s for %q, the source's is %s", ev["direction"], sum, path, want[path])
		}
		if onDisk {
			local, _ := m["local"].(string)
			got, err := hashFile(local)
			if err != nil {
				return err
			}
			if got != want[path] {
				return fmt.Errorf("transfers: %s hashes to %s on disk, the source to %s", local, got, want[path])
			}
		}
	}
	return nil
}

// sendWithCut sends path and, once a quarter has been sent, drops every
// packet in and out of the receiver's host for cut, then lets them
// through again. It returns the file bytes the sender sent again
// (transfer_done's resent; -1 when the transfer ended before the cut),
// what happened to the stream, and, when it broke, how long after the
// heal the sender had the receiver's answer on a new stream.
func sendWithCut(l *lan, snd, rcv *xproc, path, sum string, size int64, cut time.Duration) (int64, string, time.Duration, error) {
	ns := l.hosts[0]
	if _, err := exec.LookPath("nft"); err != nil {
		return 0, "", 0, errors.New("transfers: the cut needs nft")
	}
	if err := snd.say("/send " + rcv.id + " " + path); err != nil {
		return 0, "", 0, err
	}
	cutting := false
	defer func() {
		if cutting {
			heal(ns)
		}
	}()
	broke := "the stream survived it"
	var healAt <-chan time.Time // set at the cut: progress stops with it
	var cutAt, healedAt, resumedAt time.Time
	timeout := time.NewTimer(transferTimeout)
	defer timeout.Stop()
	var sdone map[string]any
	for sdone == nil {
		select {
		case ev, ok := <-snd.xfers:
			if !ok {
				return 0, "", 0, errors.New("transfers: the sender exited")
			}
			switch ev["event"] {
			case "transfer_done":
				sdone = ev
			case "transfer_failed", "transfer_cancelled":
				return 0, "", 0, fmt.Errorf("transfers: on the sender: %s: %v", ev["event"], ev["reason"])
			case "transfer_interrupted":
				broke = "the stream broke and the transfer resumed"
			case "transfer_accepted":
				if ev["resumed"] == true && !healedAt.IsZero() && resumedAt.IsZero() {
					resumedAt = ts(ev)
				}
			case "transfer_progress":
				if b, _ := ev["bytes"].(float64); cutAt.IsZero() && int64(b) >= size/4 {
					if err := cutOff(ns); err != nil {
						return 0, "", 0, err
					}
					cutting, cutAt = true, time.Now()
					t := time.NewTimer(cut)
					defer t.Stop()
					healAt = t.C
				}
			}
		case <-healAt:
			healAt = nil
			cutting = false
			if err := heal(ns); err != nil {
				return 0, "", 0, err
			}
			healedAt = time.Now()
		case <-timeout.C:
			return 0, "", 0, fmt.Errorf("transfers: no transfer_done on the sender within %v", transferTimeout)
		}
	}
	rdone, err := waitTransfer(rcv)
	if err != nil {
		return 0, "", 0, err
	}
	for _, ev := range []map[string]any{sdone, rdone} {
		if err := checkHashes(ev, map[string]string{filepath.Base(path): sum}, false); err != nil {
			return 0, "", 0, err
		}
	}
	if cutAt.IsZero() {
		return -1, "", 0, nil
	}
	resent, _ := sdone["resent"].(float64)
	var resumed time.Duration
	if !healedAt.IsZero() && !resumedAt.IsZero() {
		resumed = resumedAt.Sub(healedAt)
	}
	return int64(resent), broke, resumed, nil
}

// cutOff drops every packet in and out of host ns but its loopback's:
// its cable is cut. heal puts it back.
func cutOff(ns string) error {
	const rules = "table inet lcbcut {\n" +
		" chain in { type filter hook input priority -3; policy drop; iifname \"lo\" accept; }\n" +
		" chain out { type filter hook output priority -3; policy drop; oifname \"lo\" accept; }\n}\n"
	cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("cut %s: %w: %s", ns, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func heal(ns string) error {
	return sh("ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "lcbcut")
}

// linkRx is the bytes host ns's eth0 has received.
func linkRx(ns string) (int64, error) {
	out, err := exec.Command("ip", "-n", ns, "-s", "-j", "link", "show", "dev", "eth0").Output()
	if err != nil {
		return 0, fmt.Errorf("read %s's eth0 counters: %w", ns, err)
	}
	var links []struct {
		Stats64 struct {
			RX struct {
				Bytes int64 `json:"bytes"`
			} `json:"rx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		return 0, fmt.Errorf("read %s's eth0 counters: %q: %v", ns, out, err)
	}
	return links[0].Stats64.RX.Bytes, nil
}

// writeRandomFile writes size random bytes (written once, synced, never
// sparse: every block is on disk) and returns their BLAKE3 hash in hex.
func writeRandomFile(path string, size int64) (string, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var seed [32]byte
	binaryTime(seed[:])
	src := rand.NewChaCha8(seed)
	h := blake3.New()
	buf := make([]byte, 1<<20)
	for w := int64(0); w < size; {
		n := min(int64(len(buf)), size-w)
		src.Read(buf[:n])
		h.Write(buf[:n])
		if _, err := f.Write(buf[:n]); err != nil {
			return "", err
		}
		w += n
	}
	if err := f.Sync(); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), f.Close()
}

func binaryTime(b []byte) {
	t := uint64(time.Now().UnixNano())
	for i := range b {
		b[i] = byte(t >> (8 * (i % 8)))
	}
}

// writeFolder makes a folder of n files of size random bytes, 100 to a
// subfolder, and returns their BLAKE3 hashes by path as offered (the
// folder's name first).
func writeFolder(dir string, n, size int) (map[string]string, error) {
	var seed [32]byte
	binaryTime(seed[:])
	src := rand.NewChaCha8(seed)
	sums := make(map[string]string, n)
	buf := make([]byte, size)
	for i := range n {
		sub := fmt.Sprintf("d%03d", i/100)
		if i%100 == 0 {
			if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
				return nil, err
			}
		}
		name := fmt.Sprintf("f%05d", i)
		src.Read(buf)
		if err := os.WriteFile(filepath.Join(dir, sub, name), buf, 0o644); err != nil {
			return nil, err
		}
		sum := blake3.Sum256(buf)
		sums[filepath.Base(dir)+"/"+sub+"/"+name] = hex.EncodeToString(sum[:])
	}
	return sums, nil
}

// syncFS flushes the filesystem holding dir, so that writing the test
// data back does not land in a measurement.
func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}

func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := blake3.New()
	if _, err := io.CopyBuffer(h, f, make([]byte, 1<<20)); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// clearDir removes what dir holds.
func clearDir(dir string) error {
	des, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, de := range des {
		if err := os.RemoveAll(filepath.Join(dir, de.Name())); err != nil {
			return err
		}
	}
	return nil
}

// sizeName writes a byte count the way the flag takes it: 1GiB, 64MiB.
func sizeName(n int64) string {
	for _, u := range []struct {
		s string
		v int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.v && n%u.v == 0 {
			return strconv.FormatInt(n/u.v, 10) + " " + u.s
		}
	}
	return strconv.FormatInt(n, 10) + " B"
}

// parseSize reads a byte count: a number, with an optional unit (K, M,
// G, KiB, MiB, GiB: powers of 1024; B).
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		s string
		v int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(t, u.s) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.s)), u.v
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > (1<<50)/mult {
		return 0, fmt.Errorf("%q is not a size (such as 1GiB, 64MiB or 1048576)", s)
	}
	return n * mult, nil
}
