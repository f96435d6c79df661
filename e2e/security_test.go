package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"lanchat/transport"
)

// ---------------------------------------------------------------------------
// Packet capture on the LAN's bridge

// Frame is one Ethernet frame seen crossing the bridge, with its IP and
// TCP/UDP fields decoded when it carries them.
type Frame struct {
	Raw      []byte // the whole frame, from the Ethernet header on
	Port     string // the bridge port it entered by (v1, v2, ...)
	Proto    int    // unix.IPPROTO_TCP, unix.IPPROTO_UDP, or 0 for anything else
	Src, Dst netip.Addr
	SrcPort  int
	DstPort  int
	Payload  []byte // the TCP or UDP payload
}

// Capture records every frame that enters the bridge from a host: an
// AF_PACKET socket in the bridge namespace that sees all of its interfaces,
// keeping the frames received on the bridge ports (each frame crossing the
// bridge enters by exactly one port; the copies leaving by the other ports
// and the bridge device's own view are left out).
type Capture struct {
	fd    int
	ports map[int]string // ifindex -> name of the bridge ports

	mu     sync.Mutex
	frames []Frame
	trunc  int // frames longer than the read buffer

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
	err      error // why the reader stopped early, valid once done is closed
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// startCapture starts recording the frames crossing lan's bridge; it stops
// in t.Cleanup (or earlier with Stop).
func startCapture(t testing.TB, lan *LAN) *Capture {
	t.Helper()
	c := &Capture{fd: -1, ports: map[int]string{}, stop: make(chan struct{}), done: make(chan struct{})}
	sw := &Host{lan: lan, Hostname: "sw", NS: lan.sw}
	err := sw.Do(func() error {
		ifs, err := net.Interfaces()
		if err != nil {
			return err
		}
		for _, i := range ifs {
			if strings.HasPrefix(i.Name, "v") {
				c.ports[i.Index] = i.Name
			}
		}
		if len(c.ports) == 0 {
			return fmt.Errorf("no bridge ports among %v", ifs)
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return fmt.Errorf("AF_PACKET socket: %v", err)
		}
		// A big buffer, so that a reader slowed by the race detector
		// loses nothing; root may exceed rmem_max.
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 32<<20); err != nil {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 32<<20)
		}
		// Reads time out, so that the reader notices Stop.
		tv := unix.Timeval{Usec: 100_000}
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			unix.Close(fd)
			return err
		}
		// ifindex 0: every interface of the bridge namespace.
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL)}); err != nil {
			unix.Close(fd)
			return fmt.Errorf("bind AF_PACKET socket: %v", err)
		}
		c.fd = fd
		return nil
	})
	if err != nil {
		t.Fatalf("packet capture in %s: %v", lan.sw, err)
	}
	go c.read()
	t.Cleanup(c.Stop)
	return c
}

func (c *Capture) read() {
	defer close(c.done)
	defer unix.Close(c.fd)
	buf := make([]byte, 256<<10) // veth hands over GSO frames up to 64 KiB
	stopping := false
	for {
		if !stopping {
			select {
			case <-c.stop:
				stopping = true // drain what is queued, then end
			default:
			}
		}
		n, from, err := unix.Recvfrom(c.fd, buf, unix.MSG_TRUNC)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				if stopping && errors.Is(err, unix.EAGAIN) {
					return
				}
				continue
			}
			c.err = err
			return
		}
		ll, ok := from.(*unix.SockaddrLinklayer)
		if !ok || ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		port, ok := c.ports[ll.Ifindex]
		if !ok {
			continue // the bridge device itself
		}
		if n > len(buf) {
			c.mu.Lock()
			c.trunc++
			c.mu.Unlock()
			n = len(buf)
		}
		f := parseFrame(append([]byte(nil), buf[:n]...))
		f.Port = port
		c.mu.Lock()
		c.frames = append(c.frames, f)
		c.mu.Unlock()
	}
}

// Stop ends the capture once the frames already queued are read.
func (c *Capture) Stop() {
	c.stopOnce.Do(func() { close(c.stop) })
	<-c.done
}

// Frames returns the frames captured so far.
func (c *Capture) Frames() []Frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Frame(nil), c.frames...)
}

