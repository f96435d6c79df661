package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"lanchat/identity"
	"lanchat/transport"
)

// Beacon timing and bounds; doc.go says why.
const (
	// BeaconGap is the least time between two beacons on a LAN: a node
	// sends one only when it has heard none, its own included, for this
	// long; otherwise it waits one to two gaps and looks again.
	BeaconGap = time.Second
	// A node's first beacon waits a random time from BeaconStartMin to
	// BeaconStartSpread, listening meanwhile: of nodes started together
	// the first to send is heard by the others, and those that found
	// peers by their turn send nothing. Where mDNS works, a newcomer has
	// its peers within BeaconStartMin and sends no beacon at all.
	BeaconStartMin    = 150 * time.Millisecond
	BeaconStartSpread = 600 * time.Millisecond
	// BeaconAloneFirst: a node with no peer beacons again after this,
	// doubling up to BeaconEveryMin (a start beacon may be lost).
	BeaconAloneFirst = 2 * time.Second
	// BeaconEveryMin and BeaconEveryMax bound the random time between the
	// beacons of a node that is alone or keeps watch (Config.Watch).
	BeaconEveryMin = 30 * time.Second
	BeaconEveryMax = 60 * time.Second
	// MaxBeaconSkew is how far a beacon's time may be from the hearer's
	// clock. Replays within it are caught by the time of the last beacon
	// of each key.
	MaxBeaconSkew = 5 * time.Minute
	// maxSeen bounds the keys whose last beacon time is kept; past it
	// the oldest is forgotten.
	maxSeen = 1024
	// verifyPerSecond bounds the signature checks per second (and their
	// burst): a flood costs at most that much CPU.
	verifyPerSecond = 64
	// inboxSize bounds the datagrams waiting to be checked; more are
	// dropped and counted.
	inboxSize = 64
	// dropLogEvery: each reason for dropping beacons is logged at most
	// this often (at debug level), with the count since.
	dropLogEvery = time.Minute
)

// BeaconConfig says what to send and where.
type BeaconConfig struct {
	// Identity signs the beacons; its key is what they carry.
	Identity *identity.Identity
	Name     string
	Port     int // TCP
	UDPPort  int
	// Ifaces restricts beacons to the interfaces of these names; empty
	// means every interface that is up, but loopback.
	Ifaces []string
	Logger *slog.Logger
	// Alone reports whether the node has no peer; nil means always.
	Alone func() bool
	// Watch is asked before each periodic beacon of a node that has
	// peers: false skips it, as for mDNS browsing (a group needs only a
	// few of its nodes to announce it). Nil means always.
	Watch func() bool

	// For tests: the port (0: BeaconPort), the timings (0: the constants
	// above), the interfaces (nil: the system's), and loopback allowed.
	port                                                  int
	gap, startMin, spread, aloneFirst, everyMin, everyMax time.Duration
	interfaces                                            func() []iface
	loopbackOK                                            bool
	// system is set when interfaces are the system's: an ifaceWatch
	// can then say when to list them again.
	system bool
}

// BeaconStats counts what a Beacons service did.
type BeaconStats struct {
	// Sent counts beacons sent (one per interface and family).
	Sent uint64
	// Heard counts authentic beacons of other nodes, Found those handed
	// over as sightings.
	Heard, Found uint64
	// Dropped counts the datagrams not handed over, by reason.
	Dropped map[string]uint64
}

// Beacons sends this node's signed beacon to the broadcast address of
// each usable IPv4 subnet and to ff02::1 on each IPv6 interface that
// multicasts, and hears the others' on BeaconPort, until Close.
type Beacons struct {
	cfg    BeaconConfig
	log    *slog.Logger
	found  func(Entry)
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// v4 and v6 are the sockets, either may be nil; the readers end when
	// they are closed.
	v4, v6 *net.UDPConn
	inbox  chan packet
	name   atomic.Pointer[string]
	// lastHeard is when an authentic beacon of another node last came,
	// Unix nanoseconds, for pacing.
	lastHeard atomic.Int64
	// senders is how many nodes were heard in the last BeaconEveryMax.
	senders           atomic.Int64
	sent, heard, seen atomic.Uint64

	mu sync.Mutex // protects following
	// ifs are the interfaces as last listed.
	ifs     []iface
	dropped map[string]uint64
	// unlogged counts the drops since each reason was last logged.
	unlogged map[string]uint64
	loggedAt map[string]time.Time
}

