package peer

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"lanchat/identity"
	"lanchat/transport"
)

// memBook is an AddressBook in memory: a few addresses per id, most
// recent first.
type memBook struct {
	mu    sync.Mutex
	addrs map[string][]string
	calls int // Remember calls
}

func newMemBook() *memBook { return &memBook{addrs: map[string][]string{}} }

func (b *memBook) Remember(id, addr string, _ time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls++
	l := slices.DeleteFunc(slices.Clone(b.addrs[id]), func(a string) bool { return a == addr })
	b.addrs[id] = append([]string{addr}, l[:min(len(l), 3)]...)
	return nil
}

func (b *memBook) Addresses(id string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.addrs[id])
}

func (b *memBook) AppendIDs(ids []string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	for id := range b.addrs {
		ids = append(ids, id)
	}
	return ids
}

var _ AddressBook = (*memBook)(nil)

// dialCounter wraps a Network and records each dial: when, where, and how
// many were under way at once.
type dialCounter struct {
	Network
	mu      sync.Mutex
	dials   map[string][]time.Time
	now     int
	maxOnce int
}

func (d *dialCounter) Dial(ctx context.Context, addr string, timeout time.Duration) (net.Conn, error) {
	d.mu.Lock()
	if d.dials == nil {
		d.dials = map[string][]time.Time{}
	}
	d.dials[addr] = append(d.dials[addr], time.Now())
	d.now++
	d.maxOnce = max(d.maxOnce, d.now)
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.now--
		d.mu.Unlock()
	}()
	return d.Network.Dial(ctx, addr, timeout)
}

// runNode runs a node on port (0: any) until stop is called; stop waits
// for everything it started, so the port can be taken again.
func runNode(t *testing.T, cfg Config, port int) (tn *testNode, stop func()) {
	t.Helper()
	tr, err := transport.Listen(port)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Network == nil {
		cfg.Network = tr
	}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tn = &testNode{Node: n, tr: tr, events: make(chan Event, 1000)}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); n.Run(ctx) }()
	go func() {
		defer wg.Done()
		for {
			select {
			case e := <-n.Events():
				select {
				case tn.events <- e:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			tr.Close()
		})
	}
	t.Cleanup(stop)
	return tn, stop
}

