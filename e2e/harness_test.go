package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

// Deadlines. They are generous on purpose: the tests check behaviour, never
// speed, and share the CPU with race-instrumented binaries.
const (
	readyTimeout     = 20 * time.Second // process start to "ready"
	discoveryTimeout = 20 * time.Second // mDNS sighting to peer_up
	eventTimeout     = 15 * time.Second // a reply to a command
	quitTimeout      = 10 * time.Second // stdin closed to process exit
	cmdTimeout       = 20 * time.Second // helper commands (ip, avahi-browse...)
)

var (
	binPath  string // the lanchat binary under test
	buildErr error  // why it could not be built
)

func TestMain(m *testing.M) {
	code := runTests(m)
	if code == 0 {
		// Every goroutine of the harness ends with the process it serves.
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: harness leaked goroutines: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

func runTests(m *testing.M) int {
	if p := os.Getenv("LANCHAT_E2E_BIN"); p != "" {
		binPath = p
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "lanchat-e2e-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binPath = filepath.Join(dir, "lanchat")
	args := []string{"build", "-o", binPath}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "lanchat")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = ".." // the module root, relative to this package's directory
	if out, err := cmd.CombinedOutput(); err != nil {
		buildErr = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return m.Run()
}

// lanchatBin returns the binary under test, failing the test when the build
// failed.
func lanchatBin(t testing.TB) string {
	t.Helper()
	if buildErr != nil {
		t.Fatalf("cannot build lanchat: %v", buildErr)
	}
	return binPath
}

// ---------------------------------------------------------------------------
// Network namespaces

// LAN is a private network of hosts: one bridge namespace and one namespace
// per host, each joined to the bridge by a veth pair.
type LAN struct {
	t      testing.TB
	prefix string // lc<pid>-<n>
	sw     string // the bridge namespace
	Hosts  []*Host

	mu  sync.Mutex
	nss []string // namespaces made, in order
}

// Host is one machine: a network namespace with its own hostname and its own
// home directory. A nil *Host means the test process's own network namespace.
type Host struct {
	lan      *LAN
	Index    int    // 1-based
	Hostname string // h1, h2, ... or "lo"
	NS       string // network namespace name
	IP4      string // 10.X.Y.i, "" for a loopback-only host
	IP6      string // fdXX:Y::i
	dir      string // HOME etc. shared by every process on the host; "" = one per process
}

var (
	lanCounter atomic.Int64
	staleOnce  sync.Once
	nsPrefixRE = regexp.MustCompile(`^lc(\d+)-`)
)

func needNetns(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2 (the ip command) to create network namespaces")
	}
}

// run runs a helper command with a bounded time and returns its combined
// output.
func run(timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

func ip(args ...string) error {
	_, err := run(cmdTimeout, "ip", args...)
	return err
}

// removeStaleNamespaces deletes namespaces left by earlier runs that were
// killed before their cleanup: those named lc<pid>-... whose pid is gone.
func removeStaleNamespaces(t testing.TB) {
	out, err := run(cmdTimeout, "ip", "netns", "list")
	if err != nil {
		t.Logf("listing namespaces: %v", err)
		return
	}
	var stale []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		m := nsPrefixRE.FindStringSubmatch(f[0])
		if m == nil {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			stale = append(stale, f[0])
		}
	}
	// Host namespaces first: deleting a bridge namespace deletes its veths.
	for pass := 0; pass < 2; pass++ {
		for _, ns := range stale {
			if strings.HasSuffix(ns, "-sw") != (pass == 1) {
				continue
			}
			killNamespaceProcs(ns)
			if err := ip("netns", "del", ns); err != nil {
				t.Logf("removing stale namespace: %v", err)
			} else {
				t.Logf("removed stale namespace %s", ns)
			}
		}
	}
}

// killNamespaceProcs kills, by pid, the processes still running in one of
// this harness's namespaces (normally none: nodes are killed first).
func killNamespaceProcs(ns string) {
	out, err := run(cmdTimeout, "ip", "netns", "pids", ns)
	if err != nil {
		return
	}
	for _, f := range strings.Fields(out) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func (l *LAN) addNS(name string) error {
	if err := ip("netns", "add", name); err != nil {
		return err
	}
	l.mu.Lock()
	l.nss = append(l.nss, name)
	l.mu.Unlock()
	return nil
}

// subnet picks the second and third octets of 10.X.Y.0/24 from the pid and a
// per-run counter, so that parallel runs and LANs never share one.
func subnet(n int64) (x, y int) {
	return os.Getpid()%250 + 1, int(n % 250)
}

// newLAN makes n hosts h1..hn on one bridge. Everything is removed in
// t.Cleanup, after the processes started on it are killed.
func newLAN(t testing.TB, n int) *LAN {
	t.Helper()
	needNetns(t)
	staleOnce.Do(func() { removeStaleNamespaces(t) })
	c := lanCounter.Add(1)
	l := &LAN{t: t, prefix: fmt.Sprintf("lc%d-%d", os.Getpid(), c)}
	l.sw = l.prefix + "-sw"
	t.Cleanup(l.destroy)
	x, y := subnet(c)

	if err := l.addNS(l.sw); err != nil {
		if strings.Contains(err.Error(), "not permitted") {
			t.Skipf("cannot create network namespaces here: %v", err)
		}
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-n", l.sw, "link", "add", "br0", "type", "bridge"},
		// forward multicast at once: no IGMP snooping delays on a fresh bridge
		{"-n", l.sw, "link", "set", "br0", "type", "bridge", "mcast_snooping", "0"},
		{"-n", l.sw, "link", "set", "br0", "up"},
	} {
		if err := ip(args...); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= n; i++ {
		h := &Host{
			lan:      l,
			Index:    i,
			Hostname: fmt.Sprintf("h%d", i),
			NS:       fmt.Sprintf("%s-h%d", l.prefix, i),
			IP4:      fmt.Sprintf("10.%d.%d.%d", x, y, i),
			IP6:      fmt.Sprintf("fd%02x:%x::%x", x, y, i),
			dir:      t.TempDir(),
		}
		if err := l.addNS(h.NS); err != nil {
			t.Fatal(err)
		}
		veth := fmt.Sprintf("v%d", i)
		for _, args := range [][]string{
			{"-n", l.sw, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", h.NS},
			{"-n", l.sw, "link", "set", veth, "master", "br0"},
			{"-n", l.sw, "link", "set", veth, "up"},
			{"-n", h.NS, "addr", "add", h.IP4 + "/24", "dev", "eth0"},
			{"-n", h.NS, "addr", "add", h.IP6 + "/64", "dev", "eth0", "nodad"},
			{"-n", h.NS, "link", "set", "eth0", "up"},
			{"-n", h.NS, "link", "set", "lo", "up"},
			{"-n", h.NS, "link", "set", "lo", "multicast", "on"},
		} {
			if err := ip(args...); err != nil {
				t.Fatal(err)
			}
		}
		l.Hosts = append(l.Hosts, h)
	}
	return l
}

// newLoopbackHost returns an isolated host with only a loopback interface
// when the tests run as root, so that nothing a node does, even by mistake
// (mDNS despite --no-mdns), reaches the machine's network; each node started
// on it still gets its own home directory. Without root (or with
// LANCHAT_E2E_NO_NETNS set) it returns nil: nodes then run directly on the
// machine's loopback.
func newLoopbackHost(t testing.TB) *Host {
	t.Helper()
	if os.Geteuid() != 0 || os.Getenv("LANCHAT_E2E_NO_NETNS") != "" {
		return nil
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil
	}
	staleOnce.Do(func() { removeStaleNamespaces(t) })
	c := lanCounter.Add(1)
	l := &LAN{t: t, prefix: fmt.Sprintf("lc%d-%d", os.Getpid(), c)}
	t.Cleanup(l.destroy)
	h := &Host{lan: l, Index: 1, Hostname: "lo", NS: l.prefix + "-lo"}
	if err := l.addNS(h.NS); err != nil {
		t.Logf("no isolated namespace (%v): running on the machine's loopback", err)
		return nil
	}
	if err := ip("-n", h.NS, "link", "set", "lo", "up"); err != nil {
		t.Fatal(err)
	}
	return h
}

func (l *LAN) destroy() {
	l.mu.Lock()
	nss := append([]string(nil), l.nss...)
	l.mu.Unlock()
	// hosts first, then the bridge (its veth ends go with it)
	for i := len(nss) - 1; i >= 0; i-- {
		killNamespaceProcs(nss[i])
		if err := ip("netns", "del", nss[i]); err != nil {
			l.t.Errorf("cleanup: %v", err)
		}
	}
}

// Host returns host i (1-based).
func (l *LAN) Host(i int) *Host { return l.Hosts[i-1] }

// Cut unplugs host i's cable: its veth end on the bridge goes down.
func (l *LAN) Cut(t testing.TB, i int) {
	t.Helper()
	if err := ip("-n", l.sw, "link", "set", fmt.Sprintf("v%d", i), "down"); err != nil {
		t.Fatal(err)
	}
}

// Heal plugs host i's cable back in.
func (l *LAN) Heal(t testing.TB, i int) {
	t.Helper()
	if err := ip("-n", l.sw, "link", "set", fmt.Sprintf("v%d", i), "up"); err != nil {
		t.Fatal(err)
	}
}

// Command returns a command that runs on host h (in its namespace, with its
// hostname) with the environment env. A nil host runs it directly.
func (h *Host) Command(env []string, name string, args ...string) *exec.Cmd {
	var cmd *exec.Cmd
	if h == nil {
		cmd = exec.Command(name, args...)
	} else {
		argv := append([]string{"netns", "exec", h.NS, "unshare", "--uts",
			"sh", "-c", `hostname "$0" && exec "$@"`, h.Hostname, name}, args...)
		cmd = exec.Command("ip", argv...)
	}
	cmd.Env = env
	// Own process group, killed with the test process if it dies: every
	// exec in the chain above keeps the pid, so signals reach the program.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	return cmd
}

// Env returns the environment of a process on h whose home is dir: HOME and
// the XDG directories all point into dir, as on a separate machine.
func hostEnv(dir string) []string {
	env := []string{}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_RUNTIME_DIR":
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"HOME="+dir,
		"XDG_CONFIG_HOME="+filepath.Join(dir, ".config"),
		"XDG_STATE_HOME="+filepath.Join(dir, ".local", "state"),
		"XDG_CACHE_HOME="+filepath.Join(dir, ".cache"),
		"XDG_DATA_HOME="+filepath.Join(dir, ".local", "share"),
	)
}

// onHost returns the arguments of a node on host h: on this machine itself
// (no namespaces: not root), with the broadcast beacon off, so that
// nothing goes out on its real networks.
func onHost(h *Host, args []string) []string {
	if h != nil {
		return args
	}
	return append([]string{"--no-broadcast"}, args...)
}

// Do runs f with the calling thread in h's network namespace, so that the
// sockets f opens live there (they stay there when used afterwards from any
// goroutine). A nil host runs f as is.
//
// The thread is moved back to its own namespace afterwards rather than left
// to die: a thread's exit sends Pdeathsig to every child it started, and Go
// may have started nodes from this very thread.
func (h *Host) Do(f func() error) error {
	if h == nil {
		return f()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open("/var/run/netns/" + h.NS)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %v", h.NS, err)
			return
		}
		err = f()
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		} // else the thread stays locked and ends with this goroutine
		errc <- err
	}()
	return <-errc
}

// ---------------------------------------------------------------------------
// Events

// Event is one line of lanchat's --json output.
type Event map[string]any

// Kind is the event's "event" field.
func (e Event) Kind() string { return e.Str("event") }

// Str returns a string field, or "".
func (e Event) Str(k string) string {
	s, _ := e[k].(string)
	return s
}

// Num returns a numeric field, or NaN.
func (e Event) Num(k string) float64 {
	if f, ok := e[k].(float64); ok {
		return f
	}
	return math.NaN()
}

// Bool returns a boolean field, or false.
func (e Event) Bool(k string) bool {
	b, _ := e[k].(bool)
	return b
}

func (e Event) String() string {
	b, err := json.Marshal(map[string]any(e))
	if err != nil {
		return fmt.Sprint(map[string]any(e))
	}
	return string(b)
}

// is matches events of one kind whose fields equal the given key, value
// pairs (strings, bools and ints).
func is(kind string, kv ...any) func(Event) bool {
	if len(kv)%2 != 0 {
		panic("is: odd key/value list")
	}
	return func(e Event) bool {
		if e.Kind() != kind {
			return false
		}
		for i := 0; i < len(kv); i += 2 {
			k := kv[i].(string)
			switch v := kv[i+1].(type) {
			case string:
				if e.Str(k) != v {
					return false
				}
			case bool:
				if b, ok := e[k].(bool); !ok || b != v {
					return false
				}
			case int:
				if e.Num(k) != float64(v) {
					return false
				}
			default:
				panic(fmt.Sprintf("is: unsupported value %T", v))
			}
		}
		return true
	}
}

// and combines predicates.
func and(ps ...func(Event) bool) func(Event) bool {
	return func(e Event) bool {
		for _, p := range ps {
			if !p(e) {
				return false
			}
		}
		return true
	}
}

// ---------------------------------------------------------------------------
// Nodes

// Node is one running lanchat process.
type Node struct {
	Label string // name@host, for messages
	Host  *Host
	Dir   string // its HOME

	// From its "ready" event.
	Name    string
	ID      string
	TCPPort int
	UDPPort int

	cmd    *exec.Cmd
	stdin  *os.File
	stderr lockedBuffer

	mu     sync.Mutex
	events []Event
	bad    []string      // stdout lines that are not JSON objects
	notify chan struct{} // closed and replaced at each new event

	stdoutDone chan struct{} // stdout reached EOF
	done       chan struct{} // process exited and stdout drained
	exitErr    error         // valid once done is closed
	killed     atomic.Bool
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startNode starts lanchat --json args... on host (nil: directly) and waits
// for its ready event. Processes on one LAN host share the host's home
// directory; otherwise each process gets its own. The process is killed in
// t.Cleanup, which also fails the test if it panicked, raced, or wrote
// anything but JSON objects to stdout.
func startNode(t testing.TB, host *Host, args ...string) *Node {
	t.Helper()
	return startNodeEnv(t, host, nil, args...)
}

// startNodeEnv is startNode with extra environment variables (e.g. TZ).
func startNodeEnv(t testing.TB, host *Host, extraEnv []string, args ...string) *Node {
	t.Helper()
	bin := lanchatBin(t)
	dir := ""
	if host != nil {
		dir = host.dir
	}
	if dir == "" {
		dir = t.TempDir()
	}
	n := &Node{
		Host:       host,
		Dir:        dir,
		notify:     make(chan struct{}),
		stdoutDone: make(chan struct{}),
		done:       make(chan struct{}),
	}
	n.Label = labelFor(host, args)
	n.cmd = host.Command(append(hostEnv(dir), extraEnv...), bin, append([]string{"--json"}, onHost(host, args)...)...)

	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	n.cmd.Stdin, n.cmd.Stdout, n.cmd.Stderr = inR, outW, errW
	err = n.cmd.Start()
	inR.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		errR.Close()
		t.Fatalf("starting %s: %v", n.Label, err)
	}
	n.stdin = inW
	t.Cleanup(func() { n.cleanup(t) })

	go n.readStdout(outR)
	stderrDone := make(chan struct{})
	go func() {
		defer close(stderrDone)
		defer errR.Close()
		buf := make([]byte, 32*1024)
		for {
			k, err := errR.Read(buf)
			if k > 0 {
				_, _ = n.stderr.Write(buf[:k])
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		err := n.cmd.Wait()
		// The program is gone; its output pipes close with it (nothing
		// else holds them), but never wait for them forever.
		for _, c := range []chan struct{}{n.stdoutDone, stderrDone} {
			select {
			case <-c:
			case <-time.After(2 * time.Second):
			}
		}
		n.mu.Lock()
		n.exitErr = err
		n.mu.Unlock()
		close(n.done)
	}()

	ready := n.Wait(t, "ready", readyTimeout, is("ready"))
	n.Name = ready.Str("name")
	n.ID = ready.Str("id")
	n.TCPPort = int(ready.Num("tcp_port"))
	n.UDPPort = int(ready.Num("udp_port"))
	if n.ID == "" || n.TCPPort <= 0 || n.UDPPort <= 0 {
		t.Fatalf("%s: ready event lacks id, tcp_port or udp_port: %v", n.Label, ready)
	}
	return n
}

func labelFor(host *Host, args []string) string {
	name := "node"
	for i, a := range args {
		if a == "--name" && i+1 < len(args) {
			name = args[i+1]
		} else if v, ok := strings.CutPrefix(a, "--name="); ok {
			name = v
		}
	}
	if host == nil {
		return name + "@local"
	}
	return name + "@" + host.Hostname
}

func (n *Node) readStdout(r *os.File) {
	defer close(n.stdoutDone)
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Bytes()
		var ev Event
		n.mu.Lock()
		if err := json.Unmarshal(line, &ev); err != nil || ev == nil {
			n.bad = append(n.bad, string(line))
		} else {
			n.events = append(n.events, ev)
			close(n.notify)
			n.notify = make(chan struct{})
		}
		n.mu.Unlock()
	}
	if err := sc.Err(); err != nil {
		n.mu.Lock()
		n.bad = append(n.bad, "reading stdout: "+err.Error())
		n.mu.Unlock()
	}
}

// Mark returns a cursor: the number of events received so far. WaitFrom
// with it considers only events that arrive afterwards.
func (n *Node) Mark() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.events)
}

// Events returns a copy of the events received so far.
func (n *Node) Events() []Event {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]Event(nil), n.events...)
}

