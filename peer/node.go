package peer

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
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

// Timeouts.
const (
	// HandshakeTimeout bounds the wait for the other side's hello and
	// welcome: a connection that sends nothing is closed after it.
	HandshakeTimeout = 5 * time.Second
	// DialTimeout bounds one TCP connect.
	DialTimeout = 3 * time.Second
	// leaveTimeout bounds the goodbye to each peer.
	leaveTimeout = 2 * time.Second
	// DialHoldOff is how long a node waits before dialling a discovered
	// node that is most likely dialling it, when its id is the larger
	// (see holdOffLocked), plus up to half as much again at random;
	// shortHoldOff when its id is the smaller.
	DialHoldOff  = time.Second
	shortHoldOff = 250 * time.Millisecond
)

// Via values: how a connection came about.
const (
	ViaMDNS   = "mdns"
	ViaManual = "manual"
)

var (
	// ErrNoPeers is returned when there is nobody to send to.
	ErrNoPeers = errors.New("no peers connected")
	// ErrDuplicate is wrapped when a connection is dropped because the
	// pair already has one.
	ErrDuplicate = errors.New("already connected")
	// ErrSelf is wrapped when a node reaches itself.
	ErrSelf = errors.New("that address is this node")
	// ErrUnknownPeer is wrapped when a name or id prefix matches no peer.
	ErrUnknownPeer = errors.New("unknown peer")
	// ErrAway is wrapped when a request needs a connection the peer has
	// lost for now.
	ErrAway = errors.New("is away")
)

// Config configures a Node.
type Config struct {
	// Identity is the node's key; a fresh one is made when nil.
	Identity *identity.Identity
	// Known is the known-peers store; an in-memory one when nil.
	Known     *identity.Known
	Name      string
	Transport *transport.Transport
	Logger    *slog.Logger
	// Insecure turns off TLS and datagram sealing. It exists only to
	// measure what they cost; a node never offers it to users.
	Insecure bool
	// OnPeerLost is called when a peer's connection is lost without a
	// goodbye, and again every lookAgainEvery while it is being
	// reconnected (discovery then looks again at once). It must not
	// block.
	OnPeerLost func()
	// OnPeerUp is called when a connection to a peer is established; it
	// must not block.
	OnPeerUp func()
}

// Node is this process's member of the chat: it accepts and dials
// connections, keeps the peer table and answers and sends requests.
// Its methods are safe for concurrent use.
type Node struct {
	id       string
	ident    *identity.Identity
	known    *identity.Known
	tlsConf  *tls.Config
	insecure bool
	session  uint64
	tr       *transport.Transport
	log      *slog.Logger
	events   chan Event
	ctx      context.Context // set by Run; ends every goroutine
	ready    chan struct{}   // closed when Run has set ctx
	wg       sync.WaitGroup
	nextReq  atomic.Uint64
	nextMsg  atomic.Uint64
	leaving  atomic.Bool

	mu sync.Mutex // protects following
	// name is this node's current name.
	name string
	// peers is the table: one entry per connected node id.
	peers map[string]*peer
	// members holds every node connected now or being reconnected, with
	// what is waiting for it.
	members map[string]*member
	// dialing holds ids (from mDNS) being dialled, to dial each once.
	dialing map[string]bool
	// accepting counts the handshakes under way on accepted
	// connections, by remote address.
	accepting map[netip.Addr]int
	// warned holds mDNS instances already reported as unusable.
	warned map[string]bool
	// closed is set when the node stops: nothing more is admitted.
	closed bool

	onLost, onUp func()
	// sendMu makes sending one message at a time: ids reach every peer
	// in increasing order, which receivers rely on to drop duplicates.
	sendMu sync.Mutex

	pmu     sync.Mutex // protects pending
	pending map[uint64]pending

	badDatagrams, unknownSenders, strayReplies, authFailures, replays atomic.Uint64
}

// New makes a node; Run starts it.
func New(cfg Config) (*Node, error) {
	if err := transport.CheckName(cfg.Name); err != nil {
		return nil, fmt.Errorf("invalid node name: %w", err)
	}
	if cfg.Identity == nil {
		id, err := identity.New()
		if err != nil {
			return nil, err
		}
		cfg.Identity = id
	}
	if cfg.Known == nil {
		cfg.Known, _ = identity.LoadKnown("")
	}
	cert, err := cfg.Identity.Certificate()
	if err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	var b [8]byte
	rand.Read(b[:])
	n := &Node{
		id:        cfg.Identity.ID,
		ident:     cfg.Identity,
		known:     cfg.Known,
		tlsConf:   tlsConfig(cert),
		insecure:  cfg.Insecure,
		session:   binary.BigEndian.Uint64(b[:]),
		tr:        cfg.Transport,
		log:       cfg.Logger,
		events:    make(chan Event, 1024),
		ready:     make(chan struct{}),
		name:      cfg.Name,
		peers:     map[string]*peer{},
		members:   map[string]*member{},
		onLost:    cfg.OnPeerLost,
		onUp:      cfg.OnPeerUp,
		dialing:   map[string]bool{},
		accepting: map[netip.Addr]int{},
		warned:    map[string]bool{},
		pending:   map[uint64]pending{},
	}
	rand.Read(b[:])
	// Request ids start at a random point so that a late reply to a
	// previous process is not taken for ours.
	n.nextReq.Store(binary.BigEndian.Uint64(b[:]) >> 1)
	return n, nil
}

