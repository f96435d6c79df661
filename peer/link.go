package peer

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"lanchat/transport"
)

// link is one entry of the table: the live connection to a peer, its
// reader, and the state of its datagram channel. A Peer outlives its
// links: each reconnection is a new link.
type link struct {
	n       *Node
	p       *Peer // set by attach, before the connection is served
	conn    *transport.Conn
	ch      *transport.Channel // seals and opens our datagrams
	id      string
	session uint64
	// epoch names the peer's sequence of message ids (Hello.Epoch).
	epoch   uint64
	via     Via
	since   time.Time
	addr    string
	tcpAddr netip.AddrPort
	udpPort uint16
	// fingerprint and key of the peer's key (none when the securer
	// proves none).
	fingerprint string
	key         ed25519.PublicKey
	// done is closed when the connection has ended; waiters on requests
	// to this peer give up then.
	done chan struct{}
	// ackDue is the chat id to acknowledge once the input runs dry; only
	// the reader uses it (without a store).
	ackDue uint64
	// Delivery with a store (delivery.go).
	rmu   sync.Mutex // protects following
	rcond *sync.Cond // on rmu: room in arrivals
	// arrivals[ahead:] wait for delivery; arrivalBytes is their texts'
	// size.
	arrivals     []arrival
	ahead        int
	arrivalBytes int
	// settling counts the messages shown whose commit the delivery
	// goroutine waits for; rwake tells it of an arrival meanwhile.
	settling   int
	rwake      chan struct{}
	delivering bool
	rclosed    bool
	// rack is the highest id delivered, rackSent the highest acked,
	// rfresh the highest fresh one handed to the events; shownSent is
	// the highest id told shown (Ack.Shown).
	rack, rackSent, rfresh, shownSent uint64
	// shown is the highest id the events' reader confirmed shown
	// (Config.ConfirmShown); shownCh wakes a wait for it.
	shown   atomic.Uint64
	shownCh chan struct{}
	showFn  func(uint64)   // markShown, made once
	rwg     sync.WaitGroup // the delivery goroutine
	// prev is the link of the same peer that this one replaced: its
	// delivery goroutine shows what it took before this one's shows
	// anything (set by attach, on rmu after).
	prev *link
	// acked holds the ids of the messages an ack delivered, for the
	// reader to report; reused from ack to ack.
	acked []uint64
	// ackIn is the acknowledgement read and not applied yet (only the
	// reader uses it): acknowledgements are cumulative, and those read
	// in one burst are applied once, when no more input is waiting, or
	// after ackHeldFrames frames of a stream that never pauses.
	ackIn       transport.Ack
	ackInFrames int
	// lastHeard and lastUDP are when anything (any frame or datagram),
	// and an authentic datagram, last arrived: Unix nanoseconds.
	lastHeard, lastUDP atomic.Int64
	// The keeper's own state, used by keepAll only: the time between
	// heartbeats, the next one, whether it gave the connection up, and
	// the state it last reported.
	beatEvery time.Duration
	nextBeat  time.Time
	givenUp   bool
	reported  State
	// lastList is when the reader last heeded a peer list.
	lastList time.Time
	// listGen is the node's peersGen when the peer was last sent the
	// list of peers, listSent when (Unix nanoseconds).
	listGen  atomic.Uint64
	listSent atomic.Int64
	// beating is set by startBeats once the schedule is set.
	beating atomic.Bool

	mu sync.Mutex // protects following
	// udpAddr is where the peer's datagrams come from, once learned.
	udpAddr netip.AddrPort
	lastRTT time.Duration
	// bye is the reason the peer gave when it said goodbye.
	bye string
	// unreachable is set while the peer has been silent too long.
	unreachable bool
	// dead is why the keeper gave the connection up, if it did.
	dead string
}

func (l *link) heard(now time.Time) { l.lastHeard.Store(now.UnixNano()) }

