package bench

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"lanchat/discovery"
)

// discoveryBeaconPort is the broadcast beacon's UDP port.
const discoveryBeaconPort = discovery.BeaconPort

// onHost makes node processes start on host i of l.
func onHost(l *lan, i int) func(exe string, args ...string) *exec.Cmd {
	return func(exe string, args ...string) *exec.Cmd { return l.command(i, exe, args...) }
}

// peersUp reads p's events until it has seen peer_up for every id in want
// (or, with want nil, for count distinct ids), and returns when each came.
func peersUp(p *proc, want map[string]bool, count int, timeout time.Duration) (map[string]time.Time, error) {
	got := map[string]time.Time{}
	deadline := time.After(timeout)
	for len(got) < count {
		select {
		case ev, ok := <-p.events:
			if !ok {
				return got, fmt.Errorf("node exited")
			}
			id, _ := ev["id"].(string)
			if ev["event"] == "peer_up" && (want == nil || want[id]) {
				if _, seen := got[id]; !seen {
					got[id] = ts(ev)
				}
			}
		case <-deadline:
			return got, fmt.Errorf("%d of %d peers up after %v", len(got), count, timeout)
		}
	}
	return got, nil
}

// lanWithHomes makes a LAN of n hosts and a directory for the nodes'
// homes; cleanup removes both.
func lanWithHomes(n int) (*lan, string, func(), error) {
	l, err := newLAN(n)
	if err != nil {
		return nil, "", nil, err
	}
	dir, err := os.MkdirTemp("", "lanchat-bench-")
	if err != nil {
		l.close()
		return nil, "", nil, err
	}
	return l, dir, func() { os.RemoveAll(dir); l.close() }, nil
}

// netDiscovery: a new node joins running ones over mDNS; how soon does it
// have them all, and they it? Measured from the new process's start.
func netDiscovery(r *report, running, rounds int) error {
	l, dir, cleanup, err := lanWithHomes(running + 1)
	if err != nil {
		return err
	}
	defer cleanup()
	var ps []*proc
	defer func() {
		for _, p := range ps {
			p.quit()
		}
	}()
	for i := 0; i < running; i++ {
		p, err := startProc(dir, fmt.Sprintf("run%d", i), onHost(l, i))
		if err != nil {
			return err
		}
		ps = append(ps, p)
	}
	for _, p := range ps {
		if _, err := peersUp(p, nil, running-1, 20*time.Second); err != nil {
			return fmt.Errorf("running nodes: %w", err)
		}
	}
	var sees, seen []time.Duration
	for round := 0; round < rounds; round++ {
		np, err := startProc(dir, fmt.Sprintf("new%d", round), onHost(l, running))
		if err != nil {
			return err
		}
		ids := map[string]bool{}
		for _, p := range ps {
			ids[p.id] = true
		}
		ups, err := peersUp(np, ids, len(ids), 20*time.Second)
		if err != nil {
			np.kill()
			return fmt.Errorf("new node: %w", err)
		}
		for _, at := range ups {
			sees = append(sees, at.Sub(np.started))
		}
		for _, p := range ps {
			up, err := peersUp(p, map[string]bool{np.id: true}, 1, 20*time.Second)
			if err != nil {
				np.kill()
				return fmt.Errorf("running node: %w", err)
			}
			seen = append(seen, up[np.id].Sub(np.started))
		}
		np.quit()
	}
	a, b := summarize(sees), summarize(seen)
	r.add(fmt.Sprintf("new node connected to each of %d running peers, p50", running), ms(a.p50), "ms", 0, "≤ 100 ms", yes(a.p50 <= 100*time.Millisecond))
	r.add("new node connected to a running peer, max", ms(a.max), "ms", 0, "", nil)
	r.add("running peers see the new node joined, p50", ms(b.p50), "ms", 0, "≤ 100 ms", yes(b.p50 <= 100*time.Millisecond))
	return nil
}

// lateAfter is how long after the first idle reading the largest mesh is
// read again, for idle memory: the first reading comes soon after the
// nodes gave the garbage of their handshakes back, and by a minute later
// their heaps have grown back to where the collector holds them, and the
// browses that keep watching for other groups have begun.
const lateAfter = time.Minute