// Find returns the events from cursor from on that match pred.
func (n *Node) Find(from int, pred func(Event) bool) []Event {
	var out []Event
	for i, e := range n.Events() {
		if i >= from && pred(e) {
			out = append(out, e)
		}
	}
	return out
}

// Send writes one line to the node's stdin. The write is bounded: a node
// that stops reading its input fails the test instead of hanging it.
func (n *Node) Send(t testing.TB, line string) {
	t.Helper()
	if err := n.stdin.SetWriteDeadline(time.Now().Add(eventTimeout)); err != nil {
		t.Fatalf("%s: %v", n.Label, err)
	}
	if _, err := n.stdin.Write([]byte(line + "\n")); err != nil {
		t.Fatalf("%s: writing %q to stdin: %v%s", n.Label, clip(line, 80), err, n.diagnostics())
	}
}

// Wait waits for an event matching pred among all the events the node has
// sent (including those that came before the call).
func (n *Node) Wait(t testing.TB, desc string, timeout time.Duration, pred func(Event) bool) Event {
	t.Helper()
	return n.WaitN(t, 0, 1, desc, timeout, pred)[0]
}

// WaitFrom is Wait limited to the events from cursor from on (see Mark).
func (n *Node) WaitFrom(t testing.TB, from int, desc string, timeout time.Duration, pred func(Event) bool) Event {
	t.Helper()
	return n.WaitN(t, from, 1, desc, timeout, pred)[0]
}

