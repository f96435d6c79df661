package peer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"time"

	"lanchat/identity"
)

// Dialling policy.
const (
	// DialHoldOff is how long a node waits before dialling a discovered
	// node that is most likely dialling it, when its id is the larger
	// (see holdOffLocked), plus up to half as much again at random;
	// shortHoldOff when its id is the smaller.
	DialHoldOff  = time.Second
	shortHoldOff = 250 * time.Millisecond
	// answerJitter spreads the dials of the hearers of one beacon, and
	// of the pairs one peer list introduces.
	answerJitter = 20 * time.Millisecond
	// Reconnection backoff: from about reconnectFirst, doubling, capped.
	reconnectFirst = 100 * time.Millisecond
	reconnectMax   = 4 * time.Second
	// advertisedFor is how long after its last mDNS sighting a peer
	// found by mDNS is still worth reconnecting to.
	advertisedFor = 90 * time.Second
	// lookAgainEvery: while a peer is being reconnected, discovery looks
	// for it this often (not only when it was lost), so that a peer still
	// advertised stays advertised and is not given up.
	lookAgainEvery = advertisedFor / 3
	// maxDialing bounds the nodes being dialled at once because
	// discovery, a peer list or the address book named them: a flood of
	// sightings (forged beacons signed with throwaway keys, say) cannot
	// make a node hold more dials than this. It is well above what a
	// newcomer to a large group dials at once.
	maxDialing = 256
)

// Connect dials addr ("host:port") and runs the handshake. expectID, when
// set, is the id the other end must prove.
func (n *Node) Connect(ctx context.Context, addr string, via Via, expectID string) (Info, error) {
	<-n.ready
	if n.leaving.Load() {
		return Info{}, fmt.Errorf("connect to %s: node is leaving", addr)
	}
	nc, err := n.net.Dial(ctx, addr, DialTimeout)
	if err != nil {
		return Info{}, err
	}
	l, err := n.handshake(nc, true, via, expectID)
	if err != nil {
		return Info{}, err
	}
	return l.info(), nil
}

// reconnect dials a peer that was lost until it is connected again (by
// either side), it stops being advertised, or the node stops.
func (n *Node) reconnect(p *Peer) {
	defer n.wg.Done()
	lookAgain := func() {
		if n.onLost != nil {
			n.onLost()
		}
	}
	lookAgain()
	lookedAt := time.Now()
	delay := reconnectFirst
	for {
		if time.Since(lookedAt) >= lookAgainEvery {
			lookAgain()
			lookedAt = time.Now()
		}
		// Jitter spreads the redials of many nodes that lost the same
		// network at the same moment.
		wait := delay/2 + rand.N(delay)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-p.kick:
			t.Stop()
		case <-n.ctx.Done():
			t.Stop()
			return
		}
		p.mu.Lock()
		if !p.away {
			p.mu.Unlock()
			return
		}
		addr, via, manual := p.dialAddr, p.via, p.manual
		seen := p.lastAdvertised
		if seen.Before(p.awaySince) {
			seen = p.awaySince
		}
		if !manual && time.Since(seen) > n.giveUp {
			undelivered := len(p.outbox)
			p.away = false
			name := p.name
			p.mu.Unlock()
			n.forget(p)
			text := fmt.Sprintf("stopped reconnecting to %s (%s): not seen on the network for %v", name, ShortID(p.id), n.giveUp)
			switch {
			case n.store != nil:
				if c := n.store.PendingOf(p.id); c.Messages > 0 {
					text += fmt.Sprintf("; %d messages to it wait on disk for its return", c.Messages)
				}
			case undelivered > 0:
				text += fmt.Sprintf("; %d messages to it were not delivered", undelivered)
			}
			n.emit(Notice{Text: text})
			return
		}
		p.mu.Unlock()
		if n.leaving.Load() {
			return
		}
		_, err := n.Connect(n.ctx, addr, via, p.id)
		if err == nil {
			return
		}
		n.log.Debug("reconnect failed", "id", ShortID(p.id), "addr", addr, "err", err)
		delay = min(2*delay, reconnectMax)
	}
}

