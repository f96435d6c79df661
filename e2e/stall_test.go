package e2e

import (
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"lanchat/identity"
)

// Tests of the write path under peers that stop reading: a process
// stopped with SIGSTOP (a closed laptop lid, a debugger), a peer that
// completes the handshake and then only writes, and SIGHUP.

// peersEntry runs /peers on n and returns the entry for id (nil if none).
func peersEntry(t *testing.T, n *Node, id string) map[string]any {
	t.Helper()
	mark := n.Mark()
	n.Send(t, "/peers")
	ev := n.WaitFrom(t, mark, "peers event", eventTimeout, is("peers"))
	list, _ := ev["peers"].([]any)
	for _, item := range list {
		if p, ok := item.(map[string]any); ok && p["id"] == id {
			return p
		}
	}
	return nil
}

// TestStoppedPeer stops bob with SIGSTOP while alice sends 900 messages of
// 16 KB to the group. alice's console keeps answering, carol gets every
// message and never sees alice unreachable, bob is shown unreachable, and
// bob gets every message exactly once, in order, whether he comes back
// before alice gives his connection up or after. Last, alice leaves with
// bob stopped, within the shutdown bound.
func TestStoppedPeer(t *testing.T) {
	lan := newLAN(t, 3)
	alice := startNode(t, lan.Host(1), "--name", "alice")
	bob := startNode(t, lan.Host(2), "--name", "bob")
	carol := startNode(t, lan.Host(3), "--name", "carol")
	meshUp(t, alice, bob, carol)
	am, cm := alice.Mark(), carol.Mark()

	// sendResponsive sends b's messages in chunks of 100 and, after each,
	// asks alice's console for /peers and /time of carol: it must answer
	// while bob is stopped.
	var answers []time.Duration
	sendResponsive := func(b *burst) {
		t.Helper()
		for lo := 0; lo < b.n; lo += 100 {
			b.send(t, lo, min(lo+100, b.n))
			start := time.Now()
			peersEntry(t, alice, carol.ID)
			mark := alice.Mark()
			alice.Send(t, "/time -tcp carol")
			alice.WaitFrom(t, mark, "/time of carol while bob is stopped", eventTimeout, is("time", "id", carol.ID))
			answers = append(answers, time.Since(start))
		}
	}
	big := func(*Node, int) int { return 16000 }

	// 1. Stopped for less than the stall timeout: the connection holds.
	b1 := &burst{tag: "stop1-" + nonce(), senders: []*Node{alice}, n: 900, chunk: 1, size: big}
	stopped := time.Now()
	bob.Signal(t, syscall.SIGSTOP)
	sendResponsive(b1)
	unreach := alice.WaitFrom(t, am, "bob unreachable", eventTimeout, is("peer_state", "id", bob.ID, "state", "unreachable"))
	t.Logf("alice shows stopped bob unreachable %v after SIGSTOP", evTime(unreach).Sub(stopped).Round(time.Millisecond))
	if wait := time.Until(stopped.Add(7 * time.Second)); wait > 0 {
		time.Sleep(wait)
	}
	cont := time.Now()
	bob.Signal(t, syscall.SIGCONT)
	t.Logf("phase 1: 900 messages sent, bob resumed %v after SIGSTOP", cont.Sub(stopped).Round(time.Millisecond))
	b1.waitReceived(t, carol, b1.n, faultTimeout)
	b1.waitReceived(t, bob, b1.n, faultTimeout)
	b1.waitDelivered(t, alice, bob, faultTimeout)
	if cont.Sub(stopped) < 8*time.Second {
		if downs := alice.Find(am, is("peer_down", "id", bob.ID)); len(downs) > 0 {
			t.Errorf("alice dropped bob, stopped for only %v: %v", cont.Sub(stopped).Round(time.Millisecond), downs[0])
		}
	}

	// 2. Stopped past the stall timeout: alice gives the connection up,
	// and bob gets the rest on the next one.
	b2 := &burst{tag: "stop2-" + nonce(), senders: []*Node{alice}, n: 300, chunk: 1, size: big}
	am2 := alice.Mark()
	stopped = time.Now()
	bob.Signal(t, syscall.SIGSTOP)
	sendResponsive(b2)
	down := alice.WaitFrom(t, am2, "alice gives stopped bob's connection up", faultTimeout, is("peer_down", "id", bob.ID))
	t.Logf("phase 2: alice dropped bob %v after SIGSTOP: %q", evTime(down).Sub(stopped).Round(time.Millisecond), down.Str("reason"))
	if r := down.Str("reason"); r != "peer stopped reading" && !strings.HasPrefix(r, "no sign of life") {
		t.Errorf("alice: stopped bob dropped with reason %q, want %q (or no sign of life)", r, "peer stopped reading")
	}
	if !down.Bool("reconnecting") {
		t.Errorf("alice: stopped bob dropped without reconnecting: %v", down)
	}
	if wait := time.Until(stopped.Add(12 * time.Second)); wait > 0 {
		time.Sleep(wait)
	}
	bob.Signal(t, syscall.SIGCONT)
	alice.WaitFrom(t, am2, "bob back after SIGCONT", faultTimeout, is("peer_up", "id", bob.ID, "back", true))
	b2.waitReceived(t, carol, b2.n, faultTimeout)
	b2.waitReceived(t, bob, b2.n, faultTimeout)
	b2.waitDelivered(t, alice, bob, faultTimeout)
	waitNoPending(t, alice, faultTimeout)
	for _, b := range []*burst{b1, b2} {
		for _, n := range []*Node{bob, carol} {
			b.check(t, n)
		}
	}
	// A healthy peer never saw alice unreachable, nor lost her.
	for _, bad := range carol.Find(cm, func(e Event) bool {
		return e.Str("id") == alice.ID && (e.Kind() == "peer_down" || (e.Kind() == "peer_state" && e.Str("state") == "unreachable"))
	}) {
		t.Errorf("carol: healthy alice shown as %s: %v", bad.Kind(), bad)
	}
	notices := alice.Find(am, func(e Event) bool {
		return e.Kind() == "notice" && strings.Contains(e.Str("text"), "is not reading")
	})
	if len(notices) == 0 {
		t.Errorf("alice was never told that bob is not reading")
	}
	for _, e := range notices {
		t.Logf("alice was told: %s", e.Str("text"))
	}
	slow := time.Duration(0)
	for _, d := range answers {
		slow = max(slow, d)
	}
	t.Logf("alice's console answered /peers and /time %d times while bob was stopped, slowest %v", len(answers), slow.Round(time.Millisecond))

	// 3. Leaving with a stopped peer stays within the shutdown bound.
	bob.Signal(t, syscall.SIGSTOP)
	am3 := alice.Mark()
	alice.WaitFrom(t, am3, "bob unreachable again", eventTimeout, is("peer_state", "id", bob.ID, "state", "unreachable"))
	start := time.Now()
	alice.Quit(t)
	took := time.Since(start)
	t.Logf("alice left in %v with bob stopped (a race-enabled binary sleeps 1 s at exit)", took.Round(time.Millisecond))
	if took > 6*time.Second {
		t.Errorf("alice took %v to leave with bob stopped; the shutdown bound is 3 s", took.Round(time.Millisecond))
	}
	ev := carol.WaitFrom(t, cm, "carol sees alice leave", eventTimeout, is("peer_down", "id", alice.ID))
	if ev.Str("reason") != "quit" {
		t.Errorf("carol: alice left with reason %q, want quit", ev.Str("reason"))
	}
	bob.Signal(t, syscall.SIGCONT)
	noPanics(t, alice, bob, carol)
}