// parseFrame decodes the Ethernet, IP and TCP/UDP headers of raw as far as
// it can.
func parseFrame(raw []byte) Frame {
	f := Frame{Raw: raw}
	if len(raw) < 14 {
		return f
	}
	etype := binary.BigEndian.Uint16(raw[12:14])
	p := raw[14:]
	if etype == 0x8100 && len(p) >= 4 { // VLAN tag
		etype = binary.BigEndian.Uint16(p[2:4])
		p = p[4:]
	}
	var proto int
	var l4 []byte
	switch etype {
	case 0x0800:
		if len(p) < 20 || p[0]>>4 != 4 {
			return f
		}
		ihl := int(p[0]&0xf) * 4
		total := int(binary.BigEndian.Uint16(p[2:4]))
		if ihl < 20 || total < ihl || total > len(p) {
			return f
		}
		if binary.BigEndian.Uint16(p[6:8])&0x1fff != 0 {
			return f // a later fragment: no transport header
		}
		f.Src, _ = netip.AddrFromSlice(p[12:16])
		f.Dst, _ = netip.AddrFromSlice(p[16:20])
		proto, l4 = int(p[9]), p[ihl:total]
	case 0x86dd:
		if len(p) < 40 {
			return f
		}
		plen := int(binary.BigEndian.Uint16(p[4:6]))
		if 40+plen > len(p) {
			return f
		}
		f.Src, _ = netip.AddrFromSlice(p[8:24])
		f.Dst, _ = netip.AddrFromSlice(p[24:40])
		proto, l4 = int(p[6]), p[40:40+plen]
	default:
		return f
	}
	switch proto {
	case unix.IPPROTO_TCP:
		if len(l4) < 20 || int(l4[12]>>4)*4 > len(l4) {
			return f
		}
		f.Payload = l4[int(l4[12]>>4)*4:]
	case unix.IPPROTO_UDP:
		if len(l4) < 8 {
			return f
		}
		f.Payload = l4[8:]
	default:
		return f
	}
	f.Proto = proto
	f.SrcPort = int(binary.BigEndian.Uint16(l4[0:2]))
	f.DstPort = int(binary.BigEndian.Uint16(l4[2:4]))
	return f
}

func (f Frame) String() string {
	kind := "other"
	switch f.Proto {
	case unix.IPPROTO_TCP:
		kind = "tcp"
	case unix.IPPROTO_UDP:
		kind = "udp"
	}
	return fmt.Sprintf("%s %s %v:%d -> %v:%d (%d bytes payload, frame %d bytes): %s",
		f.Port, kind, f.Src, f.SrcPort, f.Dst, f.DstPort, len(f.Payload), len(f.Raw), clip(hex.EncodeToString(f.Raw), 200))
}

// isMDNS tells mDNS frames, which carry names in clear by design.
func (f Frame) isMDNS() bool {
	return f.Proto == unix.IPPROTO_UDP && (f.SrcPort == 5353 || f.DstPort == 5353)
}

// hostAddr reports whether a is one of h's addresses.
func hostAddr(h *Host, a netip.Addr) bool {
	return a.IsValid() && (a.String() == h.IP4 || a == netip.MustParseAddr(h.IP6))
}

// between reports whether f goes from host a to host b.
func (f Frame) between(a, b *Host) bool {
	return hostAddr(a, f.Src) && hostAddr(b, f.Dst)
}

// ---------------------------------------------------------------------------
// Tests

