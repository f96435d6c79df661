package peer

import (
	"net/netip"

	"lanchat/identity"
	"time"
)

// Info is a snapshot of one peer, safe to keep.
type Info struct {
	ID      string
	Name    string
	Addr    string // the TCP connection's remote host:port
	UDPAddr string // where datagrams go, once known
	TCP     string // "up"
	UDP     string // "ok", "probing" or "no reply"
	Via     string // "mdns" or "manual"
	// Trust is what the known-peers file says of this name and id.
	Trust       identity.Trust
	Fingerprint string
	// Pending is how many messages to the peer await its acknowledgement.
	Pending int
	Since   time.Time
	LastRTT time.Duration // of the last request answered, 0 if none
}

// Ref names a peer in the events that come with every message (chat,
// delivery): its id, and its name and trust at the time. Info, with the
// connection's state, is for the rarer events; building one for every
// message cost more than the message did.
type Ref struct {
	ID    string
	Name  string
	Trust identity.Trust
}

// ShortID is the first 8 characters of an id, for display.
func ShortID(id string) string { return identity.Short(id) }

// Event is something the user should hear about. Events arrive in order on
// Node.Events.
type Event interface{ isEvent() }

// PeerUp: a connection to a peer was established. Back is set when the
// peer had been lost and is connected again.
type PeerUp struct {
	Peer Info
	Back bool
}

// PeerDown: a peer's connection ended. Reconnecting is set when the loss
// was not a goodbye and the node is trying to get the peer back.
type PeerDown struct {
	Peer         Info
	Reason       string
	Reconnecting bool
	// Undelivered counts messages dropped with the peer.
	Undelivered int
}

// PeerState: a connected peer fell silent ("unreachable") or was heard
// again ("up").
type PeerState struct {
	Peer    Info
	State   string
	Silence time.Duration
}

// Delivered: a peer acknowledged a chat message.
type Delivered struct {
	Peer  Ref
	MsgID uint64
}

// Chat: a chat message arrived.
type Chat struct {
	From   Ref
	MsgID  uint64
	Text   string
	Direct bool
	At     time.Time
	Sent   time.Time // the sender's clock
}

// Nick: a peer changed its name.
type Nick struct {
	ID       string
	Old, New string
}

// Warning: a security problem the user must see: an identity that does
// not match, or a known name with another key.
type Warning struct{ Text string }

// Notice: something worth a line that is not an error.
type Notice struct{ Text string }

// Problem: an error from background work (a manual peer that cannot be
// reached, a connection refused for a protocol error).
type Problem struct{ Err error }

func (PeerUp) isEvent()    {}
func (PeerDown) isEvent()  {}
func (PeerState) isEvent() {}
func (Delivered) isEvent() {}
func (Chat) isEvent()      {}
func (Nick) isEvent()      {}
func (Notice) isEvent()    {}
func (Warning) isEvent()   {}
func (Problem) isEvent()   {}

// Stats counts what the node dropped.
type Stats struct {
	BadDatagrams     uint64 // did not decode: bad magic, version or encoding
	UnknownSenders   uint64 // decoded, but from an id not in the table
	StrayReplies     uint64 // replies to no pending request (late or forged)
	DatagramOverruns uint64 // dropped because the node was behind
	AuthFailures     uint64 // failed to open: forged, altered or wrong key
	Replays          uint64 // a counter seen before, or too old
}

// udpTarget is where datagrams for a peer go: the address learned from its
// probes, or else its TCP address with its announced UDP port.
func udpTarget(learned netip.AddrPort, tcp netip.AddrPort, port uint16) netip.AddrPort {
	if learned.IsValid() {
		return learned
	}
	return netip.AddrPortFrom(tcp.Addr(), port)
}
