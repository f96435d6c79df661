package discovery

import (
	"context"
	"fmt"
	"log/slog"
	"net"
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
	Version = "2"
	// BrowseRound is how long one browse runs before it is restarted.
	BrowseRound = 30 * time.Second
)

// Entry is a lanchat node seen on the network.
type Entry struct {
	Instance string
	ID       string
	Name     string
	UDPPort  int
	// Addrs are host:port strings to dial, IPv4 first.
	Addrs []string
}

// Config says what to advertise and where.
type Config struct {
	Name    string
	ID      string
	Port    int // TCP
	UDPPort int
	// Ifaces restricts mDNS to these interfaces; empty means all
	// multicast interfaces.
	Ifaces []net.Interface
	Logger *slog.Logger
}

// Service advertises and browses until Close.
type Service struct {
	cfg    Config
	log    *slog.Logger
	found  func(Entry)
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu sync.Mutex // protects following
	// server is the current registration, nil when registering failed.
	server *zeroconf.Server
	name   string
	// skipped holds instances already logged as unusable.
	skipped map[string]bool
	closed  bool
}

// Start registers this node and starts browsing; found is called (from one
// goroutine, in order) for every lanchat node seen, this one included.
func Start(ctx context.Context, cfg Config, found func(Entry)) (*Service, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Service{cfg: cfg, log: cfg.Logger, found: found, name: cfg.Name, skipped: map[string]bool{}}
	if err := s.register(cfg.Name); err != nil {
		return nil, err
	}
	ctx, s.cancel = context.WithCancel(ctx)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.browse(ctx)
	}()
	return s, nil
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

func (s *Service) register(name string) error {
	srv, err := zeroconf.Register(s.instance(name), ServiceType, Domain, s.cfg.Port, s.txt(name), s.cfg.Ifaces)
	if err != nil {
		return fmt.Errorf("mDNS: register %s: %w", ServiceType, err)
	}
	s.mu.Lock()
	s.server = srv
	s.mu.Unlock()
	return nil
}

// SetName re-registers under the new name: the old instance says goodbye
// and the new one is announced. (zeroconf's SetText would not reach
// browsers that are already running.)
func (s *Service) SetName(name string) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	old := s.server
	s.server = nil
	s.mu.Unlock()
	if old != nil {
		old.Shutdown()
	}
	return s.register(name)
}

// Close sends the mDNS goodbye, stops browsing and waits for it to end.
// Safe to call more than once.
func (s *Service) Close() {
	s.mu.Lock()
	srv := s.server
	s.server = nil
	s.closed = true
	s.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
	}
	s.cancel()
	s.wg.Wait()
}

func (s *Service) browse(ctx context.Context) {
	for ctx.Err() == nil {
		if err := s.browseOnce(ctx); err != nil {
			s.log.Warn("mDNS browse failed; retrying", "err", err)
			t := time.NewTimer(5 * time.Second)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
	}
}

// browseOnce runs one browse for BrowseRound with a fresh resolver: a
// zeroconf Resolver serves one Browse only.
func (s *Service) browseOnce(ctx context.Context) error {
	r, err := s.resolver()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, BrowseRound)
	defer cancel()
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
			s.found(ent)
		}
	}
	return nil
}

func (s *Service) resolver() (*zeroconf.Resolver, error) {
	var opts []zeroconf.ClientOption
	if len(s.cfg.Ifaces) > 0 {
		opts = append(opts, zeroconf.SelectIfaces(s.cfg.Ifaces))
	}
	// zeroconf fails if either family cannot join its group; fall back to
	// the one that works on hosts without IPv6 (or IPv4).
	var firstErr error
	for _, ip := range []zeroconf.IPType{zeroconf.IPv4AndIPv6, zeroconf.IPv4, zeroconf.IPv6} {
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
	ifaces := s.cfg.Ifaces
	if len(ifaces) == 0 {
		all, _ := net.Interfaces()
		for _, i := range all {
			if i.Flags&net.FlagUp != 0 && i.Flags&net.FlagMulticast != 0 && i.Flags&net.FlagLoopback == 0 {
				ifaces = append(ifaces, i)
			}
		}
	}
	if len(ifaces) == 1 {
		return ifaces[0].Name
	}
	return ""
}
