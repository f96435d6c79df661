package discovery

import (
	"crypto/ed25519"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// A host with eth0 on 10.0.0.0/24 and fd00::/64 (and a link-local
// address), wlan0 on 192.168.1.0/24, and loopback.
var testIfs = []iface{
	{name: "lo", up: true, loopback: true, prefixes: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8")}},
	{name: "eth0", up: true, broadcast: true, multicast: true, prefixes: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.1/24"), netip.MustParsePrefix("fd00::1/64"), netip.MustParsePrefix("fe80::1/64")}},
	{name: "wlan0", up: true, broadcast: true, multicast: true, prefixes: []netip.Prefix{
		netip.MustParsePrefix("192.168.1.10/24")}},
}

func usableAll(i iface) bool { return i.up && !i.loopback }

func TestHear(t *testing.T) {
	self, peer, other := newKey(t), newKey(t), newKey(t)
	from := netip.MustParseAddrPort("10.0.0.2:47474")
	tests := []struct {
		name  string
		p     []byte
		from  netip.AddrPort
		drop  string
		heard bool
		addrs []string
	}{
		{"genuine", sample(t0, "10.0.0.2", "fd00::2", "fe80::2").AppendSigned(nil, peer), from, "", true,
			[]string{"10.0.0.2:4000", "[fd00::2]:4000", "[fe80::2%eth0]:4000"}},
		{"heard over IPv6 link-local", sample(t0, "10.0.0.2", "fe80::2").AppendSigned(nil, peer),
			netip.MustParseAddrPort("[fe80::2%eth0]:47474"), "", true, []string{"10.0.0.2:4000", "[fe80::2%eth0]:4000"}},
		{"own", sample(t0, "10.0.0.1").AppendSigned(nil, self), from, dropOwn, false, nil},
		{"junk", []byte("hello"), from, dropMalformed, false, nil},
		{"stale", sample(t0.Add(-MaxBeaconSkew-time.Second), "10.0.0.2").AppendSigned(nil, peer), from, dropStale, false, nil},
		{"from the future", sample(t0.Add(MaxBeaconSkew+time.Second), "10.0.0.2").AppendSigned(nil, peer), from, dropStale, false, nil},
		{"forged: signed with another key", forge(sample(t0, "10.0.0.2"), peer, other), from, dropSignature, false, nil},
		{"other protocol", func() []byte {
			b := sample(t0, "10.0.0.2")
			b.Protocol = 9
			return b.AppendSigned(nil, peer)
		}(), from, dropVersion, true, nil},
		{"points to another subnet", sample(t0, "10.9.9.9", "fd99::9").AppendSigned(nil, peer), from, dropOutside, true, nil},
		{"points to the other interface's subnet", sample(t0, "192.168.1.20").AppendSigned(nil, peer), from, dropOutside, true, nil},
		{"points to loopback", sample(t0, "127.0.0.1", "::1").AppendSigned(nil, peer), from, dropOutside, true, nil},
		{"points to this host", sample(t0, "10.0.0.1", "fd00::1").AppendSigned(nil, peer), from, dropOutside, true, nil},
		{"points to broadcast and network", sample(t0, "10.0.0.255", "10.0.0.0", "0.0.0.0", "224.0.0.1").AppendSigned(nil, peer), from, dropOutside, true, nil},
		{"only the subnet's addresses kept", sample(t0, "10.9.9.9", "10.0.0.3").AppendSigned(nil, peer), from, "", true, []string{"10.0.0.3:4000"}},
		{"source on no local subnet", sample(t0, "10.0.0.2").AppendSigned(nil, peer), netip.MustParseAddrPort("10.9.9.9:47474"), dropSource, true, nil},
		{"source loopback", sample(t0, "10.0.0.2").AppendSigned(nil, peer), netip.MustParseAddrPort("127.0.0.1:47474"), dropSource, true, nil},
		{"link-local source of an unknown zone", sample(t0, "fe80::2").AppendSigned(nil, peer), netip.MustParseAddrPort("[fe80::2%tun9]:47474"), dropSource, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHearer(self.Public().(ed25519.PublicKey))
			e, heard, drop := h.hear(tt.p, tt.from, testIfs, usableAll, t0)
			if drop != tt.drop || heard != tt.heard {
				t.Fatalf("drop %q heard %v, want %q %v", drop, heard, tt.drop, tt.heard)
			}
			if drop == "" {
				if !slices.Equal(e.Addrs, tt.addrs) || e.Name != "bob@h2" || e.UDPPort != 4001 || e.ID == "" {
					t.Fatalf("entry %+v, want addrs %v", e, tt.addrs)
				}
			}
		})
	}
}

// forge carries key's public key but is signed by signer.
func forge(b Beacon, key, signer ed25519.PrivateKey) []byte {
	p := b.AppendSigned(nil, key)
	body := p[:len(p)-ed25519.SignatureSize]
	return append(body, ed25519.Sign(signer, append([]byte(beaconContext), body...))...)
}

func TestHearReplay(t *testing.T) {
	self, peer := newKey(t), newKey(t)
	h := newHearer(self.Public().(ed25519.PublicKey))
	from := netip.MustParseAddrPort("10.0.0.2:47474")
	first := sample(t0, "10.0.0.2").AppendSigned(nil, peer)
	steps := []struct {
		name string
		p    []byte
		at   time.Time
		drop string
	}{
		{"first", first, t0, ""},
		{"same again (the IPv6 copy, or a replay)", first, t0.Add(time.Millisecond), dropReplayed},
		{"same much later", first, t0.Add(time.Minute), dropReplayed},
		{"an older one", sample(t0.Add(-time.Second), "10.0.0.2").AppendSigned(nil, peer), t0.Add(time.Minute), dropReplayed},
		{"a newer one", sample(t0.Add(30*time.Second), "10.0.0.2").AppendSigned(nil, peer), t0.Add(time.Minute), ""},
		// A forgery with a later time must not move the mark: the next
		// genuine beacon is still heard.
		{"forged later", forge(sample(t0.Add(time.Hour/30), "10.0.0.2"), peer, self), t0.Add(time.Minute), dropSignature},
		{"genuine after the forgery", sample(t0.Add(40*time.Second), "10.0.0.2").AppendSigned(nil, peer), t0.Add(time.Minute), ""},
	}
	for _, s := range steps {
		if _, _, drop := h.hear(s.p, from, testIfs, usableAll, s.at); drop != s.drop {
			t.Fatalf("%s: drop %q, want %q", s.name, drop, s.drop)
		}
	}
}

// TestHearBounds: a flood of beacons signed by throwaway keys costs at
// most verifyPerSecond checks a second and leaves at most maxSeen keys.
func TestHearBounds(t *testing.T) {
	self := newKey(t)
	h := newHearer(self.Public().(ed25519.PublicKey))
	from := netip.MustParseAddrPort("10.0.0.2:47474")
	keys := make([]ed25519.PrivateKey, 300)
	for i := range keys {
		keys[i] = newKey(t)
	}
	checked := 0
	at := t0
	for i := 0; i < 3*maxSeen; i++ {
		// 1000 beacons a second of simulated time.
		at = at.Add(time.Millisecond)
		p := sample(at, "10.0.0.2").AppendSigned(nil, keys[i%len(keys)])
		if _, _, drop := h.hear(p, from, testIfs, usableAll, at); drop != dropBusy {
			checked++
		}
	}
	seconds := at.Sub(t0).Seconds()
	if limit := int(verifyPerSecond*(seconds+1)) + 1; checked > limit {
		t.Fatalf("%d signature checks in %.1f s, limit %d", checked, seconds, limit)
	}
	if checked < int(verifyPerSecond*seconds)/2 {
		t.Fatalf("only %d checks in %.1f s: the budget does not refill", checked, seconds)
	}
	// The seen map, with more keys than it holds.
	for i := 0; i < maxSeen+50; i++ {
		h.record(fmt.Sprint(i), 1, t0.Add(time.Duration(i)))
	}
	if len(h.seen) > maxSeen {
		t.Fatalf("seen holds %d keys, limit %d", len(h.seen), maxSeen)
	}
	if _, ok := h.seen["0"]; ok {
		t.Fatal("the oldest key was kept")
	}
}

func TestBroadcastOf(t *testing.T) {
	for _, tt := range []struct{ prefix, want string }{
		{"10.1.2.3/24", "10.1.2.255"}, {"192.168.0.9/16", "192.168.255.255"}, {"10.0.0.5/30", "10.0.0.7"}, {"10.0.0.5/8", "10.255.255.255"},
	} {
		if got := broadcastOf(netip.MustParsePrefix(tt.prefix)); got.String() != tt.want {
			t.Errorf("broadcastOf(%s) = %s, want %s", tt.prefix, got, tt.want)
		}
	}
}
