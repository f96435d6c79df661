package discovery

import (
	"container/heap"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// simLAN runs nodes' pacers on simulated time: a beacon reaches every
// other node after latency; with connect, a node that hears another
// connects to it after connectAfter (both then have a peer), and the two
// lowest ids of a group keep watch. It returns when each beacon was sent.
type simLAN struct {
	nodes        int
	latency      time.Duration
	connect      bool
	connectAfter time.Duration
	// startedOver is how long the nodes take to start, one after another.
	startedOver time.Duration
}

type simEvent struct {
	at   time.Duration
	node int
	kind int // 0: decide, 1: hear, 2: connected
	from int
}

type simQueue []simEvent

func (q simQueue) Len() int           { return len(q) }
func (q simQueue) Less(i, j int) bool { return q[i].at < q[j].at }
func (q simQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *simQueue) Push(x any)        { *q = append(*q, x.(simEvent)) }
func (q *simQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

func (s simLAN) run(until time.Duration, seed uint64) []time.Duration {
	rnd := rand.New(rand.NewPCG(seed, uint64(s.nodes)))
	start := time.Unix(1e9, 0)
	ps := make([]*pacer, s.nodes)
	lastHeard := make([]time.Time, s.nodes)
	// heardFrom: when each node last heard each other.
	heardFrom := make([]map[int]time.Duration, s.nodes)
	for i := range heardFrom {
		heardFrom[i] = map[int]time.Duration{}
	}
	group := make([]int, s.nodes) // union-find of connections
	for i := range group {
		group[i] = i
	}
	find := func(i int) int {
		for group[i] != i {
			i = group[i]
		}
		return i
	}
	connected := make([]bool, s.nodes)
	var q simQueue
	for i := range ps {
		ps[i] = &pacer{gap: BeaconGap, startMin: BeaconStartMin, spread: BeaconStartSpread, aloneFirst: BeaconAloneFirst,
			everyMin: BeaconEveryMin, everyMax: BeaconEveryMax, rnd: rnd}
		began := time.Duration(0)
		if s.nodes > 1 {
			began = s.startedOver * time.Duration(i) / time.Duration(s.nodes)
		}
		heap.Push(&q, simEvent{at: began + ps[i].restart(), node: i})
	}
	// watches: among the lowest two ids of its group.
	watches := func(i int) bool {
		lower := 0
		for j := 0; j < i; j++ {
			if find(j) == find(i) {
				lower++
			}
		}
		return lower < 2
	}
	var sent []time.Duration
	for q.Len() > 0 {
		e := heap.Pop(&q).(simEvent)
		if e.at > until {
			break
		}
		now := start.Add(e.at)
		switch e.kind {
		case 0:
			senders := 0
			for _, at := range heardFrom[e.node] {
				if e.at-at < BeaconEveryMax {
					senders++
				}
			}
			send, wait := ps[e.node].decide(now, lastHeard[e.node], senders, !connected[e.node], watches(e.node))
			if send {
				sent = append(sent, e.at)
				for j := range ps {
					if j != e.node {
						heap.Push(&q, simEvent{at: e.at + s.latency, node: j, kind: 1, from: e.node})
					}
				}
			}
			heap.Push(&q, simEvent{at: e.at + wait, node: e.node})
		case 1:
			lastHeard[e.node] = now
			heardFrom[e.node][e.from] = e.at
			if s.connect && find(e.node) != find(e.from) {
				heap.Push(&q, simEvent{at: e.at + s.connectAfter, node: e.node, kind: 2, from: e.from})
			}
		case 2:
			// Joining one member joins its whole group (peer lists).
			if a, b := find(e.node), find(e.from); a != b {
				group[max(a, b)] = min(a, b)
			}
			connected[e.node], connected[e.from] = true, true
		}
	}
	return sent
}

// maxInWindow is the most sends in any window of length w.
func maxInWindow(sent []time.Duration, w time.Duration) int {
	best := 0
	for i := range sent {
		j := i
		for j < len(sent) && sent[j]-sent[i] < w {
			j++
		}
		best = max(best, j-i)
	}
	return best
}

// TestPaceBound checks the rate bound on simulated LANs: beacons come at
// least BeaconGap apart but for two nodes deciding within the latency of
// each other, whatever the number of nodes.
func TestPaceBound(t *testing.T) {
	tests := []struct {
		name string
		lan  simLAN
		// until is the simulated time; within it at most maxTotal
		// beacons, at most maxWindow in any BeaconGap and max10 in any
		// 10 gaps.
		until     time.Duration
		maxTotal  int
		maxWindow int
		max10     int
	}{
		// 32 nodes started within a second that connect to what they
		// hear: the first beacons are heard, the rest find peers and
		// stay quiet; then the group's two watchers, every 30-60 s.
		{"32 start together and meet", simLAN{nodes: 32, latency: 5 * time.Millisecond, connect: true,
			connectAfter: 400 * time.Millisecond, startedOver: time.Second}, 10 * time.Minute, 10*60/30*2 + 6, 2, 4},
		// The same on a loaded machine, where a beacon is read 100 ms
		// after it was sent.
		{"32 start together, slow to hear", simLAN{nodes: 32, latency: 100 * time.Millisecond, connect: true,
			connectAfter: 400 * time.Millisecond, startedOver: time.Second}, 10 * time.Minute, 10*60/30*2 + 12, 6, 8},
		// 64 nodes that never connect (each is alone for ever): the
		// gap alone bounds them. Where beacons are read late, the
		// nodes that decide before the first of them is read add to
		// it in the first seconds, while none knows how many there are.
		{"64 alone", simLAN{nodes: 64, latency: 5 * time.Millisecond, startedOver: 2 * time.Second},
			10 * time.Minute, 10 * 60, 3, 15},
		{"64 alone, slow to hear", simLAN{nodes: 64, latency: 100 * time.Millisecond, startedOver: 2 * time.Second},
			10 * time.Minute, 10 * 60 * 11 / 10, 9, 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for run := 0; run < 20; run++ {
				sent := tt.lan.run(tt.until, uint64(run))
				slices.Sort(sent)
				total, window, w10 := len(sent), maxInWindow(sent, BeaconGap), maxInWindow(sent, 10*BeaconGap)
				if total > tt.maxTotal || window > tt.maxWindow || w10 > tt.max10 {
					t.Fatalf("run %d: %d beacons in %v (limit %d), up to %d in %v (limit %d), %d in %v (limit %d); first: %v",
						run, total, tt.until, tt.maxTotal, window, BeaconGap, tt.maxWindow, w10, 10*BeaconGap, tt.max10, sent[:min(len(sent), 20)])
				}
				if run == 0 {
					t.Logf("%d beacons in %v, at most %d in any %v, %d in any %v", total, tt.until, window, BeaconGap, w10, 10*BeaconGap)
				}
			}
		})
	}
}

func TestPaceStart(t *testing.T) {
	p := &pacer{gap: time.Second, startMin: 150 * time.Millisecond, spread: 600 * time.Millisecond, aloneFirst: 2 * time.Second, everyMin: 30 * time.Second, everyMax: 60 * time.Second}
	now := time.Unix(1e9, 0)
	for range 100 {
		if w := p.restart(); w < 150*time.Millisecond || w >= 600*time.Millisecond {
			t.Fatalf("first wait %v, want from startMin to the spread", w)
		}
	}
	// Heard another just now: wait.
	if send, w := p.decide(now, now.Add(-100*time.Millisecond), 1, true, true); send || w < time.Second || w >= 2*time.Second {
		t.Fatalf("send %v wait %v after hearing one", send, w)
	}
	// Found peers meanwhile: the start beacon is not needed.
	if send, w := p.decide(now.Add(2*time.Second), now, 1, false, true); send || w < 30*time.Second {
		t.Fatalf("send %v wait %v with peers at start", send, w)
	}
	// Alone and quiet: send, then again sooner while alone.
	p.restart()
	later := now.Add(10 * time.Second)
	send, w := p.decide(later, now, 1, true, true)
	if !send || w < 2*time.Second || w > 3*time.Second {
		t.Fatalf("alone: send %v wait %v", send, w)
	}
	send, w = p.decide(later.Add(w), now, 1, true, true)
	if !send || w < 4*time.Second || w > 5*time.Second {
		t.Fatalf("alone, second: send %v wait %v", send, w)
	}
	// With peers, a node that does not keep watch stays quiet.
	if send, _ := p.decide(later.Add(time.Minute), now, 1, false, false); send {
		t.Fatal("sent without keeping watch")
	}
	if send, w := p.decide(later.Add(2*time.Minute), now, 1, false, true); !send || w < 30*time.Second || w > 60*time.Second {
		t.Fatalf("watching: send %v wait %v", send, w)
	}
}
