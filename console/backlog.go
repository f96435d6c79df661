package console

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"lanchat/peer"
)

// backlogQuiet is how long after the last late message a burst of them
// is summed up.
const backlogQuiet = 2 * time.Second

// backlog counts the messages written while this node was off (before
// it started) that arrive, waiting for it in the peers' outboxes, and
// says how many once they stop coming: "12 messages written while you
// were away arrived (bob 10, carol 2)".
type backlog struct {
	mu     sync.Mutex // protects following
	start  time.Time
	counts map[string]int // by sender name
	timer  *time.Timer
}

// note counts e if it was written before this node started.
func (c *Console) noteBacklog(e peer.Chat) {
	b := &c.backlog
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.start.IsZero() || e.Sent.IsZero() || !e.Sent.Before(b.start) {
		return
	}
	if b.counts == nil {
		b.counts = map[string]int{}
	}
	b.counts[e.From.Name]++
	if b.timer == nil {
		b.timer = time.AfterFunc(backlogQuiet, c.sumBacklog)
	} else {
		b.timer.Reset(backlogQuiet)
	}
}

// sumBacklog says how many late messages arrived, and starts counting
// afresh.
func (c *Console) sumBacklog() {
	b := &c.backlog
	b.mu.Lock()
	counts := b.counts
	b.counts, b.timer = nil, nil
	b.mu.Unlock()
	total := 0
	var parts []string
	for name, n := range counts {
		total += n
		parts = append(parts, fmt.Sprintf("%s %d", name, n))
	}
	if total == 0 {
		return
	}
	slices.Sort(parts)
	c.notice(fmt.Sprintf("%d messages written while you were away arrived (%s)", total, strings.Join(parts, ", ")))
}

// stopBacklog stops the pending summary (the console is leaving).
func (c *Console) stopBacklog() {
	b := &c.backlog
	b.mu.Lock()
	if b.timer != nil {
		b.timer.Stop()
	}
	b.mu.Unlock()
}
