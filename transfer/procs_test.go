package transfer

import (
	"runtime"
	"testing"
)

// Each data goroutine adds a processor while it runs, up to
// maxSpareProcs, and the count goes back once every one is released,
// whatever the order.
func TestAddProc(t *testing.T) {
	base := runtime.GOMAXPROCS(0)
	var rel []func()
	for i := range maxSpareProcs + 2 {
		rel = append(rel, addProc())
		want := base + min(i+1, maxSpareProcs)
		if got := runtime.GOMAXPROCS(0); got != want {
			t.Fatalf("with %d data goroutines GOMAXPROCS is %d, want %d", i+1, got, want)
		}
	}
	rel[0]()
	rel[0]() // a second call changes nothing
	for i := len(rel) - 1; i > 0; i-- {
		rel[i]()
	}
	if got := runtime.GOMAXPROCS(0); got != base {
		t.Fatalf("GOMAXPROCS is %d after every release, want %d", got, base)
	}
}
