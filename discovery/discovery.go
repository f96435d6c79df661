package discovery

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/grandcat/zeroconf"
)

const (
	// ServiceType is the DNS-SD service type.
	ServiceType = "_lanchat._tcp"
	// Domain is the mDNS domain.
	Domain = "local."
	// Version is the protocol version advertised and accepted in TXT.
	Version = "3"
	// BrowseRound is how long one browse listens. Its query is answered
	// within milliseconds; the rest allows for a busy network.
	BrowseRound = 3 * time.Second
	// FirstGap and MaxGap bound the quiet between browses. While no other
	// node is found it doubles from FirstGap, as RFC 6762 (5.2) asks of
	// continuous queries; after a browse that found some it is MaxGap:
	// the nodes a browse missed are introduced by those it found, and a
	// newcomer needs no browse by the others, since it browses when it
	// starts and dials them. Browsing less matters because zeroconf has
	// no known-answer suppression: every query is answered by every
	// node, to every node, so on a LAN of N nodes each query costs every
	// node about 2N answers to parse (measured with 64 nodes browsing in
	// 30 s rounds: 2.5 MB/s of parsing garbage per idle node). MaxGap
	// also bounds how long two groups that lost each other for longer
	// than a lost peer is redialled stay apart once they could meet.
	FirstGap = 2 * time.Second
	MaxGap   = time.Minute
	// AnswerWindow: see Entry.Answer. Answers take well under a
	// millisecond on a quiet LAN; the window allows for a busy one. A
	// node that starts within it may be marked too; then both ends dial,
	// and the handshake keeps one connection.
	AnswerWindow = 250 * time.Millisecond
)

// Entry is a lanchat node seen on the network.
type Entry struct {
	Instance string
	ID       string
	Name     string
	UDPPort  int
	// Addrs are host:port strings to dial, IPv4 first.
	Addrs []string
	// Answer is set when the node was seen within AnswerWindow of this
	// node's (re)registration: most likely it answered our first query,
	// so it was there first and knows nothing of us until our
	// announcement, hundreds of milliseconds away. Such a node is worth
	// dialling at once; one seen later has most likely just started and
	// is dialling us.
	Answer bool
}

// Config says what to advertise and where.
type Config struct {
	Name    string
	ID      string
	Port    int // TCP
	UDPPort int
	// Ifaces restricts mDNS to the interfaces of these names (they may
	// appear later); empty means every multicast interface but loopback.
	Ifaces []string
	Logger *slog.Logger
	// Watch, when set, is asked before each periodic browse of a node
	// that has found others: false skips it. A group needs only a few of
	// its nodes to keep watching for another group: when one finds it,
	// the peer lists exchanged at each handshake join the two groups
	// whole.
	Watch func() bool
}

// Timing of the watch loop.
const (
	// ifacePoll is how often the interfaces are checked for changes: a
	// link that comes back, an address that changes, an interface that
	// appears. Any change re-announces this node and browses again.
	ifacePoll = 2 * time.Second
)

// Service advertises and browses until Close.
type Service struct {
	cfg    Config
	log    *slog.Logger
	found  func(Entry)
	cancel context.CancelFunc
	done   chan struct{}
	rescan chan struct{}
	rename chan string

	mu sync.Mutex // protects following
	// skipped holds instances already logged as unusable.
	skipped map[string]bool
	// ifaces are the interfaces in use, for link-local zones.
	ifaces []net.Interface
}

// Start advertises this node and browses for others until Close. It
// keeps working when no interface is usable yet (mDNS starts when one
// comes up); found is called from one goroutine, in order, for every
// lanchat node seen, this one excepted.
func Start(ctx context.Context, cfg Config, found func(Entry)) *Service {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Service{
		cfg: cfg, log: cfg.Logger, found: found, skipped: map[string]bool{},
		done: make(chan struct{}), rescan: make(chan struct{}, 1), rename: make(chan string, 1),
	}
	ctx, s.cancel = context.WithCancel(ctx)
	go func() {
		defer close(s.done)
		s.run(ctx)
	}()
	return s
}

