package console

// The JSON events (--json): one struct per event, one object per line.
// Every object starts with "event" (the Kind) and "ts" (RFC 3339 with
// nanoseconds), then the struct's fields under their json tags. Fields
// may be added, never renamed: scripts rely on them. README.md's table
// lists every field of every struct (a test checks it).

// Event is one JSON event.
type Event interface {
	// Kind is the value of the "event" field.
	Kind() string
}

// Events lists one value of every event type, for documentation and
// tests.
var Events = []Event{
	ReadyEvent{}, PeerUpEvent{}, PeerDownEvent{}, PeerStateEvent{}, ChatEvent{}, SentEvent{},
	DeliveredEvent{}, PendingEvent{}, TimeEvent{}, EchoEvent{}, EchoSummaryEvent{}, NickEvent{},
	AwayEvent{}, PeersEvent{}, NoticeEvent{}, WarningEvent{}, WhoamiEvent{}, TrustEvent{},
	ForgetEvent{}, VerifyEvent{}, InviteEvent{}, DroppedEvent{}, HistoryEvent{}, SearchEvent{},
	TransferOfferEvent{}, TransferAcceptedEvent{}, TransferProgressEvent{}, TransferDoneEvent{},
	TransferCancelledEvent{}, TransferInterruptedEvent{}, TransferFailedEvent{}, TransfersEvent{},
	HelpEvent{}, ErrorEvent{},
}

// ReadyEvent: the node is up.
type ReadyEvent struct {
	Name    string `json:"name"`
	ID      string `json:"id"`
	TCPPort int    `json:"tcp_port"`
	UDPPort int    `json:"udp_port"`
	Version string `json:"version"`
}

// PeerUpEvent: a connection to a peer was established.
type PeerUpEvent struct {
	Peer string `json:"peer"`
	ID   string `json:"id"`
	// Addr is the connection's remote host:port; Listen where the peer
	// listens (for /connect).
	Addr        string `json:"addr"`
	Listen      string `json:"listen"`
	Via         string `json:"via"`
	Trust       string `json:"trust"`
	Fingerprint string `json:"fingerprint"`
	// Back: reconnected after a loss. Was: the name it had before, when
	// another ("" otherwise).
	Back bool   `json:"back"`
	Was  string `json:"was"`
}

// PeerDownEvent: a peer's connection ended.
type PeerDownEvent struct {
	Peer         string `json:"peer"`
	ID           string `json:"id"`
	Reason       string `json:"reason"`
	Reconnecting bool   `json:"reconnecting"`
	Undelivered  int    `json:"undelivered"`
}

// PeerStateEvent: a connected peer fell silent, or was heard again.
type PeerStateEvent struct {
	Peer      string  `json:"peer"`
	ID        string  `json:"id"`
	State     string  `json:"state"`
	SilenceMS float64 `json:"silence_ms"`
}

// ChatEvent: a chat line arrived.
type ChatEvent struct {
	From   string `json:"from"`
	ID     string `json:"id"`
	Text   string `json:"text"`
	Direct bool   `json:"direct"`
	Trust  string `json:"trust"`
	// MsgID is 0 for a UDP line.
	MsgID  uint64 `json:"msg_id"`
	Action bool   `json:"action"`
	UDP    bool   `json:"udp"`
	// SentAt is the sender's clock when it was written.
	SentAt string `json:"sent_at"`
}

// SentEvent: a chat line was handed to lanchat (to: the ids it was
// queued for).
type SentEvent struct {
	MsgID  uint64   `json:"msg_id"`
	Text   string   `json:"text"`
	Direct bool     `json:"direct"`
	To     []string `json:"to"`
	Action bool     `json:"action"`
	UDP    bool     `json:"udp"`
}

// DeliveredEvent: a peer acknowledged a message; All is set when that
// was the last of its recipients.
type DeliveredEvent struct {
	Peer  string `json:"peer"`
	ID    string `json:"id"`
	MsgID uint64 `json:"msg_id"`
	All   bool   `json:"all"`
}

// PendingEvent answers /pending.
type PendingEvent struct {
	Pending []PendingPeer `json:"pending"`
	Total   int           `json:"total"`
}

// PendingPeer is one peer of a PendingEvent: Count messages wait for it,
// the first of them in Messages.
type PendingPeer struct {
	Peer     string           `json:"peer"`
	ID       string           `json:"id"`
	TCP      string           `json:"tcp"`
	Count    int              `json:"count"`
	Messages []PendingMessage `json:"messages"`
}

