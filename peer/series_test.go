package peer

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

func TestEchoSeries(t *testing.T) {
	a, b := startNode(t, "alice"), startNode(t, "bob")
	connected(t, a, b)
	payload := []byte("ping")
	for _, via := range []string{TCP, UDP} {
		var got []SeriesReply
		r, err := a.EchoSeries(context.Background(), "bob", via, payload, 300, func(r SeriesReply) { got = append(got, r) })
		if err != nil {
			t.Fatalf("series over %s: %v", via, err)
		}
		if r.Sent != 300 || len(r.RTTs) != 300 || r.Mismatched != 0 || r.Peer.ID != b.ID() || r.Transport != via {
			t.Fatalf("series over %s: sent %d, %d back, %d changed, %+v", via, r.Sent, len(r.RTTs), r.Mismatched, r.Peer)
		}
		if len(got) != 300 {
			t.Fatalf("series over %s: each saw %d replies", via, len(got))
		}
		for i, g := range got {
			if g.Seq != i+1 || g.Err != nil || !g.OK || string(g.Got) != "ping" || g.RTT <= 0 || g.RTT != r.RTTs[i] {
				t.Fatalf("series over %s: reply %d is %+v", via, i, g)
			}
		}
	}
	// Without each, only the round trips are kept.
	r, err := a.EchoSeries(context.Background(), b.ID()[:6], UDP, nil, 5, nil)
	if err != nil || len(r.RTTs) != 5 {
		t.Fatalf("series without each: %d back, %v", len(r.RTTs), err)
	}
	// Every pending entry is gone once a series ends.
	a.pmu.Lock()
	left := len(a.pending)
	a.pmu.Unlock()
	if left != 0 {
		t.Fatalf("%d requests still pending", left)
	}
}

func TestEchoSeriesRefusesBadArguments(t *testing.T) {
	a, b := startNode(t, "alice"), startNode(t, "bob")
	connected(t, a, b)
	ctx := context.Background()
	for _, tc := range []struct {
		name, peer string
		count      int
		want       error
	}{
		{"no echoes", "bob", 0, nil},
		{"too many", "bob", MaxSeries + 1, nil},
		{"unknown peer", "nobody", 3, ErrUnknownPeer},
	} {
		_, err := a.EchoSeries(ctx, tc.peer, TCP, []byte("x"), tc.count, nil)
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: err = %v", tc.name, err)
		}
	}
}

// A series ends, with what it measured, when the peer goes away in the
// middle of it or the caller gives up.
func TestEchoSeriesEndsEarly(t *testing.T) {
	a, b := startNode(t, "alice"), startNode(t, "bob")
	connected(t, a, b)
	go func() {
		time.Sleep(50 * time.Millisecond)
		b.dropConnections()
	}()
	r, err := a.EchoSeries(context.Background(), "bob", TCP, []byte("x"), MaxSeries, nil)
	if err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("peer gone: err = %v", err)
	}
	if r.Sent == 0 || r.Sent == MaxSeries || len(r.RTTs) > r.Sent || len(r.RTTs) < r.Sent-1 {
		t.Fatalf("peer gone: sent %d, %d back", r.Sent, len(r.RTTs))
	}

	next(t, a, func(e PeerUp) bool { return e.Peer.ID == b.ID() }) // reconnected
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	r, err = a.EchoSeries(ctx, "bob", UDP, []byte("x"), MaxSeries, nil)
	// The echo in flight when the caller stopped is not counted: every
	// echo counted as sent came back.
	if !errors.Is(err, context.DeadlineExceeded) || len(r.RTTs) != r.Sent {
		t.Fatalf("cancelled: sent %d, %d back, %v", r.Sent, len(r.RTTs), err)
	}
}

// Over UDP a lost echo is reported, and the series goes on.
func TestEchoSeriesCountsLoss(t *testing.T) {
	old := seriesUDPWait
	seriesUDPWait = 100 * time.Millisecond
	defer func() { seriesUDPWait = old }()
	a, b := startNode(t, "alice"), startNode(t, "bob")
	connected(t, a, b)
	// Point alice's datagrams for bob at a socket that never answers.
	hole, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer hole.Close()
	p, err := a.lookupLive("bob")
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.udpAddr = hole.LocalAddr().(*net.UDPAddr).AddrPort()
	p.mu.Unlock()
	var got []SeriesReply
	r, err := a.EchoSeries(context.Background(), "bob", UDP, []byte("x"), 2, func(r SeriesReply) { got = append(got, r) })
	if err != nil {
		t.Fatal(err)
	}
	// Bob's next probe may repair the address; the first echo is lost.
	if r.Sent != 2 || len(got) != 2 || got[0].Err == nil || got[0].Seq != 1 || len(r.RTTs) > 1 {
		t.Fatalf("sent %d, %d back, replies %+v", r.Sent, len(r.RTTs), got)
	}
}
