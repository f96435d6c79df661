package e2e

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"lanchat/discovery"
	"lanchat/identity"
	"lanchat/transport"
)

// Tests of finding peers where multicast does not reach (issue 16):
// the broadcast beacon, remembered addresses, the peers file.

// dropUDP makes host i drop UDP to and from the given ports, both ways
// (an nftables table of its own, so that Loss and Block still work).
func (l *LAN) dropUDP(t testing.TB, i int, ports ...int) {
	t.Helper()
	var set []string
	for _, p := range ports {
		set = append(set, strconv.Itoa(p))
	}
	ps := "{ " + strings.Join(set, ", ") + " }"
	rules := fmt.Sprintf("table inet lcdrop {\n"+
		" chain in {\n  type filter hook input priority -2; policy accept;\n  udp dport %[1]s counter drop\n  udp sport %[1]s counter drop\n }\n"+
		" chain out {\n  type filter hook output priority -2; policy accept;\n  udp dport %[1]s counter drop\n }\n}\n", ps)
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", l.Host(i).NS, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	cmd.WaitDelay = time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dropping UDP %v on %s: nft: %v: %s", ports, l.Host(i).Hostname, err, out)
	}
}

// isBeacon tells the frames of the broadcast beacon, which carry names in
// clear by design, as mDNS does.
func (f Frame) isBeacon() bool {
	return f.Proto == unix.IPPROTO_UDP && (f.DstPort == discovery.BeaconPort || f.SrcPort == discovery.BeaconPort)
}

// isSYN tells a TCP connection attempt (SYN without ACK).
func (f Frame) isSYN() bool {
	if f.Proto != unix.IPPROTO_TCP {
		return false
	}
	l4 := tcpHeader(f)
	return l4 != nil && l4[13]&0x02 != 0 && l4[13]&0x10 == 0
}

// tcpHeader finds the TCP header of a frame: it ends where the payload
// starts, and is at least 20 bytes.
func tcpHeader(f Frame) []byte {
	end := len(f.Raw) - len(f.Payload)
	for start := end - 20; start >= 14; start -= 4 {
		h := f.Raw[start:]
		if int(h[12]>>4)*4 == end-start && int(h[0])<<8|int(h[1]) == f.SrcPort && int(h[2])<<8|int(h[3]) == f.DstPort {
			return h
		}
	}
	return nil
}

// beaconsSeen decodes the beacons among frames, one per node and time
// (a beacon crosses the bridge once per family), in order.
func beaconsSeen(frames []Frame) []discovery.Beacon {
	seen := map[string]bool{}
	var out []discovery.Beacon
	for _, f := range frames {
		if !f.isBeacon() {
			continue
		}
		b, err := discovery.DecodeBeacon(f.Payload)
		if err != nil {
			continue
		}
		k := string(b.Key) + b.Sent.String()
		if !seen[k] {
			seen[k] = true
			out = append(out, b)
		}
	}
	slices.SortFunc(out, func(a, b discovery.Beacon) int { return a.Sent.Compare(b.Sent) })
	return out
}

// meshVia waits until every node has peer_up for every other, and checks
// that each came by one of the given ways.
func meshVia(t *testing.T, timeout time.Duration, nodes []*Node, vias ...string) {
	t.Helper()
	for _, n := range nodes {
		for _, p := range nodes {
			if n == p {
				continue
			}
			ev := n.Wait(t, "peer_up for "+p.Label, timeout, is("peer_up", "id", p.ID))
			if !slices.Contains(vias, ev.Str("via")) {
				t.Errorf("%s: %s found via %q, want one of %v", n.Label, p.Label, ev.Str("via"), vias)
			}
		}
	}
}

// TestBroadcastMesh: with mDNS dropped on every host, three fresh nodes
// form the full mesh through the beacon.
func TestBroadcastMesh(t *testing.T) {
	needNft(t)
	lan := newLAN(t, 3)
	for i := 1; i <= 3; i++ {
		lan.dropUDP(t, i, 5353)
	}
	var nodes []*Node
	for i := 1; i <= 3; i++ {
		nodes = append(nodes, startNode(t, lan.Host(i), "--name", fmt.Sprintf("n%d", i)))
	}
	// Peers named in a peer list show "introduced" once peer/link.go
	// says so; until then they inherit the broadcast of their
	// introducer.
	meshVia(t, discoveryTimeout, nodes, "broadcast", "introduced")
	chat(t, nodes[0], "through the broadcast "+nonce(), nodes[1], nodes[2])
	noPanics(t, nodes...)
}

