// Command lanchat-bench measures lanchat against raw sockets measured in
// the same run (package bench). It is its own program so that the lanchat
// binary, whose node processes it measures, does not carry it; `lanchat
// bench` runs it from beside lanchat.
package main

import (
	"os"
	"runtime"
	"runtime/debug"

	"lanchat/bench"
	"lanchat/peer"
)

func main() {
	runtime.MemProfileRate = 0
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(peer.GCPercent) // as lanchat, for the in-process nodes
	}
	os.Exit(bench.Main(os.Args[1:], os.Stdout, os.Stderr))
}
