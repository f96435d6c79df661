package peer

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"lanchat/identity"
	"lanchat/store"
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
	// ErrTwin is wrapped when a connection is refused because another
	// process with the same identity is connected from another address.
	ErrTwin = errors.New("same identity connected from elsewhere")
)

// Config configures a Node.
type Config struct {
	// Identity is the node's key; a fresh one is made when nil.
	Identity *identity.Identity
	// Known is the known-peers store; an in-memory one when nil.
	Known *identity.Known
	Name  string
	// Network is the node's sockets (a *transport.Transport).
	Network Network
	// Secure secures every stream; nil means TLS 1.3 with Identity.
	Secure Securer
	// Store keeps outboxes, received ids and the history on disk; nil
	// keeps the outboxes in memory (bounded by OutboxLimit) and no
	// history. The node does not close it.
	Store  *store.Store
	Logger *slog.Logger
	// QueueLimit bounds the bytes waiting to be written to one peer, and
	// StallTimeout is how long a peer may accept none of them before its
	// connection is closed (transport's defaults when zero: 4 MiB, 10 s).
	QueueLimit   int
	StallTimeout time.Duration
	// GiveUpAfter is how long a lost peer found by mDNS is redialled
	// after it was last seen advertised (0: 90 s). Its messages wait on
	// disk regardless.
	GiveUpAfter time.Duration
	// OnPeerLost is called when a peer's connection is lost without a
	// goodbye, and again every lookAgainEvery while it is being
	// reconnected (discovery then looks again at once). It must not
	// block.
	OnPeerLost func()
	// OnPeerUp is called when a connection to a peer is established; it
	// must not block.
	OnPeerUp func(peerID string)
	// OnStream takes inbound streams (transfers) from connected peers;
	// without it they are refused.
	OnStream OnStream
	// OnChat is called when a chat line is sent to or arrives from a
	// connected peer (transfers make room for it); it must not block.
	OnChat func(peerID string)
	// ConfirmShown: the reader of the events calls Chat.Shown once it
	// has shown a message (written it out). With a store, a message is
	// then acknowledged only once shown, so that a crash between storing
	// and showing it cannot lose its display: it is sent again.
	ConfirmShown bool
	// Addresses remembers where peers listen, and its nodes are dialled
	// there while absent (see AddressBook); nil remembers nothing.
	Addresses AddressBook
}

// Node is this process's member of the chat: it accepts and dials
// connections, keeps the peer table and answers and sends requests.
// Its methods are safe for concurrent use, and none waits on a socket:
// each connection's writes are done by its own writer (transport.Conn).
//
// Lock order: Node.mu before Peer.mu before link.mu; a transport.Conn's
// lock is taken under any of them and takes none. Node.pmu (pending
// requests) is taken alone or under series.mu. No lock is held while
// emitting an event, calling a Config callback, or doing file I/O other
// than the known-peers file's.
// GCPercent is the GOGC a node's process runs with (lanchat and the
// bench's in-process nodes; a user's GOGC still wins), instead of Go's
// 100. A node's live heap is small, about 1.2 MB even with 63 peers, so
// its heap is held at the runtime's floor of 4 MB × GOGC/100 rather than
// at twice the live data. Measured with lanchat bench --netns --nodes 64,
// an idle node's resident memory was 18.3 MiB at 100 and 14.1 MiB at 50;
// 25 gave no more. The price, also measured, is 5 to 8% on chat
// throughput.
const GCPercent = 50

