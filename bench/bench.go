package bench

import (
	"debug/buildinfo"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"lanchat/bench/baseline"
	"lanchat/peer"
)

// row is one line of the report.
type row struct {
	Measure  string  `json:"measure"`
	Value    float64 `json:"value"`
	Unit     string  `json:"unit"`
	Baseline float64 `json:"baseline,omitempty"`
	Ratio    float64 `json:"ratio,omitempty"`
	Target   string  `json:"target,omitempty"`
	Met      *bool   `json:"met,omitempty"`
}

type report struct {
	rows []row
}

func (r *report) add(measure string, value float64, unit string, baseline float64, target string, met *bool) {
	x := row{Measure: measure, Value: value, Unit: unit, Baseline: baseline, Target: target, Met: met}
	if baseline > 0 {
		x.Ratio = value / baseline
	}
	r.rows = append(r.rows, x)
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }
func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
func yes(b bool) *bool           { return &b }

// options of the bench command.
type options struct {
	duration time.Duration
	nodes    []int
	size     int
	samples  int
	procs    int
	json     bool
	netns    bool
	// skipDurable leaves out the rows of the durable store (durable.go).
	skipDurable bool
	// transfers: the size of the large file; 0 skips the transfer rows.
	transferSize int64
	// noYield runs the transfer rows' nodes with --yield-to-chat=false.
	noYield bool
	// lanchat is the node binary (--lanchat), "" for the default.
	lanchat string
}

func parse(args []string, stderr io.Writer) (options, error) {
	o := options{}
	fs := flag.NewFlagSet("lanchat bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&o.duration, "duration", 3*time.Second, "how long the throughput and load phases run")
	nodes := fs.String("nodes", "2,8,32", "node counts for mesh formation and fan-out, comma-separated (with --netns: 2,8,32,64)")
	fs.IntVar(&o.size, "size", 64, "chat message size in bytes")
	fs.IntVar(&o.samples, "samples", 2000, "round trips per latency figure")
	fs.IntVar(&o.procs, "procs", 4, "node processes for the memory figures")
	fs.BoolVar(&o.json, "json", false, "print the results as JSON")
	fs.BoolVar(&o.skipDurable, "skip-durable", false, "leave out the durable store: chat between nodes with stores, and a history of a million lines")
	fs.BoolVar(&o.netns, "netns", false, "also measure between network namespaces: the raw baselines and two nodes, and with real mDNS discovery and the mesh, fan-out and memory of --nodes processes (root only)")
	transferSize := fs.String("transfer-size", "1GiB", "with --netns, the size of the file sent between two node processes (such as 1GiB, 64MiB)")
	skipTransfers := fs.Bool("skip-transfers", false, "leave out the file transfer rows")
	yield := fs.Bool("yield-to-chat", true, "the transfer rows' nodes slow a transfer while chat passes (false: they run with --yield-to-chat=false)")
	fs.StringVar(&o.lanchat, "lanchat", "", "the lanchat `binary` whose node processes are measured (default: lanchat beside this program)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: lanchat bench [flags]\n\nMeasures lanchat on loopback (and with --netns across network namespaces)\nagainst raw Go sockets measured in the same run.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "nodes" })
	if o.netns && !explicit {
		*nodes = "2,8,32,64"
	}
	for _, f := range strings.Split(*nodes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 2 || n > 128 {
			return o, fmt.Errorf("--nodes: %q is not a node count from 2 to 128", f)
		}
		o.nodes = append(o.nodes, n)
	}
	if o.size < 1 || o.size > 16<<10 {
		return o, fmt.Errorf("--size %d: want 1 to 16384 bytes", o.size)
	}
	if o.samples < 10 {
		return o, fmt.Errorf("--samples %d: want at least 10", o.samples)
	}
	if !*skipTransfers {
		n, err := parseSize(*transferSize)
		if err != nil {
			return o, fmt.Errorf("--transfer-size: %w", err)
		}
		o.transferSize = n
	}
	o.noYield = !*yield
	return o, nil
}

// Main runs the bench command and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	o, err := parse(args, stderr)
	if err == flag.ErrHelp {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "lanchat bench:", err)
		return 2
	}
	progress := func(s string) {
		if !o.json {
			fmt.Fprintln(stderr, "…", s)
		}
	}
	if nodeBin, err = findNode(o.lanchat); err != nil {
		fmt.Fprintln(stderr, "lanchat bench:", err)
		return 2
	}
	r, err := run(o, progress)
	if err != nil {
		fmt.Fprintln(stderr, "lanchat bench:", err)
		return 1
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(map[string]any{
			"go": runtime.Version(), "cpus": runtime.NumCPU(), "netns": o.netns, "linking": linking(), "results": r.rows,
		})
		return 0
	}
	where := "on loopback"
	if o.netns {
		where += " and between network namespaces (rows marked netns)"
	}
	fmt.Fprintf(stdout, "lanchat bench %s, %d CPUs, %s, %s\n\n", where, runtime.NumCPU(), runtime.Version(), linking())
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MEASURE\tLANCHAT\tBASELINE\tRATIO\tTARGET\t")
	for _, x := range r.rows {
		base, ratio := "", ""
		if x.Baseline > 0 {
			base = fmt.Sprintf("%.4g %s", x.Baseline, x.Unit)
			ratio = fmt.Sprintf("%.2f×", x.Ratio)
		}
		target := x.Target
		if x.Met != nil {
			if *x.Met {
				target += " ✓"
			} else {
				target += " ✗"
			}
		}
		fmt.Fprintf(tw, "%s\t%.4g %s\t%s\t%s\t%s\t\n", x.Measure, x.Value, x.Unit, base, ratio, target)
	}
	tw.Flush()
	return 0
}