// TestSecurityCapture records every frame crossing the LAN while three nodes
// chat, message directly and run /time and /echo over both transports, and
// checks that none of it is readable on the wire; then it replays a captured
// datagram and a tampered copy of it from a third host.
func TestSecurityCapture(t *testing.T) {
	lan := newLAN(t, 3)
	capture := startCapture(t, lan)
	id := nonce()
	// Names that cannot turn up on the wire by chance.
	aliceName, bobName, carolName := "alice-"+id, "bob-"+id, "carol-"+id
	alice := startNode(t, lan.Host(1), "--name", aliceName)
	bob := startNode(t, lan.Host(2), "--name", bobName)
	carol := startNode(t, lan.Host(3), "--name", carolName)
	all := []*Node{alice, bob, carol}
	for _, n := range all {
		for _, p := range all {
			if n != p {
				waitPeerUp(t, n, 0, p, "mdns")
			}
		}
	}
	secrets := []string{
		"group secret " + id,
		"carol's secret " + id,
		"direct secret " + id,
		"dm to carol " + id,
		"echotcp" + id,
		"echoudp" + id,
		"carolecho" + id,
	}
	chat(t, alice, secrets[0], bob, carol)
	chat(t, carol, secrets[1], alice, bob)
	direct(t, alice, bobName, secrets[2], bob)
	direct(t, bob, carolName, secrets[3], carol)
	for _, tr := range []string{"tcp", "udp"} {
		checkTime(t, alice, tr, bobName, bob)
		checkTime(t, carol, tr, aliceName, alice)
	}
	checkEcho(t, alice, "tcp", bobName, secrets[4], bob)
	checkEcho(t, alice, "udp", bobName, secrets[5], bob)
	checkEcho(t, carol, "udp", aliceName, secrets[6], alice)
	chat(t, bob, "last words "+id, alice, carol) // nothing secret: orders the capture after the above

	capture.Stop()
	frames := capture.Frames()
	if capture.err != nil {
		t.Errorf("capture ended early: %v", capture.err)
	}
	if capture.trunc > 0 {
		t.Logf("%d frames were longer than the read buffer and truncated", capture.trunc)
	}

	t.Run("no plaintext on the wire", func(t *testing.T) {
		total := 0
		tcpBytes := map[[2]*Node]int{} // payload bytes of lanchat TCP connections, by pair
		datagrams := map[[2]*Node]int{}
		firstSeg := map[string]bool{} // TCP flows whose first payload segment was seen
		mdnsNames := 0
		for _, f := range frames {
			total += len(f.Raw)
			for _, s := range append(secrets, "last words "+id) {
				if bytes.Contains(f.Raw, []byte(s)) {
					t.Errorf("chat or echo text %q in clear on the wire: %v", s, f)
				}
			}
			if f.isMDNS() || f.isBeacon() {
				if bytes.Contains(f.Payload, []byte(aliceName)) {
					mdnsNames++
				}
				continue
			}
			if f.Proto != 0 {
				for _, n := range all {
					if bytes.Contains(f.Payload, []byte(n.Name)) {
						t.Errorf("node name %q in clear outside mDNS: %v", n.Name, f)
					}
				}
			}
			for _, a := range all {
				for _, b := range all {
					if a == b || !f.between(a.Host, b.Host) {
						continue
					}
					pair := [2]*Node{a, b}
					switch {
					case f.Proto == unix.IPPROTO_TCP && (f.SrcPort == a.TCPPort || f.DstPort == b.TCPPort) && len(f.Payload) > 0:
						tcpBytes[pair] += len(f.Payload)
						if bytes.Contains(f.Payload, []byte(transport.Magic)) {
							t.Errorf("the hello magic %q in clear in a TCP segment: %v", transport.Magic, f)
						}
						flow := fmt.Sprintf("%v:%d>%v:%d", f.Src, f.SrcPort, f.Dst, f.DstPort)
						if !firstSeg[flow] {
							firstSeg[flow] = true
							// TLS: a handshake record (0x16, version 0x03xx).
							if len(f.Payload) < 2 || f.Payload[0] != 0x16 || f.Payload[1] != 0x03 {
								t.Errorf("first bytes of TCP flow %s are not a TLS handshake record: %v", flow, f)
							}
						}
					case f.Proto == unix.IPPROTO_UDP && f.DstPort == b.UDPPort:
						if !bytes.HasPrefix(f.Payload, []byte(transport.DatagramMagic)) {
							t.Errorf("datagram to %s's UDP port without the %q header: %v", b.Label, transport.DatagramMagic, f)
						}
						datagrams[pair]++
					}
				}
			}
		}
		t.Logf("captured %d frames, %d bytes; %d TCP flows; lanchat TCP bytes by pair %v; datagrams by pair %v",
			len(frames), total, len(firstSeg), pairCounts(tcpBytes), pairCounts(datagrams))
		if total < 8192 {
			t.Errorf("captured only %d bytes in %d frames: the capture does not see the traffic", total, len(frames))
		}
		// Every pair holds a TCP connection; UDP went where /time and
		// /echo -udp sent it, and back.
		for _, pr := range [][2]*Node{{alice, bob}, {alice, carol}, {bob, carol}} {
			if tcpBytes[pr]+tcpBytes[[2]*Node{pr[1], pr[0]}] < 1000 {
				t.Errorf("no lanchat TCP traffic seen between %s and %s", pr[0].Label, pr[1].Label)
			}
		}
		for _, pr := range [][2]*Node{{alice, bob}, {bob, alice}, {carol, alice}, {alice, carol}} {
			if datagrams[pr] == 0 {
				t.Errorf("no datagram seen from %s to %s's UDP port %d", pr[0].Label, pr[1].Label, pr[1].UDPPort)
			}
		}
		// The same search finds names where they are in clear: the
		// capture would have seen plaintext.
		if mdnsNames == 0 {
			t.Errorf("no mDNS frame carries %q: the capture or the search is broken", aliceName)
		}
	})

	t.Run("replay and tampering", func(t *testing.T) {
		// The last sealed datagram alice sent to bob.
		var orig []byte
		for _, f := range frames {
			if f.Proto == unix.IPPROTO_UDP && f.between(alice.Host, bob.Host) && f.DstPort == bob.UDPPort {
				if h, err := transport.ParseHeader(f.Payload); err == nil && h.Sender() == alice.ID {
					orig = f.Payload
				}
			}
		}
		if orig == nil {
			t.Fatalf("no datagram from %s to %s's UDP port %d in the %d captured frames", alice.Label, bob.Label, bob.UDPPort, len(frames))
		}
		before := dropped(t, bob)
		flipped := append([]byte(nil), orig...)
		flipped[len(flipped)-1] ^= 0x01 // in the GCM tag
		dst := net.JoinHostPort(bob.Host.IP4, strconv.Itoa(bob.UDPPort))
		err := lan.Host(3).Do(func() error {
			c, err := net.Dial("udp", dst)
			if err != nil {
				return err
			}
			defer c.Close()
			for _, d := range [][]byte{orig, flipped} {
				if _, err := c.Write(d); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("sending from %s: %v", lan.Host(3).Hostname, err)
		}
		// The node counts them once it has read them: ask until it has.
		var after map[string]float64
		for deadline := time.Now().Add(eventTimeout); ; time.Sleep(200 * time.Millisecond) {
			after = dropped(t, bob)
			if after["replayed"] > before["replayed"] && after["auth_failed"] > before["auth_failed"] {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%s: after a replayed and a tampered datagram from %s, dropped went from %v to %v: want replayed and auth_failed up by 1",
					bob.Label, alice.Label, before, after)
				break
			}
		}
		t.Logf("dropped before %v, after %v", before, after)
		chat(t, alice, "after the replay "+id, bob)
		chat(t, bob, "still talking "+id, alice)
		checkEcho(t, alice, "udp", bobName, "fresh"+id, bob)
		checkTime(t, bob, "udp", aliceName, alice)
	})
	noPanics(t, all...)
}

func pairCounts(m map[[2]*Node]int) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		out[k[0].Label+">"+k[1].Label] = v
	}
	return out
}