// PendingMessage is one undelivered message.
type PendingMessage struct {
	MsgID  uint64  `json:"msg_id"`
	Text   string  `json:"text"`
	Direct bool    `json:"direct"`
	AgeMS  float64 `json:"age_ms"`
}

// TimeEvent answers /time, once per peer.
type TimeEvent struct {
	Peer      string  `json:"peer"`
	ID        string  `json:"id"`
	Transport string  `json:"transport"`
	Time      string  `json:"time"`
	Zone      string  `json:"zone"`
	OffsetMS  float64 `json:"offset_ms"`
	RTTMS     float64 `json:"rtt_ms"`
}

// EchoEvent is one echo: its reply, or (Lost) none.
type EchoEvent struct {
	Peer      string  `json:"peer"`
	ID        string  `json:"id"`
	Transport string  `json:"transport"`
	Text      string  `json:"text"`
	Bytes     int     `json:"bytes"`
	RTTMS     float64 `json:"rtt_ms"`
	OK        bool    `json:"ok"`
	Seq       int     `json:"seq"`
	// Lost: no reply came (over UDP the datagrams were lost); Reason
	// says what happened.
	Lost   bool   `json:"lost"`
	Reason string `json:"reason"`
}

// EchoSummaryEvent ends /echo -n. Sent counts the echoes sent, less one
// in flight when the series was stopped. Stopped says why it ended before
// its count ("" when it did not).
type EchoSummaryEvent struct {
	Peer      string  `json:"peer"`
	ID        string  `json:"id"`
	Transport string  `json:"transport"`
	Sent      int     `json:"sent"`
	Received  int     `json:"received"`
	LossPct   float64 `json:"loss_pct"`
	MinMS     float64 `json:"min_ms"`
	AvgMS     float64 `json:"avg_ms"`
	MaxMS     float64 `json:"max_ms"`
	P99MS     float64 `json:"p99_ms"`
	Stopped   string  `json:"stopped"`
}

// NickEvent: a peer, or this node, changed its name.
type NickEvent struct {
	ID  string `json:"id"`
	Old string `json:"old"`
	New string `json:"new"`
}

// AwayEvent: a peer's user (or, with Self, this node's) went away or came
// back.
type AwayEvent struct {
	Peer string `json:"peer"`
	ID   string `json:"id"`
	Away bool   `json:"away"`
	Text string `json:"text"`
	Self bool   `json:"self"`
}

// PeersEvent answers /peers.
type PeersEvent struct {
	Peers     []PeerEntry    `json:"peers"`
	Dropped   DropCounters   `json:"dropped"`
	Refused   RefusedCount   `json:"refused"`
	Discovery DiscoveryCount `json:"discovery"`
}

// PeerEntry is one peer of a PeersEvent.
type PeerEntry struct {
	Peer string `json:"peer"`
	ID   string `json:"id"`
	// Addr is the connection's remote host:port; Listen where the peer
	// listens, usable with /connect.
	Addr        string  `json:"addr"`
	Listen      string  `json:"listen"`
	UDPAddr     string  `json:"udp_addr"`
	TCP         string  `json:"tcp"`
	UDP         string  `json:"udp"`
	Via         string  `json:"via"`
	Since       string  `json:"since"`
	RTTMS       float64 `json:"rtt_ms"`
	Trust       string  `json:"trust"`
	Fingerprint string  `json:"fingerprint"`
	Pending     int     `json:"pending"`
	Queued      int     `json:"queued"`
	Away        bool    `json:"away"`
	AwayText    string  `json:"away_text"`
}

// DropCounters counts the datagrams dropped, by cause.
type DropCounters struct {
	Malformed     uint64 `json:"malformed"`
	AuthFailed    uint64 `json:"auth_failed"`
	Replayed      uint64 `json:"replayed"`
	UnknownSender uint64 `json:"unknown_sender"`
	StrayReply    uint64 `json:"stray_reply"`
	Overrun       uint64 `json:"overrun"`
}

// RefusedCount counts the connections refused, by cause.
type RefusedCount struct {
	HandshakeFailed uint64 `json:"handshake_failed"`
	OverLimit       uint64 `json:"over_limit"`
}

// DiscoveryCount counts what discovery refused or held back.
type DiscoveryCount struct {
	SightingsRefused uint64 `json:"sightings_refused"`
	ListsIgnored     uint64 `json:"lists_ignored"`
	WarningsHeld     uint64 `json:"warnings_held"`
}

// NoticeEvent is worth a line, and is not an error.
type NoticeEvent struct {
	Text string `json:"text"`
}

