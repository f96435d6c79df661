package bench

import (
	"io"
	"testing"
	"time"

	"go.uber.org/goleak"

	"lanchat/bench/baseline"
	"lanchat/peer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSummarize(t *testing.T) {
	var s []time.Duration
	for i := 100; i >= 1; i-- {
		s = append(s, time.Duration(i))
	}
	got := summarize(s)
	if got.n != 100 || got.p50 != 50 || got.p99 != 99 || got.max != 100 {
		t.Fatalf("summary %+v", got)
	}
	if z := summarize(nil); z != (dist{}) {
		t.Fatalf("empty summary %+v", z)
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args  []string
		ok    bool
		nodes int
	}{
		{nil, true, 3},
		{[]string{"--nodes", "2,64"}, true, 2},
		{[]string{"--netns"}, true, 4},
		{[]string{"--nodes", "1"}, false, 0},
		{[]string{"--nodes", "x"}, false, 0},
		{[]string{"--size", "0"}, false, 0},
		{[]string{"--samples", "3"}, false, 0},
	}
	for _, tt := range tests {
		o, err := parse(tt.args, io.Discard)
		if (err == nil) != tt.ok || (tt.ok && len(o.nodes) != tt.nodes) {
			t.Errorf("parse(%v) = %+v, %v", tt.args, o.nodes, err)
		}
	}
}

// The measurements themselves run, on a small scale, against real nodes.
func TestMeasurementsRun(t *testing.T) {
	if _, err := baseline.TCPRoundTrips(baseline.Loopback, 20); err != nil {
		t.Fatal(err)
	}
	if _, err := baseline.UDPRoundTrips(baseline.Loopback, 20); err != nil {
		t.Fatal(err)
	}
	if _, err := baseline.Framed(baseline.Loopback, 1000, 64, false); err != nil {
		t.Fatal(err)
	}
	ns, _, err := mesh(3, false, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer stopAll(ns)
	if err := waitUDP(ns, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, via := range []string{peer.TCP, peer.UDP} {
		s, err := echoSeries(ns[0], ns[1], via, 20)
		if err != nil || len(s) != 20 {
			t.Fatalf("echo series over %s: %d samples, %v", via, len(s), err)
		}
		sc, err := echoCalls(ns[0], ns[1], via, 20)
		if err != nil || len(sc) != 20 {
			t.Fatalf("echo calls over %s: %d samples, %v", via, len(sc), err)
		}
		for i := range s {
			if s[i] <= 0 || sc[i] <= 0 {
				t.Fatalf("echo over %s: series %v, call %v", via, s[i], sc[i])
			}
		}
	}
	if _, err := chatThroughput(ns[0], ns[1], 2000, 64); err != nil {
		t.Fatal(err)
	}
	if lat, err := fanOut(ns, 3); err != nil || len(lat) != 6 {
		t.Fatalf("fan-out: %d samples, %v", len(lat), err)
	}
}