// ID is this node's id.
func (n *Node) ID() string { return n.id }

// watchers is how many nodes of a connected group keep browsing for
// other groups; see Watches.
const watchers = 2

// Watches reports whether this node's id is among the lowest watchers
// ids of itself and its connected peers. Only they need to keep
// looking for nodes that none of the group knows (a group that lost
// another for long): one of them finding it is enough, since the peer
// lists exchanged at each handshake join both groups whole. The others
// browsing too would cost every node of a large LAN an answer from each
// node for each of their queries.
func (n *Node) Watches() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	lower := 0
	for id := range n.peers {
		if id < n.id {
			lower++
		}
	}
	return lower < watchers
}

// Name is this node's current name.
func (n *Node) Name() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.name
}

// Events delivers what happens, in order. The channel is never closed;
// stop reading when Run has returned.
func (n *Node) Events() <-chan Event { return n.events }

// emit delivers an event; it waits for the reader rather than lose one,
// until the node stops.
func (n *Node) emit(e Event) {
	select {
	case n.events <- e:
	case <-n.ctx.Done():
	}
}

// Run serves connections and datagrams until ctx is done, then closes every
// connection and waits for every goroutine it started.
func (n *Node) Run(ctx context.Context) {
	n.ctx = ctx
	close(n.ready)
	n.wg.Add(2)
	go func() {
		defer n.wg.Done()
		n.tr.Serve(ctx, n.handleDatagram)
	}()
	go func() {
		defer n.wg.Done()
		n.keepAll(ctx)
	}()
	for {
		select {
		case c := <-n.tr.Streams():
			from := hostOf(c.RemoteAddr())
			n.mu.Lock()
			n.accepting[from]++
			n.mu.Unlock()
			n.wg.Add(1)
			go func() {
				defer n.wg.Done()
				_, err := n.handshake(c, false, "", "")
				n.mu.Lock()
				if n.accepting[from]--; n.accepting[from] <= 0 {
					delete(n.accepting, from)
				}
				n.mu.Unlock()
				if err != nil {
					n.logHandshakeError(c.RemoteAddr(), err)
				}
			}()
		case <-ctx.Done():
			n.closeAll()
			n.wg.Wait()
			return
		}
	}
}

// hostOf is the IP address of a TCP or UDP address, without a zone.
func hostOf(a net.Addr) netip.Addr {
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	return netip.Addr{}
}

func (n *Node) logHandshakeError(addr net.Addr, err error) {
	switch {
	case errors.Is(err, ErrDuplicate), errors.Is(err, context.Canceled):
		n.log.Debug("connection not kept", "addr", addr, "err", err)
	default:
		n.log.Info("connection refused", "addr", addr, "err", err)
	}
}

func (n *Node) closeAll() {
	n.mu.Lock()
	// No handshake still under way may add a connection after this.
	n.closed = true
	ps := n.livePeersLocked()
	n.mu.Unlock()
	for _, p := range ps {
		p.conn.Close()
	}
}

// Leave tells every peer that this node is leaving and closes the
// connections once the goodbye is written and the peer has hung up, within
// ctx.
func (n *Node) Leave(ctx context.Context, reason string) {
	n.leaving.Store(true)
	n.mu.Lock()
	ps := n.livePeersLocked()
	n.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, leaveTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.conn.Send(transport.Bye{Reason: reason})
			p.conn.Shutdown(ctx)
		}()
	}
	wg.Wait()
}

// admit puts p in the table. With force (the other side decided) it
// replaces whatever is there. Otherwise a connection to the same process
// of that node that is already there is kept and p refused, unless it is
// older than staleAfter and the other side says it holds no live
// connection: then the old one is dead on its side, which is why it
// dialled again. It returns the entry p replaced.
func (n *Node) admit(p *peer, force, otherConnected bool) (old *peer, ok bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, false
	}
	old = n.peers[p.id]
	if old != nil && !force && old.session == p.session &&
		(otherConnected || time.Since(old.since) < staleAfter) {
		return nil, false
	}
	n.peers[p.id] = p
	return old, true
}

