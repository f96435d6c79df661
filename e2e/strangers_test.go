package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTwinIdentity: bob's key file copied to a second machine. alice
// keeps the bob she met first, says once what is wrong, and the copy
// neither replaces him nor makes the connection flap.
func TestTwinIdentity(t *testing.T) {
	lan := newLAN(t, 3)
	alice := startNode(t, lan.Host(1), "--name", "alice")
	bob := startNode(t, lan.Host(2), "--name", "bob")
	meshUp(t, alice, bob)
	key, err := os.ReadFile(filepath.Join(bob.Dir, ".config", "lanchat", "identity.pem"))
	if err != nil {
		t.Fatal(err)
	}
	copied := filepath.Join(lan.Host(3).dir, "copied.pem")
	if err := os.WriteFile(copied, key, 0o600); err != nil {
		t.Fatal(err)
	}
	am, bm := alice.Mark(), bob.Mark()
	twin := startNode(t, lan.Host(3), "--name", "bob", "--identity", copied)
	if twin.ID != bob.ID {
		t.Fatalf("the copy has id %s, want bob's %s", twin.ID, bob.ID)
	}
	alice.WaitFrom(t, am, "alice's warning about the copied key", discoveryTimeout, func(e Event) bool {
		return e.Kind() == "warning" && strings.Contains(e.Str("text"), "SAME IDENTITY")
	})
	twin.Wait(t, "the copy's own warning", discoveryTimeout, func(e Event) bool {
		return e.Kind() == "warning" && strings.Contains(e.Str("text"), "SAME IDENTITY")
	})
	// Long enough for mDNS sightings and redials to have been tried.
	time.Sleep(8 * time.Second)
	if n := countEvents(alice, am, func(e Event) bool {
		return e.Kind() == "warning" && strings.Contains(e.Str("text"), "SAME IDENTITY")
	}); n != 1 {
		t.Errorf("alice warned %d times about the copied key, want once", n)
	}
	for _, e := range alice.Find(am, func(e Event) bool { return e.Str("id") == bob.ID && (e.Kind() == "peer_down" || e.Kind() == "peer_up") }) {
		t.Errorf("alice: bob's connection moved: %v", e)
	}
	for _, e := range bob.Find(bm, is("peer_down", "id", alice.ID)) {
		t.Errorf("bob lost alice because of his copy: %v", e)
	}
	if ups := twin.Find(0, is("peer_up", "id", alice.ID)); len(ups) > 0 {
		t.Errorf("the copy was connected to alice: %v", ups[0])
	}
	mark := bob.Mark()
	alice.Send(t, "/msg bob for the real bob")
	bob.WaitFrom(t, mark, "alice's message", eventTimeout, is("chat", "text", "for the real bob"))
	noPanics(t, alice, bob, twin)
}

// TestStrangersCapped: a host opens hundreds of connections to alice
// and never speaks. alice closes those over her bound at once, her open
// files stay bounded, the lines she logs about them are rate-limited,
// and bob chats with her throughout.
func TestStrangersCapped(t *testing.T) {
	lan := newLAN(t, 3)
	alice := startNode(t, lan.Host(1), "--name", "alice")
	bob := startNode(t, lan.Host(2), "--name", "bob")
	meshUp(t, alice, bob)
	fds := func() int {
		ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", alice.cmd.Process.Pid))
		if err != nil {
			return -1
		}
		return len(ents)
	}
	before := fds()
	const crowd = 400
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	addr := net.JoinHostPort(alice.Host.IP4, fmt.Sprint(alice.TCPPort))
	if err := lan.Host(3).Do(func() error {
		for range crowd {
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				return err
			}
			conns = append(conns, c)
		}
		return nil
	}); err != nil {
		t.Fatalf("opening %d connections: %v", crowd, err)
	}
	most := 0
	b := &burst{tag: "crowd-" + nonce(), senders: []*Node{bob}, n: 20, chunk: 1}
	for seq := 0; seq < b.n; seq++ {
		b.send(t, seq, seq+1)
		most = max(most, fds())
		time.Sleep(50 * time.Millisecond)
	}
	b.waitReceived(t, alice, b.n, eventTimeout)
	b.check(t, alice)
	if grew := most - before; grew > 200 {
		t.Errorf("alice's open files grew by %d with %d silent connections (before %d)", grew, crowd, before)
	}
	logged := strings.Count(alice.Stderr(), "too many handshakes")
	if logged > 20 {
		t.Errorf("alice logged %d lines about refused connections: not rate-limited", logged)
	}
	mark := alice.Mark()
	alice.Send(t, "/peers")
	ev := alice.WaitFrom(t, mark, "peers", eventTimeout, is("peers"))
	refused, _ := ev["refused"].(map[string]any)
	if v, _ := refused["over_limit"].(float64); v < crowd/2 {
		t.Errorf("alice counted %v connections refused over her limit, want most of %d: %v", refused["over_limit"], crowd, ev["refused"])
	}
	t.Logf("%d silent connections: alice's open files %d before, at most %d; %d log lines; refused %v", crowd, before, most, logged, ev["refused"])
	noPanics(t, alice, bob)
}
