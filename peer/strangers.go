package peer

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"lanchat/identity"
)

// Bounds on connections not yet authenticated, as sshd's MaxStartups: a
// flood of connections that never finish their handshake cannot use up
// the node's memory or file descriptors. Each has HandshakeTimeout.
const (
	// maxStrangers is how many handshakes of accepted connections may
	// be under way at once; maxStrangersPerHost from one address, but
	// for loopback: this machine is not a stranger on the LAN, and
	// several nodes on it may all be joining at once.
	maxStrangers        = 128
	maxStrangersPerHost = 16
)

// admitStranger counts an accepted connection's handshake, or refuses it
// at once when over a bound. It reports whether it was admitted.
func (n *Node) admitStranger(from netip.Addr) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.handshaking >= maxStrangers || (n.accepting[from] >= maxStrangersPerHost && !from.IsLoopback()) {
		return false
	}
	n.handshaking++
	n.accepting[from]++
	return true
}

// strangerDone ends what admitStranger counted.
func (n *Node) strangerDone(from netip.Addr) {
	n.mu.Lock()
	n.handshaking--
	if n.accepting[from]--; n.accepting[from] <= 0 {
		delete(n.accepting, from)
	}
	n.mu.Unlock()
}

// rateLog lets a few lines of one kind through per window and counts the
// rest, so that a flood of refused connections never floods the log (nor
// the prompt it is shown above).
type rateLog struct {
	log    *slog.Logger
	every  time.Duration
	burst  int
	mu     sync.Mutex // protects following
	start  time.Time
	n      int
	hidden int
}

func newRateLog(l *slog.Logger, burst int, every time.Duration) *rateLog {
	return &rateLog{log: l, burst: burst, every: every}
}

// Log writes the line at level, unless burst lines went out in this
// window already; the first line of a new window says how many were left
// out.
func (r *rateLog) Log(level slog.Level, msg string, args ...any) {
	now := time.Now()
	r.mu.Lock()
	if now.Sub(r.start) >= r.every {
		if r.hidden > 0 {
			args = append(args, "not_logged_since", r.start.Format(time.TimeOnly), "lines_not_logged", r.hidden)
		}
		r.start, r.n, r.hidden = now, 0, 0
	}
	ok := r.n < r.burst
	if ok {
		r.n++
	} else {
		r.hidden++
	}
	r.mu.Unlock()
	if ok {
		r.log.Log(context.Background(), level, msg, args...)
	}
}

// twinOf reports the address of a live connection to node id from
// another address than from, of another process than session (0: any):
// two machines sharing one identity. A new process from the same address
// is a restart, and a silent old connection is most likely dead: neither
// is a twin.
func (n *Node) twinOf(id string, session uint64, from netip.Addr) (string, bool) {
	n.mu.Lock()
	old := n.links[id]
	n.mu.Unlock()
	if old == nil || old.session == session || old.tcpAddr.Addr() == from {
		return "", false
	}
	if time.Since(time.Unix(0, old.lastHeard.Load())) >= UnreachableAfter {
		return "", false
	}
	return old.tcpAddr.Addr().String(), true
}

// refusedAsTwin records that the node id refused this node for having
// its identity connected from elsewhere: it is not dialled again for a
// while, and the user is told once.
func (n *Node) refusedAsTwin(id, by, reason string) {
	n.mu.Lock()
	if len(n.twinRefused) >= 256 {
		clear(n.twinRefused)
	}
	n.twinRefused[id] = time.Now()
	n.mu.Unlock()
	if !n.selfTwin.Swap(true) {
		n.emit(Warning{Text: fmt.Sprintf("SAME IDENTITY TWICE: %s refused this node: %s, so another machine uses this node's key (%s), a copied key file? "+
			"Each machine needs its own key (delete the copy's identity file to make a new one)", by, reason, ShortID(n.id))})
	}
}

// twinRefusedLocked reports whether id refused this node as a twin lately.
func (n *Node) twinRefusedLocked(id string) bool {
	at, ok := n.twinRefused[id]
	return ok && time.Since(at) < twinWarnEvery
}

// twinWarnEvery bounds how often the same twin is reported.
const twinWarnEvery = 10 * time.Minute

// warnTwin tells the user, once in a while per id, that two processes
// present the same identity.
func (n *Node) warnTwin(id, text string) {
	n.mu.Lock()
	last, seen := n.twinWarned[id]
	fresh := !seen || time.Since(last) >= twinWarnEvery
	if fresh {
		if len(n.twinWarned) >= 256 {
			clear(n.twinWarned) // bounded; at worst a warning is repeated
		}
		n.twinWarned[id] = time.Now()
	}
	n.mu.Unlock()
	if fresh {
		n.emit(Warning{Text: text})
	} else {
		n.log.Debug("same identity from two places again", "id", ShortID(id))
	}
}

// twinText words a twin for the user.
func twinText(id, keptAddr string, refused net.Addr) string {
	return fmt.Sprintf("SAME IDENTITY TWICE: node %s is connected from %s, and another process with the same key connects from %v "+
		"(a copied key file?). Keeping the first, refusing the other; each machine needs its own key (delete the copy's identity file to make a new one)",
		identity.Grouped(id), keptAddr, refused)
}