// livePeersLocked lists the connected peers; it runs under n.mu.
func (n *Node) livePeersLocked() []*peer {
	ps := make([]*peer, 0, len(n.peers))
	for _, p := range n.peers {
		ps = append(ps, p)
	}
	return ps
}

// remove takes p out of the table if it is still the current entry.
func (n *Node) remove(p *peer) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.peers[p.id] != p {
		return false
	}
	delete(n.peers, p.id)
	return true
}

// serve reads p's connection until it ends, then reports the peer gone
// (or away, while it is reconnected).
func (n *Node) serve(p *peer) {
	defer n.wg.Done()
	reason := p.readLoop()
	p.conn.Close()
	close(p.done)
	if !n.remove(p) {
		return // replaced by a newer connection to the same node
	}
	p.mu.Lock()
	bye := p.bye != ""
	p.mu.Unlock()
	info := p.info()
	reconnecting, undelivered := n.detach(p, bye)
	n.emit(PeerDown{Peer: info, Reason: reason, Reconnecting: reconnecting, Undelivered: undelivered})
}

// Peers returns a snapshot of every peer, connected or away, sorted by
// name then id.
func (n *Node) Peers() []Info {
	ms := n.memberList()
	out := make([]Info, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.info())
	}
	slices.SortFunc(out, func(a, b Info) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// PeerNames returns the names of the peers, for completion.
func (n *Node) PeerNames() []string {
	var names []string
	for _, p := range n.Peers() {
		names = append(names, p.Name)
	}
	return names
}

// Stats returns the drop counters.
func (n *Node) Stats() Stats {
	return Stats{
		BadDatagrams:     n.badDatagrams.Load(),
		UnknownSenders:   n.unknownSenders.Load(),
		StrayReplies:     n.strayReplies.Load(),
		AuthFailures:     n.authFailures.Load(),
		Replays:          n.replays.Load(),
		DatagramOverruns: n.tr.Overruns(),
	}
}

// lookup finds a peer, connected or away, by name or id prefix.
func (n *Node) lookup(arg string) (*member, error) {
	ms := n.memberList()
	var byName, byID, conflicts []*member
	norm := identity.NormalizeID(arg)
	for _, m := range ms {
		m.mu.Lock()
		name, trust := m.name, m.trust
		m.mu.Unlock()
		if name == arg {
			// A name is never resolved to a node that is not the one
			// known by that name.
			if trust == identity.Conflict {
				conflicts = append(conflicts, m)
			} else {
				byName = append(byName, m)
			}
		}
		if len(norm) >= 4 && strings.HasPrefix(m.id, norm) {
			byID = append(byID, m)
		}
	}
	switch {
	case len(byName) == 0 && len(conflicts) > 0 && len(byID) == 0:
		pinned, _ := n.known.PinnedID(arg)
		return nil, fmt.Errorf("%s is not the %s you know (%s): /trust %s to accept it, or give its id prefix", describe(conflicts), arg, ShortID(pinned), ShortID(conflicts[0].id))
	case len(byName) == 1:
		return byName[0], nil
	case len(byName) > 1:
		return nil, fmt.Errorf("%q is the name of %d peers: give an id prefix instead (%s)", arg, len(byName), describe(byName))
	case len(byID) == 1:
		return byID[0], nil
	case len(byID) > 1:
		return nil, fmt.Errorf("id prefix %q matches %d peers: give more of the id (%s)", arg, len(byID), describe(byID))
	case len(ms) == 0:
		return nil, fmt.Errorf("unknown peer %q: %w", arg, ErrNoPeers)
	}
	return nil, fmt.Errorf("%w %q; known peers: %s", ErrUnknownPeer, arg, describe(ms))
}

// lookupLive finds a connected peer: requests need a connection.
func (n *Node) lookupLive(arg string) (*peer, error) {
	m, err := n.lookup(arg)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.conn == nil {
		return nil, fmt.Errorf("%s (%s) %w: its connection was lost and is being re-established", m.name, ShortID(m.id), ErrAway)
	}
	return m.conn, nil
}

// Resolve finds a peer by name, or by id prefix when names clash.
func (n *Node) Resolve(arg string) (Info, error) {
	m, err := n.lookup(arg)
	if err != nil {
		return Info{}, err
	}
	return m.info(), nil
}

// describe lists members as "name (id prefix)", sorted.
func describe(ms []*member) string {
	var s []string
	for _, m := range ms {
		m.mu.Lock()
		s = append(s, fmt.Sprintf("%s (%s)", m.name, ShortID(m.id)))
		m.mu.Unlock()
	}
	slices.Sort(s)
	return strings.Join(s, ", ")
}