// info describes the peer with this connection.
func (l *link) info() Info {
	l.p.mu.Lock()
	name, trust, pending := l.p.name, l.p.trust, len(l.p.outbox)
	listen, userAway, awayText := l.p.dialAddr, l.p.userAway, l.p.awayText
	l.p.mu.Unlock()
	queued := l.conn.Queued()
	l.mu.Lock()
	defer l.mu.Unlock()
	i := Info{
		ID: l.id, Name: name, Addr: l.addr, State: Up, UDP: l.udpStateLocked(),
		Via: l.via, Since: l.since, LastRTT: l.lastRTT, Trust: trust, Fingerprint: l.fingerprint,
		Pending: pending, Queued: queued, Listen: listen, UserAway: userAway, AwayText: awayText,
	}
	if l.unreachable {
		i.State = Unreachable
	}
	if t := l.udpTargetLocked(); t.IsValid() {
		i.UDPAddr = t.String()
	}
	return i
}

// udpStateLocked: ok when an authentic datagram arrived lately, probing
// before the first, no reply after a silence.
func (l *link) udpStateLocked() UDPState {
	last := l.lastUDP.Load()
	switch {
	case last == 0 && time.Since(l.since) < UnreachableAfter:
		return UDPProbing
	case last != 0 && time.Since(time.Unix(0, last)) < UnreachableAfter:
		return UDPOK
	}
	return UDPNoReply
}

func (l *link) udpTargetLocked() netip.AddrPort {
	return udpTarget(l.udpAddr, l.tcpAddr, l.udpPort)
}

func (l *link) udpTarget() netip.AddrPort {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.udpTargetLocked()
}

func (l *link) name() string {
	l.p.mu.Lock()
	defer l.p.mu.Unlock()
	return l.p.name
}

func (l *link) setRTT(d time.Duration) {
	l.mu.Lock()
	l.lastRTT = d
	l.mu.Unlock()
}

// serve reads l's connection until it ends, then reports the peer gone
// (or away, while it is reconnected).
//
// serve and readLoop keep their own stack frames small, with the work
// of an ended connection, an error or an acknowledgement in functions
// of their own: an idle connection's reader waits at the bottom of this
// goroutine for as long as the peer stays, and the runtime halves a
// goroutine's stack only while less than a quarter of it is in use, so
// every byte of these frames decides which stack size each idle peer
// keeps.
func (n *Node) serve(l *link) {
	defer n.wg.Done()
	n.ended(l, l.readLoop())
}

// ended reports l's connection gone once its reader stopped for reason.
func (n *Node) ended(l *link, reason string) {
	// What was read and is being stored is still shown, in order,
	// before the peer is reported gone.
	l.rwg.Wait()
	l.conn.Close()
	l.conn.Wait()
	close(l.done)
	if !n.remove(l) {
		return // replaced by a newer connection to the same node
	}
	l.mu.Lock()
	bye := l.bye != ""
	l.mu.Unlock()
	info := l.info()
	info.State = Away
	reconnecting, undelivered := n.detach(l, bye)
	if !reconnecting {
		info.State = 0
	}
	n.emit(PeerDown{Peer: info, Reason: reason, Reconnecting: reconnecting, Undelivered: undelivered})
}

// readLoop handles the peer's frames until the connection ends and returns
// why it ended, in words for the user.
func (l *link) readLoop() string {
	for {
		t, payload, err := l.conn.Read(time.Time{})
		at := time.Now()
		if err != nil {
			l.applyAck()
			return l.endReason(err)
		}
		l.heard(at)
		if err := l.handleFrame(t, payload, at); err != nil {
			l.applyAck()
			return l.frameFailed(err)
		}
		if l.ackInFrames++; l.ackInFrames >= ackHeldFrames || !l.conn.Buffered() {
			l.applyAck()
		}
		// One cumulative acknowledgement covers a burst: it goes once no
		// more input is waiting.
		if l.ackDue != 0 && !l.conn.Buffered() {
			if err := l.sendAckDue(); err != nil {
				return l.endReason(err)
			}
		}
	}
}