// WarningEvent: an identity mismatch, a name conflict, or something else
// the user must see.
type WarningEvent struct {
	Text string `json:"text"`
}

// WhoamiEvent answers /whoami.
type WhoamiEvent struct {
	Name        string `json:"name"`
	ID          string `json:"id"`
	Fingerprint string `json:"fingerprint"`
}

// TrustEvent: /trust accepted a peer under its name.
type TrustEvent struct {
	Peer  string `json:"peer"`
	ID    string `json:"id"`
	Trust string `json:"trust"`
}

// ForgetEvent: /forget removed names from the known peers.
type ForgetEvent struct {
	Names []string `json:"names"`
}

// VerifyEvent answers /verify: the code to compare, and whether the peer
// is now verified.
type VerifyEvent struct {
	Peer     string `json:"peer"`
	ID       string `json:"id"`
	Code     string `json:"code"`
	Verified bool   `json:"verified"`
}

// InviteEvent answers /invite: the line another user gives to /connect
// or --peer, and what it holds.
type InviteEvent struct {
	Line  string   `json:"line"`
	ID    string   `json:"id"`
	Addrs []string `json:"addrs"`
}

// DroppedEvent: /drop discarded the messages waiting for a peer.
type DroppedEvent struct {
	Peer     string `json:"peer"`
	ID       string `json:"id"`
	Messages int    `json:"messages"`
}

// HistoryEvent answers /history, SearchEvent /search: lines, oldest
// first.
type HistoryEvent struct {
	Lines []HistoryLine `json:"lines"`
}

// SearchEvent answers /search.
type SearchEvent struct {
	Lines []HistoryLine `json:"lines"`
}

// HistoryLine is one line of the history: Dir "in" or "out"; for a line
// sent, the recipients that acknowledged it and those it waits for.
type HistoryLine struct {
	Dir       string   `json:"dir"`
	Peer      string   `json:"peer"`
	ID        string   `json:"id"`
	Direct    bool     `json:"direct"`
	Action    bool     `json:"action"`
	Text      string   `json:"text"`
	SentAt    string   `json:"sent_at"`
	At        string   `json:"at"`
	MsgID     uint64   `json:"msg_id"`
	Delivered []string `json:"delivered,omitempty"`
	Waiting   []string `json:"waiting,omitempty"`
}

// TransferOfferEvent: a transfer was offered (Direction "send": by this
// node; "receive": to it; Auto: accepted without asking).
type TransferOfferEvent struct {
	TransferID string   `json:"transfer_id"`
	Peer       string   `json:"peer"`
	ID         string   `json:"id"`
	Direction  string   `json:"direction"`
	Files      int      `json:"files"`
	Entries    int      `json:"entries"`
	Bytes      int64    `json:"bytes"`
	Names      []string `json:"names"`
	Expires    string   `json:"expires"`
	Auto       bool     `json:"auto"`
}

// TransferAcceptedEvent: a transfer was accepted (Resumed after Offset
// bytes already verified).
type TransferAcceptedEvent struct {
	TransferID string `json:"transfer_id"`
	Peer       string `json:"peer"`
	ID         string `json:"id"`
	Direction  string `json:"direction"`
	Path       string `json:"path"`
	Resumed    bool   `json:"resumed"`
	Offset     int64  `json:"offset"`
}

// TransferProgressEvent: a running transfer's progress (at most four a
// second).
type TransferProgressEvent struct {
	TransferID string  `json:"transfer_id"`
	ID         string  `json:"id"`
	Direction  string  `json:"direction"`
	Bytes      int64   `json:"bytes"`
	Total      int64   `json:"total"`
	Files      int     `json:"files"`
	FileCount  int     `json:"file_count"`
	Rate       float64 `json:"rate"`
	ETAS       float64 `json:"eta_s"`
	// Yielding: paced while chat passes with the peer.
	Yielding bool `json:"yielding,omitempty"`
}

// TransferDoneEvent: a transfer ended with every file verified.
type TransferDoneEvent struct {
	TransferID string         `json:"transfer_id"`
	Peer       string         `json:"peer"`
	ID         string         `json:"id"`
	Direction  string         `json:"direction"`
	Files      []TransferFile `json:"files"`
	Bytes      int64          `json:"bytes"`
	Seconds    float64        `json:"seconds"`
	Rate       float64        `json:"rate"`
	Path       string         `json:"path"`
	Hash       string         `json:"hash"`
	Resent     int64          `json:"resent"`
}