type Node struct {
	id      string
	ident   *identity.Identity
	known   *identity.Known
	secure  Securer
	session uint64
	net     Network
	store   *store.Store
	// epoch names this node's sequence of message ids (see Hello.Epoch).
	epoch uint64
	pumpq chan queued
	// held keeps acknowledgements until the pump reports their message
	// stored (outbox.go).
	held    heldAcks
	connOpt transport.ConnOptions
	giveUp  time.Duration
	log     *slog.Logger
	events  chan Event
	ctx     context.Context // set by Run; ends every goroutine
	ready   chan struct{}   // closed when Run has set ctx
	wg      sync.WaitGroup
	nextReq atomic.Uint64
	// peersGen counts connections attached: a peer whose last list is
	// older gets the current one (keeper.go).
	peersGen atomic.Uint64
	nextMsg  atomic.Uint64
	leaving  atomic.Bool

	mu sync.Mutex // protects following
	// name is this node's current name.
	name string
	// links is the table: the live connection to each connected node.
	links map[string]*link
	// peers holds every node connected now or being reconnected, with
	// what is waiting for it.
	peers map[string]*Peer
	// dialing holds ids (from mDNS) being dialled, to dial each once.
	dialing map[string]bool
	// accepting counts the handshakes under way on accepted
	// connections, by remote address, and handshaking in all.
	accepting   map[netip.Addr]int
	handshaking int
	// twinWarned is when each id last seen from two places was reported;
	// twinRefused when each peer that refused this node as a twin did.
	twinWarned, twinRefused map[string]time.Time
	// warned holds mDNS instances already reported as unusable.
	warned map[string]bool
	// failed: when a dial of an address for an id last failed.
	failed map[dialKey]time.Time
	// alarms: when each security warning was last shown; alarmStart
	// and alarmCount count those of the current window.
	alarms     map[string]time.Time
	alarmStart time.Time
	alarmCount int
	// closed is set when the node stops: nothing more is admitted.
	closed bool

	onLost   func()
	onUp     func(peerID string)
	onChat   func(peerID string)
	onStream OnStream
	confirm  bool
	// streams counts the inbound streams handed over, per peer.
	streams map[string]int
	// sendMu makes sending one message at a time: ids reach every peer
	// in increasing order, which receivers rely on to drop duplicates.
	sendMu sync.Mutex

	pmu     sync.Mutex // protects pending
	pending map[uint64]pending

	// connLog carries the lines about refused and broken connections,
	// rate-limited.
	connLog *rateLog
	// dialSlots holds a token per discovered node being dialled.
	dialSlots chan struct{}
	// nets caches this host's networks; allowLoopback lets discovery
	// dial loopback (tests, where every node is on it).
	nets          localNets
	allowLoopback bool
	// selfTwin is set once the user was told that another process uses
	// this node's identity.
	selfTwin atomic.Bool

	// left remembers the names of peers that left; status is this
	// node's user's away state (names.go, away.go).
	left   leftNames
	status userStatus

	badDatagrams, unknownSenders, strayReplies, authFailures, replays atomic.Uint64
	strangersRefused, handshakesFailed                                atomic.Uint64
	sightingsRefused, listsIgnored, alarmsHeld                        atomic.Uint64

	// book and rem: remembered addresses (remember.go).
	book AddressBook
	rem  rememberState
}

// New makes a node; Run starts it.
func New(cfg Config) (*Node, error) {
	if err := transport.CheckName(cfg.Name); err != nil {
		return nil, fmt.Errorf("invalid node name: %w", err)
	}
	if cfg.Network == nil {
		return nil, errors.New("peer: Config.Network is required")
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
	if cfg.Secure == nil {
		s, err := NewTLS(cfg.Identity)
		if err != nil {
			return nil, err
		}
		cfg.Secure = s
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	var b [8]byte
	rand.Read(b[:])
	n := &Node{
		id:          cfg.Identity.ID,
		ident:       cfg.Identity,
		known:       cfg.Known,
		secure:      cfg.Secure,
		session:     binary.BigEndian.Uint64(b[:]),
		net:         cfg.Network,
		store:       cfg.Store,
		giveUp:      cmp.Or(cfg.GiveUpAfter, advertisedFor),
		pumpq:       make(chan queued, pumpQueue),
		connOpt:     transport.ConnOptions{QueueLimit: cfg.QueueLimit, StallTimeout: cfg.StallTimeout},
		log:         cfg.Logger,
		events:      make(chan Event, 1024),
		ready:       make(chan struct{}),
		name:        cfg.Name,
		links:       map[string]*link{},
		peers:       map[string]*Peer{},
		onLost:      cfg.OnPeerLost,
		onUp:        cfg.OnPeerUp,
		onChat:      cfg.OnChat,
		onStream:    cfg.OnStream,
		confirm:     cfg.ConfirmShown,
		streams:     map[string]int{},
		dialing:     map[string]bool{},
		accepting:   map[netip.Addr]int{},
		twinWarned:  map[string]time.Time{},
		twinRefused: map[string]time.Time{},
		connLog:     newRateLog(cfg.Logger, 5, 10*time.Second),
		warned:      map[string]bool{},
		failed:      map[dialKey]time.Time{},
		alarms:      map[string]time.Time{},
		dialSlots:   make(chan struct{}, maxDialsAtOnce),
		pending:     map[uint64]pending{},
	}
	n.book = cfg.Addresses
	rand.Read(b[:])
	// Request ids start at a random point so that a late reply to a
	// previous process is not taken for ours.
	n.nextReq.Store(binary.BigEndian.Uint64(b[:]) >> 1)
	n.epoch = n.session // message ids start again with each process
	if n.store != nil {
		n.epoch = n.store.Epoch()
	}
	return n, nil
}

// ID is this node's id.
func (n *Node) ID() string { return n.id }

// Name is this node's current name.
func (n *Node) Name() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.name
}

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
	for id := range n.links {
		if id < n.id {
			lower++
		}
	}
	return lower < watchers
}

// Events delivers what happens, in order. The channel is never closed;
// stop reading when Run has returned.
func (n *Node) Events() <-chan Event { return n.events }