type packet struct {
	b    []byte
	from netip.AddrPort
	at   time.Time
}

// StartBeacons binds the beacon port (shared with other processes on the
// host) and starts sending and hearing; found is called from one
// goroutine, in order, for every beacon that passes the checks (doc.go).
// It fails only when neither IPv4 nor IPv6 can be bound.
func StartBeacons(ctx context.Context, cfg BeaconConfig, found func(Entry)) (*Beacons, error) {
	if cfg.Identity == nil {
		return nil, errors.New("beacons: no identity to sign with")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.port == 0 {
		cfg.port = BeaconPort
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.gap, BeaconGap)
	def(&cfg.startMin, BeaconStartMin)
	def(&cfg.spread, BeaconStartSpread)
	def(&cfg.aloneFirst, BeaconAloneFirst)
	def(&cfg.everyMin, BeaconEveryMin)
	def(&cfg.everyMax, BeaconEveryMax)
	if cfg.interfaces == nil {
		cfg.interfaces = systemInterfaces
		cfg.system = true
	}
	b := &Beacons{
		cfg: cfg, log: cfg.Logger, found: found, inbox: make(chan packet, inboxSize),
		dropped: map[string]uint64{}, unlogged: map[string]uint64{}, loggedAt: map[string]time.Time{},
	}
	name := cfg.Name
	b.name.Store(&name)
	var err4, err6 error
	b.v4, err4 = listenBeacons(ctx, "udp4", cfg.port)
	b.v6, err6 = listenBeacons(ctx, "udp6", cfg.port)
	if b.v4 == nil && b.v6 == nil {
		return nil, fmt.Errorf("beacons: cannot listen on UDP port %d: %w", cfg.port, errors.Join(err4, err6))
	}
	if err4 != nil || err6 != nil {
		b.log.Debug("beacons: one address family only", "ipv4", err4, "ipv6", err6)
	}
	ctx, b.cancel = context.WithCancel(ctx)
	for _, c := range []*net.UDPConn{b.v4, b.v6} {
		if c != nil {
			b.wg.Add(1)
			go b.read(ctx, c)
		}
	}
	b.wg.Add(2)
	go b.handle(ctx)
	go b.pace(ctx)
	return b, nil
}

// listenBeacons binds the beacon port of one family, letting other
// processes on the host bind it too (each gets every beacon).
func listenBeacons(ctx context.Context, network string, port int) (*net.UDPConn, error) {
	lc := net.ListenConfig{Control: reusePort}
	pc, err := lc.ListenPacket(ctx, network, fmt.Sprintf(":%d", port))
	if err != nil {
		return nil, err
	}
	return pc.(*net.UDPConn), nil
}

// SetName changes the name carried by the next beacons.
func (b *Beacons) SetName(name string) { b.name.Store(&name) }

// Close stops sending and hearing and waits for both. Safe to call more
// than once.
func (b *Beacons) Close() {
	b.cancel()
	b.wg.Wait()
}

// Stats returns the counters.
func (b *Beacons) Stats() BeaconStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := BeaconStats{Sent: b.sent.Load(), Heard: b.heard.Load(), Found: b.seen.Load(), Dropped: map[string]uint64{}}
	for k, v := range b.dropped {
		s.Dropped[k] = v
	}
	return s
}

