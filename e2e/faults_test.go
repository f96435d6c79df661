package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"lanchat/identity"
	"lanchat/transport"
)

// Fault injection: a cable cut for longer than the connection survives,
// 30% packet loss, a slow link, a node killed and restarted, junk under
// load, and how long leaving takes. Whatever happens to the network, every
// chat message typed must reach every peer it was meant for exactly once,
// in its sender's order, and be acknowledged (delivered events, an empty
// /pending). The tests check behaviour, never speed: deadlines are
// generous, and the timings they measure are only logged.

// faultTimeout bounds the delivery of everything once a fault is removed:
// a reconnection takes at most a few seconds of backoff plus a dial.
const faultTimeout = 60 * time.Second

var seqRE = regexp.MustCompile(` #(\d+)`)

// burst is a numbered series of chat messages from several senders,
// tagged so that its messages can be told from any other.
type burst struct {
	tag     string
	senders []*Node
	n       int // messages per sender, numbered 0..n-1
	chunk   int // how many each sender writes before the next one's turn
	// size, when set, gives the length of a message (at least the
	// numbered prefix).
	size func(from *Node, seq int) int
	// dm, when set, names the peer a message goes to with /msg; "" is
	// the group.
	dm func(from *Node, seq int) string
	// pause is slept after every round of turns.
	pause time.Duration
}

func (b *burst) text(from *Node, seq int) string {
	s := fmt.Sprintf("%s %s #%04d", b.tag, from.Name, seq)
	if b.size != nil {
		if want := b.size(from, seq); want > len(s)+1 {
			pad := make([]byte, want-len(s)-1)
			for i := range pad {
				pad[i] = 'a' + byte((seq+i)%26)
			}
			s += " " + string(pad)
		}
	}
	return s
}

func (b *burst) target(from *Node, seq int) string {
	if b.dm == nil {
		return ""
	}
	return b.dm(from, seq)
}

// send writes messages lo..hi-1 of every sender, taking turns chunk
// messages at a time, as fast as the nodes read them.
func (b *burst) send(t *testing.T, lo, hi int) {
	t.Helper()
	chunk := max(b.chunk, 1)
	for i := lo; i < hi; i += chunk {
		for _, s := range b.senders {
			for seq := i; seq < min(i+chunk, hi); seq++ {
				line := b.text(s, seq)
				if to := b.target(s, seq); to != "" {
					line = "/msg " + to + " " + line
				} else if strings.HasPrefix(line, "/") {
					line = "/" + line
				}
				s.Send(t, line)
			}
		}
		time.Sleep(b.pause)
	}
}

// wanted lists the numbers of from's messages below upto that recv must
// get.
func (b *burst) wanted(recv, from *Node, upto int) []int {
	if recv == from || recv.ID == from.ID {
		return nil
	}
	var seqs []int
	for seq := 0; seq < min(upto, b.n); seq++ {
		if to := b.target(from, seq); to == "" || to == recv.Name {
			seqs = append(seqs, seq)
		}
	}
	return seqs
}

// arrived is what one node showed of a burst: per sender id, the numbers
// of the chat events in the order shown, and the events themselves.
type arrived struct {
	seqs   map[string][]int
	events map[string][]Event
}

func (b *burst) arrivedAt(n *Node) arrived {
	a := arrived{seqs: map[string][]int{}, events: map[string][]Event{}}
	ids := map[string]bool{}
	for _, s := range b.senders {
		ids[s.ID] = true
	}
	for _, e := range n.Events() {
		if e.Kind() != "chat" || !ids[e.Str("id")] || !strings.HasPrefix(e.Str("text"), b.tag+" ") {
			continue
		}
		m := seqRE.FindStringSubmatch(e.Str("text"))
		if m == nil {
			continue
		}
		seq, _ := strconv.Atoi(m[1])
		a.seqs[e.Str("id")] = append(a.seqs[e.Str("id")], seq)
		a.events[e.Str("id")] = append(a.events[e.Str("id")], e)
	}
	return a
}

// missing lists, per sender, the wanted messages recv has not shown.
func (b *burst) missing(recv *Node, upto int) map[*Node][]int {
	a := b.arrivedAt(recv)
	out := map[*Node][]int{}
	for _, s := range b.senders {
		have := map[int]bool{}
		for _, q := range a.seqs[s.ID] {
			have[q] = true
		}
		for _, q := range b.wanted(recv, s, upto) {
			if !have[q] {
				out[s] = append(out[s], q)
			}
		}
	}
	return out
}

