package store

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Benchmarks write to os.TempDir(): run them where it is the real disk
// (TMPDIR=/some/dir), since fsync on tmpfs costs nothing.

var words = strings.Fields("the quick brown fox jumps over lazy dog meeting lunch coffee build release deploy review merge branch test fails again tomorrow morning Alice Bob Carol printer network server laptop déjà vu café naïve Über straße hello world ok thanks see you later maybe")

func chatText(r *rand.Rand, n int) string {
	var b strings.Builder
	for b.Len() < n {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(words[r.IntN(len(words))])
	}
	return b.String()
}

func benchStore(b *testing.B, o Options) *Store {
	b.Helper()
	o.PeerMessages, o.TotalMessages = 1<<30, 1<<30
	o.PeerBytes, o.TotalBytes = 1<<40, 1<<40
	s, err := Open(filepath.Join(b.TempDir(), "s.db"), o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkAppendDurable: durable group-commit throughput. 16 appenders,
// each with up to 256 messages whose commit it has not waited for yet (as
// a sender that shows "sent" when durable but does not stop typing).
// 64-byte texts, to one peer each, with history.
func BenchmarkAppendDurable(b *testing.B) {
	for _, window := range []int{1, 256} {
		b.Run(fmt.Sprintf("window=%d", window), func(b *testing.B) {
			s := benchStore(b, Options{})
			const appenders = 16
			texts := make([]string, 1024)
			r := rand.New(rand.NewPCG(1, 2))
			for i := range texts {
				texts[i] = chatText(r, 64)
			}
			var wg sync.WaitGroup
			per := (b.N + appenders - 1) / appenders
			ids := make([]string, appenders)
			for g := range ids {
				ids[g] = pid(g)
			}
			b.ResetTimer()
			start := time.Now()
			for g := range appenders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var pend []*Commit
					for i := range per {
						c, err := s.Append(&Out{To: []Recipient{{ID: ids[g]}}, Direct: true, Text: texts[(g*per+i)%len(texts)]})
						if err != nil {
							b.Error(err)
							return
						}
						pend = append(pend, c)
						if len(pend) >= window {
							if err := pend[0].Wait(context.Background()); err != nil {
								b.Error(err)
								return
							}
							pend = append(pend[:0], pend[1:]...)
						}
					}
					for _, c := range pend {
						if err := c.Wait(context.Background()); err != nil {
							b.Error(err)
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(per*appenders)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}

// BenchmarkAppendLatency: one durable append at a time, nobody else
// writing (sender side); Receive is the receiver's side of the same.
func BenchmarkAppendLatency(b *testing.B) {
	for _, side := range []string{"append", "receive"} {
		b.Run(side, func(b *testing.B) {
			s := benchStore(b, Options{})
			r := rand.New(rand.NewPCG(3, 4))
			ds := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				text := chatText(r, 64)
				t0 := time.Now()
				var c *Commit
				var err error
				if side == "append" {
					c, err = s.Append(&Out{To: []Recipient{{ID: pid(1)}}, Direct: true, Text: text})
				} else {
					_, c, err = s.Receive(In{From: pid(1), Epoch: 1, ID: uint64(i + 1), Text: text})
				}
				if err == nil {
					err = c.Wait(context.Background())
				}
				if err != nil {
					b.Fatal(err)
				}
				ds = append(ds, time.Since(t0))
			}
			slices.Sort(ds)
			b.ReportMetric(float64(ds[len(ds)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(ds[len(ds)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// history builds (once per size and process) a store of n received
// lines of about 64 bytes from 32 peers, and returns its path.
var (
	historyMu    sync.Mutex
	historyPaths = map[int]string{}
)

func history(b *testing.B, n int) string {
	historyMu.Lock()
	defer historyMu.Unlock()
	if p := historyPaths[n]; p != "" {
		return p
	}
	dir, err := os.MkdirTemp("", "storebench")
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, "s.db")
	s, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(5, 6))
	var last *Commit
	for i := range n {
		_, c, err := s.Receive(In{From: pid(i % 32), Name: "peer", Epoch: 1, ID: uint64(i + 1), Text: chatText(r, 64), Sent: time.Now()})
		if err != nil {
			b.Fatal(err)
		}
		if i%50_000 == 49_999 {
			c.Wait(context.Background())
		}
		last = c
	}
	if err := last.Wait(context.Background()); err != nil {
		b.Fatal(err)
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	historyPaths[n] = path
	return path
}

// large reports whether the 1M-line cases run: when -bench names them
// (1M) or LANCHAT_STORE_BENCH_1M is set; building that history takes a
// while.
func large() bool {
	f := flag.Lookup("test.bench")
	return os.Getenv("LANCHAT_STORE_BENCH_1M") != "" || (f != nil && strings.Contains(f.Value.String(), "1M"))
}

func sizes(b *testing.B) []int {
	if large() {
		return []int{100_000, 1_000_000}
	}
	return []int{100_000}
}

func sizeName(n int) string {
	if n >= 1_000_000 {
		return fmt.Sprintf("%dM", n/1_000_000)
	}
	return fmt.Sprintf("%dk", n/1000)
}

// BenchmarkSearch: /search over a large history: a word that is nowhere
// (the whole history is scanned), a rare phrase, and common words with the
// console's limit.
func BenchmarkSearch(b *testing.B) {
	for _, n := range sizes(b) {
		path := history(b, n)
		s, err := Open(path, Options{})
		if err != nil {
			b.Fatal(err)
		}
		for _, q := range []struct{ name, text string }{{"nowhere", "zzqx"}, {"phrase", "printer network server"}, {"common", "lazy DOG"}} {
			b.Run(sizeName(n)+"/"+q.name, func(b *testing.B) {
				for range b.N {
					if _, err := s.Search("", q.text, 50); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		s.Close()
	}
}

// BenchmarkOpen: Open and Close of a store with a large history.
func BenchmarkOpen(b *testing.B) {
	for _, n := range sizes(b) {
		path := history(b, n)
		b.Run(sizeName(n), func(b *testing.B) {
			for range b.N {
				s, err := Open(path, Options{})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.History("", 50); err != nil {
					b.Fatal(err)
				}
				s.Close()
			}
		})
	}
}