// ackHeldFrames bounds how many frames an acknowledgement read waits
// behind before it is applied.
const ackHeldFrames = 256

// applyAck applies the acknowledgements read since the last call: a
// receiver acknowledges as it shows and stores, often one message at a
// time, and each costs the sender a look at its store.
func (l *link) applyAck() {
	m := l.ackIn
	l.ackInFrames = 0
	if m == (transport.Ack{}) {
		return
	}
	l.ackIn = transport.Ack{}
	l.n.shownBy(l.p, m.Shown)
	if m.Upto == 0 {
		return
	}
	l.acked = l.n.acked(l.p, m.Upto, l.acked[:0])
	if len(l.acked) > 0 {
		who := l.p.ref()
		for _, id := range l.acked {
			l.n.emit(Delivered{Peer: who, MsgID: id})
		}
	}
	if cap(l.acked) > 64 {
		l.acked = nil // a burst's worth: not kept for the quiet after it
	}
}

// frameFailed reports a frame that closes the connection and says why.
func (l *link) frameFailed(err error) string {
	if errors.Is(err, errReplaced) {
		return err.Error()
	}
	if errors.Is(err, errNotStored) {
		l.n.emit(Problem{Err: fmt.Errorf("%s: %w", l.name(), err)})
		return err.Error()
	}
	l.n.log.Warn("closing connection after a protocol error",
		"peer", l.name(), "id", ShortID(l.id), "addr", l.addr, "err", err)
	return fmt.Sprintf("protocol error: %v", err)
}

// sendAckDue sends the acknowledgement due. A full queue keeps it due:
// the next frame, or the next burst, tries again; any other error broke
// the connection.
func (l *link) sendAckDue() error {
	err := l.conn.Send(transport.Ack{Upto: l.ackDue})
	switch {
	case err == nil:
		l.ackDue = 0
	case !errors.Is(err, transport.ErrQueueFull):
		return err
	}
	return nil
}

// endReason words why the connection ended, from what ended reading.
func (l *link) endReason(err error) string {
	l.mu.Lock()
	bye, dead := l.bye, l.dead
	l.mu.Unlock()
	werr := l.conn.Err()
	switch {
	case bye != "":
		return bye
	case errors.Is(werr, transport.ErrStalled):
		return transport.ErrStalled.Error()
	case dead != "":
		return dead
	case l.n.leaving.Load():
		return "connection closed here"
	case werr != nil:
		return fmt.Sprintf("connection lost: %v", werr)
	case errors.Is(err, net.ErrClosed):
		return "connection closed here"
	case errors.Is(err, io.EOF):
		return "connection closed without goodbye"
	case errors.Is(err, transport.ErrTooLong), errors.Is(err, transport.ErrMalformed):
		l.n.log.Warn("closing connection after a protocol error",
			"peer", l.name(), "id", ShortID(l.id), "addr", l.addr, "err", err)
		return fmt.Sprintf("protocol error: %v", err)
	}
	return fmt.Sprintf("connection lost: %v", err)
}