// dropped runs /peers on n and returns its counters of dropped datagrams.
func dropped(t *testing.T, n *Node) map[string]float64 {
	t.Helper()
	mark := n.Mark()
	n.Send(t, "/peers")
	ev := n.WaitFrom(t, mark, "peers event", eventTimeout, is("peers"))
	d, ok := ev["dropped"].(map[string]any)
	if !ok {
		t.Fatalf("%s: peers event without a dropped object: %v", n.Label, ev)
	}
	out := map[string]float64{}
	for _, k := range []string{"malformed", "auth_failed", "replayed", "unknown_sender", "stray_reply", "overrun"} {
		v, ok := d[k].(float64)
		if !ok {
			t.Fatalf("%s: peers event: dropped lacks the counter %q: %v", n.Label, k, ev)
		}
		out[k] = v
	}
	return out
}

// normID removes the dashes of the grouped form of ids.
func normID(s string) string { return strings.ReplaceAll(s, "-", "") }

// TestSecurityImpostorID publishes, through avahi, an mDNS service that
// claims bob's id but points at another lanchat node (mallory, with her own
// key): a node that dials it must refuse the connection and warn, naming
// both ids, and still reach the real bob through his own service.
func TestSecurityImpostorID(t *testing.T) {
	lan := newLAN(t, 4)
	av := startAvahi(t, lan.Host(3))
	// mDNS impostors: the broadcast beacon, which would find mallory as
	// herself (rightly), is off.
	alice := startNode(t, lan.Host(1), "--name", "alice", "--no-broadcast")
	bob := startNode(t, lan.Host(2), "--name", "bob", "--no-broadcast")
	waitPeerUp(t, alice, 0, bob, "mdns")
	waitPeerUp(t, bob, 0, alice, "mdns")
	mallory := startNode(t, lan.Host(3), "--name", "mallory", "--no-mdns", "--no-broadcast")
	id := nonce()

	// bob leaves for a while: a node dials one service per id, so the fake
	// one is certain to be tried only while the real one is not around.
	am := alice.Mark()
	bob.Quit(t)
	alice.WaitFrom(t, am, "peer_down for bob", discoveryTimeout, is("peer_down", "id", bob.ID))

	fake := "bob-fake-" + id
	startProc(t, av.host, av.env, "avahi-publish impostor", "avahi-publish", "-s", fake, "_lanchat._tcp",
		strconv.Itoa(mallory.TCPPort), txtVersion, "id="+bob.ID, "name=bob", "udp="+strconv.Itoa(mallory.UDPPort))
	av.waitBrowse(t, "the impostor's service", discoveryTimeout, func(es []browseEntry) bool {
		for _, e := range es {
			if e.Name == fake && e.Port == mallory.TCPPort && hasTXT(e, "id="+bob.ID) {
				return true
			}
		}
		return false
	})

	// carol starts now: her first browse returns the fake service, and
	// she dials it as bob. A browse that found a peer (alice) is not
	// repeated for a minute, and avahi may leave a query unanswered with
	// records it multicast moments before (RFC 6762's once a second): a
	// carol whose first browse missed the fake is restarted (a browse
	// again), at most three times.
	mismatch := func(e Event) bool {
		return e.Kind() == "warning" && strings.Contains(strings.ToLower(e.Str("text")), "identity mismatch")
	}
	var carol *Node
	var warn Event
	for try := 1; warn == nil; try++ {
		time.Sleep(time.Second)
		carol = startNode(t, lan.Host(4), "--name", "carol", "--no-broadcast")
		if try == 3 {
			warn = carol.Wait(t, "identity mismatch warning for the fake bob", discoveryTimeout, mismatch)
			break
		}
		deadline := time.Now().Add(discoveryTimeout / 2)
		for warn == nil && time.Now().Before(deadline) {
			if ws := carol.Find(0, mismatch); len(ws) > 0 {
				warn = ws[0]
			}
			time.Sleep(50 * time.Millisecond)
		}
		if warn == nil {
			t.Logf("%s: try %d: the fake bob was not seen; carol starts again", carol.Label, try)
			carol.Quit(t)
		}
	}
	text := normID(warn.Str("text"))
	if !strings.Contains(text, bob.ID) || !strings.Contains(text, mallory.ID) {
		t.Errorf("%s: mismatch warning should name the expected id %s and the proven id %s: %v",
			carol.Label, bob.ID, mallory.ID, warn)
	}

	// The real bob comes back (same home, same key) and is found.
	cm := carol.Mark()
	bob2 := startNode(t, lan.Host(2), "--name", "bob")
	if bob2.ID != bob.ID {
		t.Fatalf("bob restarted with id %s, want %s (same home)", bob2.ID, bob.ID)
	}
	waitPeerUp(t, carol, cm, bob2, "")
	waitPeerUp(t, carol, 0, alice, "mdns")
	// A group message goes to the peers connected when it is sent: bob
	// must have alice back before his reaches her.
	waitPeerUp(t, bob2, 0, alice, "")
	waitPeerUp(t, bob2, 0, carol, "")
	chat(t, carol, "the real bob? "+id, bob2, alice)
	chat(t, bob2, "the real bob "+id, carol, alice)

	h3 := func(e Event) bool {
		host, _, err := net.SplitHostPort(e.Str("addr"))
		if err != nil {
			return false
		}
		a, err := netip.ParseAddr(strings.Split(host, "%")[0])
		return err == nil && hostAddr(lan.Host(3), a.Unmap())
	}
	for _, n := range []*Node{alice, carol, bob2} {
		n.Never(t, 0, "peer_up for mallory", is("peer_up", "id", mallory.ID))
		n.Never(t, 0, "peer_up at mallory's address", and(is("peer_up"), h3))
	}
	mallory.Never(t, 0, "peer_up at mallory", is("peer_up"))
	for _, e := range alice.Find(0, is("warning")) {
		t.Logf("%s (running when the fake was published): %v", alice.Label, e)
	}
	noPanics(t, alice, bob, carol, mallory, bob2)
}

