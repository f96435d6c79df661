package discovery

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"lanchat/transport"
)

// Why a beacon was not handed over. Every datagram on the beacon port
// either becomes a sighting or is counted under one of these.
const (
	dropMalformed = "malformed"
	dropOwn       = "own"
	dropStale     = "stale"
	dropReplayed  = "replayed"
	dropBusy      = "over the check budget"
	dropSignature = "bad signature"
	dropVersion   = "other protocol version"
	dropSource    = "source not on a local subnet"
	dropOutside   = "addresses outside the subnet heard on"
	dropOverrun   = "overrun"
)

// iface is what beacons need of a network interface.
type iface struct {
	name string
	// up, loopback, broadcast, multicast: its flags.
	up, loopback, broadcast, multicast bool
	// prefixes are its addresses, with the length of their subnet.
	prefixes []netip.Prefix
}

// contains reports whether a (zone ignored) is in one of i's subnets.
func (i iface) contains(a netip.Addr) bool {
	a = a.WithZone("")
	for _, p := range i.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// edge reports whether a is the network or broadcast address of one of
// i's IPv4 subnets (of more than two addresses): no node listens there.
func (i iface) edge(a netip.Addr) bool {
	for _, p := range i.prefixes {
		if p.Addr().Is4() && p.Bits() < 31 && p.Contains(a) && (a == p.Masked().Addr() || a == broadcastOf(p)) {
			return true
		}
	}
	return false
}

// linkLocal6 reports whether i has an IPv6 link-local address.
func (i iface) linkLocal6() bool {
	for _, p := range i.prefixes {
		if p.Addr().Is6() && p.Addr().IsLinkLocalUnicast() {
			return true
		}
	}
	return false
}

// broadcastOf is the last address of an IPv4 subnet.
func broadcastOf(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v |= host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// hearer checks the beacons heard and remembers what replay protection
// and the check budget need. It is used by one goroutine.
type hearer struct {
	self       ed25519.PublicKey
	loopbackOK bool // tests: loopback sources and addresses count
	// seen is the time of the last authentic beacon of each key.
	seen map[string]seenBeacon
	// tokens is the signature check budget, refilled at
	// verifyPerSecond up to that many.
	tokens   float64
	refilled time.Time
}

type seenBeacon struct {
	sent int64 // the beacon's own time, Unix nanoseconds
	at   time.Time
}

func newHearer(self ed25519.PublicKey) *hearer {
	return &hearer{self: self, seen: map[string]seenBeacon{}, tokens: verifyPerSecond}
}

// hear checks one datagram heard from from at now, on a host whose
// interfaces are ifs (usable says which beacons may be heard on). It
// reports whether the beacon is authentic and from another node (heard:
// it counts for pacing, wherever it points), and, when it also points
// into the subnet it came from, the sighting to hand over; otherwise why
// not.
func (h *hearer) hear(p []byte, from netip.AddrPort, ifs []iface, usable func(iface) bool, now time.Time) (e Entry, heard bool, drop string) {
	b, err := DecodeBeacon(p)
	if err != nil {
		return Entry{}, false, dropMalformed
	}
	if bytes.Equal(b.Key, h.self) {
		return Entry{}, false, dropOwn
	}
	if skew := now.Sub(b.Sent); skew > MaxBeaconSkew || skew < -MaxBeaconSkew {
		return Entry{}, false, dropStale
	}
	key := string(b.Key)
	sent := b.Sent.UnixNano()
	if s, ok := h.seen[key]; ok && sent <= s.sent {
		return Entry{}, false, dropReplayed
	}
	if !h.take(now) {
		return Entry{}, false, dropBusy
	}
	if !b.Verify() {
		return Entry{}, false, dropSignature
	}
	h.record(key, sent, now)
	if b.Protocol != transport.ProtocolVersion {
		return Entry{}, true, dropVersion
	}
	in, ok := h.arrival(from.Addr(), ifs, usable)
	if !ok {
		return Entry{}, true, dropSource
	}
	port := strconv.Itoa(int(b.TCPPort))
	var v4, v6, ll []string
	for _, a := range b.Addrs {
		a = a.Unmap()
		switch {
		case !a.IsValid(), a.IsUnspecified(), a.IsMulticast(), a.IsLoopback() && !h.loopbackOK,
			isOwn(a, ifs), in.edge(a):
		case a.Is6() && a.IsLinkLocalUnicast():
			if in.linkLocal6() {
				ll = append(ll, net.JoinHostPort(a.WithZone(in.name).String(), port))
			}
		case in.contains(a) && a.Is4():
			v4 = append(v4, net.JoinHostPort(a.String(), port))
		case in.contains(a):
			v6 = append(v6, net.JoinHostPort(a.String(), port))
		}
	}
	addrs := append(append(v4, v6...), ll...)
	if len(addrs) == 0 {
		return Entry{}, true, dropOutside
	}
	return Entry{
		Instance: fmt.Sprintf("beacon of %s from %s", b.Name, from.Addr()),
		ID:       b.ID(), Name: b.Name, UDPPort: int(b.UDPPort), Addrs: addrs,
	}, true, ""
}

// arrival finds the interface a datagram from src came in by: the one
// its zone names (IPv6 link-local), or the usable one whose subnet holds
// it. A source on no local subnet was routed here, or forged.
func (h *hearer) arrival(src netip.Addr, ifs []iface, usable func(iface) bool) (iface, bool) {
	src = src.Unmap()
	if !src.IsValid() || (src.IsLoopback() && !h.loopbackOK) {
		return iface{}, false
	}
	for _, i := range ifs {
		if !usable(i) {
			continue
		}
		if z := src.Zone(); z != "" {
			if z == i.name {
				return i, true
			}
			continue
		}
		if i.contains(src) {
			return i, true
		}
	}
	return iface{}, false
}

// isOwn reports whether a is an address of this host.
func isOwn(a netip.Addr, ifs []iface) bool {
	a = a.WithZone("")
	for _, i := range ifs {
		for _, p := range i.prefixes {
			if p.Addr() == a {
				return true
			}
		}
	}
	return false
}

// take spends one signature check, if the budget allows.
func (h *hearer) take(now time.Time) bool {
	if !h.refilled.IsZero() {
		h.tokens = min(verifyPerSecond, h.tokens+now.Sub(h.refilled).Seconds()*verifyPerSecond)
	}
	h.refilled = now
	if h.tokens < 1 {
		return false
	}
	h.tokens--
	return true
}

// record notes an authentic beacon's time. The map holds at most maxSeen
// keys: entries too old to matter (a replay of them is stale anyway) go
// first, then the oldest.
func (h *hearer) record(key string, sent int64, now time.Time) {
	if _, ok := h.seen[key]; !ok && len(h.seen) >= maxSeen {
		var oldest string
		var oldestAt time.Time
		for k, s := range h.seen {
			if now.Sub(s.at) > 2*MaxBeaconSkew {
				delete(h.seen, k)
				continue
			}
			if oldest == "" || s.at.Before(oldestAt) {
				oldest, oldestAt = k, s.at
			}
		}
		if len(h.seen) >= maxSeen {
			delete(h.seen, oldest)
		}
	}
	h.seen[key] = seenBeacon{sent: sent, at: now}
}

// recent is how many keys were heard in the last BeaconEveryMax: about
// how many nodes send beacons on this LAN.
func (h *hearer) recent(now time.Time) int {
	n := 0
	for _, s := range h.seen {
		if now.Sub(s.at) < BeaconEveryMax {
			n++
		}
	}
	return n
}