// netScale starts count nodes on count hosts at once and measures the
// mesh formation over mDNS, the fan-out of a group message, and memory,
// with late a second time, a minute later.
func netScale(r *report, count, rounds int, late bool) error {
	l, dir, cleanup, err := lanWithHomes(count)
	if err != nil {
		return err
	}
	defer cleanup()
	ps := make([]*proc, count)
	errs := make([]error, count)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ps[i], errs[i] = startProc(dir, fmt.Sprintf("n%d", i), onHost(l, i))
		}()
	}
	wg.Wait()
	defer func() {
		var qw sync.WaitGroup
		for _, p := range ps {
			if p != nil {
				qw.Add(1)
				go func() { defer qw.Done(); p.quit() }()
			}
		}
		qw.Wait()
	}()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	var last time.Time
	pairs, incomplete := 0, 0
	deadline := time.Now().Add(60 * time.Second)
	var done []time.Duration
	for _, p := range ps {
		ups, err := peersUp(p, nil, count-1, time.Until(deadline))
		pairs += len(ups)
		if err != nil {
			incomplete++
		}
		var mine time.Time
		for _, at := range ups {
			if at.After(last) {
				last = at
			}
			if at.After(mine) {
				mine = at
			}
		}
		done = append(done, mine.Sub(start))
	}
	if os.Getenv("LANCHAT_BENCH_DEBUG") != "" {
		slices.Sort(done)
		fmt.Fprintf(os.Stderr, "mesh of %d: per-node completion %v\n", count, done)
	}
	if incomplete > 0 {
		r.add(fmt.Sprintf("mDNS mesh of %d nodes NOT complete after 60 s: peer connections seen (netns)", count),
			float64(pairs), "of "+fmt.Sprint(count*(count-1)), 0, "", yes(false))
		return nil
	}
	formed := last.Sub(start)
	if os.Getenv("LANCHAT_BENCH_DEBUG") != "" {
		var ready []time.Duration
		for _, p := range ps {
			ready = append(ready, p.readyAt.Sub(start))
		}
		rd := summarize(ready)
		fmt.Fprintf(os.Stderr, "mesh of %d: processes ready p50 %v max %v; mesh complete %v\n", count, rd.p50, rd.max, formed)
	}
	var met *bool
	target := ""
	if count == 32 {
		met, target = yes(formed <= 2*time.Second), "≤ 2 s for 32"
	}
	r.add(fmt.Sprintf("mDNS full mesh of %d nodes formed (netns)", count), ms(formed), "ms", 0, target, met)

	// Idle: once the burst of handshakes is over and the nodes have
	// settled (each hands its garbage back after two quiet seconds).
	time.Sleep(settle)
	peaks, err := peakRSS(ps, idleWindow)
	if err != nil {
		return err
	}
	idle := slices.Max(peaks)
	idleAnon, err := maxAnon(ps)
	if err != nil {
		return err
	}
	if os.Getenv("LANCHAT_BENCH_DEBUG") != "" {
		debugAnon(ps)
	}
	var idleLate, lateAnon int64
	if late {
		time.Sleep(lateAfter)
		if peaks, err = peakRSS(ps, 6*idleWindow); err != nil {
			return err
		}
		idleLate = slices.Max(peaks)
		if lateAnon, err = maxAnon(ps); err != nil {
			return err
		}
	}
	var lat []time.Duration
	for round := 0; round < rounds; round++ {
		text := fmt.Sprintf("fan-out %d", round)
		// From the line handed to the sender's input: a peer may show
		// it before the sender's sent event, which waits for its commit.
		typed := time.Now()
		if err := ps[0].send(text); err != nil {
			return err
		}
		if _, err := ps[0].wait("sent", 10*time.Second); err != nil {
			return err
		}
		for _, p := range ps[1:] {
			ev, err := p.wait("chat", 10*time.Second)
			if err != nil {
				return fmt.Errorf("fan-out: %w", err)
			}
			lat = append(lat, ts(ev).Sub(typed))
		}
	}
	fd := summarize(lat)
	met, target = nil, ""
	if count == 32 {
		met, target = yes(fd.p99 <= 20*time.Millisecond), "≤ 20 ms for 31 peers"
	}
	r.add(fmt.Sprintf("group message to %d peers p99 (netns)", count-1), ms(fd.p99), "ms", 0, target, met)
	r.add(fmt.Sprintf("resident memory per node idle, %d nodes (netns)", count), float64(idle)/(1<<20), "MiB", 0, "≤ 15 MB", yes(float64(idle) <= 15e6))
	r.add(fmt.Sprintf("of which the node's own (heap, stacks), %d nodes (netns)", count), float64(idleAnon)/(1<<20), "MiB", 0, "the rest: the binary's pages", nil)
	if late {
		r.add(fmt.Sprintf("the same a minute later, over 30 s, %d nodes (netns)", count), float64(idleLate)/(1<<20), "MiB", 0, "≤ 15 MB", yes(float64(idleLate) <= 15e6))
		r.add(fmt.Sprintf("of which the node's own, a minute later, %d nodes (netns)", count), float64(lateAnon)/(1<<20), "MiB", 0, "", nil)
	}
	return nil
}

