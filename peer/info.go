package peer

import (
	"net/netip"
	"time"

	"lanchat/identity"
)

// State is how a peer's connection stands.
type State uint8

const (
	// Up: connected and heard from lately.
	Up State = iota + 1
	// Unreachable: connected, but silent for UnreachableAfter.
	Unreachable
	// Away: the connection was lost and is being re-established.
	Away
)

func (s State) String() string {
	switch s {
	case Up:
		return "up"
	case Unreachable:
		return "unreachable"
	case Away:
		return "away"
	}
	return "unknown"
}

// UDPState is how a peer's datagram channel stands.
type UDPState uint8

const (
	// UDPProbing: no authentic datagram yet, soon after connecting.
	UDPProbing UDPState = iota + 1
	// UDPOK: authentic datagrams arrive.
	UDPOK
	// UDPNoReply: none for UnreachableAfter.
	UDPNoReply
	// UDPNone: no connection, so no channel.
	UDPNone
)

func (s UDPState) String() string {
	switch s {
	case UDPProbing:
		return "probing"
	case UDPOK:
		return "ok"
	case UDPNoReply:
		return "no reply"
	case UDPNone:
		return "-"
	}
	return "unknown"
}

// Via is how a peer was found. At the handshake the dialling end tells
// the other how it found it (Hello.Via, see wire), and both ends show it.
type Via uint8

const (
	// ViaMDNS: its mDNS record.
	ViaMDNS Via = iota + 1
	// ViaManual: given by hand (--peer, /connect, the peers file), or it
	// dialled this node without saying how it found it (an older
	// version).
	ViaManual
	// ViaBroadcast: its signed broadcast beacon (discovery.Beacons).
	ViaBroadcast
	// ViaRemembered: an address it was reached at before (AddressBook).
	ViaRemembered
	// ViaIntroduced: named in the peer list of a connected peer.
	ViaIntroduced
)

func (v Via) String() string {
	switch v {
	case ViaMDNS:
		return "mdns"
	case ViaManual:
		return "manual"
	case ViaBroadcast:
		return "broadcast"
	case ViaRemembered:
		return "remembered"
	case ViaIntroduced:
		return "introduced"
	}
	return "unknown"
}

// wire is v as Hello.Via carries it: 0 by hand, 1 mDNS (the two values
// older versions send), 2 broadcast, 3 remembered, 4 introduced. Older
// versions read every value but 1 as by hand.
func (v Via) wire() uint8 {
	switch v {
	case ViaMDNS:
		return 1
	case ViaBroadcast:
		return 2
	case ViaRemembered:
		return 3
	case ViaIntroduced:
		return 4
	}
	return 0
}

// viaFromWire reads Hello.Via; values it does not know (a newer
// version's) are by hand.
func viaFromWire(b uint8) Via {
	switch b {
	case 1:
		return ViaMDNS
	case 2:
		return ViaBroadcast
	case 3:
		return ViaRemembered
	case 4:
		return ViaIntroduced
	}
	return ViaManual
}

// Info is a snapshot of one peer, safe to keep.
type Info struct {
	ID   string
	Name string
	// Addr is the connection's remote host:port; while away, where the
	// peer listens.
	Addr string
	// Listen is where the peer listens (host:port, usable with
	// /connect); "" when it did not say.
	Listen  string
	UDPAddr string // where datagrams go, once known
	State   State
	UDP     UDPState
	Via     Via
	// Trust is what the known-peers file says of this name and id.
	Trust       identity.Trust
	Fingerprint string
	// Pending is how many messages to the peer await its acknowledgement.
	Pending int
	// Queued is how many bytes wait in the connection's write queue.
	Queued  int
	Since   time.Time
	LastRTT time.Duration // of the last request answered, 0 if none
	// UserAway is set while the peer's user is away (/away), with the
	// text given (AwayText, may be empty).
	UserAway bool
	AwayText string
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

// udpTarget is where datagrams for a peer go: the address learned from its
// probes, or else its TCP address with its announced UDP port.
func udpTarget(learned netip.AddrPort, tcp netip.AddrPort, port uint16) netip.AddrPort {
	if learned.IsValid() {
		return learned
	}
	return netip.AddrPortFrom(tcp.Addr(), port)
}
