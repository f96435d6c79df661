package transfer

import (
	"runtime"
	"testing"
)

// Each data goroutine adds a processor while it runs, up to
// maxSpareProcs, and the count goes back once every one is released,
// whatever the order, and not before.
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
	full := runtime.GOMAXPROCS(0)
	rel[0]()
	rel[0]() // a second call changes nothing
	for i := len(rel) - 1; i > 1; i-- {
		rel[i]()
	}
	// Not while one still runs: each change stops the world.
	if got := runtime.GOMAXPROCS(0); got != full {
		t.Fatalf("GOMAXPROCS is %d with one data goroutine left, want %d (unchanged)", got, full)
	}
	rel[1]()
	if got := runtime.GOMAXPROCS(0); got != base {
		t.Fatalf("GOMAXPROCS is %d after every release, want %d", got, base)
	}
	// The next transfer starts from the base again.
	r := addProc()
	if got := runtime.GOMAXPROCS(0); got != base+1 {
		t.Fatalf("GOMAXPROCS is %d with one data goroutine after all were released, want %d", got, base+1)
	}
	r()
}