// handleFrame acts on one frame; an error closes the connection.
func (l *link) handleFrame(t transport.Type, payload []byte, at time.Time) error {
	switch t {
	case transport.TypeChat:
		m, err := transport.DecodeChat(payload)
		if err != nil {
			return err
		}
		l.n.chatting(l.id)
		if l.n.store != nil {
			return l.receiveStored(m, at)
		}
		fresh, ack := l.p.received(m.MsgID)
		if fresh {
			l.n.emit(Chat{From: l.p.ref(), MsgID: m.MsgID, Text: m.Text, Direct: m.Direct, At: at, Sent: time.Unix(0, m.Sent),
				Action: m.Flags&transport.ChatAction != 0})
		}
		// Acknowledge duplicates too: the first ack may have been lost.
		l.ackDue = ack
	case transport.TypeAck:
		m, err := transport.DecodeAck(payload)
		if err != nil {
			return err
		}
		// Applied by the reader once the input runs dry (applyAck).
		l.ackIn.Upto, l.ackIn.Shown = max(l.ackIn.Upto, m.Upto), max(l.ackIn.Shown, m.Shown)
	case transport.TypeBeat:
		// Only a sign of life: heard above.
	case transport.TypePeerList:
		m, err := transport.DecodePeerList(payload)
		if err != nil {
			return err
		}
		if at.Sub(l.lastList) < peerListEvery {
			l.n.listsIgnored.Add(1) // one a connection needs; more is noise
			return nil
		}
		l.lastList = at
		for _, ref := range m.Peers {
			// The same path as an mDNS sighting: skipped when known,
			// and the node at addr must prove it holds ref.ID.
			l.n.Discovered(Found{Via: ViaIntroduced, Instance: "introduced by " + l.name(), ID: ref.ID, Addrs: []string{ref.Addr}})
		}
	case transport.TypeNick:
		m, err := transport.DecodeNick(payload)
		if err != nil {
			return err
		}
		l.p.mu.Lock()
		old := l.p.name
		l.p.name = m.Name
		l.p.mu.Unlock()
		if old != m.Name {
			l.n.checkTrust(l.p)
			l.n.emit(Nick{ID: l.id, Old: old, New: m.Name})
			l.n.warnIfConflict(l.p)
		}
	case transport.TypeBye:
		m, err := transport.DecodeBye(payload)
		if err != nil {
			return err
		}
		reason := m.Reason
		if reason == "" {
			reason = "left"
		}
		l.mu.Lock()
		l.bye = reason
		l.mu.Unlock()
	case transport.TypeTimeReq:
		m, err := transport.DecodeTimeReq(payload)
		if err != nil {
			return err
		}
		l.reply(timeReply(m, at))
	case transport.TypeEchoReq:
		// Reply encodes the payload before the next read reuses it.
		m, err := transport.DecodeEchoInPlace(t, payload)
		if err != nil {
			return err
		}
		m.Reply = true
		l.reply(m)
	case transport.TypeEchoResp:
		m, err := transport.DecodeEchoInPlace(t, payload)
		if err != nil {
			return err
		}
		l.n.completeEcho(l.id, m, at, true)
	case transport.TypeTimeResp:
		m, err := transport.DecodeTimeResp(payload)
		if err != nil {
			return err
		}
		l.n.completeTime(l.id, m, at)
	case transport.TypeAway:
		return l.statusFrame(payload)
	case transport.TypeHello, transport.TypeWelcome, transport.TypeProbe, transport.TypeProbeAck, transport.TypeUDPChat:
		return fmt.Errorf("unexpected %v frame", t)
	default:
		// A newer version's message: skip it, as the protocol promises.
		l.n.log.Debug("skipping unknown frame", "peer", l.name(), "type", uint8(t), "bytes", len(payload))
	}
	return nil
}

// reply answers a request from the reader. A reply that finds the queue
// full is dropped (the requester times out): a peer that asks without
// reading must not make this node hold more. Any other failure broke the
// connection: the next Read ends the loop and says why.
func (l *link) reply(m transport.Message) {
	if err := l.conn.Reply(m); errors.Is(err, transport.ErrQueueFull) {
		l.n.log.Debug("reply dropped: the peer is not reading", "peer", l.name(), "type", m.Type())
	}
}

// timeReply answers a time request that arrived at t2.
func timeReply(m transport.TimeReq, t2 time.Time) transport.TimeResp {
	t3 := time.Now()
	zone, off := t3.Zone()
	return transport.TimeResp{
		ReqID: m.ReqID, T1: m.T1, T2: t2.UnixNano(), T3: t3.UnixNano(),
		Zone: zone, ZoneOffset: int32(off),
	}
}
