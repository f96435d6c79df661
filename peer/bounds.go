package peer

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Bounds on what discovery, peer lists and forged records can make a node
// do. Every sighting is untrusted: a forged mDNS record or peer list must
// not make the node dial outside its own networks, dial much at once,
// retry a failing address in a loop, or print an alarm per record.
const (
	// maxDialsAtOnce bounds the discovered nodes being dialled at once.
	maxDialsAtOnce = 8
	// failedFor: an address that failed for an id is not dialled again
	// for that id before this; maxFailed bounds what is remembered.
	failedFor = 30 * time.Second
	maxFailed = 4096
	// peerListEvery: a peer's lists are heeded at most this often.
	peerListEvery = 10 * time.Second
	// alarmEvery: the same security warning (an identity mismatch, a
	// twin) is shown at most this often; alarmBurst warnings in all per
	// alarmWindow, the rest are counted and logged.
	alarmEvery  = 10 * time.Minute
	alarmBurst  = 5
	alarmWindow = time.Minute
	maxAlarms   = 1024
	// localNetsFor is how long the list of this host's networks is kept.
	localNetsFor = 5 * time.Second
)

// localNets caches this host's addresses and networks.
type localNets struct {
	mu    sync.Mutex // protects following
	at    time.Time
	own   map[netip.Addr]bool
	nets  []netip.Prefix
	zones map[string]bool // interfaces that are up
}

// refresh reloads the host's networks when the cache is old.
func (l *localNets) refresh() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Since(l.at) < localNetsFor && l.own != nil {
		return
	}
	l.at = time.Now()
	l.own, l.nets, l.zones = map[netip.Addr]bool{}, nil, map[string]bool{}
	ifs, err := net.Interfaces()
	if err != nil {
		return
	}
	for _, i := range ifs {
		if i.Flags&net.FlagUp == 0 {
			continue
		}
		l.zones[i.Name] = true
		addrs, err := i.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			n, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(n.IP)
			if !ok {
				continue
			}
			ip = ip.Unmap()
			ones, _ := n.Mask.Size()
			l.own[ip] = true
			if p, err := ip.Prefix(ones); err == nil {
				l.nets = append(l.nets, p)
			}
		}
	}
}

// usable reports whether a discovered address may be dialled: a literal
// address and port on one of this host's networks (a link-local one on
// an interface that is up), never this node's own listening address,
// loopback, unspecified or multicast. Another port on this host's own
// address is usable: two people may run lanchat on one shared host.
func (n *Node) usable(addr string) bool {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || ap.Port() == 0 {
		return false
	}
	ip := ap.Addr().Unmap()
	if ip.IsLoopback() {
		return n.allowLoopback
	}
	if ip.IsUnspecified() || ip.IsMulticast() {
		return false
	}
	n.nets.refresh()
	n.nets.mu.Lock()
	defer n.nets.mu.Unlock()
	if n.nets.own[ip.WithZone("")] {
		return n.net == nil || int(ap.Port()) != n.net.TCPPort()
	}
	if ip.Is6() && ip.IsLinkLocalUnicast() {
		return ip.Zone() != "" && n.nets.zones[ip.Zone()]
	}
	for _, p := range n.nets.nets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// dialKey names a dial of an address for an id. A pair, not the two
// joined: looking one up allocates nothing (every sighting and every
// address of a peer list is looked up).
type dialKey struct{ id, addr string }

// failedLately reports whether dialling addr for id failed within
// failedFor.
func (n *Node) failedLately(id, addr string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	at, ok := n.failed[dialKey{id, addr}]
	return ok && time.Since(at) < failedFor
}

// dialFailed records a failed dial of addr for id.
func (n *Node) dialFailed(id, addr string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.failed) >= maxFailed {
		for k, at := range n.failed {
			if time.Since(at) >= failedFor {
				delete(n.failed, k)
			}
		}
		if len(n.failed) >= maxFailed {
			clear(n.failed)
		}
	}
	n.failed[dialKey{id, addr}] = time.Now()
}

// acquireDial waits for one of the maxDialsAtOnce dial slots, or ctx.
func (n *Node) acquireDial(ctx context.Context) bool {
	select {
	case n.dialSlots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (n *Node) releaseDial() { <-n.dialSlots }

// alarm shows a security warning, unless the same one (by key) was shown
// within alarmEvery or alarmBurst warnings were shown within
// alarmWindow: a flood of forged records must not flood the user. What is
// not shown is counted (Stats.AlarmsHeld) and logged at debug level.
func (n *Node) alarm(key, text string) {
	now := time.Now()
	n.mu.Lock()
	last, seen := n.alarms[key]
	if now.Sub(n.alarmStart) >= alarmWindow {
		n.alarmStart, n.alarmCount = now, 0
	}
	show := (!seen || now.Sub(last) >= alarmEvery) && n.alarmCount < alarmBurst
	if show {
		if len(n.alarms) >= maxAlarms {
			clear(n.alarms)
		}
		n.alarms[key] = now
		n.alarmCount++
	}
	n.mu.Unlock()
	if !show {
		n.alarmsHeld.Add(1)
		n.log.Debug("warning not shown again", "key", key, "text", text)
		return
	}
	n.emit(Warning{Text: text})
}