// WaitN waits until count events from cursor from on match pred, and
// returns them. It fails the test, showing the latest events and stderr, if
// they don't come within timeout or the process exits first.
func (n *Node) WaitN(t testing.TB, from, count int, desc string, timeout time.Duration, pred func(Event) bool) []Event {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	exited := false
	for {
		n.mu.Lock()
		var got []Event
		for i := from; i < len(n.events); i++ {
			if pred(n.events[i]) {
				got = append(got, n.events[i])
				if len(got) == count {
					break
				}
			}
		}
		notify := n.notify
		n.mu.Unlock()
		if len(got) == count {
			return got
		}
		if exited {
			t.Fatalf("%s: process exited (%s) while waiting for %s (got %d of %d)%s",
				n.Label, n.exitDesc(), desc, len(got), count, n.diagnostics())
		}
		select {
		case <-notify:
		case <-n.done:
			exited = true // one last look at what it printed
		case <-deadline.C:
			t.Fatalf("%s: no %s within %v (got %d of %d)%s",
				n.Label, desc, timeout, len(got), count, n.diagnostics())
		}
	}
}

// Never checks that no event from cursor from on matches pred.
func (n *Node) Never(t testing.TB, from int, desc string, pred func(Event) bool) {
	t.Helper()
	if bad := n.Find(from, pred); len(bad) > 0 {
		t.Errorf("%s: unexpected %s: %v", n.Label, desc, bad[0])
	}
}

