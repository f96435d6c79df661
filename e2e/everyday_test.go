package e2e

import (
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestEverydayScript is issue 17's scripting habits: --wait-peers holds
// a script's input until its peers are up (bug 5), or fails saying so; a
// stray argument is refused with the usage (bug 6), which names lanchat
// bench (bug 7).
func TestEverydayScript(t *testing.T) {
	h := newLoopbackHost(t)
	bob := startNode(t, h, "--name", "bob", "--no-mdns", "--port", "0")
	bobAddr := "127.0.0.1:" + strconv.Itoa(bob.TCPPort)
	id := nonce()

	mark := bob.Mark()
	cmd := h.Command(hostEnv(t.TempDir()), lanchatBin(t), "--json", "--name", "alice", "--no-mdns",
		"--peer", bobAddr, "--wait-peers", "1")
	cmd.Stdin = strings.NewReader("hello " + id + "\n/peers\n")
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if _, timedOut, err := runBounded(t, cmd); err != nil || timedOut {
		t.Fatalf("script: %v (timed out: %v)\n%s%s", err, timedOut, stdout.String(), stderr.String())
	}
	kinds := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var ev Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		kinds[ev.Kind()]++
		if ev.Kind() == "error" {
			t.Errorf("script: %v", ev)
		}
	}
	if kinds["sent"] != 1 || kinds["peers"] != 1 {
		t.Errorf("script events: %v\n%s", kinds, stdout.String())
	}
	bob.WaitFrom(t, mark, "the script's line", eventTimeout, is("chat", "text", "hello "+id))

	out, err := runLanchat(t, h, hostEnv(t.TempDir()), "--no-mdns", "--peer", bobAddr, "--wait-peers", "2", "--wait-timeout", "1s")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(out, "--wait-peers 2: only 1 peers up after 1s (bob)") {
		t.Errorf("--wait-peers 2 with one peer: %v\n%s", err, out)
	}

	out, err = runLanchat(t, h, hostEnv(t.TempDir()), "--no-mdns", "alice")
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(out, `unexpected argument "alice"`) || !strings.Contains(out, "Usage: lanchat") {
		t.Errorf("a stray argument: %v\n%s", err, out)
	}
	out, err = runLanchat(t, h, hostEnv(t.TempDir()), "--help")
	if err != nil || !strings.Contains(out, "lanchat bench") {
		t.Errorf("--help: %v\n%s", err, out)
	}
}

// TestRestartUnderNewName: a node killed and started again under another
// --name is shown as "piper (was dave) is back".
func TestRestartUnderNewName(t *testing.T) {
	h := newLoopbackHost(t)
	alice := startNode(t, h, "--name", "alice", "--no-mdns", "--port", "0")
	aliceAddr := "127.0.0.1:" + strconv.Itoa(alice.TCPPort)
	key := filepath.Join(t.TempDir(), "dave.pem")
	dave := startNode(t, h, "--name", "dave", "--no-mdns", "--identity", key, "--peer", aliceAddr)
	waitPeerUp(t, alice, 0, dave, "")
	mark := alice.Mark()
	dave.Kill(t)
	piper := startNode(t, h, "--name", "piper", "--no-mdns", "--identity", key, "--peer", aliceAddr)
	if piper.ID != dave.ID {
		t.Fatalf("piper has id %s, want dave's %s", piper.ID, dave.ID)
	}
	ev := alice.WaitFrom(t, mark, "peer_up for piper", discoveryTimeout, is("peer_up", "id", dave.ID, "peer", "piper"))
	if ev.Str("was") != "dave" {
		t.Errorf("peer_up %v: want was dave", ev)
	}
	noPanics(t, alice, piper)
}