// pairFigures measures the raw baselines and two lanchat nodes on the
// hosts h: echo, time, chat latency and throughput; where is appended to
// each row's name. It returns the raw TCP round trips, which later rows
// use as their baseline. withPlain adds the cost of encryption.
func pairFigures(r *report, o options, h baseline.Hosts, where string, withPlain bool) (dist, error) {
	secure, err := pair(h, false)
	if err != nil {
		return dist{}, err
	}
	defer stopAll(secure)
	var plain []*node
	if withPlain {
		if plain, err = pair(h, true); err != nil {
			return dist{}, err
		}
		defer stopAll(plain)
	}
	a, b := secure[1], secure[0]
	echoes, err := interleavedEchoes(a, b, plain, h, o.samples)
	if err != nil {
		return dist{}, err
	}
	rt, ru := summarize(echoes.raw[peer.TCP]), summarize(echoes.raw[peer.UDP])
	for _, tr := range []struct {
		via string
		raw dist
	}{{peer.TCP, rt}, {peer.UDP, ru}} {
		sc, err := echoCalls(a, b, tr.via, o.samples)
		if err != nil {
			return dist{}, err
		}
		d, dc := summarize(echoes.series[tr.via]), summarize(sc)
		r.add("/echo -"+tr.via+" -n round trip p50"+where, us(d.p50), "µs", us(tr.raw.p50), "≤ 1.5× raw", yes(d.p50 <= tr.raw.p50*3/2))
		r.add("/echo -"+tr.via+" -n round trip p99"+where, us(d.p99), "µs", us(tr.raw.p99), "≤ 3× raw", yes(d.p99 <= tr.raw.p99*3))
		r.add("one /echo -"+tr.via+" call as its caller sees it, p50"+where, us(dc.p50), "µs", us(tr.raw.p50), "", nil)
		r.add("one /echo -"+tr.via+" call as its caller sees it, p99"+where, us(dc.p99), "µs", us(tr.raw.p99), "", nil)
		if withPlain {
			pd := summarize(echoes.plain[tr.via])
			r.add("/echo -"+tr.via+" -n p50, encrypted vs plaintext"+where, us(d.p50), "µs", us(pd.p50), "≤ 1.3× plaintext", yes(d.p50*10 <= pd.p50*13))
		}
	}
	for _, via := range []string{peer.TCP, peer.UDP} {
		offs, err := timeOffsets(a, b, via, min(o.samples, 500))
		if err != nil {
			return dist{}, err
		}
		d := summarize(offs)
		r.add("/time -"+via+" |offset| p50 (true offset 0)"+where, ms(d.p50), "ms", 0, "", nil)
		r.add("/time -"+via+" |offset| p99"+where, ms(d.p99), "ms", 0, "≤ 0.5 ms", yes(d.p99 <= 500*time.Microsecond))
	}

	lat, err := chatLatency(a, b, min(o.samples, 1000), o.size)
	if err != nil {
		return dist{}, err
	}
	ld := summarize(lat)
	r.add("chat one-way latency p50 (send to event)"+where, us(ld.p50), "µs", us(rt.p50)/2, "raw: half a TCP round trip", nil)
	r.add("chat one-way latency p99"+where, us(ld.p99), "µs", us(rt.p99)/2, "", nil)
	tp, err := throughputs(a, b, plain, h, o)
	if err != nil {
		return dist{}, err
	}
	rawRate := float64(tp.rawN) / tp.oneWrite.Seconds()
	rawBatched := float64(tp.rawN) / tp.batched.Seconds()
	rate := float64(tp.chatN) / tp.chat.Seconds()
	r.add("chat throughput vs one Write per message"+where, rate, "msg/s", rawRate, "≥ 1× raw", yes(rate >= rawRate))
	r.add("chat throughput vs batched writes"+where, rate, "msg/s", rawBatched, "", nil)
	r.add("chat throughput"+where, rate*float64(o.size)/1e6, "MB/s", rawRate*float64(o.size)/1e6, "", nil)
	if withPlain {
		prate := float64(tp.chatN) / tp.plain.Seconds()
		r.add("chat throughput, plaintext vs encrypted"+where, prate, "msg/s", rate, "encrypted ≥ plaintext/1.3", yes(prate <= rate*1.3))
	}
	return rt, nil
}