// blockUDP makes every host of l drop UDP to and from ports (mDNS, the
// beacon), as a network that filters them would.
func blockUDP(l *lan, ports ...int) error {
	var set []string
	for _, p := range ports {
		set = append(set, fmt.Sprint(p))
	}
	ps := "{ " + strings.Join(set, ", ") + " }"
	rules := fmt.Sprintf("table inet lcbdrop {\n"+
		" chain in {\n  type filter hook input priority -2; policy accept;\n  udp dport %[1]s drop\n  udp sport %[1]s drop\n }\n"+
		" chain out {\n  type filter hook output priority -2; policy accept;\n  udp dport %[1]s drop\n }\n}\n", ps)
	for _, ns := range l.hosts {
		cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
		cmd.Stdin = strings.NewReader(rules)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("nft in %s: %w: %s", ns, err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// rowValue is the value of the row named measure in r, 0 if none.
func rowValue(r *report, measure string) float64 {
	for _, x := range r.rows {
		if x.Measure == measure {
			return x.Value
		}
	}
	return 0
}

// netBroadcastScale starts count nodes on count hosts at once with mDNS
// dropped on every host, so that they find each other through the
// broadcast beacon only, and measures the mesh formation against the
// mDNS figure of the same run (goal: within 2×).
func netBroadcastScale(r *report, count int) error {
	measure := fmt.Sprintf("broadcast full mesh of %d nodes formed, mDNS blocked (netns)", count)
	if _, err := exec.LookPath("nft"); err != nil {
		r.add(measure+": not measured, no nft", 0, "", 0, "", nil)
		return nil
	}
	l, dir, cleanup, err := lanWithHomes(count)
	if err != nil {
		return err
	}
	defer cleanup()
	if err := blockUDP(l, 5353); err != nil {
		return err
	}
	ps := make([]*proc, count)
	errs := make([]error, count)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ps[i], errs[i] = startProc(dir, fmt.Sprintf("b%d", i), onHost(l, i))
		}()
	}
	wg.Wait()
	defer func() {
		var qw sync.WaitGroup
		for _, p := range ps {
			if p != nil {
				qw.Add(1)
				go func() { defer qw.Done(); p.quit() }()
			}
		}
		qw.Wait()
	}()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	var last time.Time
	pairs, incomplete := 0, 0
	deadline := time.Now().Add(60 * time.Second)
	for _, p := range ps {
		ups, err := peersUp(p, nil, count-1, time.Until(deadline))
		pairs += len(ups)
		if err != nil {
			incomplete++
		}
		for _, at := range ups {
			if at.After(last) {
				last = at
			}
		}
	}
	if incomplete > 0 {
		r.add(fmt.Sprintf("broadcast mesh of %d nodes NOT complete after 60 s: peer connections seen (netns)", count),
			float64(pairs), "of "+fmt.Sprint(count*(count-1)), 0, "", yes(false))
		return nil
	}
	formed := last.Sub(start)
	mdns := rowValue(r, fmt.Sprintf("mDNS full mesh of %d nodes formed (netns)", count))
	var met *bool
	target := ""
	if mdns > 0 {
		met, target = yes(ms(formed) <= 2*mdns), "≤ 2× mDNS"
	}
	r.add(measure, ms(formed), "ms", mdns, target, met)
	return nil
}

// netRemembered: two nodes that met once (by hand) restart, with mDNS and
// the beacon dropped, on the ports they had; how soon after the second
// started are they connected again, through the addresses they
// remembered? Measured from the second one's start, over rounds.
func netRemembered(r *report, rounds int) error {
	measure := "restarted pair connected again through remembered addresses, p50 (netns)"
	if _, err := exec.LookPath("nft"); err != nil {
		r.add(measure+": not measured, no nft", 0, "", 0, "", nil)
		return nil
	}
	l, dir, cleanup, err := lanWithHomes(2)
	if err != nil {
		return err
	}
	defer cleanup()
	if err := blockUDP(l, 5353, discoveryBeaconPort); err != nil {
		return err
	}
	a, err := startProc(dir, "ra", onHost(l, 0))
	if err != nil {
		return err
	}
	b, err := startProc(dir, "rb", onHost(l, 1), "--peer", fmt.Sprintf("%s@%s.1:%d", a.id, l.subnet, a.port))
	if err != nil {
		a.quit()
		return err
	}
	if _, err := peersUp(a, map[string]bool{b.id: true}, 1, 10*time.Second); err != nil {
		a.quit()
		b.quit()
		return fmt.Errorf("remembered: first meeting: %w", err)
	}
	var took []time.Duration
	for round := 0; round < rounds; round++ {
		a.quit()
		b.quit()
		if a, err = startProc(dir, "ra", onHost(l, 0), "--port", fmt.Sprint(a.port)); err != nil {
			return err
		}
		if b, err = startProc(dir, "rb", onHost(l, 1), "--port", fmt.Sprint(b.port)); err != nil {
			a.quit()
			return err
		}
		upA, errA := peersUp(a, map[string]bool{b.id: true}, 1, 10*time.Second)
		upB, errB := peersUp(b, map[string]bool{a.id: true}, 1, 10*time.Second)
		if errA != nil || errB != nil {
			a.quit()
			b.quit()
			r.add("restarted pair NOT connected again within 10 s through remembered addresses (no address book wired?) (netns)", 0, "", 0, "≤ 1 s", yes(false))
			return nil
		}
		done := upA[b.id]
		if upB[a.id].After(done) {
			done = upB[a.id]
		}
		took = append(took, done.Sub(b.started))
	}
	a.quit()
	b.quit()
	s := summarize(took)
	r.add(measure, ms(s.p50), "ms", 0, "≤ 1 s", yes(s.p50 <= time.Second))
	r.add("restarted pair connected again through remembered addresses, max (netns)", ms(s.max), "ms", 0, "", nil)
	return nil
}