// read hands the datagrams of c to the checker, dropping them when it is
// behind, until c is closed (when ctx ends).
func (b *Beacons) read(ctx context.Context, c *net.UDPConn) {
	defer b.wg.Done()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	buf := make([]byte, MaxBeaconSize+1)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		at := time.Now()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			b.log.Debug("beacons: read failed", "err", err)
			t := time.NewTimer(100 * time.Millisecond)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			}
			continue
		}
		select {
		case b.inbox <- packet{b: append([]byte(nil), buf[:n]...), from: from, at: at}:
		default:
			b.drop(dropOverrun, from, at)
		}
	}
}

// handle checks each datagram heard and hands the sightings over.
func (b *Beacons) handle(ctx context.Context) {
	defer b.wg.Done()
	h := newHearer(b.cfg.Identity.Public())
	h.loopbackOK = b.cfg.loopbackOK
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-b.inbox:
			b.mu.Lock()
			ifs := b.ifs
			b.mu.Unlock()
			e, heard, why := h.hear(p.b, p.from, ifs, b.usable, p.at)
			if heard {
				b.heard.Add(1)
				b.lastHeard.Store(p.at.UnixNano())
				b.senders.Store(int64(h.recent(p.at)))
			}
			if why != "" {
				b.drop(why, p.from, p.at)
				continue
			}
			b.seen.Add(1)
			b.found(e)
		}
	}
}

// drop counts a datagram not handed over, and logs the reason at debug
// level at most once per dropLogEvery.
func (b *Beacons) drop(why string, from netip.AddrPort, now time.Time) {
	b.mu.Lock()
	b.dropped[why]++
	b.unlogged[why]++
	count := b.unlogged[why]
	due := now.Sub(b.loggedAt[why]) >= dropLogEvery
	if due {
		b.loggedAt[why], b.unlogged[why] = now, 0
	}
	b.mu.Unlock()
	if due && why != dropOwn && why != dropReplayed {
		b.log.Debug("beacons: dropped", "reason", why, "last from", from, "count", count)
	}
}

// usable reports whether beacons are sent and heard on i.
func (b *Beacons) usable(i iface) bool {
	if !i.up || (i.loopback && !b.cfg.loopbackOK) {
		return false
	}
	if len(b.cfg.Ifaces) > 0 && !slices.Contains(b.cfg.Ifaces, i.name) {
		return false
	}
	return i.broadcast || i.multicast
}

// pace sends the beacons when the pacer says, and watches the
// interfaces: a change starts over as at start.
func (b *Beacons) pace(ctx context.Context) {
	defer b.wg.Done()
	p := &pacer{gap: b.cfg.gap, startMin: b.cfg.startMin, spread: b.cfg.spread, aloneFirst: b.cfg.aloneFirst,
		everyMin: b.cfg.everyMin, everyMax: b.cfg.everyMax}
	var watch *ifaceWatch // nil: list at every poll
	if b.cfg.system {
		watch = newIfaceWatch() // before the first listing: no change after it is missed
		defer watch.close()
	}
	sig := b.relist()
	t := time.NewTimer(p.restart())
	defer t.Stop()
	poll := time.NewTicker(ifacePoll)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
			if sig != "" && !watch.changed() {
				break // nothing changed, and some interface is usable
			}
			if s := b.relist(); s != sig {
				sig = s
				t.Reset(p.restart())
			}
		case <-t.C:
			alone := b.cfg.Alone == nil || b.cfg.Alone()
			watch := b.cfg.Watch == nil || b.cfg.Watch()
			send, wait := p.decide(time.Now(), time.Unix(0, b.lastHeard.Load()), int(b.senders.Load()), alone, watch)
			if send {
				b.send()
			}
			t.Reset(wait)
		}
	}
}

// relist reads the interfaces again and returns a signature that changes
// when any that matters does.
func (b *Beacons) relist() string {
	ifs := b.cfg.interfaces()
	var sig strings.Builder
	for _, i := range ifs {
		if b.usable(i) {
			fmt.Fprintf(&sig, "%s %v;", i.name, i.prefixes)
		}
	}
	b.mu.Lock()
	b.ifs = ifs
	b.mu.Unlock()
	return sig.String()
}

