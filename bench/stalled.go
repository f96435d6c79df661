package bench

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"syscall"
	"time"

	"lanchat/bench/baseline"
	"lanchat/peer"
)

// stalledFill bounds what is sent to the stopped peer before measuring,
// in messages of 16,000 bytes: it is sent until the write queue to it
// holds half its limit (its writes have stalled and its messages wait in
// the outbox), which takes more than the kernel's socket buffers hold.
// On loopback those grow with the traffic (tcp_rmem's maximum is 32 MiB
// here), so a fixed amount sometimes all fitted in them.
const stalledFill = 6000

// stalledPeer measures chat latency from a to a healthy peer b while a
// third peer, a node process, is running, then while it is stopped with
// SIGSTOP (a closed laptop lid) after a has sent it more than its path
// holds: one slow peer must not delay the others.
func stalledPeer(n, size int) (running, stopped []time.Duration, err error) {
	ns, err := pair(baseline.Loopback, false)
	if err != nil {
		return nil, nil, err
	}
	defer stopAll(ns)
	a, b := ns[1], ns[0]
	dir, err := os.MkdirTemp("", "lanchat-bench-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	c, err := startProc(dir, "sleeper", local, "--peer", a.addr())
	if err != nil {
		return nil, nil, err
	}
	defer c.quit()
	if _, err := c.wait("peer_up", 10*time.Second); err != nil {
		return nil, nil, err
	}
	if err := waitUDP([]*node{a}, 10*time.Second); err != nil {
		return nil, nil, err
	}
	if running, err = chatLatency(a, b, n, size); err != nil {
		return nil, nil, err
	}
	if err := c.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return nil, nil, err
	}
	defer c.cmd.Process.Signal(syscall.SIGCONT)
	big := fill(16000)
	outboxFull := false
	for i := 0; i < stalledFill && !(i%100 == 0 && queueFull(a, c.id)); i++ {
		if _, err := a.Tell(c.id, big); errors.Is(err, peer.ErrOutboxFull) {
			// Full already: what waits for it is bounded. The socket
			// buffers (up to tcp_rmem's maximum on the stopped side)
			// may have taken every message the outbox lets go, so that
			// the write queue never fills: the path is stalled all the
			// same, with all a may send to it in flight.
			outboxFull = true
			break
		} else if err != nil {
			return nil, nil, fmt.Errorf("filling the stopped peer's path: %w", err)
		}
	}
	// The queue to it is full once a has tried to send beyond it.
	deadline := time.Now().Add(10 * time.Second)
	for !outboxFull && !queueFull(a, c.id) {
		if time.Now().After(deadline) {
			return nil, nil, errors.New("the stopped peer's queue never filled")
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopped, err = chatLatency(a, b, n, size)
	return running, stopped, err
}

// queueFull reports whether a holds at least half its write-queue limit
// for the peer id.
func queueFull(a *node, id string) bool {
	ps := a.Peers()
	i := slices.IndexFunc(ps, func(p peer.Info) bool { return p.ID == id })
	return i >= 0 && ps[i].Queued >= 2<<20
}