// Found is a node that discovery saw.
type Found struct {
	// Via is how it was found: ViaMDNS when zero, ViaBroadcast for a
	// beacon, ViaIntroduced for a peer list.
	Via      Via
	Instance string
	ID       string
	Addrs    []string // host:port to try, best first
	// Answer: the node answered this node's first mDNS query, so it was
	// there first and does not know of this node yet (see
	// discovery.Entry.Answer).
	Answer bool
}

// Discovered dials a node that discovery found, unless it is this node,
// already connected or being dialled, or maxDialing nodes are being
// dialled already. Failures are logged once per instance and address:
// discovery repeats itself, the log should not.
func (n *Node) Discovered(f Found) {
	<-n.ready
	if f.ID == n.id || n.leaving.Load() {
		return
	}
	if f.Via == 0 {
		f.Via = ViaMDNS
	}
	if !identity.ValidID(f.ID) {
		n.sightingsRefused.Add(1)
		return
	}
	// Only addresses on this host's networks, not failing lately.
	var addrs []string
	for _, a := range f.Addrs {
		if n.usable(a) && !n.failedLately(f.ID, a) && len(addrs) < 8 {
			addrs = append(addrs, a)
		}
	}
	n.mu.Lock()
	if p := n.peers[f.ID]; p != nil {
		p.mu.Lock()
		p.lastAdvertised = time.Now()
		away := p.away
		p.mu.Unlock()
		if away {
			// Its reconnect loop may be asleep in its backoff: seen
			// again, it is worth a try now.
			select {
			case p.kick <- struct{}{}:
			default:
			}
		}
	}
	if n.links[f.ID] != nil || n.dialing[f.ID] || n.twinRefusedLocked(f.ID) {
		n.mu.Unlock()
		return
	}
	if len(addrs) == 0 {
		n.mu.Unlock()
		n.sightingsRefused.Add(1)
		n.log.Debug("not dialling a discovered node: no usable address", "id", ShortID(f.ID), "found", f.Instance, "addrs", f.Addrs)
		return
	}
	f.Addrs = addrs
	if len(n.dialing) >= maxDialing {
		n.mu.Unlock()
		n.log.Debug("not dialling a discovered node: too many dials under way", "id", ShortID(f.ID), "found", f.Instance)
		return
	}
	n.dialing[f.ID] = true
	wait := n.holdOffLocked(f)
	n.mu.Unlock()
	n.log.Debug("dialling a discovered node", "id", ShortID(f.ID), "found", f.Instance, "addrs", f.Addrs, "after", wait)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer func() {
			n.mu.Lock()
			delete(n.dialing, f.ID)
			n.mu.Unlock()
		}()
		if wait > 0 && !n.heldOff(f, wait) {
			return
		}
		if !n.acquireDial(n.ctx) {
			return
		}
		defer n.releaseDial()
		var errs []error
		for _, addr := range f.Addrs {
			_, err := n.Connect(n.ctx, addr, f.Via, f.ID)
			if err == nil || errors.Is(err, ErrDuplicate) {
				return
			}
			if n.ctx.Err() != nil || n.leaving.Load() {
				return
			}
			n.dialFailed(f.ID, addr)
			errs = append(errs, err)
		}
		key := f.Instance + " " + fmt.Sprint(f.Addrs)
		n.mu.Lock()
		warned := n.warned[key]
		if len(n.warned) >= maxAlarms {
			clear(n.warned)
		}
		n.warned[key] = true
		n.mu.Unlock()
		level := n.log.Info
		if warned {
			level = n.log.Debug
		}
		level("skipping a discovered node: cannot connect", "found", f.Instance, "err", errors.Join(errs...))
	}()
}