// Rescan browses again at once (a peer was lost: it may be elsewhere now).
func (s *Service) Rescan() {
	select {
	case s.rescan <- struct{}{}:
	default:
	}
}

// SetName re-registers under the new name: the old instance says goodbye
// and the new one is announced. (zeroconf's SetText would not reach
// browsers that are already running.)
func (s *Service) SetName(name string) {
	for {
		select {
		case s.rename <- name:
			return
		default:
		}
		select { // replace a rename not yet taken
		case <-s.rename:
		default:
		}
	}
}

// Close sends the mDNS goodbye, stops browsing and waits for both.
// Safe to call more than once.
func (s *Service) Close() {
	s.cancel()
	<-s.done
}

// instance makes the unique instance name for a node name.
func (s *Service) instance(name string) string {
	id := s.cfg.ID
	if len(id) > 8 {
		id = id[:8]
	}
	// Dots would split the DNS label.
	return strings.ReplaceAll(name, ".", "-") + "-" + id
}

func (s *Service) txt(name string) []string {
	return []string{"v=" + Version, "id=" + s.cfg.ID, "name=" + name, "udp=" + strconv.Itoa(s.cfg.UDPPort)}
}

// run owns the registration and the browse rounds: it re-registers and
// browses again when the interfaces change, browses again on Rescan and
// every BrowseRound, and shuts everything down when ctx ends.
func (s *Service) run(ctx context.Context) {
	var (
		server   *zeroconf.Server
		sig      string
		name     = s.cfg.Name
		round    context.CancelFunc
		roundEnd chan struct{}
		found    *int
		warned   bool
	)
	stopRound := func() {
		if round != nil {
			round()
			<-roundEnd
			round, roundEnd, found = nil, nil, nil
		}
	}
	unregister := func() {
		if server != nil {
			server.Shutdown() // sends the goodbye
			server = nil
		}
	}
	defer func() {
		unregister()
		stopRound()
	}()
	// Opened before the first listing, so that no change after it is
	// missed.
	watch := newIfaceWatch()
	defer watch.close()
	poll := time.NewTicker(ifacePoll)
	defer poll.Stop()
	// next holds off the next browse until gap has passed; a change of
	// interfaces or a Rescan browses at once and starts the gaps over.
	next := time.NewTimer(0)
	defer next.Stop()
	var (
		gap  = FirstGap
		wait bool
		// foundSome is set when the last browse found other nodes: the
		// next one is only a periodic look, which Watch may skip.
		foundSome bool
	)
	// answersUntil ends the moments after a (re)registration in which
	// what the browse sees is mostly the answers to its first query.
	var answersUntil time.Time
	var ifaces []net.Interface
	newSig := ""
	for first := true; ; first = false {
		// Listed again only when the host says something changed, or
		// while none is usable (the watch is a saving, not a promise).
		if first || len(ifaces) == 0 || watch.changed() {
			ifaces, newSig = s.interfaces()
		}
		changed := newSig != sig || first
		if changed {
			sig = newSig
			s.mu.Lock()
			s.ifaces = ifaces
			s.mu.Unlock()
			unregister()
			stopRound()
			wait, gap = false, FirstGap
			answersUntil = time.Now().Add(AnswerWindow)
			if len(ifaces) == 0 {
				if !warned {
					s.log.Warn("mDNS: no usable interface yet; peers can still be given with --peer or /connect", "want", s.cfg.Ifaces)
					warned = true
				}
			} else {
				warned = false
				var err error
				if server, err = s.register(name, ifaces); err != nil {
					s.log.Warn("mDNS: cannot advertise this node", "err", err)
				}
			}
		}
		if round == nil && !wait && len(ifaces) > 0 {
			round, roundEnd, found = s.startRound(ctx, ifaces, answersUntil)
		}
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
		case <-next.C:
			if foundSome && s.cfg.Watch != nil && !s.cfg.Watch() {
				next.Reset(jitter(gap))
				break
			}
			wait = false
		case <-s.rescan:
			stopRound()
			wait, gap = false, FirstGap
		case name = <-s.rename:
			unregister()
			var err error
			if len(ifaces) > 0 {
				if server, err = s.register(name, ifaces); err != nil {
					s.log.Warn("mDNS: cannot advertise the new name", "err", err)
				}
			}
		case <-roundEnd:
			round()
			foundSome = *found > 0
			if foundSome {
				// Other nodes answered: the ones this browse missed
				// are introduced by them over TCP, and newcomers dial
				// this node. Only a network with no one yet is worth
				// watching closely.
				gap = MaxGap
			}
			round, roundEnd, found = nil, nil, nil
			wait = true
			next.Reset(jitter(gap))
			gap = nextGap(gap)
		}
	}
}

