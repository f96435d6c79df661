package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zeebo/blake3"
)

// Tests of file transfer between real nodes: what arrives is what was
// sent (hashes and bytes compared), whatever happens to the network or
// the receiver, and chat goes on meanwhile.

// randomFile writes size random bytes to path and returns their BLAKE3.
func randomFile(t *testing.T, path string, size int) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, size)
	_, _ = rand.Read(b)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := blake3.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// sameFile fails the test unless a and b hold the same bytes.
func sameFile(t *testing.T, a, b string) {
	t.Helper()
	x, err1 := os.ReadFile(a)
	y, err2 := os.ReadFile(b)
	if err1 != nil || err2 != nil {
		t.Errorf("compare %s and %s: %v %v", a, b, err1, err2)
		return
	}
	if !bytes.Equal(x, y) {
		t.Errorf("%s (%d bytes) differs from %s (%d bytes)", b, len(y), a, len(x))
	}
}

// offer runs /send on from and returns the transfer id from the
// receiver's offer event.
func offer(t *testing.T, from, to *Node, args string) string {
	t.Helper()
	return offerWithin(t, from, to, args, eventTimeout)
}

// offerWithin is offer with a deadline of its own (under packet loss a
// new connection's SYN and TLS handshake are retransmitted with backoff).
func offerWithin(t *testing.T, from, to *Node, args string, timeout time.Duration) string {
	t.Helper()
	mark := to.Mark()
	from.Send(t, "/send "+to.Name+" "+args)
	ev := to.WaitFrom(t, mark, "the offer", timeout, is("transfer_offer", "direction", "receive", "id", from.ID))
	return ev.Str("transfer_id")
}

// done waits for the transfer_done event of id on n.
func done(t *testing.T, n *Node, id string, timeout time.Duration) Event {
	t.Helper()
	return n.Wait(t, "transfer "+id+" done", timeout, func(e Event) bool {
		return e.Str("transfer_id") == id && (e.Kind() == "transfer_done" || e.Kind() == "transfer_failed" || e.Kind() == "transfer_cancelled")
	})
}

// checkDone checks a done event's files against the sources' hashes and,
// on the receiver, the bytes on disk against the source files.
func checkDone(t *testing.T, ev Event, sources map[string]string, srcRoot string) {
	t.Helper()
	if ev.Kind() != "transfer_done" {
		t.Fatalf("transfer ended with %v", ev)
	}
	files, _ := ev["files"].([]any)
	if len(files) != len(sources) {
		t.Errorf("%d files done, want %d: %v", len(files), len(sources), ev)
	}
	for _, f := range files {
		m, _ := f.(map[string]any)
		path, _ := m["path"].(string)
		want, ok := sources[path]
		if !ok {
			t.Errorf("done lists %q, which was not sent", path)
			continue
		}
		if m["blake3"] != want {
			t.Errorf("%s: hash %v, want %s", path, m["blake3"], want)
		}
		if local, _ := m["local"].(string); srcRoot != "" && ev.Str("direction") == "receive" {
			sameFile(t, filepath.Join(srcRoot, filepath.FromSlash(path)), local)
		}
	}
}