// TestSecurityNameConflict starts a second node called bob, with its own key,
// after alice has met the real one: alice flags it, /msg bob keeps going to
// the real bob until alice trusts the newcomer.
func TestSecurityNameConflict(t *testing.T) {
	lan := newLAN(t, 3)
	alice := startNode(t, lan.Host(1), "--name", "alice")
	bob := startNode(t, lan.Host(2), "--name", "bob")
	up := waitPeerUp(t, alice, 0, bob, "mdns")
	waitPeerUp(t, bob, 0, alice, "mdns")
	if up.Str("trust") == "CONFLICT" {
		t.Errorf("first bob ever seen flagged as a conflict: %v", up)
	}
	id := nonce()

	am := alice.Mark()
	fake := startNode(t, lan.Host(3), "--name", "bob")
	if fake.ID == bob.ID {
		t.Fatalf("the impostor has bob's id %s: homes are not separate", bob.ID)
	}
	up = alice.WaitFrom(t, am, "peer_up for the second bob", discoveryTimeout, is("peer_up", "id", fake.ID))
	if up.Str("trust") != "CONFLICT" || up.Str("peer") != "bob" {
		t.Errorf("second node named bob: want peer bob with trust CONFLICT: %v", up)
	}
	warn := alice.WaitFrom(t, am, "name conflict warning", eventTimeout, func(e Event) bool {
		return e.Kind() == "warning" && strings.Contains(e.Str("text"), "NAME CONFLICT")
	})
	if text := normID(warn.Str("text")); !strings.Contains(text, bob.ID) || !strings.Contains(text, fake.ID) {
		t.Errorf("name conflict warning should name both ids (%s known, %s new): %v", bob.ID, fake.ID, warn)
	}
	waitPeerUp(t, fake, 0, alice, "")

	// /msg bob goes to the known bob only.
	fm := fake.Mark()
	direct(t, alice, "bob", "to the real bob "+id, bob)
	// Had the message gone to the impostor too, it would come before this
	// on the same connection.
	chat(t, alice, "everyone "+id, bob, fake)
	fake.Never(t, fm, "a /msg bob meant for the known bob", func(e Event) bool {
		return e.Kind() == "chat" && strings.Contains(e.Str("text"), "to the real bob "+id)
	})

	// The impostor's messages are marked.
	am = alice.Mark()
	fake.Send(t, "i am bob "+id)
	ev := alice.WaitFrom(t, am, "chat from the second bob", eventTimeout, is("chat", "id", fake.ID, "text", "i am bob "+id))
	if ev.Str("trust") != "CONFLICT" {
		t.Errorf("chat from the second bob not marked CONFLICT: %v", ev)
	}
	am = alice.Mark()
	bob.Send(t, "i am the real bob "+id)
	ev = alice.WaitFrom(t, am, "chat from the known bob", eventTimeout, is("chat", "id", bob.ID, "text", "i am the real bob "+id))
	if ev.Str("trust") == "CONFLICT" {
		t.Errorf("chat from the known bob marked CONFLICT: %v", ev)
	}

	// alice decides the newcomer is the genuine bob.
	am = alice.Mark()
	alice.Send(t, "/trust "+fake.ID[:8])
	tr := alice.WaitFrom(t, am, "trust event", eventTimeout, func(e Event) bool {
		return e.Kind() == "trust" || e.Kind() == "error"
	})
	if tr.Kind() != "trust" || tr.Str("id") != fake.ID || tr.Str("trust") != "trusted" {
		t.Fatalf("/trust %s: want a trust event for %s with trust \"trusted\": %v", fake.ID[:8], fake.ID, tr)
	}
	bm := bob.Mark()
	direct(t, alice, "bob", "to the new bob "+id, fake)
	chat(t, alice, "everyone again "+id, bob, fake)
	bob.Never(t, bm, "a /msg bob meant for the trusted newcomer", func(e Event) bool {
		return e.Kind() == "chat" && strings.Contains(e.Str("text"), "to the new bob "+id)
	})
	// Now the old bob is the one whose name is pinned to another key.
	am = alice.Mark()
	bob.Send(t, "still me "+id)
	ev = alice.WaitFrom(t, am, "chat from the old bob", eventTimeout, is("chat", "id", bob.ID, "text", "still me "+id))
	if ev.Str("trust") != "CONFLICT" {
		t.Errorf("after /trust of the other bob, chat from the old bob not marked CONFLICT: %v", ev)
	}
	am = alice.Mark()
	fake.Send(t, "trusted now "+id)
	ev = alice.WaitFrom(t, am, "chat from the trusted bob", eventTimeout, is("chat", "id", fake.ID, "text", "trusted now "+id))
	if ev.Str("trust") == "CONFLICT" {
		t.Errorf("after /trust, chat from the trusted bob still marked CONFLICT: %v", ev)
	}
	noPanics(t, alice, bob, fake)
}