// holdOffLocked decides how long to wait before dialling f. Both ends of
// a pair usually discover each other, and a pair that dials both ways pays
// for two TLS handshakes and drops one: with many nodes starting at once
// that doubles the handshakes of forming the mesh. So a node dials at once only
// a node that answered its first query (which cannot know of it yet); one
// seen later has most likely just started and is dialling it, so it waits
// a little, or longer when its id is the larger, and dials only if no
// connection has come of the other's dial by then.
//
// A beacon's sender learns nothing of its hearers from it, and a node
// named in a peer list was connected to the introducer before this one
// was, so it was not told of this one: neither is likely to be dialling
// this node. Both are answered at once, with a few milliseconds of
// jitter (for the many hearers of one beacon, and for a pair introduced
// both ways at once: the later dial then finds the other's connection
// being accepted, and waits for it). Where mDNS works a newcomer has its
// peers before it sends a beacon.
func (n *Node) holdOffLocked(f Found) time.Duration {
	var d time.Duration
	switch {
	case n.acceptingFromLocked(f):
		d = shortHoldOff
	case f.Answer:
		return 0
	case f.Via == ViaBroadcast || f.Via == ViaIntroduced:
		return rand.N(answerJitter)
	case n.id < f.ID:
		d = shortHoldOff
	default:
		d = DialHoldOff
	}
	return d + rand.N(d/2)
}

// acceptingFromLocked reports whether a connection from one of f's
// addresses is being accepted: most likely f dialling.
func (n *Node) acceptingFromLocked(f Found) bool {
	for _, a := range f.Addrs {
		if ap, err := netip.ParseAddrPort(a); err == nil && n.accepting[ap.Addr().Unmap().WithZone("")] > 0 {
			return true
		}
	}
	return false
}

// heldOff waits d and then for connections being accepted from f's
// addresses (within HandshakeTimeout), and reports whether f is still to
// be dialled.
func (n *Node) heldOff(f Found, d time.Duration) bool {
	deadline := time.Now().Add(d + HandshakeTimeout)
	for {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-n.ctx.Done():
			t.Stop()
			return false
		}
		n.mu.Lock()
		connected, accepting := n.links[f.ID] != nil, n.acceptingFromLocked(f)
		n.mu.Unlock()
		if connected || n.leaving.Load() {
			return false
		}
		if !accepting || time.Now().After(deadline) {
			return true
		}
		d = 20 * time.Millisecond
	}
}

// ConnectManual connects to a peer given by hand, retrying with backoff
// until it succeeds or ctx ends; each failure after the first is logged at
// debug level only.
func (n *Node) ConnectManual(ctx context.Context, addr, expectID string) {
	n.ConnectGiven(ctx, "--peer "+addr, []string{addr}, expectID)
}

// ConnectGiven connects to a node given by hand at one of addrs (tried in
// order), proving expectID when set, and retries with backoff until it
// succeeds or ctx ends. what names the source in the errors shown
// ("--peer HOST:PORT", "peers file F line N"): the first failure is
// shown, later ones are logged at debug level only. Once connected, the
// peer is reconnected for ever if lost (a manual peer).
func (n *Node) ConnectGiven(ctx context.Context, what string, addrs []string, expectID string) {
	<-n.ready
	if len(addrs) == 0 {
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stop := context.AfterFunc(n.ctx, cancel)
		defer stop()
		delay := 250 * time.Millisecond
		for attempt := 1; ; attempt++ {
			var errs []error
			for _, addr := range addrs {
				_, err := n.Connect(ctx, addr, ViaManual, expectID)
				if err == nil || errors.Is(err, ErrDuplicate) || errors.Is(err, ErrSelf) || errors.Is(err, ErrIdentity) {
					if errors.Is(err, ErrSelf) {
						n.emit(Problem{Err: fmt.Errorf("%s: %w", what, err)})
					}
					return
				}
				if ctx.Err() != nil {
					return
				}
				errs = append(errs, err)
			}
			err := errors.Join(errs...)
			if attempt == 1 {
				n.emit(Problem{Err: fmt.Errorf("%s: %w; retrying in the background", what, err)})
			} else {
				n.log.Debug("manual peer still unreachable", "peer", what, "err", err)
			}
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			}
			delay = min(2*delay, 10*time.Second)
		}
	}()
}

// SplitPeerAddr splits "[ID@]HOST:PORT" into the expected id (normalised,
// "" when not given) and the address.
func SplitPeerAddr(s string) (id, addr string) {
	if i := strings.Index(s, "@"); i >= 0 {
		return identity.NormalizeID(s[:i]), s[i+1:]
	}
	return "", s
}