func (n *Node) exitError() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.exitErr
}

// exitDesc describes how the process ended, telling apart a SIGKILL the
// harness sent from one it did not (the OOM killer, say).
func (n *Node) exitDesc() string {
	err := n.exitError()
	if err != nil && strings.Contains(err.Error(), "killed") && !n.killed.Load() {
		return err.Error() + ", not sent by the test"
	}
	return fmt.Sprint(err)
}

// Exited reports whether the process has exited.
func (n *Node) Exited() bool {
	select {
	case <-n.done:
		return true
	default:
		return false
	}
}

// Kill sends SIGKILL and waits (bounded) for the process to be gone.
func (n *Node) Kill(t testing.TB) {
	t.Helper()
	n.killed.Store(true)
	n.signalKill()
	select {
	case <-n.done:
	case <-time.After(quitTimeout):
		t.Errorf("%s: still running %v after SIGKILL", n.Label, quitTimeout)
	}
}

func (n *Node) signalKill() {
	if n.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
	_ = n.cmd.Process.Kill()
}

// Quit closes stdin (a graceful /quit) and waits for the process to exit
// with status 0, killing it and failing the test after quitTimeout.
func (n *Node) Quit(t testing.TB) {
	t.Helper()
	_ = n.stdin.Close()
	select {
	case <-n.done:
		if err := n.exitError(); err != nil {
			t.Errorf("%s: exit after end of stdin: %v%s", n.Label, err, n.diagnostics())
		}
	case <-time.After(quitTimeout):
		n.killed.Store(true)
		n.signalKill()
		t.Errorf("%s: still running %v after end of stdin; killed%s", n.Label, quitTimeout, n.diagnostics())
	}
}