// forger sends beacons from host h as a test program that holds none of
// the nodes' keys would.
type forger struct {
	t    *testing.T
	conn *net.UDPConn
	to   netip.AddrPort
}

func newForger(t *testing.T, h *Host) *forger {
	f := &forger{t: t}
	err := h.Do(func() error {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(h.IP4)})
		f.conn = c
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.conn.Close() })
	bcast := netip.MustParsePrefix(h.IP4 + "/24").Masked().Addr().As4()
	bcast[3] = 255
	f.to = netip.AddrPortFrom(netip.AddrFrom4(bcast), discovery.BeaconPort)
	return f
}

func (f *forger) send(p []byte) {
	f.t.Helper()
	f.conn.SetWriteDeadline(time.Now().Add(time.Second))
	if _, err := f.conn.WriteToUDPAddrPort(p, f.to); err != nil {
		f.t.Fatalf("sending a forged beacon: %v", err)
	}
}

// listenOn opens a TCP listener on h that counts the connections made to
// it (and closes them).
func listenOn(t *testing.T, h *Host, addr string) (net.Listener, *atomic.Int64) {
	var ln net.Listener
	err := h.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", net.JoinHostPort(addr, "0"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var count atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			count.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln, &count
}

// TestForgedBeacons: beacons that claim a node's id without its key,
// point outside the subnet they are heard on, or replay a node's genuine
// beacon after it left, make no node dial anything.
func TestForgedBeacons(t *testing.T) {
	needNft(t)
	lan := newLAN(t, 3)
	for i := 1; i <= 3; i++ {
		lan.dropUDP(t, i, 5353)
	}
	h3 := lan.Host(3)
	// A second subnet on h3 (a documentation range) that the nodes'
	// hosts do not have.
	other := "192.0.2.3"
	if err := ip("-n", h3.NS, "addr", "add", other+"/24", "dev", "eth0"); err != nil {
		t.Fatal(err)
	}
	capture := startCapture(t, lan)
	// bob first, alone, so that he hears alice's beacon when she starts;
	// alice just after bob's first beacon, so that she sends hers before
	// his next (a node alone beacons again 2 s later), not having heard
	// of him.
	beaconFrom := func(h *Host) []byte {
		var last []byte
		for _, fr := range capture.Frames() {
			if fr.isBeacon() && hostAddr(h, fr.Src) && fr.Src.Is4() {
				last = fr.Payload
			}
		}
		return last
	}
	bob := startNode(t, lan.Host(2), "--name", "bob", "-v")
	for deadline := time.Now().Add(eventTimeout); beaconFrom(lan.Host(2)) == nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("bob, alone, sent no beacon within %v", eventTimeout)
		}
	}
	alice := startNode(t, lan.Host(1), "--name", "alice", "-v")
	meshVia(t, discoveryTimeout, []*Node{alice, bob}, "broadcast")
	f := newForger(t, h3)
	trap, trapped := listenOn(t, h3, h3.IP4)
	trapPort := uint16(trap.Addr().(*net.TCPAddr).Port)
	otherTrap, otherTrapped := listenOn(t, h3, other)

	// Alice's genuine beacon, as it crossed the bridge. Should she have
	// heard bob before her turn (a slow start), she sent none: the
	// replay is then left out (discovery.TestHearReplay has it).
	genuine := beaconFrom(lan.Host(1))
	if genuine == nil {
		t.Logf("alice sent no beacon (she heard bob's first): no replay to try")
	}
	bm := bob.Mark()
	alice.Quit(t)
	bob.WaitFrom(t, bm, "peer_down for alice", discoveryTimeout, is("peer_down", "id", alice.ID))
	from, logFrom := len(capture.Frames()), len(bob.Stderr())

	victim, thief := mustKey(t), mustKey(t)
	beacon := func(addrs ...string) discovery.Beacon {
		b := discovery.Beacon{Protocol: transport.ProtocolVersion, Name: "mallory", TCPPort: trapPort, UDPPort: trapPort, Sent: time.Now()}
		for _, a := range addrs {
			b.Addrs = append(b.Addrs, netip.MustParseAddr(a))
		}
		return b
	}
	// 1. The victim's key, signed by the thief: points at the trap.
	p := beacon(h3.IP4).AppendSigned(nil, victim)
	body := p[:len(p)-ed25519.SignatureSize]
	f.send(append(body, ed25519.Sign(thief, append([]byte("lanchat beacon v1\x00"), body...))...))
	// 2. Genuinely signed, but pointing at another subnet, and at the
	// host itself, the broadcast address and loopback.
	b2 := beacon(other, "127.0.0.1")
	b2.TCPPort = uint16(otherTrap.Addr().(*net.TCPAddr).Port)
	f.send(b2.AppendSigned(nil, thief))
	// 3. Alice's beacon again, now that she left.
	if genuine != nil {
		f.send(genuine)
	}
	// 4. Garbage.
	f.send([]byte("LCBN and then nothing much"))

	// The nodes would dial within a hold-off (under 400 ms); give them
	// several times that.
	time.Sleep(3 * time.Second)
	capture.Stop()
	if n := trapped.Load() + otherTrapped.Load(); n > 0 {
		t.Errorf("the forged beacons made nodes connect %d times", n)
	}
	// Bob may redial alice at the address he remembers of her (when the
	// address book is wired): those are not the beacons' doing. Whether
	// the replay was taken for a sighting, his log says.
	for _, fr := range capture.Frames()[from:] {
		if fr.isSYN() && !hostAddr(lan.Host(1), fr.Dst) {
			t.Errorf("a connection attempt after the forged beacons: %v", fr)
		}
	}
	if log := bob.Stderr()[logFrom:]; strings.Contains(log, "beacon of") {
		t.Errorf("bob took a forged or replayed beacon for a sighting:\n%s", clipTail(log, 2000))
	}
	// Replays are counted, not logged: every beacon's IPv6 copy is one.
	st := bob.Stderr()
	for _, want := range []string{"bad signature", "addresses outside the subnet heard on", "malformed"} {
		if !strings.Contains(st, want) {
			t.Errorf("bob's log does not say it dropped a beacon as %q", want)
		}
	}
	bob.Never(t, bm, "peer_up after the forged beacons", is("peer_up"))

	// The control: the same trap, announced by a beacon signed with the
	// key it carries, is dialled (and found not to be lanchat). So the
	// checks above could have seen a dial.
	f.send(beacon(h3.IP4).AppendSigned(nil, mustKey(t)))
	deadline := time.Now().Add(10 * time.Second)
	for trapped.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if trapped.Load() == 0 {
		t.Errorf("a genuine beacon pointing at the trap was not dialled either: the test proves nothing")
	}
	noPanics(t, bob)
}

