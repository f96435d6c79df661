package peer

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"
)

// AddressBook keeps, per known node, the listening addresses it was
// reached at, so that it can be dialled again where no discovery finds
// it: after both ends restarted, or where multicast and broadcast do not
// reach. The node records a peer's listening address each time a
// connection to it is established (not more than once per
// RememberRefresh for the same address), and dials the remembered
// addresses of known nodes that are neither connected nor being
// reconnected.
//
// Implementations must be safe for concurrent use. Remember may write a
// file: the node never calls it under a lock. Addresses and AppendIDs are
// read once per redial round (every redialTick) and should not do I/O;
// AppendIDs should not allocate beyond growing ids, which the node reuses
// from round to round: an idle node runs these rounds for as long as it
// runs, and what they allocate is what regrows its heap.
type AddressBook interface {
	// Remember records that node id listened at addr ("host:port") at
	// time at.
	Remember(id, addr string, at time.Time) error
	// Addresses lists where id was reached, most recent first.
	Addresses(id string) []string
	// AppendIDs appends the nodes that have addresses to ids.
	AppendIDs(ids []string) []string
}

// Redialling remembered addresses.
const (
	// RememberRefresh: an address already recorded for a peer is
	// recorded again (with a new time) once this old, so that a peer
	// connected for days does not age out of the book.
	RememberRefresh = time.Hour
	// redialStart is how long after Run the first round waits, plus up
	// to half as much again: where mDNS works it finds a node in a few
	// milliseconds, and a node found so is shown as found by mDNS.
	redialStart = 400 * time.Millisecond
	// redialTick is how often the book is looked at, plus up to half as
	// much again.
	redialTick = 500 * time.Millisecond
	// The backoff of a node that cannot be reached: from redialFirst,
	// doubling, capped at redialMax; each wait is 1 to 1.5 times it, so
	// that no address is dialled more than once a second.
	redialFirst = time.Second
	redialMax   = time.Minute
	// maxRedials bounds the remembered nodes dialled at once, and
	// maxRedialAddrs the addresses of one node tried per round.
	maxRedials     = 4
	maxRedialAddrs = 3
	// maxRemembered bounds the peers whose last recording is kept in
	// memory (see remember); past it the memory is cleared.
	maxRemembered = 4096
)

// rememberState is what remember and the redial loop keep. Its lock is
// taken alone, never with another held.
type rememberState struct {
	mu sync.Mutex // protects following
	// last is, per peer id, the address last recorded and when.
	last map[string]recorded
	// dialing holds the ids the redial loop is dialling. It is not
	// Node.dialing: a sighting by discovery must not wait for a dial to
	// an address that may be stale (both may dial; the handshake keeps
	// one connection).
	dialing map[string]bool
}

type recorded struct {
	addr string
	at   time.Time
}

// remember records where p listens in the address book, unless the same
// address was recorded less than RememberRefresh ago. It runs on the
// handshake's goroutine, under no lock.
func (n *Node) remember(p *Peer) {
	if n.book == nil {
		return
	}
	p.mu.Lock()
	addr := p.dialAddr
	p.mu.Unlock()
	if addr == "" {
		return
	}
	now := time.Now()
	n.rem.mu.Lock()
	if n.rem.last == nil || len(n.rem.last) >= maxRemembered {
		n.rem.last = map[string]recorded{}
	}
	r, ok := n.rem.last[p.id]
	fresh := ok && r.addr == addr && now.Sub(r.at) < RememberRefresh
	if !fresh {
		n.rem.last[p.id] = recorded{addr, now}
	}
	n.rem.mu.Unlock()
	if fresh {
		return
	}
	if err := n.book.Remember(p.id, addr, now); err != nil {
		n.log.Warn("the address of a peer was not remembered", "id", ShortID(p.id), "addr", addr, "err", err)
	}
}

// Connected is how many peers are connected now.
func (n *Node) Connected() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.links)
}

// redialNode is the redial loop's own record of one remembered node.
type redialNode struct {
	next    time.Time
	backoff time.Duration
}

// redialLoop dials the remembered addresses of known nodes that are
// neither connected nor being reconnected (nor dialled because discovery
// saw them), each with its own backoff, at most maxRedials at once,
// until ctx ends. A node that comes back starts its backoff over the next time
// it is absent.
func (n *Node) redialLoop(ctx context.Context) {
	defer n.wg.Done()
	state := map[string]*redialNode{}
	listed := map[string]bool{}
	var ids []string
	running := make(chan struct{}, maxRedials)
	t := time.NewTimer(redialStart + rand.N(redialStart/2))
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		if n.leaving.Load() {
			return
		}
		now := time.Now()
		ids = n.book.AppendIDs(ids[:0])
		clear(listed)
		for _, id := range ids {
			listed[id] = true
			if id == n.id {
				continue
			}
			st := state[id]
			if st != nil && now.Before(st.next) {
				continue
			}
			n.mu.Lock()
			present := n.peers[id] != nil
			busy := n.dialing[id] || n.closed
			n.mu.Unlock()
			if present {
				delete(state, id) // back: a later absence starts afresh
				continue
			}
			n.rem.mu.Lock()
			busy = busy || n.rem.dialing[id]
			n.rem.mu.Unlock()
			if busy {
				continue
			}
			select {
			case running <- struct{}{}:
			default:
				continue // all slots taken: next round
			}
			n.rem.mu.Lock()
			if n.rem.dialing == nil {
				n.rem.dialing = map[string]bool{}
			}
			n.rem.dialing[id] = true
			n.rem.mu.Unlock()
			if st == nil {
				st = &redialNode{backoff: redialFirst}
				state[id] = st
			}
			st.next = now.Add(st.backoff + rand.N(st.backoff/2))
			st.backoff = min(2*st.backoff, redialMax)
			addrs := n.book.Addresses(id)
			addrs = addrs[:min(len(addrs), maxRedialAddrs)]
			n.wg.Add(1)
			go func() {
				defer n.wg.Done()
				defer func() { <-running }()
				defer func() {
					n.rem.mu.Lock()
					delete(n.rem.dialing, id)
					n.rem.mu.Unlock()
				}()
				n.dialRemembered(ctx, id, addrs)
			}()
		}
		for id := range state {
			if !listed[id] {
				delete(state, id)
			}
		}
		t.Reset(redialTick + rand.N(redialTick/2))
	}
}

// dialRemembered tries addrs in order until one of them proves to be id.
// Failures are expected (the node is off, or the address went to another
// node) and logged at debug level only.
func (n *Node) dialRemembered(ctx context.Context, id string, addrs []string) {
	for _, addr := range addrs {
		_, err := n.Connect(ctx, addr, ViaRemembered, id)
		if err == nil || errors.Is(err, ErrDuplicate) || ctx.Err() != nil || n.leaving.Load() {
			return
		}
		n.log.Debug("remembered address not reachable", "id", ShortID(id), "addr", addr, "err", err)
	}
}