func newIdentity(t *testing.T) *identity.Identity {
	t.Helper()
	id, err := identity.New()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestRememberedAfterRestart: two nodes that met once (by hand) find each
// other again through their address books after both restarted, on the
// ports they had.
func TestRememberedAfterRestart(t *testing.T) {
	ida, idb := newIdentity(t), newIdentity(t)
	booka, bookb := newMemBook(), newMemBook()
	a, stopA := runNode(t, Config{Name: "alice", Identity: ida, Addresses: booka}, 0)
	b, stopB := runNode(t, Config{Name: "bob", Identity: idb, Addresses: bookb}, 0)
	porta, portb := a.tr.TCPPort(), b.tr.TCPPort()
	connected(t, a, b)
	if got, want := booka.Addresses(idb.ID), []string{b.addr()}; !slices.Equal(got, want) {
		t.Fatalf("alice remembers bob at %v, want %v", got, want)
	}
	if got, want := bookb.Addresses(ida.ID), []string{a.addr()}; !slices.Equal(got, want) {
		t.Fatalf("bob remembers alice at %v, want %v", got, want)
	}
	stopA()
	stopB()

	a2, _ := runNode(t, Config{Name: "alice", Identity: ida, Addresses: booka}, porta)
	b2, _ := runNode(t, Config{Name: "bob", Identity: idb, Addresses: bookb}, portb)
	upA := next(t, a2, func(e PeerUp) bool { return e.Peer.ID == idb.ID })
	upB := next(t, b2, func(e PeerUp) bool { return e.Peer.ID == ida.ID })
	if upA.Peer.Via != ViaRemembered || upB.Peer.Via != ViaRemembered {
		t.Fatalf("found via %v and %v, want remembered on both ends", upA.Peer.Via, upB.Peer.Via)
	}
	// Connected again: the same address is not written again.
	booka.mu.Lock()
	calls := booka.calls
	booka.mu.Unlock()
	if calls > 2 {
		t.Errorf("alice's book written %d times for one address", calls)
	}
}

// TestRememberedOtherNode: an address that now belongs to another node
// is tried quietly (no identity warning) and the node is not admitted.
func TestRememberedOtherNode(t *testing.T) {
	c := startNode(t, "carol")
	book := newMemBook()
	someone := newIdentity(t).ID
	book.Remember(someone, c.addr(), time.Now())
	a, _ := runNode(t, Config{Name: "alice", Addresses: book}, 0)
	deadline := time.After(2*redialStart + 2*redialFirst)
	for {
		select {
		case e := <-a.events:
			switch e := e.(type) {
			case Warning:
				t.Fatalf("warning for a remembered address: %s", e.Text)
			case PeerUp:
				t.Fatalf("admitted %+v", e.Peer)
			}
		case <-deadline:
			if len(a.Peers()) != 0 {
				t.Fatalf("peers %+v", a.Peers())
			}
			return
		}
	}
}

// TestRedialBounds: many remembered nodes that do not answer are dialled
// at most maxRedials at once, each address at most once a second.
func TestRedialBounds(t *testing.T) {
	// A listener that accepts and never answers: each dial then takes
	// the whole handshake timeout, so dials pile up if unbounded.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held []net.Conn
	var hmu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			hmu.Lock()
			held = append(held, c)
			hmu.Unlock()
		}
	}()
	defer func() {
		hmu.Lock()
		for _, c := range held {
			c.Close()
		}
		hmu.Unlock()
	}()
	// And closed ports: each dial fails at once, so an unbounded loop
	// would dial them as fast as it can.
	book := newMemBook()
	for i := 0; i < 20; i++ {
		book.Remember(newIdentity(t).ID, ln.Addr().String(), time.Now())
		book.Remember(newIdentity(t).ID, fmt.Sprintf("127.0.0.1:%d", closedPort(t)), time.Now())
	}
	tr, err := transport.Listen(0)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	dc := &dialCounter{Network: tr}
	_, stop := runNode(t, Config{Name: "alice", Addresses: book, Network: dc}, 0)
	time.Sleep(4 * time.Second)
	stop()
	dc.mu.Lock()
	defer dc.mu.Unlock()
	if dc.maxOnce > maxRedials {
		t.Errorf("%d dials at once, limit %d", dc.maxOnce, maxRedials)
	}
	total := 0
	for addr, ts := range dc.dials {
		total += len(ts)
		if addr == ln.Addr().String() {
			continue // shared by 20 ids: its own bound is per id
		}
		for i := 1; i < len(ts); i++ {
			if d := ts[i].Sub(ts[i-1]); d < time.Second {
				t.Errorf("%s dialled twice within %v", addr, d)
			}
		}
	}
	if total == 0 {
		t.Fatal("nothing dialled")
	}
}

// closedPort is a TCP port on loopback that nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestViaWire(t *testing.T) {
	for _, v := range []Via{ViaMDNS, ViaManual, ViaBroadcast, ViaRemembered, ViaIntroduced} {
		if got := viaFromWire(v.wire()); got != v {
			t.Errorf("%v: sent as %d, read as %v", v, v.wire(), got)
		}
	}
	// What older versions send, and what a newer one might.
	for _, tt := range []struct {
		b    uint8
		want Via
	}{{0, ViaManual}, {1, ViaMDNS}, {200, ViaManual}} {
		if got := viaFromWire(tt.b); got != tt.want {
			t.Errorf("wire %d read as %v, want %v", tt.b, got, tt.want)
		}
	}
}

// TestGivens: entries of a list that changes are dialled while listed.
func TestGivens(t *testing.T) {
	a := startNode(t, "alice")
	b, c := startNode(t, "bob"), startNode(t, "carol")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g := a.NewGivens(ctx)
	g.Set([]Given{{What: "peers line 1", Addrs: []string{"127.0.0.1:1", b.addr()}, ID: b.ID()}})
	up := next(t, a, func(e PeerUp) bool { return e.Peer.ID == b.ID() })
	if up.Peer.Via != ViaManual {
		t.Fatalf("via %v", up.Peer.Via)
	}
	g.Set([]Given{
		{What: "peers line 2", Addrs: []string{b.addr()}, ID: b.ID()},
		{What: "peers line 3", Addrs: []string{c.addr()}},
	})
	next(t, a, func(e PeerUp) bool { return e.Peer.ID == c.ID() })
	g.Set([]Given{{What: "peers line 4", Addrs: []string{a.addr()}, ID: a.ID()}})
	if g.Len() != 0 {
		t.Fatalf("%d entries for a list naming only this node", g.Len())
	}
	g.Set(nil)
	if g.Len() != 0 {
		t.Fatalf("%d entries after clearing", g.Len())
	}
}