// linking says how the binary measured was built: with cgo it maps the C
// library, which every node process then carries in its memory.
func linking() string {
	if bi, err := buildinfo.ReadFile(nodeBin); err == nil {
		for _, s := range bi.Settings {
			if s.Key == "CGO_ENABLED" && s.Value == "0" {
				return "static binary (CGO_ENABLED=0)"
			}
		}
	}
	return "binary linked with the C library (cgo)"
}

func run(o options, progress func(string)) (*report, error) {
	r := &report{}
	progress("raw sockets and two nodes on loopback")
	rt, err := pairFigures(r, o, baseline.Loopback, "", true)
	if err != nil {
		return nil, err
	}
	if o.netns {
		progress("raw sockets and two nodes between two network namespaces")
		l, err := newLAN(2)
		if err != nil {
			return nil, err
		}
		_, err = pairFigures(r, o, l.hosts2(), " (netns)", false)
		l.close()
		if err != nil {
			return nil, err
		}
	}

	if !o.skipDurable {
		if err := durable(r, o, progress); err != nil {
			return nil, fmt.Errorf("durable store: %w", err)
		}
	}

	progress("chat to a healthy peer while another is stopped (SIGSTOP)")
	running, stopped, err := stalledPeer(min(o.samples, 1000), o.size)
	if err != nil {
		return nil, err
	}
	sr, ss := summarize(running), summarize(stopped)
	r.add("chat one-way latency p50, a third peer stopped", us(ss.p50), "µs", us(sr.p50), "", nil)
	r.add("chat one-way latency p99, a third peer stopped", us(ss.p99), "µs", us(sr.p99), "≤ 2× with it running", yes(ss.p99 <= 2*sr.p99))

	for _, count := range o.nodes {
		progress(fmt.Sprintf("in-process mesh of %d nodes and fan-out", count))
		ns, took, err := mesh(count, false, 60*time.Second)
		if err != nil {
			return nil, err
		}
		var met *bool
		target := ""
		if count == 32 {
			met, target = yes(took <= 2*time.Second), "≤ 2 s for 32"
		}
		r.add(fmt.Sprintf("full mesh of %d nodes formed (in-process)", count), ms(took), "ms", 0, target, met)
		lat, err := fanOut(ns, 50)
		stopAll(ns)
		if err != nil {
			return nil, err
		}
		fd := summarize(lat)
		met, target = nil, ""
		if count == 32 {
			met, target = yes(fd.p99 <= 20*time.Millisecond), "≤ 20 ms for 31 peers"
		}
		r.add(fmt.Sprintf("group message to %d peers p50", count-1), ms(fd.p50), "ms", ms(rt.p50)/2, "", nil)
		r.add(fmt.Sprintf("group message to %d peers p99", count-1), ms(fd.p99), "ms", ms(rt.p99)/2, target, met)
	}

	if o.netns {
		progress("discovery across namespaces")
		if err := netDiscovery(r, 3, 5); err != nil {
			return nil, err
		}
		for _, count := range o.nodes {
			progress(fmt.Sprintf("mesh of %d node processes in %d namespaces", count, count))
			if err := netScale(r, count, 20, count == slices.Max(o.nodes)); err != nil {
				return nil, err
			}
		}
		for _, count := range o.nodes {
			if count != 8 && count != 32 {
				continue
			}
			progress(fmt.Sprintf("mesh of %d node processes through the broadcast beacon, mDNS blocked", count))
			if err := netBroadcastScale(r, count); err != nil {
				return nil, err
			}
		}
		progress("two restarted nodes through remembered addresses")
		if err := netRemembered(r, 3); err != nil {
			return nil, err
		}
	}
	if err := runTransfers(r, o, progress); err != nil {
		return nil, err
	}

	progress(fmt.Sprintf("memory of %d node processes", o.procs))
	idle, loaded, err := memory(o.procs, o.duration)
	if err != nil {
		return nil, err
	}
	maxOf := func(xs []int64) float64 {
		m := int64(0)
		for _, x := range xs {
			m = max(m, x)
		}
		return float64(m) / (1 << 20)
	}
	r.add(fmt.Sprintf("resident memory per node, idle (max of %d)", o.procs), maxOf(idle), "MiB", 0, "≤ 15 MB", yes(maxOf(idle) <= 15*1e6/(1<<20)))
	r.add("resident memory per node, under chat load", maxOf(loaded), "MiB", 0, "", nil)
	return r, nil
}