// Stderr returns what the process wrote to stderr so far.
func (n *Node) Stderr() string { return n.stderr.String() }

func (n *Node) cleanup(t testing.TB) {
	if !n.Exited() {
		n.Kill(t)
	}
	_ = n.stdin.Close()
	stderr := n.Stderr()
	for _, bad := range []string{"panic:", "DATA RACE", "fatal error:"} {
		if strings.Contains(stderr, bad) {
			t.Errorf("%s: stderr has %q", n.Label, bad)
		}
	}
	n.mu.Lock()
	badLines := append([]string(nil), n.bad...)
	events := append([]Event(nil), n.events...)
	n.mu.Unlock()
	for i, l := range badLines {
		if i == 5 {
			t.Errorf("%s: ... %d more bad stdout lines", n.Label, len(badLines)-i)
			break
		}
		t.Errorf("%s: stdout line is not a JSON object: %q", n.Label, clip(l, 300))
	}
	for _, e := range events {
		if err := checkEnvelope(e); err != nil {
			t.Errorf("%s: %v: %v", n.Label, err, e)
			break
		}
	}
	if t.Failed() || os.Getenv("LANCHAT_E2E_DUMP") != "" {
		t.Logf("%s: exit %s; %d events, stderr:\n%s\nevents:\n%s", n.Label, n.exitDesc(),
			len(events), indent(clipTail(stderr, 8000)), indent(formatEvents(events, 60)))
	}
}

