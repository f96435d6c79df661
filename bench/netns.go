package bench

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"lanchat/bench/baseline"
)

// lan is a private LAN of network namespaces joined by a bridge, for
// measuring across hosts with real mDNS (root only). Nothing in it can
// reach the machine's own network.
type lan struct {
	prefix string
	subnet string // 10.X.Y, the hosts are .1 to .n
	hosts  []string
	// restore puts back the kernel settings the LAN changed.
	restore func()
}

// Every namespace's neighbour (ARP) entries count against one table
// for the whole kernel: a full mesh of n hosts needs n×(n-1) of them,
// past the default hard limit of 1024 (gc_thresh3) at 33 hosts, where
// connections start failing with "neighbor table overflow". n real
// machines would have a table each, so the limits are raised for the
// run and put back after.
var neighLimits = []string{
	"/proc/sys/net/ipv4/neigh/default/gc_thresh2",
	"/proc/sys/net/ipv4/neigh/default/gc_thresh3",
}

func raiseNeighLimits(n int) (restore func()) {
	want := 2 * n * n
	var undo []func()
	for _, f := range neighLimits {
		old, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		cur, err := strconv.Atoi(strings.TrimSpace(string(old)))
		if err != nil || cur >= want {
			continue
		}
		if os.WriteFile(f, []byte(strconv.Itoa(want)), 0o644) == nil {
			undo = append(undo, func() { os.WriteFile(f, old, 0o644) })
		}
	}
	return func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
}

func sh(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// newLAN makes n hosts. The namespaces are named after this process, so
// that two runs never meet; close removes them.
func newLAN(n int) (*lan, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("--netns needs root (it creates network namespaces)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("--netns needs iproute2's ip: %w", err)
	}
	pid := os.Getpid()
	l := &lan{prefix: fmt.Sprintf("lcb%d", pid), subnet: fmt.Sprintf("10.%d.%d", 200+pid%50, (pid/50)%250),
		restore: raiseNeighLimits(n)}
	sw := l.prefix + "-sw"
	steps := [][]string{
		{"ip", "netns", "add", sw},
		{"ip", "-n", sw, "link", "add", "br0", "type", "bridge"},
		{"ip", "-n", sw, "link", "set", "br0", "type", "bridge", "mcast_snooping", "0"},
		{"ip", "-n", sw, "link", "set", "br0", "up"},
	}
	for _, s := range steps {
		if err := sh(s...); err != nil {
			l.close()
			return nil, err
		}
	}
	for i := 1; i <= n; i++ {
		ns := fmt.Sprintf("%s-h%d", l.prefix, i)
		veth := fmt.Sprintf("%sv%d", l.prefix, i)
		l.hosts = append(l.hosts, ns)
		for _, s := range [][]string{
			{"ip", "netns", "add", ns},
			{"ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns},
			{"ip", "link", "set", veth, "netns", sw},
			{"ip", "-n", sw, "link", "set", veth, "master", "br0"},
			{"ip", "-n", sw, "link", "set", veth, "up"},
			{"ip", "-n", ns, "addr", "add", fmt.Sprintf("%s.%d/24", l.subnet, i), "dev", "eth0"},
			{"ip", "-n", ns, "link", "set", "eth0", "up"},
			{"ip", "-n", ns, "link", "set", "lo", "up"},
		} {
			if err := sh(s...); err != nil {
				l.close()
				return nil, err
			}
		}
	}
	return l, nil
}

// command runs exe on host i (0-based) with its own hostname.
func (l *lan) command(i int, exe string, args ...string) *exec.Cmd {
	argv := append([]string{"netns", "exec", l.hosts[i], "unshare", "--uts", "sh", "-c",
		`hostname "$0" && exec "$@"`, fmt.Sprintf("h%d", i+1), exe}, args...)
	return exec.Command("ip", argv...)
}

// hosts2 is the first two hosts, for measurements between two hosts in
// one process: sockets are opened from a thread that has joined the
// host's namespace, and stay there whatever goroutine uses them later.
func (l *lan) hosts2() baseline.Hosts {
	return baseline.Hosts{
		On: func(i int, f func() error) error {
			errc := make(chan error, 1)
			go func() {
				runtime.LockOSThread()
				// Never unlocked: the thread ends with this goroutine, so
				// no other goroutine ever runs in the namespace.
				fd, err := unix.Open("/var/run/netns/"+l.hosts[i], unix.O_RDONLY|unix.O_CLOEXEC, 0)
				if err != nil {
					errc <- fmt.Errorf("open namespace %s: %w", l.hosts[i], err)
					return
				}
				defer unix.Close(fd)
				if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
					errc <- fmt.Errorf("join namespace %s: %w", l.hosts[i], err)
					return
				}
				errc <- f()
			}()
			return <-errc
		},
		Addrs: [2]string{l.subnet + ".1", l.subnet + ".2"},
	}
}

// close removes every namespace (the veths go with them).
func (l *lan) close() {
	for _, ns := range append(l.hosts, l.prefix+"-sw") {
		exec.Command("ip", "netns", "del", ns).Run()
	}
	l.restore()
}