// emit delivers an event; it waits for the reader rather than lose one,
// until the node stops. Never call it holding a lock.
func (n *Node) emit(e Event) {
	select {
	case n.events <- e:
	case <-n.ctx.Done():
	}
}

// tryEmit delivers an event if the reader has room for it, and reports
// whether it did: for the keeper, which must never wait on the console.
func (n *Node) tryEmit(e Event) bool {
	select {
	case n.events <- e:
		return true
	default:
		return false
	}
}

// Run serves connections and datagrams until ctx is done, then closes every
// connection and waits for every goroutine it started.
func (n *Node) Run(ctx context.Context) {
	n.ctx = ctx
	close(n.ready)
	n.wg.Add(3)
	go func() {
		defer n.wg.Done()
		n.net.Serve(ctx, n.handleDatagram)
	}()
	go func() {
		defer n.wg.Done()
		n.keepAll(ctx)
	}()
	go func() {
		defer n.wg.Done()
		n.pump(ctx)
	}()
	if n.book != nil {
		n.wg.Add(1)
		go n.redialLoop(ctx)
	}
	for {
		select {
		case c := <-n.net.Streams():
			n.accept(c)
		case <-ctx.Done():
			n.closeAll()
			n.wg.Wait()
			return
		}
	}
}

// accept runs the handshake of an accepted connection on its own
// goroutine, counting it by remote address meanwhile (see holdOffLocked),
// or closes it at once when too many handshakes are under way.
func (n *Node) accept(c net.Conn) {
	from := hostOf(c.RemoteAddr())
	if !n.admitStranger(from) {
		c.Close()
		n.strangersRefused.Add(1)
		n.connLog.Log(slog.LevelInfo, "connection closed: too many handshakes under way", "addr", c.RemoteAddr(),
			"limit", maxStrangers, "per_host", maxStrangersPerHost)
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		_, err := n.handshake(c, false, 0, "")
		n.strangerDone(from)
		if err != nil {
			n.logHandshakeError(c.RemoteAddr(), err)
		}
	}()
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
	case errors.Is(err, ErrDuplicate), errors.Is(err, context.Canceled), errors.Is(err, ErrTwin):
		// A twin was reported once as a warning already.
		n.log.Debug("connection not kept", "addr", addr, "err", err)
	default:
		n.handshakesFailed.Add(1)
		n.connLog.Log(slog.LevelInfo, "connection refused", "addr", addr, "err", err)
	}
}

func (n *Node) closeAll() {
	n.mu.Lock()
	// No handshake still under way may add a connection after this.
	n.closed = true
	ls := n.linksLocked()
	n.mu.Unlock()
	for _, l := range ls {
		l.conn.Close()
	}
}

// Leave tells every peer that this node is leaving and closes the
// connections once the goodbye is written and the peer has hung up, within
// ctx and at most leaveTimeout: a peer that does not read holds nobody up.
func (n *Node) Leave(ctx context.Context, reason string) {
	n.leaving.Store(true)
	n.mu.Lock()
	ls := n.linksLocked()
	n.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, leaveTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.conn.Send(transport.Bye{Reason: reason})
			l.conn.Shutdown(ctx)
		}()
	}
	wg.Wait()
}

// Stats counts what the node dropped.
type Stats struct {
	BadDatagrams     uint64 // did not decode: bad magic, version or encoding
	UnknownSenders   uint64 // decoded, but from an id not in the table
	StrayReplies     uint64 // replies to no pending request (late or forged)
	DatagramOverruns uint64 // dropped because the node was behind
	AuthFailures     uint64 // failed to open: forged, altered or wrong key
	Replays          uint64 // a counter seen before, or too old
	// Connections: accepted ones closed at once because too many
	// handshakes were under way, and handshakes that failed.
	StrangersRefused uint64
	HandshakesFailed uint64
	// Discovery: sightings refused (a bad id, no usable address), peer
	// lists ignored (sent too often), warnings held back (repeated).
	SightingsRefused uint64
	ListsIgnored     uint64
	AlarmsHeld       uint64
}

// Stats returns the drop counters.
func (n *Node) Stats() Stats {
	return Stats{
		BadDatagrams:     n.badDatagrams.Load(),
		UnknownSenders:   n.unknownSenders.Load(),
		StrayReplies:     n.strayReplies.Load(),
		AuthFailures:     n.authFailures.Load(),
		Replays:          n.replays.Load(),
		DatagramOverruns: n.net.Overruns(),
		StrangersRefused: n.strangersRefused.Load(),
		HandshakesFailed: n.handshakesFailed.Load(),
		SightingsRefused: n.sightingsRefused.Load(),
		ListsIgnored:     n.listsIgnored.Load(),
		AlarmsHeld:       n.alarmsHeld.Load(),
	}
}