// TransferFile is one file of a TransferDoneEvent.
type TransferFile struct {
	Path   string `json:"path"`
	Local  string `json:"local"`
	Bytes  int64  `json:"bytes"`
	BLAKE3 string `json:"blake3"`
}

// TransferCancelledEvent: a transfer was cancelled, here or by the peer.
type TransferCancelledEvent struct {
	TransferID string `json:"transfer_id"`
	Peer       string `json:"peer"`
	ID         string `json:"id"`
	Direction  string `json:"direction"`
	ByPeer     bool   `json:"by_peer"`
	Reason     string `json:"reason"`
}

// TransferInterruptedEvent: a transfer's stream broke; it goes on once
// the peer is reachable.
type TransferInterruptedEvent struct {
	TransferID string `json:"transfer_id"`
	Peer       string `json:"peer"`
	ID         string `json:"id"`
	Direction  string `json:"direction"`
	Error      string `json:"error"`
}

// TransferFailedEvent: a transfer failed, was rejected or expired.
type TransferFailedEvent struct {
	TransferID string `json:"transfer_id"`
	Peer       string `json:"peer"`
	ID         string `json:"id"`
	Direction  string `json:"direction"`
	Reason     string `json:"reason"`
	Resumable  bool   `json:"resumable"`
}

// TransfersEvent answers /transfers.
type TransfersEvent struct {
	Transfers []TransferEntry `json:"transfers"`
}

// TransferEntry is one transfer of a TransfersEvent.
type TransferEntry struct {
	TransferID string   `json:"transfer_id"`
	Peer       string   `json:"peer"`
	ID         string   `json:"id"`
	Direction  string   `json:"direction"`
	State      string   `json:"state"`
	Names      []string `json:"names"`
	Files      int      `json:"files"`
	Bytes      int64    `json:"bytes"`
	Done       int64    `json:"done"`
	Path       string   `json:"path,omitempty"`
	Reason     string   `json:"reason,omitempty"`
}

// HelpEvent answers /help.
type HelpEvent struct {
	Commands []HelpCommand `json:"commands"`
}

// HelpCommand is one command of a HelpEvent.
type HelpCommand struct {
	Usage string `json:"usage"`
	Help  string `json:"help"`
}

// ErrorEvent: a command failed, or background work did.
type ErrorEvent struct {
	Text string `json:"text"`
}

func (ReadyEvent) Kind() string       { return "ready" }
func (PeerUpEvent) Kind() string      { return "peer_up" }
func (PeerDownEvent) Kind() string    { return "peer_down" }
func (PeerStateEvent) Kind() string   { return "peer_state" }
func (ChatEvent) Kind() string        { return "chat" }
func (SentEvent) Kind() string        { return "sent" }
func (DeliveredEvent) Kind() string   { return "delivered" }
func (PendingEvent) Kind() string     { return "pending" }
func (TimeEvent) Kind() string        { return "time" }
func (EchoEvent) Kind() string        { return "echo" }
func (EchoSummaryEvent) Kind() string { return "echo_summary" }
func (NickEvent) Kind() string        { return "nick" }
func (AwayEvent) Kind() string        { return "away" }
func (PeersEvent) Kind() string       { return "peers" }
func (NoticeEvent) Kind() string      { return "notice" }
func (WarningEvent) Kind() string     { return "warning" }
func (WhoamiEvent) Kind() string      { return "whoami" }
func (TrustEvent) Kind() string       { return "trust" }
func (ForgetEvent) Kind() string      { return "forget" }
func (HelpEvent) Kind() string        { return "help" }
func (VerifyEvent) Kind() string      { return "verify" }
func (InviteEvent) Kind() string      { return "invite" }
func (DroppedEvent) Kind() string     { return "dropped" }
func (HistoryEvent) Kind() string     { return "history" }
func (SearchEvent) Kind() string      { return "search" }
func (TransferOfferEvent) Kind() string {
	return "transfer_offer"
}
func (TransferAcceptedEvent) Kind() string    { return "transfer_accepted" }
func (TransferProgressEvent) Kind() string    { return "transfer_progress" }
func (TransferDoneEvent) Kind() string        { return "transfer_done" }
func (TransferCancelledEvent) Kind() string   { return "transfer_cancelled" }
func (TransferInterruptedEvent) Kind() string { return "transfer_interrupted" }
func (TransferFailedEvent) Kind() string      { return "transfer_failed" }
func (TransfersEvent) Kind() string           { return "transfers" }
func (ErrorEvent) Kind() string               { return "error" }