// checkEnvelope checks the fields every event has.
func checkEnvelope(e Event) error {
	if e.Kind() == "" {
		return errors.New(`event without "event"`)
	}
	ts := e.Str("ts")
	if ts == "" {
		return errors.New(`event without "ts"`)
	}
	if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
		return fmt.Errorf("event ts: %v", err)
	}
	return nil
}

func (n *Node) diagnostics() string {
	evs := n.Events()
	return fmt.Sprintf("\nlast events of %s:\n%s\nstderr of %s (tail):\n%s",
		n.Label, indent(formatEvents(evs, 25)), n.Label, indent(clipTail(n.Stderr(), 3000)))
}

func formatEvents(evs []Event, last int) string {
	var b strings.Builder
	if len(evs) > last {
		fmt.Fprintf(&b, "... %d earlier events\n", len(evs)-last)
		evs = evs[len(evs)-last:]
	}
	for _, e := range evs {
		b.WriteString(clip(e.String(), 400))
		b.WriteByte('\n')
	}
	if len(evs) == 0 {
		b.WriteString("(none)\n")
	}
	return b.String()
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return "    (empty)"
	}
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + fmt.Sprintf("...(%d bytes)", len(s))
}

func clipTail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// nonce makes message texts unique per test run.
func nonce() string {
	return strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
}