// TestSecurityPlaintextClient connects raw TCP clients that do not speak TLS
// to a node: they learn nothing (no protocol magic, no name, no id) and are
// disconnected within the handshake timeout.
func TestSecurityPlaintextClient(t *testing.T) {
	h := newLoopbackHost(t)
	name := "secretname-" + nonce()
	node := startNode(t, h, "--name", name, "--no-mdns", "--port", "0")
	addr := "127.0.0.1:" + strconv.Itoa(node.TCPPort)

	hello, err := transport.AppendFrame(nil, transport.Hello{
		Version: transport.ProtocolVersion,
		ID:      "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		Name:    "mallory", UDPPort: 9, Session: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	clients := []struct {
		name    string
		payload []byte
	}{
		{"plaintext hello", hello},
		{"http request", []byte("GET / HTTP/1.1\r\nHost: lanchat\r\nConnection: keep-alive\r\n\r\n")},
		{"silent", nil},
	}
	t.Run("clients", func(t *testing.T) {
		for _, c := range clients {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				var conn net.Conn
				err := h.Do(func() (err error) {
					conn, err = net.DialTimeout("tcp", addr, 5*time.Second)
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				start := time.Now()
				if len(c.payload) > 0 {
					_ = conn.SetWriteDeadline(start.Add(5 * time.Second))
					if _, err := conn.Write(c.payload); err != nil {
						t.Logf("write: %v", err)
					}
				}
				_ = conn.SetReadDeadline(start.Add(12 * time.Second))
				got, err := io.ReadAll(conn)
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Errorf("still connected after %v", time.Since(start).Round(time.Millisecond))
				}
				t.Logf("closed after %v (%v); got %d bytes: %s", time.Since(start).Round(time.Millisecond), err, len(got), clip(hex.EncodeToString(got), 120))
				for _, bad := range []string{transport.Magic, name, node.ID, node.ID[:8]} {
					if bytes.Contains(got, []byte(bad)) {
						t.Errorf("a client that does not speak TLS got %q from the node: %q", bad, clip(string(got), 300))
					}
				}
			})
		}
	})
	mark := node.Mark()
	node.Send(t, "/peers")
	ev := node.WaitFrom(t, mark, "peers event", eventTimeout, is("peers"))
	if list, ok := ev["peers"].([]any); !ok || len(list) != 0 {
		t.Errorf("a raw client became a peer: %v", ev)
	}
	node.Never(t, 0, "peer_up for a raw client", is("peer_up"))
	noPanics(t, node)
}

