package e2e

import (
	"lanchat/transport"

	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Proc is a helper process (dbus-daemon, avahi-daemon, avahi-publish) whose
// output is kept for the log.
type Proc struct {
	Label string
	cmd   *exec.Cmd
	out   lockedBuffer
	done  chan struct{}
	err   error
}

// startProc starts name args... on host h with env; it is killed in
// t.Cleanup and its output logged if the test failed.
func startProc(t testing.TB, h *Host, env []string, label, name string, args ...string) *Proc {
	t.Helper()
	p := &Proc{Label: label, done: make(chan struct{})}
	p.cmd = h.Command(env, name, args...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	p.cmd.WaitDelay = 2 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", label, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(quitTimeout):
			t.Errorf("%s: still running after SIGKILL", label)
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", label, indent(clipTail(p.out.String(), 4000)))
		}
	})
	return p
}

func (p *Proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Avahi is an avahi-daemon on one host, with a private D-Bus system bus.
type Avahi struct {
	host *Host
	env  []string
}

const dbusConf = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
`

const avahiConf = `[server]
use-ipv4=yes
use-ipv6=yes
allow-interfaces=eth0
enable-dbus=yes
disallow-other-stacks=no
ratelimit-interval-usec=1000000
ratelimit-burst=1000
[wide-area]
enable-wide-area=no
[publish]
publish-hinfo=no
publish-workstation=no
`

// startAvahi runs dbus-daemon and avahi-daemon on h, skipping the test when
// they are not installed. avahi-daemon gets a private /run/avahi-daemon (for
// its pid file and socket) so that it can run beside any other instance.
func startAvahi(t *testing.T, h *Host) *Avahi {
	t.Helper()
	for _, prog := range []string{"dbus-daemon", "avahi-daemon", "avahi-browse", "avahi-publish", "unshare", "mount"} {
		if _, err := exec.LookPath(prog); err != nil {
			t.Skipf("interop test needs %s (apt-get install avahi-daemon avahi-utils dbus): %v", prog, err)
		}
	}
	dir := t.TempDir()
	bus := filepath.Join(dir, "bus")
	if err := os.WriteFile(filepath.Join(dir, "dbus.conf"), []byte(fmt.Sprintf(dbusConf, bus)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "avahi.conf"), []byte(avahiConf), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(hostEnv(dir), "DBUS_SYSTEM_BUS_ADDRESS=unix:path="+bus)
	a := &Avahi{host: h, env: env}

	dbus := startProc(t, h, env, "dbus-daemon@"+h.Hostname, "dbus-daemon", "--nofork", "--config-file="+filepath.Join(dir, "dbus.conf"))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(bus); err == nil {
			break
		}
		if dbus.exited() || time.Now().After(deadline) {
			t.Fatalf("dbus-daemon did not create %s:\n%s", bus, dbus.out.String())
		}
	}
	daemon := startProc(t, h, env, "avahi-daemon@"+h.Hostname, "unshare", "--mount", "sh", "-c",
		`mkdir -p /run/avahi-daemon && mount -t tmpfs tmpfs /run/avahi-daemon && exec avahi-daemon --no-drop-root --no-chroot -f "$0"`,
		filepath.Join(dir, "avahi.conf"))
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if strings.Contains(daemon.out.String(), "Server startup complete") {
			break
		}
		if daemon.exited() || time.Now().After(deadline) {
			t.Fatalf("avahi-daemon did not start:\n%s", daemon.out.String())
		}
	}
	return a
}

// browseEntry is one resolved line of avahi-browse -p.
type browseEntry struct {
	Iface, Proto, Name, Hostname, Addr string
	Port                               int
	TXT                                []string
}

// browse runs avahi-browse -rpt _lanchat._tcp once and returns the resolved
// entries.
func (a *Avahi) browse(t *testing.T) []browseEntry {
	t.Helper()
	out, timedOut, err := runBounded(t, a.host.Command(a.env, "avahi-browse", "-rpt", "_lanchat._tcp"))
	switch {
	case timedOut:
		t.Logf("avahi-browse still running after %v; killed", cmdTimeout)
	case err != nil:
		t.Logf("avahi-browse: %v: %s", err, out)
	}
	var entries []browseEntry
	for _, line := range strings.Split(out, "\n") {
		f := strings.SplitN(line, ";", 10)
		if len(f) < 10 || f[0] != "=" {
			continue
		}
		port, _ := strconv.Atoi(f[8])
		entries = append(entries, browseEntry{
			Iface: f[1], Proto: f[2], Name: f[3], Hostname: f[6], Addr: f[7], Port: port,
			TXT: parseTXT(f[9]),
		})
	}
	return entries
}

// parseTXT splits avahi-browse's `"k=v" "k2=v2"` TXT rendering.
func parseTXT(s string) []string {
	var out []string
	for _, part := range strings.Split(s, `" "`) {
		part = strings.Trim(part, `"`)
		if part != "" {
			out = append(out, part)
		}
	}
	return out
}

