package e2e

import (
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLAN runs alice, bob and carol on three hosts of a private LAN, where
// they must find each other with mDNS alone, then exercises every command
// and the ways a peer can leave.
func TestLAN(t *testing.T) {
	lan := newLAN(t, 3)
	alice := startNode(t, lan.Host(1), "--name", "alice")
	// bob's machine runs in another time zone (with a half-hour offset):
	// /time reports the peer's clock in the peer's zone.
	var bobEnv []string
	bobZone := ""
	if _, err := os.Stat("/usr/share/zoneinfo/Asia/Kolkata"); err == nil {
		bobEnv, bobZone = []string{"TZ=Asia/Kolkata"}, "+05:30"
	}
	bob := startNodeEnv(t, lan.Host(2), bobEnv, "--name", "bob")
	carol := startNode(t, lan.Host(3), "--name", "carol", "--iface", "eth0")
	all := []*Node{alice, bob, carol}
	id := nonce()

	if !t.Run("discovery", func(t *testing.T) {
		for _, n := range all {
			for _, p := range all {
				if n != p {
					waitPeerUp(t, n, 0, p, "mdns")
				}
			}
		}
	}) {
		return // nothing else can work
	}

	t.Run("group chat", func(t *testing.T) {
		chat(t, alice, "hello everyone "+id, bob, carol)
		chat(t, carol, "hi from carol "+id, alice, bob)
	})

	t.Run("direct message", func(t *testing.T) {
		carolMark := carol.Mark()
		direct(t, alice, "bob", "whisper "+id, bob)
		// alice wrote the whisper before this: had it gone to carol too, it
		// would have come first on the same connection.
		chat(t, alice, "after the dm "+id, bob, carol)
		carol.Never(t, carolMark, "copy of a direct message to bob", func(e Event) bool {
			return e.Kind() == "chat" && strings.Contains(e.Str("text"), "whisper "+id)
		})
		// an id prefix names a peer too
		direct(t, carol, bob.ID[:8], "by id "+id, bob)
	})

	t.Run("time", func(t *testing.T) {
		for _, tr := range []string{"tcp", "udp"} {
			ev := checkTime(t, alice, tr, "bob", bob)
			if bobZone != "" && !strings.HasSuffix(ev.Str("time"), bobZone) {
				t.Errorf("/time -%s bob: time %q is not in bob's zone (%s, TZ=Asia/Kolkata): %v", tr, ev.Str("time"), bobZone, ev)
			}
		}
		checkTime(t, bob, "tcp", "carol", carol)
	})

	t.Run("echo", func(t *testing.T) {
		checkEcho(t, alice, "tcp", "bob", "hello", bob)
		checkEcho(t, alice, "udp", "bob", "hello", bob)
	})

	t.Run("echo burst", func(t *testing.T) {
		mark := alice.Mark()
		alice.Send(t, "/echo -udp -n 5 -size 1000 bob")
		evs := alice.WaitN(t, mark, 5, "5 udp echo replies of 1000 bytes", eventTimeout,
			and(is("echo", "id", bob.ID, "transport", "udp"), func(e Event) bool { return e.Num("bytes") == 1000 }))
		for _, e := range evs {
			if !e.Bool("ok") {
				t.Errorf("echo reply not ok: %v", e)
			}
		}
	})

	t.Run("nick", func(t *testing.T) {
		bob.Send(t, "/nick bobby")
		for _, n := range []*Node{alice, carol} {
			ev := n.Wait(t, "nick event for bob", eventTimeout, is("nick", "id", bob.ID, "new", "bobby"))
			if ev.Str("old") != "bob" {
				t.Errorf("%s: nick old %q, want bob: %v", n.Label, ev.Str("old"), ev)
			}
		}
		direct(t, alice, "bobby", "x", bob)
		bob.Name = "bobby"
	})

	t.Run("peers", func(t *testing.T) {
		mark := alice.Mark()
		alice.Send(t, "/peers")
		ev := alice.WaitFrom(t, mark, "peers event", eventTimeout, is("peers"))
		list, ok := ev["peers"].([]any)
		if !ok || len(list) != 2 {
			t.Fatalf("peers: want a list of 2 peers: %v", ev)
		}
		want := map[string]string{bob.ID: bob.Name, carol.ID: carol.Name}
		for _, item := range list {
			p, ok := item.(map[string]any)
			if !ok {
				t.Fatalf("peers: entry is not an object: %v", ev)
			}
			for _, k := range []string{"peer", "id", "addr", "tcp", "udp"} {
				if _, ok := p[k]; !ok {
					t.Errorf("peers: entry lacks %q: %v", k, p)
				}
			}
			pid, _ := p["id"].(string)
			name, known := want[pid]
			if !known {
				t.Errorf("peers: unexpected entry %v", p)
				continue
			}
			if p["peer"] != name {
				t.Errorf("peers: entry for %s named %v, want %s", pid, p["peer"], name)
			}
			delete(want, pid)
		}
	})

	t.Run("partition heal", func(t *testing.T) {
		am, cm := alice.Mark(), carol.Mark()
		lan.Cut(t, 3)
		healed := false
		defer func() {
			if !healed {
				lan.Heal(t, 3)
			}
		}()
		// a request to an unreachable peer fails, in bounded time
		alice.Send(t, "/echo -udp carol lost")
		alice.WaitFrom(t, am, "error or failed echo for carol while her cable is out", 2*eventTimeout, func(e Event) bool {
			text := strings.ToLower(e.Str("text"))
			return e.Kind() == "error" && (strings.Contains(text, "echo") || strings.Contains(text, "carol")) ||
				e.Kind() == "echo" && e.Str("id") == carol.ID && !e.Bool("ok")
		})
		// a message written during a short cut arrives once it heals
		text := "during the cut " + id
		alice.Send(t, text)
		time.Sleep(500 * time.Millisecond)
		lan.Heal(t, 3)
		healed = true
		carol.WaitFrom(t, cm, "group chat written during the cut", 2*eventTimeout, is("chat", "id", alice.ID, "text", text))
		chat(t, carol, "back online "+id, alice, bob)
		alice.Never(t, am, "peer_down for carol after a short cut", is("peer_down", "id", carol.ID))
		carol.Never(t, cm, "peer_down for alice after a short cut", is("peer_down", "id", alice.ID))
	})

	t.Run("graceful quit", func(t *testing.T) {
		am, bm := alice.Mark(), bob.Mark()
		carol.Quit(t)
		alice.WaitFrom(t, am, "peer_down for carol", discoveryTimeout, is("peer_down", "id", carol.ID))
		bob.WaitFrom(t, bm, "peer_down for carol", discoveryTimeout, is("peer_down", "id", carol.ID))
	})

	t.Run("kill and rediscovery", func(t *testing.T) {
		am := alice.Mark()
		bob.Kill(t)
		alice.WaitFrom(t, am, "peer_down for killed bob", 2*discoveryTimeout, is("peer_down", "id", bob.ID))
		am = alice.Mark()
		bob2 := startNode(t, lan.Host(2), "--name", "bob")
		t.Logf("restarted bob: id %s (was %s)", bob2.ID, bob.ID)
		waitPeerUp(t, alice, am, bob2, "mdns")
		waitPeerUp(t, bob2, 0, alice, "mdns")
		chat(t, alice, "welcome back "+id, bob2)
		chat(t, bob2, "back again "+id, alice)
	})

	noPanics(t, all...)
}

// TestManualPeers runs two nodes on loopback without mDNS, the second told
// where the first is.
func TestManualPeers(t *testing.T) {
	h := newLoopbackHost(t)
	alice := startNode(t, h, "--name", "alice", "--no-mdns", "--port", "0")
	bob := startNode(t, h, "--name", "bob", "--no-mdns", "--port", "0",
		"--peer", "127.0.0.1:"+strconv.Itoa(alice.TCPPort))
	id := nonce()

	waitPeerUp(t, bob, 0, alice, "manual")
	waitPeerUp(t, alice, 0, bob, "")

	chat(t, alice, "hi bob "+id, bob)
	chat(t, bob, "hi alice "+id, alice)
	direct(t, alice, "bob", "just you "+id, bob)

	for _, tr := range []string{"tcp", "udp"} {
		checkTime(t, bob, tr, "alice", alice)
		checkTime(t, alice, tr, "bob", bob)
		checkEcho(t, bob, tr, "alice", "ping-"+tr, alice)
		checkEcho(t, alice, tr, "bob", "pong-"+tr, bob)
	}

	// /connect adds a third
	carol := startNode(t, h, "--name", "carol", "--no-mdns", "--port", "0")
	alice.Send(t, "/connect 127.0.0.1:"+strconv.Itoa(carol.TCPPort))
	waitPeerUp(t, alice, 0, carol, "manual")
	waitPeerUp(t, carol, 0, alice, "")
	chat(t, alice, "three of us "+id, bob, carol)
	checkEcho(t, carol, "udp", "alice", "hi-alice", alice)

	am, cm := alice.Mark(), carol.Mark()
	bob.Quit(t)
	alice.WaitFrom(t, am, "peer_down for bob", discoveryTimeout, is("peer_down", "id", bob.ID))
	alice.Quit(t)
	carol.WaitFrom(t, cm, "peer_down for alice", discoveryTimeout, is("peer_down", "id", alice.ID))
	carol.Quit(t)
	noPanics(t, alice, bob, carol)
}

// TestManualPeersIPv6 connects two LAN hosts without mDNS over IPv6.
func TestManualPeersIPv6(t *testing.T) {
	lan := newLAN(t, 2)
	alice := startNode(t, lan.Host(1), "--name", "alice", "--no-mdns")
	bob := startNode(t, lan.Host(2), "--name", "bob", "--no-mdns",
		"--peer", net.JoinHostPort(lan.Host(1).IP6, strconv.Itoa(alice.TCPPort)))
	ev := waitPeerUp(t, bob, 0, alice, "manual")
	if host, _, _ := net.SplitHostPort(ev.Str("addr")); !strings.Contains(host, ":") {
		t.Errorf("peer_up addr %q is not IPv6: %v", ev.Str("addr"), ev)
	}
	waitPeerUp(t, alice, 0, bob, "")
	id := nonce()
	chat(t, alice, "over v6 "+id, bob)
	chat(t, bob, "v6 back "+id, alice)
	for _, tr := range []string{"tcp", "udp"} {
		checkEcho(t, bob, tr, "alice", "v6-"+tr, alice)
		checkTime(t, alice, tr, "bob", bob)
	}
	noPanics(t, alice, bob)
}

// TestBadInput feeds a node things no well-behaved peer or user sends, and
// checks it drops them and keeps working.
func TestBadInput(t *testing.T) {
	h := newLoopbackHost(t)
	alice := startNode(t, h, "--name", "alice", "--no-mdns", "--port", "0")
	bob := startNode(t, h, "--name", "bob", "--no-mdns", "--port", "0",
		"--peer", "127.0.0.1:"+strconv.Itoa(alice.TCPPort))
	waitPeerUp(t, bob, 0, alice, "manual")
	waitPeerUp(t, alice, 0, bob, "")
	id := nonce()
	tcpAddr := "127.0.0.1:" + strconv.Itoa(alice.TCPPort)
	udpAddr := "127.0.0.1:" + strconv.Itoa(alice.UDPPort)
	rng := rand.New(rand.NewSource(1))

	junk := func(n int) []byte {
		b := make([]byte, n)
		rng.Read(b)
		return b
	}

	// expectClosed dials alice, sends payload, and checks alice closes the
	// connection within 10 s.
	expectClosed := func(t *testing.T, payload []byte) {
		var c net.Conn
		err := h.Do(func() (err error) {
			c, err = net.DialTimeout("tcp", tcpAddr, 5*time.Second)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		if len(payload) > 0 {
			_ = c.SetWriteDeadline(start.Add(5 * time.Second))
			_, _ = c.Write(payload) // alice may hang up before reading it all
		}
		_ = c.SetReadDeadline(start.Add(10 * time.Second))
		n, err := io.Copy(io.Discard, c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("connection still open after %v (%d bytes read)", time.Since(start).Round(time.Millisecond), n)
			return
		}
		t.Logf("closed by the node after %v (%d bytes read, %v)", time.Since(start).Round(time.Millisecond), n, err)
	}

	t.Run("silent tcp client", func(t *testing.T) {
		expectClosed(t, nil)
	})
	t.Run("garbage tcp client", func(t *testing.T) {
		expectClosed(t, append([]byte{0xff, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff}, junk(8192)...))
	})
	t.Run("http tcp client", func(t *testing.T) {
		expectClosed(t, []byte("GET / HTTP/1.1\r\nHost: lanchat\r\n\r\n{\"type\":\"hello\"}\n\x00\n"))
	})

	t.Run("udp junk", func(t *testing.T) {
		err := h.Do(func() error {
			c, err := net.Dial("udp", udpAddr)
			if err != nil {
				return err
			}
			defer c.Close()
			shapes := [][]byte{
				{}, {0}, {0xff}, []byte("{}"), []byte(`{"type":"echo"}`), []byte("null"),
				[]byte(`{"id":"` + bob.ID + `","seq":-1}`), junk(65000),
			}
			for i := 0; i < 2000; i++ {
				var d []byte
				if i < len(shapes) {
					d = shapes[i]
				} else {
					d = junk(rng.Intn(1400))
				}
				_, _ = c.Write(d) // ECONNREFUSED from an earlier datagram is fine
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if alice.Exited() {
			t.Fatalf("alice exited after junk datagrams: %s", alice.exitDesc())
		}
		chat(t, bob, "still there? "+id, alice)
		chat(t, alice, "still here "+id, bob)
		checkEcho(t, bob, "udp", "alice", "after-junk", alice)
		checkTime(t, bob, "udp", "alice", alice)
	})

	t.Run("long input line", func(t *testing.T) {
		mark, bobMark := alice.Mark(), bob.Mark()
		alice.Send(t, strings.Repeat("x", 100*1024))
		alice.WaitFrom(t, mark, "error event for a 100 KB input line", eventTimeout, is("error"))
		chat(t, alice, "after the long line "+id, bob)
		bob.Never(t, bobMark, "chat with the over-long line", func(e Event) bool {
			return e.Kind() == "chat" && len(e.Str("text")) > 50*1024
		})
	})

	t.Run("bad commands", func(t *testing.T) {
		aliceMark := alice.Mark()
		for _, line := range []string{
			"/nosuchcommand", "/msg nobody hello " + id, "/msg", "/time -udp nobody",
			"/echo -tcp nobody x", "/echo -n many alice",
			"/connect not-an-address",
		} {
			mark := bob.Mark()
			bob.Send(t, line)
			bob.WaitFrom(t, mark, fmt.Sprintf("error event for %q", line), eventTimeout, is("error"))
		}
		chat(t, bob, "still fine "+id, alice)
		alice.Never(t, aliceMark, "chat from a failed command", func(e Event) bool {
			return e.Kind() == "chat" && strings.Contains(e.Str("text"), "hello "+id)
		})
	})

	t.Run("still a peer", func(t *testing.T) {
		// the raw clients must not have displaced bob or added peers
		mark := alice.Mark()
		alice.Send(t, "/peers")
		ev := alice.WaitFrom(t, mark, "peers event", eventTimeout, is("peers"))
		if list, ok := ev["peers"].([]any); !ok || len(list) != 1 {
			t.Errorf("alice should list bob alone: %v", ev)
		}
	})

	noPanics(t, alice, bob)
}

// TestVersionHelp checks the flags that print and exit.
func TestVersionHelp(t *testing.T) {
	h := newLoopbackHost(t) // in case a flag is ignored and the node starts
	for _, flag := range []string{"--version", "--help"} {
		text, err := runLanchat(t, h, hostEnv(t.TempDir()), flag)
		if err != nil {
			t.Errorf("lanchat %s: %v\n%s", flag, err, text)
		}
		if strings.TrimSpace(text) == "" {
			t.Errorf("lanchat %s printed nothing", flag)
		}
		if flag == "--help" {
			for _, f := range []string{"name", "port", "iface", "peer", "no-mdns", "json"} {
				if !strings.Contains(text, f) {
					t.Errorf("--help does not mention %s:\n%s", f, text)
				}
			}
		}
	}
}

// TestSameNameSharedHost runs two nodes with one name on different hosts,
// and two nodes on one host (one namespace, one home, one mDNS port): all
// must be told apart by id. The name goes to the node seen first under it
// (trust on first use); the other is flagged and reachable by id only.
func TestSameNameSharedHost(t *testing.T) {
	lan := newLAN(t, 3)
	alice := startNode(t, lan.Host(1), "--name", "alice")
	dup1 := startNode(t, lan.Host(2), "--name", "dup")
	waitPeerUp(t, alice, 0, dup1, "mdns")
	dup2 := startNode(t, lan.Host(3), "--name", "dup")
	// A second node in the same home must not share the first one's key.
	refused, err := runLanchat(t, lan.Host(3), hostEnv(lan.Host(3).dir), "--name", "carol", "--json")
	if err == nil || !strings.Contains(refused, "in use by another running lanchat") || strings.Contains(refused, "panic") {
		t.Errorf("second node on one identity: want a clear refusal, got %v: %q", err, refused)
	}
	carol := startNode(t, lan.Host(3), "--name", "carol", "--identity", lan.Host(3).dir+"/carol.pem")
	all := []*Node{alice, dup1, dup2, carol}
	for _, n := range all {
		for _, p := range all {
			if n != p {
				waitPeerUp(t, n, 0, p, "mdns")
			}
		}
	}
	id := nonce()

	up := alice.Wait(t, "peer_up for the second dup", eventTimeout, is("peer_up", "id", dup2.ID))
	if up.Str("trust") != "CONFLICT" {
		t.Errorf("second node named dup: trust %q, want CONFLICT: %v", up.Str("trust"), up)
	}
	alice.Wait(t, "name conflict warning", eventTimeout, func(e Event) bool {
		return e.Kind() == "warning" && strings.Contains(e.Str("text"), "NAME CONFLICT")
	})
	dm2 := dup2.Mark()
	direct(t, alice, "dup", "which one "+id, dup1)
	direct(t, alice, dup2.ID[:10], "you two "+id, dup2)
	chat(t, alice, "both of you "+id, dup1, dup2, carol)
	dup2.Never(t, dm2, "message to the name dup, trusted for the other node", func(e Event) bool {
		return e.Kind() == "chat" && strings.Contains(e.Str("text"), "which one "+id)
	})
	// The flagged node's messages are marked as such.
	am := alice.Mark()
	dup2.Send(t, "i am dup "+id)
	ev := alice.WaitFrom(t, am, "chat from the second dup", eventTimeout, is("chat", "id", dup2.ID))
	if ev.Str("trust") != "CONFLICT" {
		t.Errorf("chat from the flagged node not marked: %v", ev)
	}
	checkEcho(t, carol, "udp", dup2.ID[:10], "neighbour", dup2)
	checkTime(t, dup2, "udp", "carol", carol)
	noPanics(t, all...)
}

// TestIfaceRestriction runs bob with mDNS on lo only: alice, on the LAN, must
// not find him (nor he her), but he still listens everywhere, so /connect
// works.
func TestIfaceRestriction(t *testing.T) {
	lan := newLAN(t, 2)
	alice := startNode(t, lan.Host(1), "--name", "alice")
	bob := startNode(t, lan.Host(2), "--name", "bob", "--iface", "lo")
	time.Sleep(5 * time.Second) // mDNS between these hosts takes milliseconds
	alice.Never(t, 0, "peer_up for bob, whose mDNS runs on lo only", is("peer_up", "id", bob.ID))
	bob.Never(t, 0, "peer_up for alice over mDNS on lo only", is("peer_up", "id", alice.ID))

	bob.Send(t, "/connect "+net.JoinHostPort(lan.Host(1).IP4, strconv.Itoa(alice.TCPPort)))
	waitPeerUp(t, bob, 0, alice, "manual")
	waitPeerUp(t, alice, 0, bob, "")
	chat(t, alice, "found you anyway "+nonce(), bob)
	noPanics(t, alice, bob)
}

// TestMDNSQuietOnceMeshed: nodes that have found each other stop querying
// (zeroconf's answers are not suppressed, so on a large LAN every query
// costs every node an answer from each node); a newcomer still finds them
// with its own query, and they learn of it over TCP.
func TestMDNSQuietOnceMeshed(t *testing.T) {
	lan := newLAN(t, 4)
	alice := startNode(t, lan.Host(1), "--name", "alice")
	bob := startNode(t, lan.Host(2), "--name", "bob")
	carol := startNode(t, lan.Host(3), "--name", "carol")
	nodes := []*Node{alice, bob, carol}
	meshUp(t, nodes...)
	// Let the browses that found the others end (a browse listens 3 s).
	time.Sleep(4 * time.Second)
	queries := func(frames []Frame) []Frame {
		var qs []Frame
		for _, f := range frames {
			// DNS header: the QR bit clear is a query.
			if f.isMDNS() && f.DstPort == 5353 && len(f.Payload) >= 12 && f.Payload[2]&0x80 == 0 {
				qs = append(qs, f)
			}
		}
		return qs
	}
	capture := startCapture(t, lan)
	time.Sleep(8 * time.Second)
	capture.Stop()
	if qs := queries(capture.Frames()); len(qs) > 0 {
		t.Errorf("%d mDNS queries in 8 s from nodes that had found each other, first: %v", len(qs), qs[0])
	}

	// A newcomer's own query finds them, and they see it at once.
	capture = startCapture(t, lan)
	dave := startNode(t, lan.Host(4), "--name", "dave")
	for _, n := range nodes {
		waitPeerUp(t, dave, 0, n, "mdns")
		waitPeerUp(t, n, 0, dave, "")
	}
	capture.Stop()
	var fromDave int
	for _, f := range queries(capture.Frames()) {
		if hostAddr(lan.Host(4), f.Src) {
			fromDave++
		}
	}
	if fromDave == 0 {
		t.Errorf("no mDNS query seen from the newcomer: the capture should have shown it")
	}
	noPanics(t, append(nodes, dave)...)
}
