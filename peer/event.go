package peer

import "time"

// Event is something the user should hear about. Events arrive in order on
// Node.Events.
type Event interface{ isEvent() }

// PeerUp: a connection to a peer was established. Back is set when the
// peer had been lost and is connected again.
type PeerUp struct {
	Peer Info
	Back bool
	// Was is the name this node last knew the peer by, when that was
	// another (it restarted under a new name); "" otherwise.
	Was string
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

// PeerState: a connected peer fell silent (Unreachable) or was heard
// again (Up).
type PeerState struct {
	Peer    Info
	State   State
	Silence time.Duration
}

// Stored: a chat message is on disk (with a store; otherwise queued) and
// on its way to the peers in To. Show it as sent from here on.
type Stored struct {
	MsgID  uint64
	Text   string
	Direct bool
	To     []Ref
	// Action marks /me.
	Action bool
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
	// Shown, when set (Config.ConfirmShown), is to be called with MsgID
	// once the message has been shown.
	Shown func(msgID uint64)
	// Action marks /me; UDP a line that came as one datagram (/msg
	// -udp: direct, with no MsgID, acknowledgement or retry).
	Action bool
	UDP    bool
}

// Nick: a peer changed its name.
type Nick struct {
	ID       string
	Old, New string
}

// Status: a peer's user went away (/away, with Text) or came back.
type Status struct {
	Peer Ref
	Away bool
	Text string
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
func (Stored) isEvent()    {}
func (Chat) isEvent()      {}
func (Nick) isEvent()      {}
func (Status) isEvent()    {}
func (Notice) isEvent()    {}
func (Warning) isEvent()   {}
func (Problem) isEvent()   {}