// waitBrowse browses until pred holds for the entries, or fails after
// timeout.
func (a *Avahi) waitBrowse(t *testing.T, desc string, timeout time.Duration, pred func([]browseEntry) bool) []browseEntry {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		entries := a.browse(t)
		if pred(entries) {
			return entries
		}
		if time.Now().After(deadline) {
			t.Fatalf("avahi-browse: no %s within %v; resolved entries: %+v", desc, timeout, entries)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func hasTXT(e browseEntry, kv string) bool {
	for _, t := range e.TXT {
		if t == kv {
			return true
		}
	}
	return false
}

// txtVersion is the protocol version as the TXT record carries it.
var txtVersion = "v=" + strconv.Itoa(transport.ProtocolVersion)

// TestAvahiInterop checks lanchat's mDNS against avahi: avahi resolves a
// node's service with the right port and TXT, and services that are not
// lanchat nodes (no id, or a closed port) published through avahi don't
// become peers.
func TestAvahiInterop(t *testing.T) {
	lan := newLAN(t, 4)
	av := startAvahi(t, lan.Host(3))
	alice := startNode(t, lan.Host(1), "--name", "alice")
	bob := startNode(t, lan.Host(2), "--name", "bob")
	waitPeerUp(t, alice, 0, bob, "mdns")
	waitPeerUp(t, bob, 0, alice, "mdns")
	id := nonce()

	t.Run("avahi resolves nodes", func(t *testing.T) {
		for _, n := range []*Node{alice, bob} {
			want := []string{"id=" + n.ID, txtVersion, "name=" + n.Name, "udp=" + strconv.Itoa(n.UDPPort)}
			entries := av.waitBrowse(t, fmt.Sprintf("entry for %s on port %d with TXT %v", n.Label, n.TCPPort, want),
				discoveryTimeout, func(es []browseEntry) bool {
					for _, e := range es {
						if e.Port == n.TCPPort && e.Addr == n.Host.IP4 && hasTXT(e, want[0]) && hasTXT(e, want[1]) {
							return true
						}
					}
					return false
				})
			for _, e := range entries {
				if !hasTXT(e, want[0]) {
					continue
				}
				for _, kv := range want {
					if !hasTXT(e, kv) {
						t.Errorf("%s: TXT lacks %q: %+v", n.Label, kv, e)
					}
				}
				if e.Port != n.TCPPort {
					t.Errorf("%s: advertised port %d, want tcp_port %d: %+v", n.Label, e.Port, n.TCPPort, e)
				}
				if !strings.Contains(e.Name, n.Name) {
					t.Errorf("%s: instance name %q lacks the node name: %+v", n.Label, e.Name, e)
				}
			}
		}
		// instance names must differ between nodes
		names := map[string]string{}
		for _, e := range av.browse(t) {
			for _, n := range []*Node{alice, bob} {
				if hasTXT(e, "id="+n.ID) {
					if other, ok := names[e.Name]; ok && other != n.ID {
						t.Errorf("two nodes share the instance name %q", e.Name)
					}
					names[e.Name] = n.ID
				}
			}
		}
	})

	t.Run("bogus services", func(t *testing.T) {
		startProc(t, av.host, av.env, "avahi-publish bogus", "avahi-publish", "-s", "bogus", "_lanchat._tcp", "9", txtVersion)
		startProc(t, av.host, av.env, "avahi-publish fake", "avahi-publish", "-s", "fake", "_lanchat._tcp", "1", "id=fake", txtVersion)
		av.waitBrowse(t, "bogus and fake services", discoveryTimeout, func(es []browseEntry) bool {
			var bogus, fake bool
			for _, e := range es {
				bogus = bogus || e.Name == "bogus"
				fake = fake || e.Name == "fake"
			}
			return bogus && fake
		})
		// carol starts after they exist: her first browse returns them
		carol := startNode(t, lan.Host(4), "--name", "carol")
		nodes := []*Node{alice, bob, carol}
		for _, n := range nodes {
			for _, p := range nodes {
				if n != p {
					waitPeerUp(t, n, 0, p, "mdns")
				}
			}
		}
		time.Sleep(3 * time.Second) // give the fakes a chance to be dialled
		chat(t, alice, "through the noise "+id, bob, carol)
		chat(t, carol, "loud and clear "+id, alice, bob)
		checkEcho(t, bob, "udp", "carol", "clean", carol)
		ids := map[string]bool{alice.ID: true, bob.ID: true, carol.ID: true}
		for _, n := range nodes {
			n.Never(t, 0, "peer_up for a service that is not a lanchat node", func(e Event) bool {
				return e.Kind() == "peer_up" && !ids[e.Str("id")]
			})
		}
		noPanics(t, nodes...)
	})
}