// nextGap is the quiet after the one that follows gap.
func nextGap(gap time.Duration) time.Duration {
	return min(2*gap, MaxGap)
}

// jitter spreads gap over ±25%: nodes started together (or woken by the
// same network change) would otherwise query, and be answered by every
// node, at the same moments.
func jitter(gap time.Duration) time.Duration {
	return gap*3/4 + rand.N(gap/2)
}

func (s *Service) register(name string, ifaces []net.Interface) (*zeroconf.Server, error) {
	srv, err := zeroconf.Register(s.instance(name), ServiceType, Domain, s.cfg.Port, s.txt(name), ifaces)
	if err != nil {
		return nil, fmt.Errorf("register %s on %s: %w", ServiceType, ifaceNames(ifaces), err)
	}
	return srv, nil
}

// interfaces lists the interfaces mDNS should use now, and a signature
// that changes whenever one of them changes in a way that matters.
func (s *Service) interfaces() ([]net.Interface, string) {
	all, err := net.Interfaces()
	if err != nil {
		return nil, ""
	}
	var out []net.Interface
	var sig strings.Builder
	for _, ifi := range all {
		if len(s.cfg.Ifaces) > 0 && !slices.Contains(s.cfg.Ifaces, ifi.Name) {
			continue
		}
		if len(s.cfg.Ifaces) == 0 && ifi.Flags&net.FlagLoopback != 0 {
			continue
		}
		if ifi.Flags&net.FlagUp == 0 || ifi.Flags&net.FlagMulticast == 0 {
			continue
		}
		addrs, _ := ifi.Addrs()
		fmt.Fprintf(&sig, "%d %s %v %v;", ifi.Index, ifi.Name, ifi.Flags, addrs)
		out = append(out, ifi)
	}
	return out, sig.String()
}

func ifaceNames(ifaces []net.Interface) string {
	var names []string
	for _, i := range ifaces {
		names = append(names, i.Name)
	}
	return strings.Join(names, ",")
}

// startRound starts one browse with a fresh resolver (a zeroconf Resolver
// serves one Browse only). It ends after BrowseRound or when cancelled;
// then found holds the number of nodes it found. Entries seen before
// answersUntil are marked Answer.
func (s *Service) startRound(ctx context.Context, ifaces []net.Interface, answersUntil time.Time) (context.CancelFunc, chan struct{}, *int) {
	ctx, cancel := context.WithTimeout(ctx, BrowseRound)
	end := make(chan struct{})
	found := new(int)
	go func() {
		defer close(end)
		if err := s.browse(ctx, ifaces, answersUntil, found); err != nil {
			s.log.Warn("mDNS browse failed", "err", err)
			// Do not spin: wait out the round before the next attempt.
			<-ctx.Done()
		}
	}()
	return cancel, end, found
}

func (s *Service) browse(ctx context.Context, ifaces []net.Interface, answersUntil time.Time, found *int) error {
	r, err := s.resolver(ifaces)
	if err != nil {
		return err
	}
	// A fresh channel per browse; zeroconf closes it when ctx ends, and
	// must be drained until then or its loop blocks.
	entries := make(chan *zeroconf.ServiceEntry, 32)
	if err := r.Browse(ctx, ServiceType, Domain, entries); err != nil {
		for range entries {
		}
		return fmt.Errorf("browse %s: %w", ServiceType, err)
	}
	for e := range entries {
		if ent, ok := s.parse(e); ok {
			ent.Answer = time.Now().Before(answersUntil)
			*found++
			s.found(ent)
		}
	}
	return nil
}

