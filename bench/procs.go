package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// proc is a lanchat node running as its own process, driven through its
// stdin and --json stdout.
type proc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	events chan map[string]any
	port   int
	id     string
	// started is when the process was started, readyAt when it said so.
	started, readyAt time.Time
}

// ts is an event's timestamp.
func ts(ev map[string]any) time.Time {
	s, _ := ev["ts"].(string)
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

// local runs a node on this host, without mDNS or the broadcast beacon:
// its peers are on loopback, and nothing may go out on the host's own
// networks.
func local(exe string, args ...string) *exec.Cmd {
	return exec.Command(exe, append([]string{"--no-mdns", "--no-broadcast"}, args...)...)
}

func startProc(dir, name string, mk func(exe string, args ...string) *exec.Cmd, args ...string) (*proc, error) {
	exe, err := nodeExe()
	if err != nil {
		return nil, err
	}
	home := filepath.Join(dir, name)
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}
	if os.Getenv("LANCHAT_BENCH_LOGS") != "" {
		args = append(args, "-v")
	}
	args = append([]string{"--json", "--port", "0", "--name", name,
		"--identity", filepath.Join(home, "identity.pem")}, args...)
	cmd := mk(exe, args...)
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home, "XDG_STATE_HOME="+home)
	if logs := os.Getenv("LANCHAT_BENCH_LOGS"); logs != "" {
		// For looking into a failed run: every node's log in one file each.
		if f, err := os.Create(filepath.Join(logs, name+".log")); err == nil {
			cmd.Stderr = f
			defer f.Close()
		}
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, stdin: stdin, events: make(chan map[string]any, 1<<16), started: time.Now()}
	go func() {
		sc := bufio.NewScanner(stdout)
		// A transfer_done event lists every file: 100,000 of them
		// make a line of some 20 MB.
		sc.Buffer(nil, 64<<20)
		for sc.Scan() {
			var ev map[string]any
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				select {
				case p.events <- ev:
				default: // nobody is counting these
				}
			}
		}
		close(p.events)
	}()
	ev, err := p.wait("ready", 10*time.Second)
	if err != nil {
		p.kill()
		return nil, err
	}
	p.readyAt = ts(ev)
	p.port = int(ev["tcp_port"].(float64))
	p.id, _ = ev["id"].(string)
	return p, nil
}

func (p *proc) wait(kind string, timeout time.Duration) (map[string]any, error) {
	t := time.After(timeout)
	for {
		select {
		case ev, ok := <-p.events:
			if !ok {
				return nil, fmt.Errorf("node exited before %s", kind)
			}
			if ev["event"] == kind {
				return ev, nil
			}
		case <-t:
			return nil, fmt.Errorf("no %s event within %v", kind, timeout)
		}
	}
}

func (p *proc) send(line string) error {
	_, err := io.WriteString(p.stdin, line+"\n")
	return err
}

// rss is the resident memory of the process, from /proc.
func (p *proc) rss() (int64, error) { return p.status("VmRSS") }

// anon is the part of rss that is the process's own (heap, stacks), not
// pages of files it maps (the binary), which the nodes of one host share.
func (p *proc) anon() (int64, error) { return p.status("RssAnon") }

// status reads a size in kB from /proc/PID/status.
func (p *proc) status(field string) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == field+":" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc status", field)
}

// maxAnon is the largest anon of ps now.
func maxAnon(ps []*proc) (int64, error) {
	var m int64
	for _, p := range ps {
		a, err := p.anon()
		if err != nil {
			return 0, err
		}
		m = max(m, a)
	}
	return m, nil
}

// quit ends the node gracefully, or kills it after a few seconds.
func (p *proc) quit() {
	p.stdin.Close()
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		p.kill()
		<-done
	}
}

func (p *proc) kill() { p.cmd.Process.Kill() }

// settle is how long nodes are left alone before their idle memory is
// read: handshakes done, heartbeats running, and the garbage of the
// handshakes handed back (a node does that two quiet seconds after its
// last new peer).
const settle = 3 * time.Second

// idleWindow is how long idle memory is watched after settle: the figure
// is the highest reading in it, so that a node caught between two garbage
// collections, or in a burst of mDNS traffic, counts as it is.
const idleWindow = 5 * time.Second

// peakRSS reads the resident memory of every process every 250 ms for
// window and returns each one's highest reading.
func peakRSS(ps []*proc, window time.Duration) ([]int64, error) {
	peak := make([]int64, len(ps))
	for end := time.Now().Add(window); ; time.Sleep(250 * time.Millisecond) {
		for i, p := range ps {
			r, err := p.rss()
			if err != nil {
				return nil, err
			}
			peak[i] = max(peak[i], r)
		}
		if time.Now().After(end) {
			return peak, nil
		}
	}
}

// memory starts count node processes joined to the first, and reads their
// resident memory idle, then while the first sends chat to all.
func memory(count int, loadFor time.Duration) (idle, loaded []int64, err error) {
	dir, err := os.MkdirTemp("", "lanchat-bench-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	hub, err := startProc(dir, "hub", local)
	if err != nil {
		return nil, nil, err
	}
	ps := []*proc{hub}
	defer func() {
		for _, p := range ps {
			p.quit()
		}
	}()
	for i := 1; i < count; i++ {
		p, err := startProc(dir, fmt.Sprintf("p%d", i), local, "--peer", fmt.Sprintf("127.0.0.1:%d", hub.port))
		if err != nil {
			return nil, nil, err
		}
		ps = append(ps, p)
	}
	for i := 1; i < count; i++ {
		if _, err := hub.wait("peer_up", 10*time.Second); err != nil {
			return nil, nil, err
		}
	}
	time.Sleep(settle)
	if idle, err = peakRSS(ps, idleWindow); err != nil {
		return nil, nil, err
	}
	text := fill(200)
	end := time.Now().Add(loadFor)
	for time.Now().Before(end) {
		for i := 0; i < 50; i++ {
			if err := hub.send(text); err != nil {
				return nil, nil, err
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	loaded, err = peakRSS(ps, 0)
	return idle, loaded, err
}

// debugAnon prints, for LANCHAT_BENCH_DEBUG, the anonymous mappings of the
// node with the most anonymous memory.
func debugAnon(ps []*proc) {
	var best *proc
	var most int64
	for _, p := range ps {
		if a, err := p.anon(); err == nil && a > most {
			best, most = p, a
		}
	}
	if best == nil {
		return
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", best.cmd.Process.Pid))
	if err != nil {
		return
	}
	var mapping string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":"):
			mapping = line
		case len(f) >= 2 && f[0] == "Anonymous:" && f[1] != "0":
			fmt.Fprintf(os.Stderr, "anon %s kB: %s\n", f[1], mapping)
		}
	}
}