// waitReceived waits until recv has shown every message below upto meant
// for it, and reports whether it did within timeout (failing the test if
// not, with what is missing).
func (b *burst) waitReceived(t *testing.T, recv *Node, upto int, timeout time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		miss := b.missing(recv, upto)
		if len(miss) == 0 {
			return true
		}
		if time.Now().After(deadline) || recv.Exited() {
			var parts []string
			for s, q := range miss {
				parts = append(parts, fmt.Sprintf("%d of %s's (first: %v)", len(q), s.Label, q[:min(len(q), 12)]))
			}
			slices.Sort(parts)
			t.Errorf("%s: after %v still missing %s of burst %q%s", recv.Label, timeout,
				strings.Join(parts, ", "), b.tag, recv.diagnostics())
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// check verifies that recv showed each message meant for it exactly once,
// in its sender's order, and nothing else of the burst (not the direct
// messages to others). It returns how many it showed and how many of those
// were duplicates.
func (b *burst) check(t *testing.T, recv *Node) (shown, dups int) {
	t.Helper()
	a := b.arrivedAt(recv)
	for _, s := range b.senders {
		seqs, evs := a.seqs[s.ID], a.events[s.ID]
		want := map[int]bool{}
		for _, q := range b.wanted(recv, s, b.n) {
			want[q] = true
		}
		seen := map[int]bool{}
		last := -1
		var dupEx, orderEx, extraEx []string
		for i, q := range seqs {
			shown++
			switch {
			case seen[q]:
				dups++
				dupEx = append(dupEx, clip(evs[i].String(), 300))
			case !want[q]:
				extraEx = append(extraEx, clip(evs[i].String(), 300))
			case q < last:
				orderEx = append(orderEx, fmt.Sprintf("#%d after #%d: %s", q, last, clip(evs[i].String(), 300)))
			}
			seen[q] = true
			last = max(last, q)
			if to := b.target(s, q); to != "" && !evs[i].Bool("direct") {
				t.Errorf("%s: direct message from %s arrived with direct=false: %v", recv.Label, s.Label, evs[i])
			}
		}
		nmiss := 0
		for q := range want {
			if !seen[q] {
				nmiss++
			}
		}
		if len(dupEx) > 0 {
			t.Errorf("%s: %d messages of %s's shown more than once (burst %q); first: %s",
				recv.Label, len(dupEx), s.Label, b.tag, dupEx[0])
		}
		if len(orderEx) > 0 {
			t.Errorf("%s: %d messages of %s's shown out of order (burst %q); first: %s\norder shown: %v",
				recv.Label, len(orderEx), s.Label, b.tag, orderEx[0], seqs)
		}
		if len(extraEx) > 0 {
			t.Errorf("%s: %d messages of %s's shown that were not meant for it; first: %s",
				recv.Label, len(extraEx), s.Label, extraEx[0])
		}
		if nmiss > 0 {
			t.Errorf("%s: %d of %d messages of %s's never shown (burst %q)", recv.Label, nmiss, len(want), s.Label, b.tag)
		}
	}
	return shown, dups
}

// sentTo returns the msg_ids of from's sent events of the burst that list
// recv among their recipients, and fails the test for messages meant for
// recv that do not (or were never reported sent).
func (b *burst) sentTo(t *testing.T, from, recv *Node) map[uint64]string {
	t.Helper()
	ids := map[uint64]string{}
	byText := map[string]Event{}
	for _, e := range from.Find(0, is("sent")) {
		if strings.HasPrefix(e.Str("text"), b.tag+" ") {
			byText[e.Str("text")] = e
		}
	}
	notSent, notTo := 0, 0
	var example string
	for _, seq := range b.wanted(recv, from, b.n) {
		text := b.text(from, seq)
		e, ok := byText[text]
		if !ok {
			notSent++
			continue
		}
		to, _ := e["to"].([]any)
		if !slices.ContainsFunc(to, func(v any) bool { return v == recv.ID }) {
			notTo++
			if example == "" {
				example = clip(e.String(), 300)
			}
			continue
		}
		ids[uint64(e.Num("msg_id"))] = text
	}
	if notSent > 0 {
		t.Errorf("%s: %d messages of burst %q have no sent event%s", from.Label, notSent, b.tag, from.diagnostics())
	}
	if notTo > 0 {
		t.Errorf("%s: %d messages of burst %q were not addressed to %s (not queued for it); first: %s",
			from.Label, notTo, b.tag, recv.Label, example)
	}
	return ids
}

// waitDelivered waits for from's delivered events from recv for every
// message of the burst it sent to recv, and returns how many there were.
func (b *burst) waitDelivered(t *testing.T, from, recv *Node, timeout time.Duration) int {
	t.Helper()
	want := b.sentTo(t, from, recv)
	deadline := time.Now().Add(timeout)
	for {
		got := 0
		for _, e := range from.Find(0, is("delivered", "id", recv.ID)) {
			if _, ok := want[uint64(e.Num("msg_id"))]; ok {
				got++
			}
		}
		if got >= len(want) {
			return got
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: %d of %d messages of burst %q to %s reported delivered after %v%s",
				from.Label, got, len(want), b.tag, recv.Label, timeout, from.diagnostics())
			return got
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// pending runs /pending on n and returns the event.
func pending(t *testing.T, n *Node) Event {
	t.Helper()
	mark := n.Mark()
	n.Send(t, "/pending")
	return n.WaitFrom(t, mark, "pending event", eventTimeout, is("pending"))
}

// pendingFor returns the entry of a pending event for the peer id.
func pendingFor(ev Event, id string) (map[string]any, bool) {
	list, _ := ev["pending"].([]any)
	for _, item := range list {
		if p, ok := item.(map[string]any); ok && p["id"] == id {
			return p, true
		}
	}
	return nil, false
}

// waitNoPending asks /pending until its total is 0.
func waitNoPending(t *testing.T, n *Node, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ev := pending(t, n)
		if ev.Num("total") == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: /pending still not empty after %v: %s", n.Label, timeout, clip(ev.String(), 1500))
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// meshUp waits until every node has a peer_up for every other.
func meshUp(t *testing.T, nodes ...*Node) {
	t.Helper()
	for _, n := range nodes {
		for _, p := range nodes {
			if n != p {
				waitPeerUp(t, n, 0, p, "")
			}
		}
	}
}

func evTime(e Event) time.Time {
	ts, _ := time.Parse(time.RFC3339Nano, e.Str("ts"))
	return ts
}

// countEvents counts n's events from cursor from on that match pred.
func countEvents(n *Node, from int, pred func(Event) bool) int { return len(n.Find(from, pred)) }

// ---------------------------------------------------------------------------
// Tests

// TestFaultCableCut pulls carol's cable for longer than a connection
// survives silence, while alice and bob keep writing to everyone: carol
// must get every message, once, in order, when the cable is back.
func TestFaultCableCut(t *testing.T) {
	lan := newLAN(t, 3)
	alice := startNode(t, lan.Host(1), "--name", "alice")
	bob := startNode(t, lan.Host(2), "--name", "bob")
	carol := startNode(t, lan.Host(3), "--name", "carol")
	all := []*Node{alice, bob, carol}
	meshUp(t, all...)
	b := &burst{tag: "cut-" + nonce(), senders: []*Node{alice, bob}, n: 100, chunk: 10}
	const whileConnected = 60 // the rest is written once carol is away

	am, bm, cm := alice.Mark(), bob.Mark(), carol.Mark()
	cut := time.Now()
	lan.Cut(t, 3)
	healed := false
	defer func() {
		if !healed {
			lan.Heal(t, 3)
		}
	}()
	for _, n := range []*Node{alice, bob} {
		ev := n.WaitFrom(t, map[*Node]int{alice: am, bob: bm}[n], "peer_state unreachable for carol", 8*time.Second,
			is("peer_state", "id", carol.ID, "state", "unreachable"))
		t.Logf("%s: carol unreachable %v after the cut (silence_ms %v)", n.Label, evTime(ev).Sub(cut).Round(time.Millisecond), ev["silence_ms"])
	}

	// Written while carol's connection still stands but nothing crosses.
	b.send(t, 0, whileConnected)
	for _, n := range []*Node{alice, bob} {
		ev := n.WaitFrom(t, map[*Node]int{alice: am, bob: bm}[n], "peer_down for carol", 25*time.Second,
			is("peer_down", "id", carol.ID))
		if !ev.Bool("reconnecting") {
			t.Errorf("%s: carol's connection dropped after silence without reconnecting=true: %v", n.Label, ev)
		}
		t.Logf("%s: carol's connection given up %v after the cut: %v", n.Label, evTime(ev).Sub(cut).Round(time.Millisecond), ev.Str("reason"))
	}
	// Written while carol is away: queued for her.
	b.send(t, whileConnected, b.n)

	// alice and bob hear each other as usual meanwhile.
	b.waitReceived(t, alice, b.n, 30*time.Second)
	b.waitReceived(t, bob, b.n, 30*time.Second)
	if carolGot := b.arrivedAt(carol); len(carolGot.seqs) > 0 {
		t.Errorf("carol showed messages written while her cable was out, before it was back: %v", carolGot.seqs)
	}
	ev := pending(t, alice)
	if p, ok := pendingFor(ev, carol.ID); !ok {
		t.Errorf("alice: /pending does not list carol while she is away: %s", clip(ev.String(), 1000))
	} else {
		msgs, _ := p["messages"].([]any)
		t.Logf("alice: /pending lists %d messages for carol (tcp %v), total %v", len(msgs), p["tcp"], ev["total"])
		if len(msgs) != b.n {
			t.Errorf("alice: /pending lists %d messages for carol, want the %d she has not got", len(msgs), b.n)
		}
	}

	if d := 13*time.Second - time.Since(cut); d > 0 {
		time.Sleep(d)
	}
	lan.Heal(t, 3)
	healed = true
	cutFor := time.Since(cut)
	healAt := time.Now()

	for _, n := range []*Node{alice, bob} {
		ev := n.WaitFrom(t, map[*Node]int{alice: am, bob: bm}[n], "peer_up for carol after the cut", faultTimeout,
			is("peer_up", "id", carol.ID))
		if !ev.Bool("back") {
			t.Errorf("%s: carol reconnected without back=true: %v", n.Label, ev)
		}
		t.Logf("%s: carol back %v after the heal", n.Label, evTime(ev).Sub(healAt).Round(time.Millisecond))
	}
	if b.waitReceived(t, carol, b.n, faultTimeout) {
		t.Logf("carol: all %d messages %v after the heal", 2*b.n, time.Since(healAt).Round(time.Millisecond))
	}
	delivered := 0
	for _, s := range b.senders {
		delivered += b.waitDelivered(t, s, carol, faultTimeout)
		waitNoPending(t, s, faultTimeout)
	}
	waitNoPending(t, carol, faultTimeout)

	shown, dups, cs, cd := 0, 0, 0, 0
	for _, n := range all {
		s, d := b.check(t, n)
		shown, dups = shown+s, dups+d
		if n == carol {
			cs, cd = s, d
		}
	}
	for _, n := range all {
		for _, p := range all {
			if n != p {
				n.Never(t, 0, "peer_down without reconnecting after a cut", and(is("peer_down", "id", p.ID), func(e Event) bool { return !e.Bool("reconnecting") }))
			}
		}
	}
	t.Logf("summary: cable cut %v; sent %d (2×%d); carol showed %d (%d duplicates), alice and bob got %d delivered events from carol; all receivers showed %d (%d duplicates); carol saw %d peer_state and %d peer_down events",
		cutFor.Round(100*time.Millisecond), 2*b.n, b.n, cs, cd, delivered, shown, dups,
		countEvents(carol, cm, is("peer_state")), countEvents(carol, cm, is("peer_down")))
	noPanics(t, all...)
}

// TestFaultOneWay makes the link one-way: alice hears nothing from carol
// while carol still hears alice. carol gets alice's messages but alice
// never gets the acknowledgements, gives the connection up and, once the
// link is whole again, sends them again: carol must show each once. What
// carol wrote meanwhile waits in her outbox and arrives once too.
func TestFaultOneWay(t *testing.T) {
	needNetns(t)
	needNft(t)
	lan := newLAN(t, 2)
	alice := startNode(t, lan.Host(1), "--name", "alice", "-v")
	carol := startNode(t, lan.Host(2), "--name", "carol", "-v")
	meshUp(t, alice, carol)
	fromAlice := &burst{tag: "oneway-a-" + nonce(), senders: []*Node{alice}, n: 50, chunk: 10}
	fromCarol := &burst{tag: "oneway-c-" + nonce(), senders: []*Node{carol}, n: 20, chunk: 10}

	am, cm := alice.Mark(), carol.Mark()
	start := time.Now()
	lan.Block(t, 1, 2)
	blocked := true
	defer func() {
		if blocked {
			lan.Unblock(t, 1)
		}
	}()
	fromAlice.send(t, 0, fromAlice.n)
	fromCarol.send(t, 0, fromCarol.n)
	// carol hears alice, but her acknowledgements (TCP's and lanchat's)
	// do not get through: what TCP sent before it needed an ACK arrives.
	carolGot := 0
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if carolGot = len(fromAlice.arrivedAt(carol).seqs[alice.ID]); carolGot > 0 {
			break
		}
	}
	if carolGot == 0 {
		t.Errorf("carol showed none of alice's messages over a link that only drops what carol sends%s", carol.diagnostics())
	}
	ev := pending(t, alice)
	if p, ok := pendingFor(ev, carol.ID); !ok {
		t.Errorf("alice: /pending does not list carol, whose acks cannot reach her: %s", clip(ev.String(), 1000))
	} else {
		msgs, _ := p["messages"].([]any)
		t.Logf("alice: /pending lists %d messages for carol (tcp %v)", len(msgs), p["tcp"])
	}
	alice.WaitFrom(t, am, "peer_state unreachable for carol", 8*time.Second, is("peer_state", "id", carol.ID, "state", "unreachable"))
	down := alice.WaitFrom(t, am, "peer_down for carol", 25*time.Second, is("peer_down", "id", carol.ID))
	if !down.Bool("reconnecting") {
		t.Errorf("alice: peer_down for carol without reconnecting=true: %v", down)
	}
	cdown := carol.WaitFrom(t, cm, "peer_down for alice (her connection closed)", 25*time.Second, is("peer_down", "id", alice.ID))
	t.Logf("alice gave carol up %v after the block; carol saw %q", evTime(down).Sub(start).Round(time.Millisecond), cdown.Str("reason"))
	carolGot = len(fromAlice.arrivedAt(carol).seqs[alice.ID])
	if got := fromCarol.arrivedAt(alice); len(got.seqs) > 0 {
		t.Errorf("alice showed carol's messages through a link that drops everything from carol: %v", got.seqs)
	}
	lan.Unblock(t, 1)
	blocked = false
	healAt := time.Now()

	up := alice.WaitFrom(t, am, "peer_up for carol after the block", faultTimeout, is("peer_up", "id", carol.ID))
	if !up.Bool("back") {
		t.Errorf("alice: carol reconnected without back=true: %v", up)
	}
	fromCarol.waitReceived(t, alice, fromCarol.n, faultTimeout)
	n1 := fromAlice.waitDelivered(t, alice, carol, faultTimeout)
	n2 := fromCarol.waitDelivered(t, carol, alice, faultTimeout)
	waitNoPending(t, alice, faultTimeout)
	waitNoPending(t, carol, faultTimeout)
	// Anything resent after this would come now; and the new connection
	// should stay.
	time.Sleep(3 * time.Second)
	for _, pr := range [][2]*Node{{alice, carol}, {carol, alice}} {
		n, p := pr[0], pr[1]
		last := n.Find(0, is("peer_up", "id", p.ID))
		if len(last) == 0 {
			continue
		}
		var after []Event
		seenUp := false
		for _, e := range n.Events() {
			if e.Str("id") != p.ID {
				continue
			}
			if e.Kind() == "peer_up" && evTime(e).After(healAt.Add(-time.Second)) {
				seenUp = true
				continue
			}
			if seenUp && (e.Kind() == "peer_down" || e.Kind() == "peer_up") {
				after = append(after, e)
			}
		}
		if len(after) > 0 {
			t.Errorf("%s: %s reconnected after the block, then flapped: %d more peer_down/peer_up events; first: %v",
				n.Label, p.Label, len(after), after[0])
		}
	}
	s1, d1 := fromAlice.check(t, carol)
	s2, d2 := fromCarol.check(t, alice)
	t.Logf("summary: one-way block for %v; alice sent %d (%d shown by carol before the block ended, none acknowledged), carol sent %d; after the heal (%v to peer_up): carol showed %d of alice's (%d duplicates), alice showed %d of carol's (%d duplicates); delivered events alice %d, carol %d",
		healAt.Sub(start).Round(100*time.Millisecond), fromAlice.n, carolGot, fromCarol.n, evTime(up).Sub(healAt).Round(time.Millisecond),
		s1, d1, s2, d2, n1, n2)
	noPanics(t, alice, carol)
}

// TestFaultPacketLoss drops 30% of what every host receives (so every
// link loses 30% each way) while alice and bob write 100 messages each.
func TestFaultPacketLoss(t *testing.T) {
	needNetns(t)
	needNft(t)
	lan := newLAN(t, 3)
	alice := startNode(t, lan.Host(1), "--name", "alice")
	bob := startNode(t, lan.Host(2), "--name", "bob")
	carol := startNode(t, lan.Host(3), "--name", "carol")
	all := []*Node{alice, bob, carol}
	meshUp(t, all...)
	// Spread over most of the lossy time, so that many segments and
	// acknowledgements cross the lossy links, not a few full ones.
	b := &burst{tag: "loss-" + nonce(), senders: []*Node{alice, bob}, n: 100, chunk: 10, pause: 600 * time.Millisecond}
	marks := map[*Node]int{alice: alice.Mark(), bob: bob.Mark(), carol: carol.Mark()}

	const pct = 30
	lossy := true
	for i := 1; i <= 3; i++ {
		lan.Loss(t, i, pct)
	}
	defer func() {
		if lossy {
			for i := 1; i <= 3; i++ {
				lan.Loss(t, i, 0)
			}
		}
	}()
	start := time.Now()
	b.send(t, 0, b.n)
	if d := 10*time.Second - time.Since(start); d > 0 {
		time.Sleep(d) // let the lossy links carry what they can
	}
	during := map[*Node]int{}
	for _, n := range all {
		for _, q := range b.arrivedAt(n).seqs {
			during[n] += len(q)
		}
	}
	var drops []string
	total := 0
	for i := 1; i <= 3; i++ {
		d := lan.LossDropped(t, i)
		total += d
		drops = append(drops, fmt.Sprintf("%s %d", all[i-1].Name, d))
		lan.Loss(t, i, 0)
	}
	lossy = false
	if total <= 0 {
		t.Errorf("the loss rules dropped nothing (%s): the fault was not applied", strings.Join(drops, ", "))
	}
	lossFor := time.Since(start)
	healAt := time.Now()

	for _, n := range all {
		b.waitReceived(t, n, b.n, faultTimeout)
	}
	t.Logf("everything shown %v after the loss ended", time.Since(healAt).Round(time.Millisecond))
	delivered := 0
	for _, s := range b.senders {
		for _, r := range all {
			if r != s {
				delivered += b.waitDelivered(t, s, r, faultTimeout)
			}
		}
		waitNoPending(t, s, faultTimeout)
	}
	shown, dups := 0, 0
	var states, downs []string
	for _, n := range all {
		s, d := b.check(t, n)
		shown, dups = shown+s, dups+d
		states = append(states, fmt.Sprintf("%s %d", n.Name, countEvents(n, marks[n], is("peer_state", "state", "unreachable"))))
		downs = append(downs, fmt.Sprintf("%s %d", n.Name, countEvents(n, marks[n], is("peer_down"))))
	}
	t.Logf("summary: %d%% loss on every host for %v; sent %d (2×%d); shown while lossy: alice %d, bob %d, carol %d (of %d, %d, %d); packets dropped by the rules: %s; shown in all %d (%d duplicates); delivered events %d; unreachable events: %s; peer_down events: %s",
		pct, lossFor.Round(100*time.Millisecond), 2*b.n, b.n, during[alice], during[bob], during[carol], b.n, b.n, 2*b.n,
		strings.Join(drops, ", "), shown, dups, delivered, strings.Join(states, ", "), strings.Join(downs, ", "))
	noPanics(t, all...)
}

// TestFaultRateCap caps what alice's host sends at 256 kbit/s while all
// three write, some messages several KB long.
func TestFaultRateCap(t *testing.T) {
	needNetns(t)
	needTC(t)
	lan := newLAN(t, 3)
	alice := startNode(t, lan.Host(1), "--name", "alice")
	bob := startNode(t, lan.Host(2), "--name", "bob")
	carol := startNode(t, lan.Host(3), "--name", "carol")
	all := []*Node{alice, bob, carol}
	meshUp(t, all...)
	b := &burst{tag: "rate-" + nonce(), senders: all, n: 67, chunk: 5,
		size: func(_ *Node, seq int) int {
			if seq%4 == 3 {
				return 2000 + (seq*997)%3000 // 2 to 5 KB
			}
			return 0
		}}
	bytesPerSender := 0
	for seq := 0; seq < b.n; seq++ {
		bytesPerSender += len(b.text(alice, seq))
	}
	marks := map[*Node]int{alice: alice.Mark(), bob: bob.Mark(), carol: carol.Mark()}

	const rate = "256kbit"
	lan.Rate(t, 1, rate)
	capped := true
	defer func() {
		if capped {
			lan.Rate(t, 1, "0")
		}
	}()
	start := time.Now()
	b.send(t, 0, b.n)
	// Under the cap everything should get through too, only slower.
	underCap := true
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range all {
		for len(b.missing(n, b.n)) > 0 && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
		}
		if len(b.missing(n, b.n)) > 0 {
			underCap = false
		}
	}
	capFor := time.Since(start)
	qdisc := lan.RateStats(t, 1)
	lan.Rate(t, 1, "0")
	capped = false
	if underCap {
		t.Logf("everything shown under the cap, %v after the first message", capFor.Round(time.Millisecond))
	} else {
		t.Logf("not everything shown after %v under the cap; cap removed", capFor.Round(time.Millisecond))
	}
	for _, n := range all {
		b.waitReceived(t, n, b.n, faultTimeout)
	}
	delivered := 0
	for _, s := range all {
		for _, r := range all {
			if r != s {
				delivered += b.waitDelivered(t, s, r, faultTimeout)
			}
		}
		waitNoPending(t, s, faultTimeout)
	}
	shown, dups := 0, 0
	var states []string
	for _, n := range all {
		s, d := b.check(t, n)
		shown, dups = shown+s, dups+d
		states = append(states, fmt.Sprintf("%s %d/%d", n.Name,
			countEvents(n, marks[n], is("peer_state", "state", "unreachable")), countEvents(n, marks[n], is("peer_down"))))
	}
	t.Logf("summary: %s cap on alice's host for %v; sent %d (3×%d, %d bytes of text each); shown %d (%d duplicates) of %d; delivered events %d; unreachable/peer_down events: %s; alice's qdisc: %s",
		rate, capFor.Round(100*time.Millisecond), 3*b.n, b.n, bytesPerSender, shown, dups, 3*2*b.n, delivered, strings.Join(states, ", "), qdisc)
	noPanics(t, all...)
}

// TestFaultKillRestart kills bob with SIGKILL; alice and carol write to
// him while he is dead (group and direct messages), then he starts again
// with the same identity and must get every message once, in order.
func TestFaultKillRestart(t *testing.T) {
	lan := newLAN(t, 3)
	alice := startNode(t, lan.Host(1), "--name", "alice")
	bob := startNode(t, lan.Host(2), "--name", "bob")
	carol := startNode(t, lan.Host(3), "--name", "carol")
	meshUp(t, alice, bob, carol)

	// Messages bob got before he died must not come again.
	pre := &burst{tag: "prekill-" + nonce(), senders: []*Node{alice, carol}, n: 5, chunk: 5}
	pre.send(t, 0, pre.n)
	pre.waitReceived(t, bob, pre.n, eventTimeout)
	for _, s := range pre.senders {
		pre.waitDelivered(t, s, bob, eventTimeout)
	}

	b := &burst{tag: "kill-" + nonce(), senders: []*Node{alice, carol}, n: 100, chunk: 10,
		dm: func(from *Node, seq int) string {
			if from == alice && seq%10 == 5 {
				return "bob"
			}
			return ""
		}}
	am, cm := alice.Mark(), carol.Mark()
	bob.Kill(t)
	for _, n := range []*Node{alice, carol} {
		ev := n.WaitFrom(t, map[*Node]int{alice: am, carol: cm}[n], "peer_down for killed bob", discoveryTimeout,
			is("peer_down", "id", bob.ID))
		if !ev.Bool("reconnecting") {
			t.Errorf("%s: killed bob's peer_down without reconnecting=true: %v", n.Label, ev)
		}
	}
	b.send(t, 0, b.n)
	alice.WaitN(t, am, b.n, "sent events", eventTimeout, func(e Event) bool {
		return e.Kind() == "sent" && strings.HasPrefix(e.Str("text"), b.tag+" ")
	})
	ev := pending(t, alice)
	wantPending := len(b.wanted(bob, alice, b.n))
	if p, ok := pendingFor(ev, bob.ID); !ok {
		t.Errorf("alice: /pending does not list dead bob: %s", clip(ev.String(), 1000))
	} else {
		msgs, _ := p["messages"].([]any)
		t.Logf("alice: /pending lists %d messages for bob (tcp %v), total %v", len(msgs), p["tcp"], ev["total"])
		if len(msgs) != wantPending {
			t.Errorf("alice: /pending lists %d messages for dead bob, want %d", len(msgs), wantPending)
		}
	}
	// carol gets alice's group messages (not those to bob) meanwhile.
	b.waitReceived(t, carol, b.n, 30*time.Second)
	b.waitReceived(t, alice, b.n, 30*time.Second)

	restart := time.Now()
	bob2 := startNode(t, lan.Host(2), "--name", "bob")
	if bob2.ID != bob.ID {
		t.Fatalf("bob restarted with id %s, want %s (same home, same identity)", bob2.ID, bob.ID)
	}
	for _, n := range []*Node{alice, carol} {
		ev := n.WaitFrom(t, map[*Node]int{alice: am, carol: cm}[n], "peer_up for the restarted bob", 2*discoveryTimeout,
			is("peer_up", "id", bob.ID))
		t.Logf("%s: bob up again %v after the restart, back=%v", n.Label, evTime(ev).Sub(restart).Round(time.Millisecond), ev["back"])
		if !ev.Bool("back") {
			t.Errorf("%s: the restarted bob (same id, messages waiting) came up without back=true: %v", n.Label, ev)
		}
	}
	if b.waitReceived(t, bob2, b.n, faultTimeout) {
		t.Logf("bob: all %d messages %v after the restart", 2*b.n, time.Since(restart).Round(time.Millisecond))
	}
	delivered := 0
	for _, s := range b.senders {
		delivered += b.waitDelivered(t, s, bob2, faultTimeout)
		waitNoPending(t, s, faultTimeout)
	}
	shown, dups := b.check(t, bob2)
	b.check(t, alice)
	b.check(t, carol)
	bob2.Never(t, 0, "a message delivered before the kill, again", func(e Event) bool {
		return e.Kind() == "chat" && strings.HasPrefix(e.Str("text"), pre.tag+" ")
	})
	t.Logf("summary: sent %d to dead bob (alice %d incl. %d direct, carol %d); restarted bob showed %d (%d duplicates); delivered events %d",
		len(b.wanted(bob2, alice, b.n))+len(b.wanted(bob2, carol, b.n)), len(b.wanted(bob2, alice, b.n)), b.n/10,
		len(b.wanted(bob2, carol, b.n)), shown, dups, delivered)
	noPanics(t, alice, bob2, carol)
}

// junkResult is how a raw connection to a node ended.
type junkResult struct {
	name  string
	after time.Duration
	bytes int64
	err   error
}

// holdJunkConn dials addr from h, lets setup write what it wants, then
// reads until the node closes the connection (or 12 s pass).
func holdJunkConn(h *Host, addr, name string, setup func(c net.Conn) (net.Conn, error)) junkResult {
	r := junkResult{name: name}
	var c net.Conn
	if err := h.Do(func() (err error) {
		c, err = net.DialTimeout("tcp", addr, 5*time.Second)
		return err
	}); err != nil {
		r.err = err
		return r
	}
	defer c.Close()
	start := time.Now()
	_ = c.SetDeadline(start.Add(12 * time.Second))
	rc := c
	if setup != nil {
		var err error
		if rc, err = setup(c); err != nil {
			r.err, r.after = fmt.Errorf("setup: %w", err), time.Since(start)
			return r
		}
	}
	r.bytes, r.err = io.Copy(io.Discard, rc)
	r.after = time.Since(start)
	return r
}

// p50 returns the median of ds, 0 for none.
func p50(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// latencies pairs the senders' sent events of a burst with recv's chat
// events: the time from one to the other, per message.
func latencies(b *burst, recv *Node) []time.Duration {
	sentAt := map[string]time.Time{}
	for _, s := range b.senders {
		if s == recv {
			continue
		}
		for _, e := range s.Find(0, is("sent")) {
			if strings.HasPrefix(e.Str("text"), b.tag+" ") {
				sentAt[e.Str("text")] = evTime(e)
			}
		}
	}
	var out []time.Duration
	for _, e := range recv.Find(0, is("chat")) {
		if at, ok := sentAt[e.Str("text")]; ok {
			out = append(out, evTime(e).Sub(at))
		}
	}
	return out
}

// TestFaultJunkUnderLoad floods bob's UDP port with junk from a third host
// and holds raw TCP connections to him (silent; a plain frame header of
// 4 GiB; the same inside TLS) while alice and bob chat.
func TestFaultJunkUnderLoad(t *testing.T) {
	lan := newLAN(t, 3)
	alice := startNode(t, lan.Host(1), "--name", "alice")
	bob := startNode(t, lan.Host(2), "--name", "bob")
	meshUp(t, alice, bob)
	mallory := lan.Host(3)
	bobUDP := net.JoinHostPort(lan.Host(2).IP4, strconv.Itoa(bob.UDPPort))
	bobTCP := net.JoinHostPort(lan.Host(2).IP4, strconv.Itoa(bob.TCPPort))

	// Quiet: the latency for the record.
	quiet := &burst{tag: "quiet-" + nonce(), senders: []*Node{alice, bob}, n: 25, chunk: 1}
	for seq := 0; seq < quiet.n; seq++ {
		quiet.send(t, seq, seq+1)
		time.Sleep(40 * time.Millisecond)
	}
	quiet.waitReceived(t, alice, quiet.n, eventTimeout)
	quiet.waitReceived(t, bob, quiet.n, eventTimeout)
	before := dropped(t, bob)

	b := &burst{tag: "junk-" + nonce(), senders: []*Node{alice, bob}, n: 50, chunk: 1}
	const datagrams = 20000
	const floodFor = 2 * time.Second
	var wg sync.WaitGroup
	var floodSent, floodErrs int
	var floodErr error
	var floodTook time.Duration
	wg.Add(1)
	go func() {
		defer wg.Done()
		var c net.Conn
		if floodErr = mallory.Do(func() (err error) {
			c, err = net.Dial("udp", bobUDP)
			return err
		}); floodErr != nil {
			return
		}
		defer c.Close()
		rng := rand.New(rand.NewSource(7))
		hdr := []byte(transport.DatagramMagic + string(rune(transport.ProtocolVersion)))
		start := time.Now()
		const batch = 100
		for i := 0; i < datagrams; i++ {
			d := make([]byte, rng.Intn(1400))
			rng.Read(d)
			if i%4 == 0 { // looks like lanchat's header, then junk
				d = append(append([]byte(nil), hdr...), d...)
			}
			if _, err := c.Write(d); err != nil {
				floodErrs++ // ECONNREFUSED from an earlier datagram is fine
			} else {
				floodSent++
			}
			if i%batch == batch-1 {
				// spread the flood over floodFor
				if ahead := time.Duration(i+1)*floodFor/datagrams - time.Since(start); ahead > 0 {
					time.Sleep(ahead)
				}
			}
		}
		floodTook = time.Since(start)
	}()

	conns := make(chan junkResult, 3)
	frameHeader := []byte{0xff, 0xff, 0xff, 0xff, byte(transport.TypeChat)}
	for _, c := range []struct {
		name  string
		setup func(c net.Conn) (net.Conn, error)
	}{
		{"silent tcp", nil},
		{"plain 4 GiB frame header", func(c net.Conn) (net.Conn, error) {
			_, err := c.Write(frameHeader)
			return c, err
		}},
		{"4 GiB frame header inside TLS", func(c net.Conn) (net.Conn, error) {
			id, err := identity.New()
			if err != nil {
				return nil, err
			}
			cert, err := id.Certificate()
			if err != nil {
				return nil, err
			}
			tc := tls.Client(c, &tls.Config{
				MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert},
				InsecureSkipVerify: true, // as lanchat does: the key is what counts
				NextProtos:         []string{fmt.Sprintf("lanchat/%d", transport.ProtocolVersion)},
			})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := tc.HandshakeContext(ctx); err != nil {
				return nil, fmt.Errorf("TLS handshake: %w", err)
			}
			_, err = tc.Write(frameHeader)
			return tc, err
		}},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conns <- holdJunkConn(mallory, bobTCP, c.name, c.setup)
		}()
	}

	// Chat through it all.
	chatStart := time.Now()
	for seq := 0; seq < b.n; seq++ {
		b.send(t, seq, seq+1)
		time.Sleep(floodFor / time.Duration(b.n))
	}
	chatTook := time.Since(chatStart)
	wg.Wait()
	close(conns)
	if floodErr != nil {
		t.Fatalf("flooding from %s: %v", mallory.Hostname, floodErr)
	}

	for r := range conns {
		var ne net.Error
		switch {
		case errors.As(r.err, &ne) && ne.Timeout():
			t.Errorf("%s: connection to bob still open after %v (%d bytes read)", r.name, r.after.Round(time.Millisecond), r.bytes)
		case r.err != nil && strings.HasPrefix(r.err.Error(), "setup:"):
			t.Errorf("%s: %v", r.name, r.err)
		default:
			t.Logf("%s: closed by bob after %v (%d bytes read; %v)", r.name, r.after.Round(time.Millisecond), r.bytes, r.err)
		}
	}
	if bob.Exited() {
		t.Fatalf("bob exited under the flood: %s", bob.exitDesc())
	}
	b.waitReceived(t, alice, b.n, faultTimeout)
	b.waitReceived(t, bob, b.n, faultTimeout)
	for _, pr := range [][2]*Node{{alice, bob}, {bob, alice}} {
		b.waitDelivered(t, pr[0], pr[1], faultTimeout)
	}
	waitNoPending(t, alice, faultTimeout)
	waitNoPending(t, bob, faultTimeout)
	shown, dups := 0, 0
	for _, n := range []*Node{alice, bob} {
		s, d := b.check(t, n)
		shown, dups = shown+s, dups+d
	}

	after := dropped(t, bob)
	if grew := after["malformed"] + after["overrun"] - before["malformed"] - before["overrun"]; grew <= 0 {
		t.Errorf("bob: after %d junk datagrams, dropped went from %v to %v: want malformed (or overrun) up", floodSent, before, after)
	}
	mark := bob.Mark()
	bob.Send(t, "/peers")
	ev := bob.WaitFrom(t, mark, "peers event", eventTimeout, is("peers"))
	if list, ok := ev["peers"].([]any); !ok || len(list) != 1 {
		t.Errorf("bob should list alice alone after the raw connections: %s", clip(ev.String(), 1000))
	}
	checkEcho(t, alice, "udp", "bob", "after-flood", bob)

	q := append(latencies(quiet, bob), latencies(quiet, alice)...)
	f := append(latencies(b, bob), latencies(b, alice)...)
	t.Logf("summary: flood of %d datagrams (%d refused) in %v; chat of %d messages over %v; shown %d (%d duplicates); bob dropped before %v, after %v; chat latency p50 quiet %v (%d), under flood %v (%d)",
		floodSent, floodErrs, floodTook.Round(time.Millisecond), 2*b.n, chatTook.Round(time.Millisecond), shown, dups,
		before, after, p50(q).Round(10*time.Microsecond), len(q), p50(f).Round(10*time.Microsecond), len(f))
	noPanics(t, alice, bob)
}

// TestFaultQuitTiming measures how long leaving takes on a healthy LAN: a
// last message, then /quit (it must still arrive); end of input alone.
func TestFaultQuitTiming(t *testing.T) {
	lan := newLAN(t, 3)
	alice := startNode(t, lan.Host(1), "--name", "alice")
	bob := startNode(t, lan.Host(2), "--name", "bob")
	carol := startNode(t, lan.Host(3), "--name", "carol")
	meshUp(t, alice, bob, carol)
	tag := "quit-" + nonce()
	const limit = 5 * time.Second

	quit := func(n *Node, how string, others ...*Node) time.Duration {
		t.Helper()
		marks := map[*Node]int{}
		for _, o := range others {
			marks[o] = o.Mark()
		}
		last := fmt.Sprintf("%s last words of %s", tag, n.Name)
		if len(others) > 0 {
			n.Send(t, last)
		}
		start := time.Now()
		if how == "/quit" {
			n.Send(t, "/quit")
		}
		n.Quit(t)
		took := time.Since(start)
		if took > limit {
			t.Errorf("%s: leaving with %s took %v, over %v", n.Label, how, took.Round(time.Millisecond), limit)
		}
		n.Never(t, 0, "error on leaving", is("error"))
		for _, o := range others {
			o.WaitFrom(t, marks[o], "the last message of "+n.Label, eventTimeout, is("chat", "id", n.ID, "text", last))
			ev := o.WaitFrom(t, marks[o], "peer_down for "+n.Label, eventTimeout, is("peer_down", "id", n.ID))
			if ev.Bool("reconnecting") {
				t.Errorf("%s: %s left gracefully, but reconnecting=true: %v", o.Label, n.Label, ev)
			}
			if ev.Str("reason") != "quit" {
				t.Logf("%s: peer_down reason for %s: %q", o.Label, n.Label, ev.Str("reason"))
			}
		}
		return took
	}
	ta := quit(alice, "/quit", bob, carol)
	tb := quit(bob, "end of input", carol)
	tc := quit(carol, "end of input")
	t.Logf("summary: leaving took alice (last message, /quit, 2 peers) %v, bob (last message, end of input, 1 peer) %v, carol (alone) %v",
		ta.Round(time.Millisecond), tb.Round(time.Millisecond), tc.Round(time.Millisecond))
}