// TestPeerNeverReads: a peer that completes the handshake and then only
// writes. What alice queues for it stays within the bound, alice is told
// it is not reading, its connection is closed for it, alice's memory stops
// growing, and chat to bob goes on throughout.
func TestPeerNeverReads(t *testing.T) {
	lan := newLAN(t, 3)
	// What may wait for one peer is bounded to 8 MiB (64 MiB by default),
	// so that the first burst fills it: the outbox then refuses more for
	// the mute peer.
	alice := startNodeEnv(t, lan.Host(1), []string{"LANCHAT_TEST_PEER_BYTES=" + fmt.Sprint(8<<20)}, "--name", "alice")
	bob := startNode(t, lan.Host(2), "--name", "bob")
	meshUp(t, alice, bob)
	am := alice.Mark()
	// A peer that completes the real handshake and then never reads.
	mute, err := dialHostile(t, lan.Host(3), alice.TCPPort, alice.ID, "mute",
		hostileOpts{Mute: true, Addr: net.JoinHostPort(alice.Host.IP4, fmt.Sprint(alice.TCPPort))})
	if err != nil {
		t.Fatalf("mute peer: %v", err)
	}
	alice.WaitFrom(t, am, "peer_up for the mute peer", eventTimeout, is("peer_up", "id", mute.ID))

	const bound = 4<<20 + 64<<10 // transport's queue limit and control reserve
	var rss []int64
	maxQueued := 0.0
	sample := func() {
		rss = append(rss, alice.Anon())
		if p := peersEntry(t, alice, mute.ID); p != nil {
			if q, ok := p["queued"].(float64); ok {
				maxQueued = max(maxQueued, q)
			}
		}
	}
	big := func(*Node, int) int { return 16000 }
	// Enough to fill the socket buffers, the queue and the outbox.
	b1 := &burst{tag: "mute1-" + nonce(), senders: []*Node{alice}, n: 1000, chunk: 1, size: big}
	for lo := 0; lo < b1.n; lo += 100 {
		b1.send(t, lo, lo+100)
		sample()
	}
	firstMax := int64(0)
	for _, r := range rss {
		firstMax = max(firstMax, r)
	}
	// Chat goes on: the mute peer's outbox is full and refuses more, so
	// memory must not grow much further.
	b2 := &burst{tag: "mute2-" + nonce(), senders: []*Node{alice}, n: 500, chunk: 1, size: big}
	for lo := 0; lo < b2.n; lo += 100 {
		b2.send(t, lo, lo+100)
		sample()
	}
	down := alice.WaitFrom(t, am, "alice drops the mute peer", faultTimeout, is("peer_down", "id", mute.ID))
	if down.Str("reason") != "peer stopped reading" {
		t.Errorf("alice dropped the mute peer with reason %q, want %q", down.Str("reason"), "peer stopped reading")
	}
	if len(alice.Find(am, func(e Event) bool {
		return e.Kind() == "notice" && strings.Contains(e.Str("text"), "is not reading") && strings.Contains(e.Str("text"), identity.Short(mute.ID))
	})) == 0 {
		t.Errorf("alice was never told that the mute peer is not reading")
	}
	for _, b := range []*burst{b1, b2} {
		b.waitReceived(t, bob, b.n, faultTimeout)
		b.check(t, bob)
	}
	if maxQueued > bound {
		t.Errorf("alice queued %.0f bytes for a peer that does not read; the bound is %d", maxQueued, bound)
	}
	lastMax := int64(0)
	for _, r := range rss[len(rss)/2:] {
		lastMax = max(lastMax, r)
	}
	// Flat: the second half may not grow past the first by more than a
	// collector cycle's slack.
	if lastMax > firstMax+firstMax/4+16<<20 {
		t.Errorf("alice's anonymous memory grew while chat went on: peak %d MiB after the mute peer's outbox filled, %d MiB before (samples %v)",
			lastMax>>20, firstMax>>20, rss)
	}
	t.Logf("most queued for the mute peer: %.0f bytes (bound %d); alice's anonymous memory peaked at %d MiB, then %d MiB; dropped %v after it connected: %q",
		maxQueued, bound, firstMax>>20, lastMax>>20, evTime(down).Sub(evTime(alice.Find(am, is("peer_up", "id", mute.ID))[0])).Round(time.Millisecond), down.Str("reason"))
	noPanics(t, alice, bob)
}

