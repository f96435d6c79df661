package bench

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lanchat/bench/baseline"
	"lanchat/store"
)

// The durable rows run, at a small scale: a few hundred messages between
// nodes with stores, a history of a few thousand lines.
func TestDurableFiguresRun(t *testing.T) {
	r := &report{}
	o := options{duration: 20 * time.Millisecond, samples: 40, size: 64}
	if err := durableFigures(r, o, 3000, false, func(string) {}); err != nil {
		t.Fatal(err)
	}
	want := []string{"fdatasync", "one store commit", "durable chat one-way latency p50", "durable chat one-way latency p99",
		"durable chat throughput", "until the sender's sent event", "until acknowledged", "written through the store", "open + first /history", "a rare word", "a common word"}
	for _, w := range want {
		found := false
		for _, x := range r.rows {
			if strings.Contains(x.Measure, w) {
				found = true
				if x.Value <= 0 {
					t.Errorf("row %q: value %v", x.Measure, x.Value)
				}
			}
		}
		if !found {
			t.Errorf("no row for %q", w)
		}
	}
	if t.Failed() {
		for _, x := range r.rows {
			t.Logf("%s: %.4g %s", x.Measure, x.Value, x.Unit)
		}
	}
}

func TestSkipDurableFlag(t *testing.T) {
	o, err := parse([]string{"--skip-durable"}, nil)
	if err != nil || !o.skipDurable {
		t.Fatalf("parse(--skip-durable) = %+v, %v", o, err)
	}
}

// BenchmarkDurableChat: one op is one 64-byte chat message from a node
// with a store to another, stored on both sides (for profiling the durable
// send and receive paths: -cpuprofile). The stores go in $TMPDIR: on a
// disk, not tmpfs.
func BenchmarkDurableChat(b *testing.B) {
	dp, err := newDurablePair(baseline.Loopback)
	if err != nil {
		b.Fatal(err)
	}
	defer dp.close()
	b.ReportAllocs()
	b.ResetTimer()
	if _, err := chatThroughput(dp.ns[1], dp.ns[0], b.N, 64); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkHistorySearch: one op is a /search of the rare word over the
// bench's history of a million lines (built once, in $TMPDIR), as the
// "/search over 1M lines" row measures it: for profiling the search.
func BenchmarkHistorySearch(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "store.db")
	if err := buildHistory(path, 1_000_000); err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(path, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	for _, w := range []string{rareWord, commonWord} {
		b.Run(w, func(b *testing.B) {
			for range b.N {
				if _, err := st.Search("", w, 100); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