// runSplit runs the binary to completion with empty input, like runLanchat,
// but keeps stdout and stderr apart.
func runSplit(t *testing.T, h *Host, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := h.Command(env, lanchatBin(t), args...)
	cmd.Stdin = strings.NewReader("")
	var out, errb lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	_, timedOut, err := runBounded(t, cmd)
	if timedOut {
		t.Fatalf("lanchat %v still running after %v", args, cmdTimeout)
	}
	return out.String(), errb.String(), err
}

// TestSecurityDamagedFiles checks that a damaged known-peers file or identity
// key stops lanchat with an error naming the file, never a panic or a
// silently replaced identity.
func TestSecurityDamagedFiles(t *testing.T) {
	h := newLoopbackHost(t)
	dir := t.TempDir()
	env := hostEnv(dir)
	confDir := filepath.Join(dir, ".config", "lanchat")
	keyPath := filepath.Join(confDir, "identity.pem")
	knownPath := filepath.Join(confDir, "known_peers")
	args := []string{"--name", "alice", "--no-mdns", "--json", "--port", "0"}

	// A first run makes the identity.
	out, errOut, err := runSplit(t, h, env, args...)
	if err != nil {
		t.Fatalf("first run: %v\nstdout: %s\nstderr: %s", err, out, errOut)
	}
	var selfID string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, `"event":"ready"`) {
			if i := strings.Index(line, `"id":"`); i >= 0 {
				selfID, _, _ = strings.Cut(line[i+len(`"id":"`):], `"`)
			}
		}
	}
	if selfID == "" {
		t.Fatalf("first run: no ready event with an id:\n%s", out)
	}
	goodKey, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatalf("first run made no identity key: %v", err)
	}

	// expectRefusal runs lanchat and wants a non-zero exit with stderr
	// naming path and containing each of want.
	expectRefusal := func(t *testing.T, path string, want ...string) {
		t.Helper()
		out, errOut, err := runSplit(t, h, env, args...)
		var ee *exec.ExitError
		if err == nil || !errors.As(err, &ee) {
			t.Errorf("want a non-zero exit, got %v\nstdout: %s\nstderr: %s", err, out, errOut)
		}
		if !strings.Contains(errOut, path) {
			t.Errorf("stderr does not name %s:\n%s", path, errOut)
		}
		for _, w := range want {
			if !strings.Contains(errOut, w) {
				t.Errorf("stderr lacks %q:\n%s", w, errOut)
			}
		}
		for _, bad := range []string{"panic", "goroutine ", "DATA RACE"} {
			if strings.Contains(errOut+out, bad) {
				t.Errorf("output has %q:\nstdout: %s\nstderr: %s", bad, out, errOut)
			}
		}
		if strings.Contains(out, `"event":"ready"`) {
			t.Errorf("the node started despite the damaged %s:\n%s", path, out)
		}
		t.Logf("refused: %v: %s", err, strings.TrimSpace(errOut))
	}
	write := func(t *testing.T, path string, data []byte) {
		t.Helper()
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// A damaged known_peers is not a reason not to start (its lines may
	// come from what peers called themselves): each bad line is skipped
	// with a warning that names the file and the line.
	expectWarning := func(t *testing.T, path string, line string) {
		t.Helper()
		out, errOut, err := runSplit(t, h, env, args...)
		if err != nil || !strings.Contains(out, `"event":"ready"`) {
			t.Errorf("the node did not start with a damaged %s: %v\nstdout: %s\nstderr: %s", path, err, out, errOut)
		}
		warned := false
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, `"event":"warning"`) && strings.Contains(l, path) && strings.Contains(l, line) {
				warned = true
			}
		}
		if !warned {
			t.Errorf("no warning naming %s and %s:\nstdout: %s", path, line, out)
		}
		for _, bad := range []string{"panic", "goroutine ", "DATA RACE", "delete", "remove"} {
			if strings.Contains(errOut+out, bad) {
				t.Errorf("output has %q:\nstdout: %s\nstderr: %s", bad, out, errOut)
			}
		}
	}
	t.Run("known_peers", func(t *testing.T) {
		junk := make([]byte, 300)
		_, _ = rand.Read(junk)
		for _, c := range []struct {
			name string
			data []byte
			line string
		}{
			{"one word", []byte("garbage\n"), "line 1"},
			{"too many fields", []byte("# a comment\n\nbob " + selfID + " 2024-01-01T00:00:00Z extra words\n"), "line 3"},
			{"bad id", []byte("bob " + selfID + "\ncarol not-an-id!!\n"), "line 2"},
			{"name twice", []byte("bob " + selfID + "\nbob " + strings.Repeat("A", 52) + "\n"), "line 2"},
			{"binary junk", append([]byte("\x00\x01garbage \xff\xfe "), junk...), "line"},
		} {
			t.Run(c.name, func(t *testing.T) {
				write(t, knownPath, c.data)
				expectWarning(t, knownPath, c.line)
			})
		}
		t.Run("one huge line", func(t *testing.T) {
			// a damaged file may lack newlines altogether
			write(t, knownPath, bytes.Repeat([]byte("x"), 100<<10))
			expectWarning(t, knownPath, "line")
		})
		t.Run("valid file still works", func(t *testing.T) {
			write(t, knownPath, []byte("# pinned\nbob "+selfID+"\n"))
			out, errOut, err := runSplit(t, h, env, args...)
			if err != nil || !strings.Contains(out, `"event":"ready"`) {
				t.Errorf("with a valid known_peers: %v\nstdout: %s\nstderr: %s", err, out, errOut)
			}
		})
	})

	t.Run("identity.pem", func(t *testing.T) {
		ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		ecDER, err := x509.MarshalPKCS8PrivateKey(ecKey)
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(goodKey)
		if block == nil {
			t.Fatalf("the key lanchat wrote is not PEM: %q", goodKey)
		}
		truncated := pem.EncodeToMemory(&pem.Block{Type: block.Type, Bytes: block.Bytes[:len(block.Bytes)/2]})
		for _, c := range []struct {
			name string
			data []byte
		}{
			{"garbage", []byte("this is not a key\n")},
			{"empty", nil},
			{"bad base64", []byte("-----BEGIN PRIVATE KEY-----\n!!!not base64!!!\n-----END PRIVATE KEY-----\n")},
			{"truncated key", truncated},
			{"ecdsa key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER})},
		} {
			t.Run(c.name, func(t *testing.T) {
				write(t, knownPath, nil)
				write(t, keyPath, c.data)
				expectRefusal(t, keyPath)
				if got, err := os.ReadFile(keyPath); err != nil || !bytes.Equal(got, c.data) {
					t.Errorf("the damaged key file was changed or removed (%v): lanchat must not replace an identity silently", err)
				}
			})
		}
		// With the good key back, the same identity returns.
		write(t, keyPath, goodKey)
		out, errOut, err := runSplit(t, h, env, args...)
		if err != nil || !strings.Contains(out, `"id":"`+selfID+`"`) {
			t.Errorf("with the original key restored: want id %s: %v\nstdout: %s\nstderr: %s", selfID, err, out, errOut)
		}
	})
}