// TestSIGHUP: a node whose terminal goes away (SIGHUP) leaves as
// gracefully as on /quit: its peers see it leave with reason quit, not
// lost, and it says its mDNS goodbye.
func TestSIGHUP(t *testing.T) {
	lan := newLAN(t, 2)
	alice := startNode(t, lan.Host(1), "--name", "alice")
	bob := startNode(t, lan.Host(2), "--name", "bob")
	meshUp(t, alice, bob)
	capture := startCapture(t, lan)
	bm := bob.Mark()
	alice.Signal(t, syscall.SIGHUP)
	if err := alice.WaitExit(t, quitTimeout); err != nil {
		t.Errorf("alice exited after SIGHUP with %v, want status 0", err)
	}
	ev := bob.WaitFrom(t, bm, "bob sees alice leave", eventTimeout, is("peer_down", "id", alice.ID))
	if ev.Str("reason") != "quit" || ev.Bool("reconnecting") {
		t.Errorf("bob: alice's SIGHUP seen as %v, want reason quit without reconnecting", ev)
	}
	capture.Stop()
	goodbye := false
	for _, f := range capture.Frames() {
		if !f.isMDNS() || !hostAddr(alice.Host, f.Src) {
			continue
		}
		var m dns.Msg
		if m.Unpack(f.Payload) != nil || !m.Response {
			continue
		}
		for _, rr := range m.Answer {
			if rr.Header().Ttl == 0 && strings.Contains(rr.Header().Name, "_lanchat._tcp") {
				goodbye = true
			}
		}
	}
	if !goodbye {
		t.Errorf("no mDNS goodbye (a _lanchat._tcp record with TTL 0) from alice's host after SIGHUP")
	}
}
