package peer

import (
	"context"
	"strings"
	"sync"
)

// Given is a node given by hand: the addresses to try, in order, and the
// id it must prove ("" for any).
type Given struct {
	// What names it in messages, e.g. "peers file F line 3".
	What  string
	ID    string
	Addrs []string
}

// key tells entries apart: the same node at the same addresses is the
// same entry, whatever line it moved to.
func (g Given) key() string { return g.ID + "@" + strings.Join(g.Addrs, ",") }

// Givens dials the nodes of a list that can change (the peers file): one
// ConnectGiven loop per entry, started when the entry appears and
// stopped when it goes. A connection already made stays when its entry
// goes (the peer is then reconnected like any manual peer). Safe for
// concurrent use; everything stops with the ctx given to NewGivens.
type Givens struct {
	n   *Node
	ctx context.Context

	mu sync.Mutex // protects following
	// running holds the loops started, by entry.
	running map[string]context.CancelFunc
}

// NewGivens makes an empty list whose loops run until ctx ends.
func (n *Node) NewGivens(ctx context.Context) *Givens {
	return &Givens{n: n, ctx: ctx, running: map[string]context.CancelFunc{}}
}

// Set makes list the entries: the loops of new entries start, those of
// entries no longer listed stop. An entry with this node's id is skipped.
func (g *Givens) Set(list []Given) {
	g.mu.Lock()
	want := map[string]Given{}
	for _, e := range list {
		// A list shared by several machines names this node too.
		if len(e.Addrs) > 0 && e.ID != g.n.id {
			want[e.key()] = e
		}
	}
	for k, cancel := range g.running {
		if _, ok := want[k]; !ok {
			cancel()
			delete(g.running, k)
		}
	}
	type start struct {
		ctx context.Context
		e   Given
	}
	var starts []start
	for k, e := range want {
		if _, ok := g.running[k]; ok {
			continue
		}
		ctx, cancel := context.WithCancel(g.ctx)
		g.running[k] = cancel
		starts = append(starts, start{ctx, e})
	}
	g.mu.Unlock()
	for _, s := range starts {
		g.n.ConnectGiven(s.ctx, s.e.What, s.e.Addrs, s.e.ID)
	}
}

// Len is how many entries are being dialled or were connected.
func (g *Givens) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.running)
}