func mustKey(t *testing.T) ed25519.PrivateKey {
	id, err := identity.New()
	if err != nil {
		t.Fatal(err)
	}
	return id.Key
}

// TestPeersFile: with mDNS and the beacon dropped, a node whose peers
// file names one member of a group joins all of it; a bad line is
// reported with its number and the rest are used; a file written while
// the node runs is read.
func TestPeersFile(t *testing.T) {
	needNft(t)
	lan := newLAN(t, 4)
	for i := 1; i <= 4; i++ {
		lan.dropUDP(t, i, 5353, discovery.BeaconPort)
	}
	alice := startNode(t, lan.Host(1), "--name", "alice")
	bob := startNode(t, lan.Host(2), "--name", "bob",
		"--peer", alice.ID+"@"+net.JoinHostPort(lan.Host(1).IP4, strconv.Itoa(alice.TCPPort)))
	meshVia(t, discoveryTimeout, []*Node{alice, bob}, "manual")

	// carol's file is at the default place: her XDG_CONFIG_HOME.
	peersFile := filepath.Join(lan.Host(3).dir, ".config", "lanchat", "peers")
	if err := os.MkdirAll(filepath.Dir(peersFile), 0o700); err != nil {
		t.Fatal(err)
	}
	lines := "# the group\nnot:a:valid:line\n" +
		"lanchat://" + alice.ID + "@" + net.JoinHostPort(lan.Host(1).IP4, strconv.Itoa(alice.TCPPort)) + "\n"
	if err := os.WriteFile(peersFile, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	carol := startNode(t, lan.Host(3), "--name", "carol")
	meshVia(t, discoveryTimeout, []*Node{alice, bob, carol}, "manual", "introduced")
	if st := carol.Stderr(); !strings.Contains(st, "peers file "+peersFile+" line 2") {
		t.Errorf("carol's log does not name the bad line (peers file %s line 2):\n%s", peersFile, clipTail(st, 2000))
	}

	// dave's file appears after he started: it is read within seconds.
	daveFile := filepath.Join(t.TempDir(), "peers")
	dave := startNode(t, lan.Host(4), "--name", "dave", "--peers-file", daveFile)
	time.Sleep(time.Second)
	if err := os.WriteFile(daveFile, []byte(net.JoinHostPort(lan.Host(2).IP4, strconv.Itoa(bob.TCPPort))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	meshVia(t, discoveryTimeout, []*Node{alice, bob, carol, dave}, "manual", "introduced")
	noPanics(t, alice, bob, carol, dave)
}

// TestRememberedRestart: with mDNS and the beacon dropped, two nodes
// that met once (by hand) find each other after both restart, through
// the addresses they remembered (in the known peers file).
func TestRememberedRestart(t *testing.T) {
	needNft(t)
	lan := newLAN(t, 2)
	for i := 1; i <= 2; i++ {
		lan.dropUDP(t, i, 5353, discovery.BeaconPort)
	}
	alice := startNode(t, lan.Host(1), "--name", "alice", "-v")
	bob := startNode(t, lan.Host(2), "--name", "bob",
		"--peer", alice.ID+"@"+net.JoinHostPort(lan.Host(1).IP4, strconv.Itoa(alice.TCPPort)))
	meshVia(t, discoveryTimeout, []*Node{alice, bob}, "manual")
	alice.Quit(t)
	bob.Quit(t)

	// Both start again, without being told of each other; bob last.
	alice2 := startNode(t, lan.Host(1), "--name", "alice")
	time.Sleep(500 * time.Millisecond)
	bob2 := startNode(t, lan.Host(2), "--name", "bob")
	if alice2.TCPPort != alice.TCPPort || bob2.TCPPort != bob.TCPPort {
		t.Errorf("ports changed across restarts: alice %d then %d, bob %d then %d",
			alice.TCPPort, alice2.TCPPort, bob.TCPPort, bob2.TCPPort)
	}
	meshVia(t, discoveryTimeout, []*Node{alice2, bob2}, "remembered")
	noPanics(t, alice2, bob2)
}

// TestBroadcastScale: 32 nodes with mDNS dropped form the full mesh
// through the beacon, and the beacons on the bridge stay within the
// bound: a node sends only after BeaconGap of silence, so about one a
// gap, plus the few sent by nodes that decided within the moment the
// previous one took to be read (tens of milliseconds on this loaded
// machine; see discovery.TestPaceBound).
func TestBroadcastScale(t *testing.T) {
	if testing.Short() {
		t.Skip("32 nodes: not in -short")
	}
	needNft(t)
	const count = 32
	lan := newLAN(t, count)
	for i := 1; i <= count; i++ {
		lan.dropUDP(t, i, 5353)
	}
	capture := startCapture(t, lan)
	began := time.Now()
	nodes := make([]*Node, count)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nodes[i] = startNode(t, lan.Host(i+1), "--name", fmt.Sprintf("n%02d", i+1))
		}()
	}
	wg.Wait()
	for _, n := range nodes {
		if n == nil {
			t.FailNow() // startNode failed the test already
		}
	}
	meshVia(t, 90*time.Second, nodes, "broadcast", "introduced")
	formed := time.Since(began)
	// Watch a while longer: the group is quiet but for its watchers.
	time.Sleep(5 * time.Second)
	elapsed := time.Since(began)
	noPanics(t, nodes...)
	// The capture ends once the bridge is quiet: stop the nodes first.
	for _, n := range nodes {
		n.Kill(t)
	}
	capture.Stop()
	var bs []discovery.Beacon
	for _, b := range beaconsSeen(capture.Frames()) {
		if b.Sent.Before(began.Add(elapsed)) {
			bs = append(bs, b)
		}
	}
	var frames int
	for _, f := range capture.Frames() {
		if f.isBeacon() {
			frames++
		}
	}
	var gaps []string
	for i := 1; i < len(bs); i++ {
		gaps = append(gaps, bs[i].Sent.Sub(bs[i-1].Sent).Round(time.Millisecond).String())
	}
	t.Logf("mesh of %d formed in %v; %d beacons (%d frames) in %v; gaps between them: %v",
		count, formed.Round(time.Millisecond), len(bs), frames, elapsed.Round(time.Second), gaps)
	if limit := int(elapsed/discovery.BeaconGap) + count/4; len(bs) > limit {
		t.Errorf("%d beacons in %v, limit %d (one a gap, plus a quarter of the nodes for the start)", len(bs), elapsed.Round(time.Second), limit)
	}
}