// TestSecurityWhoami checks /whoami against the ready event and against what
// a peer sees of the node.
func TestSecurityWhoami(t *testing.T) {
	h := newLoopbackHost(t)
	alice := startNode(t, h, "--name", "alice", "--no-mdns", "--port", "0")
	bob := startNode(t, h, "--name", "bob", "--no-mdns", "--port", "0",
		"--peer", alice.ID+"@127.0.0.1:"+strconv.Itoa(alice.TCPPort))
	up := waitPeerUp(t, bob, 0, alice, "manual")

	mark := alice.Mark()
	alice.Send(t, "/whoami")
	ev := alice.WaitFrom(t, mark, "whoami event", eventTimeout, is("whoami"))
	if ev.Str("name") != "alice" || ev.Str("id") != alice.ID {
		t.Errorf("whoami: want name alice and id %s (from ready): %v", alice.ID, ev)
	}
	fp := ev.Str("fingerprint")
	if !strings.HasPrefix(fp, "SHA256:") || len(fp) < len("SHA256:")+20 {
		t.Errorf("whoami: fingerprint %q does not look like SHA256:...: %v", fp, ev)
	}
	if up.Str("fingerprint") != fp {
		t.Errorf("bob sees alice's fingerprint as %q, alice's /whoami says %q", up.Str("fingerprint"), fp)
	}
	noPanics(t, alice, bob)
}