// TestTransfer sends a file and a folder tree while chat goes on; then a
// rejected offer, cancels from both sides, and an offer that expires.
func TestTransfer(t *testing.T) {
	lan := newLAN(t, 2)
	env := []string{"LANCHAT_TEST_OFFER_EXPIRY=3s"}
	dlA, dlB := filepath.Join(lan.Host(1).dir, "dl"), filepath.Join(lan.Host(2).dir, "dl")
	alice := startNodeEnv(t, lan.Host(1), env, "--name", "alice", "--download-dir", dlA)
	bob := startNodeEnv(t, lan.Host(2), env, "--name", "bob", "--download-dir", dlB)
	meshUp(t, alice, bob)
	src := filepath.Join(lan.Host(1).dir, "src")
	sources := map[string]string{"big.bin": randomFile(t, filepath.Join(src, "big.bin"), 4<<20)}
	for i := range 12 {
		rel := fmt.Sprintf("tree/d%d/f%d.txt", i%3, i)
		sources[rel] = randomFile(t, filepath.Join(src, filepath.FromSlash(rel)), 1000+i*3000)
	}
	sources["tree/empty.txt"] = randomFile(t, filepath.Join(src, "tree", "empty.txt"), 0)
	if err := os.MkdirAll(filepath.Join(src, "tree", "nothing here"), 0o755); err != nil {
		t.Fatal(err)
	}

	// 1. A file and a folder, chat alongside.
	id := offer(t, alice, bob, filepath.Join(src, "big.bin")+" "+filepath.Join(src, "tree"))
	chat := &burst{tag: "beside-" + nonce(), senders: []*Node{alice, bob}, n: 30, chunk: 1}
	bob.Send(t, "/accept")
	chat.send(t, 0, chat.n)
	checkDone(t, done(t, bob, id, faultTimeout), sources, src)
	checkDone(t, done(t, alice, id, faultTimeout), sources, "")
	if fi, err := os.Stat(filepath.Join(dlB, "tree", "nothing here")); err != nil || !fi.IsDir() {
		t.Errorf("the empty folder did not arrive: %v", err)
	}
	chat.waitReceived(t, alice, chat.n, faultTimeout)
	chat.waitReceived(t, bob, chat.n, faultTimeout)
	chat.check(t, alice)
	chat.check(t, bob)

	// The same names again: nothing is overwritten.
	id = offer(t, alice, bob, filepath.Join(src, "big.bin"))
	bob.Send(t, "/accept "+id)
	ev := done(t, bob, id, faultTimeout)
	checkDone(t, ev, map[string]string{"big.bin": sources["big.bin"]}, src)
	if files, _ := ev["files"].([]any); len(files) == 1 {
		if local := files[0].(map[string]any)["local"].(string); filepath.Base(local) != "big (1).bin" {
			t.Errorf("the second big.bin landed as %s, want big (1).bin", local)
		}
	}

	// 2. Rejected.
	id = offer(t, alice, bob, filepath.Join(src, "big.bin"))
	bob.Send(t, "/reject")
	if ev := done(t, alice, id, eventTimeout); ev.Kind() != "transfer_failed" || !strings.Contains(ev.Str("reason"), "rejected") {
		t.Errorf("a rejected offer ended as %v", ev)
	}

	// 3. Cancelled by the receiver, then by the sender, while running:
	// a rate cap keeps them running long enough.
	lan.Rate(t, 1, "4mbit")
	for _, who := range []*Node{bob, alice} {
		id = offer(t, alice, bob, filepath.Join(src, "big.bin"))
		bob.Send(t, "/accept "+id)
		who.Wait(t, "progress of "+id, eventTimeout, is("transfer_progress", "transfer_id", id))
		if who == bob {
			// The receiver chats to the sender: the sender's transfer
			// yields to it (and says so) while the lines pass.
			mark := alice.Mark()
			yielding := is("transfer_progress", "transfer_id", id, "yielding", true)
			for i := 0; ; i++ {
				bob.Send(t, fmt.Sprintf("/msg alice still there? %d", i))
				if len(alice.Find(mark, yielding)) > 0 {
					break
				}
				if i == 100 {
					t.Fatalf("the sender never yielded to chat in 10 s%s", alice.diagnostics())
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
		who.Send(t, "/cancel "+id)
		for _, n := range []*Node{alice, bob} {
			if ev := done(t, n, id, eventTimeout); ev.Kind() != "transfer_cancelled" {
				t.Errorf("%s: transfer cancelled by %s ended as %v", n.Label, who.Label, ev)
			}
		}
	}
	lan.Rate(t, 1, "0")
	if left, _ := filepath.Glob(filepath.Join(dlB, "big (2).bin")); len(left) > 0 {
		t.Errorf("a cancelled transfer left %v", left)
	}

	// 4. Not answered: it expires on both sides (3 s here, 10 min by
	// default).
	id = offer(t, alice, bob, filepath.Join(src, "big.bin"))
	for _, n := range []*Node{alice, bob} {
		if ev := done(t, n, id, eventTimeout); ev.Kind() != "transfer_failed" || !strings.Contains(ev.Str("reason"), "expire") {
			t.Errorf("%s: an unanswered offer ended as %v", n.Label, ev)
		}
	}
	mark := alice.Mark()
	alice.Send(t, "/transfers")
	ev = alice.WaitFrom(t, mark, "transfers", eventTimeout, is("transfers"))
	if list, _ := ev["transfers"].([]any); len(list) < 6 {
		t.Errorf("/transfers lists %d transfers, want 6: %s", len(list), clip(ev.String(), 1000))
	}
	noPanics(t, alice, bob)
}

// TestTransferFaults: a transfer survives a cut cable, a kill -9 of the
// receiver, 30% packet loss and a rate cap, and arrives whole; an offer
// larger than the free space is refused up front.
func TestTransferFaults(t *testing.T) {
	lan := newLAN(t, 2)
	dlB := filepath.Join(lan.Host(2).dir, "dl")
	alice := startNode(t, lan.Host(1), "--name", "alice")
	bob := startNode(t, lan.Host(2), "--name", "bob", "--download-dir", dlB)
	meshUp(t, alice, bob)
	src := filepath.Join(lan.Host(1).dir, "src")
	size := 6 << 20
	sum := randomFile(t, filepath.Join(src, "data.bin"), size)
	slow := func() { lan.Rate(t, 1, "8mbit") } // 6 MiB: about 6 s
	fast := func() { lan.Rate(t, 1, "0") }

	// Cut the cable mid-transfer, heal: it resumes.
	slow()
	id := offer(t, alice, bob, filepath.Join(src, "data.bin"))
	bob.Send(t, "/accept "+id)
	bob.Wait(t, "progress", eventTimeout, is("transfer_progress", "transfer_id", id))
	lan.Cut(t, 2)
	time.Sleep(3 * time.Second)
	lan.Heal(t, 2)
	fast()
	checkDone(t, done(t, bob, id, faultTimeout), map[string]string{"data.bin": sum}, src)
	ev := done(t, alice, id, faultTimeout)
	t.Logf("cut and healed: %v bytes re-sent", ev["resent"])

	// kill -9 the receiver mid-transfer, restart it.
	slow()
	id = offer(t, alice, bob, filepath.Join(src, "data.bin"))
	bob.Send(t, "/accept "+id)
	bob.Wait(t, "progress", eventTimeout, func(e Event) bool {
		return e.Kind() == "transfer_progress" && e.Str("transfer_id") == id && e.Num("bytes") > float64(size/3)
	})
	bob.Kill(t)
	fast()
	bob2 := startNode(t, lan.Host(2), "--name", "bob", "--download-dir", dlB)
	checkDone(t, done(t, bob2, id, faultTimeout), map[string]string{"data.bin": sum}, src)
	ev = done(t, alice, id, faultTimeout)
	t.Logf("receiver killed and restarted: %v bytes re-sent", ev["resent"])

	// 30% packet loss both ways (TCP's retransmissions back off hard
	// at such loss, and a stream idle for 30 s is redialled: 256 KiB
	// takes long enough).
	lossy := randomFile(t, filepath.Join(src, "lossy.bin"), 256<<10)
	lan.Loss(t, 1, 30)
	lan.Loss(t, 2, 30)
	start := time.Now()
	id = offerWithin(t, alice, bob2, filepath.Join(src, "lossy.bin"), faultTimeout)
	bob2.Send(t, "/accept "+id)
	checkDone(t, done(t, bob2, id, 3*faultTimeout), map[string]string{"lossy.bin": lossy}, src)
	t.Logf("256 KiB with 30%% loss both ways: %v", time.Since(start).Round(time.Second))
	lan.Loss(t, 1, 0)
	lan.Loss(t, 2, 0)

	// An offer larger than the free space is refused up front.
	small := filepath.Join(lan.Host(2).dir, "small")
	if err := os.MkdirAll(small, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", small).CombinedOutput(); err != nil {
		t.Logf("no tmpfs for a full disk (%v: %s): that part is skipped", err, out)
		noPanics(t, alice, bob2)
		return
	}
	defer exec.Command("umount", "-l", small).Run()
	bob2.Quit(t)
	back := alice.Mark() // alice saw bob come up before: wait for this one
	bob3 := startNode(t, lan.Host(2), "--name", "bob", "--download-dir", small)
	waitPeerUp(t, alice, back, bob3, "")
	waitPeerUp(t, bob3, 0, alice, "")
	mark := alice.Mark()
	alice.Send(t, "/send bob "+filepath.Join(src, "data.bin"))
	ev = alice.WaitFrom(t, mark, "the refusal", eventTimeout, func(e Event) bool {
		return e.Kind() == "transfer_failed" || e.Kind() == "transfer_done"
	})
	if ev.Kind() != "transfer_failed" || !strings.Contains(ev.Str("reason"), "space") {
		t.Errorf("an offer of 6 MiB to a 2 MiB disk ended as %v", ev)
	}
	noPanics(t, alice, bob3)
}