// send sends one beacon on each usable interface: to the broadcast
// address of each IPv4 subnet, and to ff02::1 where the interface
// multicasts and has an IPv6 link-local address. Each carries the
// interface's own addresses, IPv4 first.
func (b *Beacons) send() {
	b.mu.Lock()
	ifs := b.ifs
	b.mu.Unlock()
	name := *b.name.Load()
	for _, i := range ifs {
		if !b.usable(i) {
			continue
		}
		var v4, v6 []netip.Addr
		var to []netip.AddrPort
		for _, p := range i.prefixes {
			a := p.Addr()
			switch {
			case a.Is4():
				v4 = append(v4, a)
				if i.broadcast && p.Bits() < 31 && b.v4 != nil {
					to = append(to, netip.AddrPortFrom(broadcastOf(p), uint16(b.cfg.port)))
				}
			case a.IsLinkLocalUnicast():
				v6 = append(v6, a)
			default:
				v6 = slices.Insert(v6, 0, a) // global and ULA before link-local
			}
		}
		if i.multicast && i.linkLocal6() && b.v6 != nil {
			to = append(to, netip.AddrPortFrom(netip.IPv6LinkLocalAllNodes().WithZone(i.name), uint16(b.cfg.port)))
		}
		if len(to) == 0 {
			continue
		}
		msg := Beacon{
			Protocol: transport.ProtocolVersion, Name: name,
			TCPPort: uint16(b.cfg.Port), UDPPort: uint16(b.cfg.UDPPort),
			Sent: time.Now(), Addrs: append(v4, v6...),
		}.AppendSigned(nil, b.cfg.Identity.Key)
		for _, dst := range to {
			c := b.v4
			if dst.Addr().Is6() {
				c = b.v6
			}
			c.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := c.WriteToUDPAddrPort(msg, dst); err != nil {
				b.log.Debug("beacons: send failed", "iface", i.name, "to", dst, "err", err)
				continue
			}
			b.sent.Add(1)
		}
	}
}

// systemInterfaces lists the host's interfaces.
func systemInterfaces() []iface {
	all, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var out []iface
	for _, ni := range all {
		i := iface{
			name:      ni.Name,
			up:        ni.Flags&net.FlagUp != 0,
			loopback:  ni.Flags&net.FlagLoopback != 0,
			broadcast: ni.Flags&net.FlagBroadcast != 0,
			multicast: ni.Flags&net.FlagMulticast != 0,
		}
		addrs, _ := ni.Addrs()
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if !ok {
				continue
			}
			ip = ip.Unmap()
			ones, bits := ipn.Mask.Size()
			if ip.Is4() && bits == 128 {
				ones -= 96
			}
			if p := netip.PrefixFrom(ip, ones); p.IsValid() {
				i.prefixes = append(i.prefixes, p)
			}
		}
		out = append(out, i)
	}
	return out
}

// LocalAddrs lists the addresses other hosts can reach this one at, for
// an invite: those of the interfaces that are up (only the named ones
// when names are given), IPv4 first, then IPv6 other than link-local
// (whose zone means nothing elsewhere); loopback only when there is
// nothing else.
func LocalAddrs(names []string) []netip.Addr {
	var v4, v6, lo []netip.Addr
	for _, i := range systemInterfaces() {
		if !i.up || (len(names) > 0 && !slices.Contains(names, i.name)) {
			continue
		}
		for _, p := range i.prefixes {
			a := p.Addr()
			switch {
			case a.IsLoopback():
				lo = append(lo, a)
			case i.loopback, a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast(), a.IsUnspecified():
			case a.Is4():
				v4 = append(v4, a)
			default:
				v6 = append(v6, a)
			}
		}
	}
	if out := append(v4, v6...); len(out) > 0 {
		return out
	}
	return lo
}