// runLanchat runs the binary to completion (bounded by cmdTimeout) with
// empty input, and returns what it printed and how it exited.
func runLanchat(t testing.TB, h *Host, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := h.Command(env, lanchatBin(t), args...)
	cmd.Stdin = strings.NewReader("")
	out, timedOut, err := runBounded(t, cmd)
	if timedOut {
		t.Fatalf("lanchat %v still running after %v", args, cmdTimeout)
	}
	return out, err
}

// runBounded runs cmd (made by Host.Command, in its own process group) to
// completion, killing it after cmdTimeout, and returns its output (stdout
// and stderr together, unless the caller set them).
func runBounded(t testing.TB, cmd *exec.Cmd) (out string, timedOut bool, err error) {
	t.Helper()
	cmd.WaitDelay = time.Second
	var buf lockedBuffer
	if cmd.Stdout == nil && cmd.Stderr == nil {
		cmd.Stdout, cmd.Stderr = &buf, &buf
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(cmdTimeout):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		err, timedOut = <-done, true
	}
	return buf.String(), timedOut, err
}

// ---------------------------------------------------------------------------
// Faults: packet loss and rate caps (this kernel has no netem)

// needNft skips the test when nftables is missing: loss comes from it.
func needNft(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs nftables (the nft command) for packet loss: apt-get install nftables")
	}
}

// needTC skips the test when tc (iproute2) is missing: rate caps come from it.
func needTC(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("tc"); err != nil {
		t.Skip("needs tc (iproute2) for rate caps")
	}
}

// Loss drops pct% of the IP packets host i receives on its eth0, chosen at
// random (an nftables rule in the host's namespace, as `lan loss` does);
// 0 removes the rule. Loss in both directions between two hosts needs it
// on both.
func (l *LAN) Loss(t testing.TB, i, pct int) {
	t.Helper()
	if pct < 0 || pct > 100 {
		t.Fatalf("Loss: %d%% is not a percentage", pct)
	}
	ns := l.Host(i).NS
	// Deleting a table that does not exist fails: that is fine.
	_, _ = run(cmdTimeout, "ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "lcloss")
	if pct == 0 {
		return
	}
	rules := fmt.Sprintf("table inet lcloss {\n chain in {\n  type filter hook input priority 0; policy accept;\n"+
		"  iifname \"eth0\" numgen random mod 100 < %d counter drop\n }\n}\n", pct)
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	cmd.WaitDelay = time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("loss %d%% on %s: nft: %v: %s", pct, l.Host(i).Hostname, err, bytes.TrimSpace(out))
	}
}

// Block drops everything host i receives from host from (matched by the
// Ethernet source address, so every IPv4 and IPv6 address of from is
// covered), while from still hears i: a one-way partition. Unblock ends it.
func (l *LAN) Block(t testing.TB, i, from int) {
	t.Helper()
	out, err := run(cmdTimeout, "ip", "-n", l.Host(from).NS, "-br", "link", "show", "eth0")
	f := strings.Fields(out)
	if err != nil || len(f) < 3 {
		t.Fatalf("MAC address of %s: %v: %q", l.Host(from).Hostname, err, out)
	}
	mac := f[2]
	if _, err := net.ParseMAC(mac); err != nil {
		t.Fatalf("MAC address of %s: %q: %v", l.Host(from).Hostname, out, err)
	}
	l.Unblock(t, i)
	rules := fmt.Sprintf("table inet lcblock {\n chain in {\n  type filter hook input priority -1; policy accept;\n"+
		"  iifname \"eth0\" ether saddr %s counter drop\n }\n}\n", mac)
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", l.Host(i).NS, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	cmd.WaitDelay = time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("blocking %s from %s: nft: %v: %s", l.Host(i).Hostname, l.Host(from).Hostname, err, bytes.TrimSpace(out))
	}
}