func (s *Service) resolver(ifaces []net.Interface) (*zeroconf.Resolver, error) {
	opts := []zeroconf.ClientOption{zeroconf.SelectIfaces(ifaces)}
	// Every answer comes over both IPv4 and IPv6 (a zeroconf responder
	// multicasts each on both), so where IPv4 reaches every interface a
	// query over IPv6 too would only double the answers that every host
	// on the LAN receives and parses: with 32 nodes starting together
	// that traffic is much of what loads the CPUs. The answers still carry the
	// IPv6 addresses. A host with only IPv6 is still found: it queries
	// over IPv6, which this node's responder answers, and dials us.
	families := []zeroconf.IPType{zeroconf.IPv4AndIPv6, zeroconf.IPv4, zeroconf.IPv6}
	if allHaveIPv4(ifaces) {
		families = []zeroconf.IPType{zeroconf.IPv4, zeroconf.IPv4AndIPv6, zeroconf.IPv6}
	}
	// zeroconf fails if a family cannot join its group; fall back to
	// one that works.
	var firstErr error
	for _, ip := range families {
		r, err := zeroconf.NewResolver(append(opts, zeroconf.SelectIPTraffic(ip))...)
		if err == nil {
			return r, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, fmt.Errorf("mDNS: %w", firstErr)
}

// allHaveIPv4 reports whether each interface has an IPv4 address.
func allHaveIPv4(ifaces []net.Interface) bool {
	for _, ifi := range ifaces {
		addrs, _ := ifi.Addrs()
		if !slices.ContainsFunc(addrs, func(a net.Addr) bool {
			ipn, ok := a.(*net.IPNet)
			return ok && ipn.IP.To4() != nil
		}) {
			return false
		}
	}
	return len(ifaces) > 0
}

// parse checks an entry and turns it into an Entry; unusable entries are
// logged once per instance.
func (s *Service) parse(e *zeroconf.ServiceEntry) (Entry, bool) {
	txt := map[string]string{}
	for _, kv := range e.Text {
		k, v, _ := strings.Cut(kv, "=")
		txt[strings.ToLower(k)] = v
	}
	ent := Entry{Instance: e.Instance, ID: txt["id"], Name: txt["name"]}
	ent.UDPPort, _ = strconv.Atoi(txt["udp"])
	var problem string
	switch {
	case txt["v"] != Version:
		problem = fmt.Sprintf("protocol version %q, want %q", txt["v"], Version)
	case ent.ID == "":
		problem = "no id in its TXT record"
	case e.Port <= 0 || e.Port > 65535:
		problem = fmt.Sprintf("port %d", e.Port)
	}
	if problem == "" && ent.ID == s.cfg.ID {
		return ent, false
	}
	zone := s.linkLocalZone()
	for _, ip := range e.AddrIPv4 {
		ent.Addrs = append(ent.Addrs, net.JoinHostPort(ip.String(), strconv.Itoa(e.Port)))
	}
	for _, ip := range e.AddrIPv6 {
		host := ip.String()
		if ip.IsLinkLocalUnicast() {
			// zeroconf drops the interface of link-local addresses; they
			// can be used only where there is one interface to choose.
			if zone == "" {
				continue
			}
			host += "%" + zone
		}
		ent.Addrs = append(ent.Addrs, net.JoinHostPort(host, strconv.Itoa(e.Port)))
	}
	if problem == "" && len(ent.Addrs) == 0 {
		problem = "no usable address"
	}
	if problem != "" {
		s.mu.Lock()
		seen := s.skipped[e.Instance]
		s.skipped[e.Instance] = true
		s.mu.Unlock()
		if !seen {
			s.log.Info("skipping mDNS service", "instance", e.Instance, "host", e.HostName, "reason", problem)
		}
		return ent, false
	}
	return ent, true
}

// linkLocalZone is the interface to use for IPv6 link-local addresses: the
// only interface mDNS runs on, if there is exactly one.
func (s *Service) linkLocalZone() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ifaces) == 1 {
		return s.ifaces[0].Name
	}
	return ""
}