// Unblock removes host i's Block rule, if any.
func (l *LAN) Unblock(t testing.TB, i int) {
	t.Helper()
	_, _ = run(cmdTimeout, "ip", "netns", "exec", l.Host(i).NS, "nft", "delete", "table", "inet", "lcblock")
}

// LossDropped returns how many packets host i's Loss rule has dropped so
// far (-1 when there is no rule).
func (l *LAN) LossDropped(t testing.TB, i int) int {
	t.Helper()
	out, err := run(cmdTimeout, "ip", "netns", "exec", l.Host(i).NS, "nft", "list", "table", "inet", "lcloss")
	if err != nil {
		return -1
	}
	m := regexp.MustCompile(`counter packets (\d+)`).FindStringSubmatch(out)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// RateStats returns the statistics line of host i's qdisc on eth0 (tc -s:
// bytes and packets sent, dropped, overlimits).
func (l *LAN) RateStats(t testing.TB, i int) string {
	t.Helper()
	out, err := run(cmdTimeout, "ip", "netns", "exec", l.Host(i).NS, "tc", "-s", "qdisc", "show", "dev", "eth0")
	if err != nil {
		return err.Error()
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "Sent ") {
			return strings.TrimSpace(line)
		}
	}
	return strings.TrimSpace(out)
}

// Rate caps what host i sends on its eth0 (a tbf qdisc, as `lan rate`
// does), e.g. "256kbit"; "0" removes the cap.
func (l *LAN) Rate(t testing.TB, i int, rate string) {
	t.Helper()
	ns := l.Host(i).NS
	// Deleting the default qdisc fails: that is fine.
	_, _ = run(cmdTimeout, "ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", "eth0", "root")
	if rate == "0" || rate == "" {
		return
	}
	if _, err := run(cmdTimeout, "ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "eth0", "root",
		"tbf", "rate", rate, "burst", "32kbit", "latency", "400ms"); err != nil {
		t.Fatalf("rate %s on %s: %v", rate, l.Host(i).Hostname, err)
	}
}

// Signal sends sig to the node's process (SIGSTOP, SIGCONT, SIGHUP...).
func (n *Node) Signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if n.cmd.Process == nil || n.Exited() {
		t.Fatalf("%s: cannot send %v: not running", n.Label, sig)
	}
	if err := syscall.Kill(n.cmd.Process.Pid, sig); err != nil {
		t.Fatalf("%s: %v: %v", n.Label, sig, err)
	}
}

// WaitExit waits, within timeout, for the process to exit on its own and
// returns how it exited; after timeout it kills it and fails the test.
func (n *Node) WaitExit(t testing.TB, timeout time.Duration) error {
	t.Helper()
	select {
	case <-n.done:
		return n.exitError()
	case <-time.After(timeout):
		n.killed.Store(true)
		n.signalKill()
		t.Fatalf("%s: still running %v after it was asked to leave; killed%s", n.Label, timeout, n.diagnostics())
		return nil
	}
}

// RSS is the process's resident memory in bytes (VmRSS), or -1.
func (n *Node) RSS() int64 { return n.status("VmRSS:") }

// Anon is the process's resident anonymous memory in bytes (RssAnon), or
// -1: its heap and stacks, without the pages of files it maps (the
// store's database grows with the history, and those pages are the
// kernel's page cache, dropped under pressure).
func (n *Node) Anon() int64 { return n.status("RssAnon:") }

// status reads a size in kB from the process's /proc status, in bytes.
func (n *Node) status(field string) int64 {
	if n.cmd.Process == nil {
		return -1
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", n.cmd.Process.Pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == field {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return -1
			}
			return kb << 10
		}
	}
	return -1
}
