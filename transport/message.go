package transport

import (
	"fmt"
	"unicode/utf8"
)

// ProtocolVersion is carried in the TCP hello, in every datagram and in the
// mDNS TXT record; nodes of another version are refused.
const ProtocolVersion = 2

// Magic opens every hello, so a connection to something that is not
// lanchat fails at its first frame.
const Magic = "LANCHAT"

// Type identifies a frame or datagram. Numbers are shared by TCP and UDP.
type Type uint8

// Message types. New types may be added; receivers skip unknown ones.
const (
	TypeHello    Type = 1  // TCP: first frame of each side
	TypeWelcome  Type = 2  // TCP: the handshake verdict
	TypeChat     Type = 3  // TCP: a group or direct chat message
	TypeNick     Type = 4  // TCP: the sender's new name
	TypeBye      Type = 5  // TCP: the sender is leaving
	TypeTimeReq  Type = 6  // TCP or UDP
	TypeTimeResp Type = 7  // TCP or UDP
	TypeEchoReq  Type = 8  // TCP or UDP
	TypeEchoResp Type = 9  // TCP or UDP
	TypeProbe    Type = 10 // UDP: the sender's datagram channel is open
	TypeProbeAck Type = 11 // UDP: answer to a probe
	TypeAck      Type = 12 // TCP: chat messages received up to an id
	TypeBeat     Type = 13 // TCP: heartbeat, no payload
	TypePeerList Type = 14 // TCP: the peers the sender is connected to
	TypeAway     Type = 15 // TCP: the sender's user is away (with a text) or back
	TypeUDPChat  Type = 16 // UDP: a direct chat line, fire and forget
)

var typeNames = map[Type]string{
	TypeHello: "hello", TypeWelcome: "welcome", TypeChat: "chat", TypeNick: "nick",
	TypeBye: "bye", TypeTimeReq: "time request", TypeTimeResp: "time response",
	TypeEchoReq: "echo request", TypeEchoResp: "echo response",
	TypeProbe: "probe", TypeProbeAck: "probe ack", TypeAck: "ack", TypeBeat: "heartbeat", TypePeerList: "peer list",
	TypeAway: "away", TypeUDPChat: "udp chat",
}

func (t Type) String() string {
	if s, ok := typeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("type %d", uint8(t))
}

// Known reports whether this version understands t.
func (t Type) Known() bool { _, ok := typeNames[t]; return ok }

// Message is anything that travels in a frame or datagram.
type Message interface {
	Type() Type
	// Append appends the encoded payload to b.
	Append(b []byte) []byte
}

// Limits on fields people type, checked when decoding so a peer cannot
// push more at us than we would send.
const (
	MaxNameLen = 64
	MaxIDLen   = 128
	// MaxText is the longest chat message, in bytes.
	MaxText = 16 << 10
	// MaxPayload is the largest echo payload that fits one frame or one
	// datagram with headers to spare.
	MaxPayload = 60000
)

// Hello opens a TCP connection in both directions.
type Hello struct {
	Version uint16
	ID      string
	Name    string
	UDPPort uint16
	// Session is random per process, so a restarted node is told apart
	// from a duplicate connection of the same one.
	Session uint64
	// Via is how the dialler found this node: 0 by hand, 1 by mDNS.
	Via uint8
	// TCPPort is where the sender listens, for reconnecting to it.
	TCPPort uint16
	// Flags: HelloConnected.
	Flags uint8
}

// Hello flags.
const (
	// HelloConnected: the sender holds a live connection to the
	// receiver already, so this one must not replace it.
	HelloConnected uint8 = 1
	// HelloTwin: the sender holds a live connection to the receiver's
	// identity from another address: the receiver is a second machine
	// with a copied key, and must not take the first one's place.
	HelloTwin uint8 = 2
)

func (Hello) Type() Type { return TypeHello }
func (m Hello) Append(b []byte) []byte {
	e := encoder{b}
	e.b = append(e.b, Magic...)
	e.u16(m.Version)
	e.str(m.ID)
	e.str(m.Name)
	e.u16(m.UDPPort)
	e.u64(m.Session)
	e.u8(m.Via)
	e.u16(m.TCPPort)
	e.u8(m.Flags)
	return e.b
}

// DecodeHello checks the magic first, so that a stranger is told apart from
// a lanchat node of another version.
func DecodeHello(p []byte) (Hello, error) {
	var m Hello
	if len(p) < len(Magic) || string(p[:len(Magic)]) != Magic {
		return m, fmt.Errorf("%w: hello: not a lanchat hello (bad magic)", ErrMalformed)
	}
	d := decoder{b: p[len(Magic):], what: "hello"}
	m.Version = d.u16("version")
	m.ID = d.str("id")
	m.Name = d.str("name")
	m.UDPPort = d.u16("udp port")
	m.Session = d.u64("session")
	m.Via = d.u8("via")
	m.TCPPort = d.u16("tcp port")
	m.Flags = d.u8("flags")
	if d.err != nil {
		return m, d.err
	}
	if m.Version != ProtocolVersion {
		return m, fmt.Errorf("%w: hello: protocol version %d, this node speaks %d", ErrVersion, m.Version, ProtocolVersion)
	}
	if m.ID == "" || len(m.ID) > MaxIDLen {
		return m, fmt.Errorf("%w: hello: id of %d bytes", ErrMalformed, len(m.ID))
	}
	if err := CheckName(m.Name); err != nil {
		return m, fmt.Errorf("%w: hello: %w", ErrMalformed, err)
	}
	return m, nil
}

// Welcome statuses.
const (
	WelcomeOK        uint8 = 0
	WelcomeDuplicate uint8 = 1 // a connection between the two already exists
	WelcomeRefused   uint8 = 2 // see Reason
	// WelcomeTwin: the receiver holds a live connection to another
	// process with the sender's identity, from another address: two
	// machines share one key (a copied key file).
	WelcomeTwin uint8 = 3
)

// Welcome is sent by the node with the smaller id once it has decided
// whether this connection is the one the pair keeps.
type Welcome struct {
	Status uint8
	Reason string
}

func (Welcome) Type() Type { return TypeWelcome }
func (m Welcome) Append(b []byte) []byte {
	e := encoder{b}
	e.u8(m.Status)
	e.str(m.Reason)
	return e.b
}
func DecodeWelcome(p []byte) (Welcome, error) {
	d := decoder{b: p, what: "welcome"}
	m := Welcome{Status: d.u8("status"), Reason: d.str("reason")}
	return m, d.err
}

// Chat is a line of chat; Direct marks a message sent to one peer only.
// MsgID increases with every message a process sends, so each receiver
// sees increasing ids and can drop a resent duplicate.
type Chat struct {
	MsgID  uint64
	Direct bool
	Sent   int64 // sender's wall clock, Unix nanoseconds
	Text   string
	// Flags (appended; absent from older senders, read as 0): ChatAction.
	// Bits this version does not know are kept and ignored.
	Flags uint8
}

// ChatAction marks a chat line as an action (/me): shown as
// "* alice waves" rather than "<alice> waves".
const ChatAction uint8 = 1

func (Chat) Type() Type { return TypeChat }
func (m Chat) Append(b []byte) []byte {
	e := encoder{b}
	e.u64(m.MsgID)
	e.boolean(m.Direct)
	e.i64(m.Sent)
	e.str(m.Text)
	e.u8(m.Flags)
	return e.b
}
func DecodeChat(p []byte) (Chat, error) {
	d := decoder{b: p, what: "chat"}
	m := Chat{MsgID: d.u64("message id"), Direct: d.boolean("direct"), Sent: d.i64("sent"), Text: d.str("text")}
	if d.err == nil && len(d.b) > 0 {
		m.Flags = d.u8("flags")
	}
	if d.err == nil {
		d.err = CheckText(m.Text)
	}
	return m, d.err
}

// Ack says that every chat message up to and including Upto has arrived.
type Ack struct{ Upto uint64 }

func (Ack) Type() Type { return TypeAck }
func (m Ack) Append(b []byte) []byte {
	e := encoder{b}
	e.u64(m.Upto)
	return e.b
}
func DecodeAck(p []byte) (Ack, error) {
	d := decoder{b: p, what: "ack"}
	m := Ack{Upto: d.u64("upto")}
	return m, d.err
}

// Beat is a heartbeat: it only shows the sender is alive.
type Beat struct{}

func (Beat) Type() Type             { return TypeBeat }
func (Beat) Append(b []byte) []byte { return b }

// MaxPeerList bounds a peer list.
const MaxPeerList = 256

// PeerRef is a node and where it listens.
type PeerRef struct {
	ID   string
	Addr string // host:port
}

// PeerList tells a newly connected peer which other nodes the sender is
// connected to, so that it need not find each of them over mDNS: a node
// that finds one member of a group joins all of it.
type PeerList struct{ Peers []PeerRef }

func (PeerList) Type() Type { return TypePeerList }
func (m PeerList) Append(b []byte) []byte {
	e := encoder{b}
	n := min(len(m.Peers), MaxPeerList)
	e.u16(uint16(n))
	for _, p := range m.Peers[:n] {
		e.str(p.ID)
		e.str(p.Addr)
	}
	return e.b
}
func DecodePeerList(p []byte) (PeerList, error) {
	d := decoder{b: p, what: "peer list"}
	n := int(d.u16("count"))
	if n > MaxPeerList {
		return PeerList{}, fmt.Errorf("%w: peer list of %d entries, limit %d", ErrMalformed, n, MaxPeerList)
	}
	var m PeerList
	for i := 0; i < n && d.err == nil; i++ {
		ref := PeerRef{ID: d.str("id"), Addr: d.str("addr")}
		if d.err == nil && (ref.ID == "" || len(ref.ID) > MaxIDLen || len(ref.Addr) > 300) {
			return PeerList{}, fmt.Errorf("%w: peer list entry %d", ErrMalformed, i)
		}
		m.Peers = append(m.Peers, ref)
	}
	return m, d.err
}

// Nick announces the sender's new name.
type Nick struct{ Name string }

func (Nick) Type() Type { return TypeNick }
func (m Nick) Append(b []byte) []byte {
	e := encoder{b}
	e.str(m.Name)
	return e.b
}
func DecodeNick(p []byte) (Nick, error) {
	d := decoder{b: p, what: "nick"}
	m := Nick{Name: d.str("name")}
	if d.err == nil {
		if err := CheckName(m.Name); err != nil {
			d.err = fmt.Errorf("%w: nick: %w", ErrMalformed, err)
		}
	}
	return m, d.err
}

// Bye tells the peer that the sender is leaving on purpose.
type Bye struct{ Reason string }

func (Bye) Type() Type { return TypeBye }
func (m Bye) Append(b []byte) []byte {
	e := encoder{b}
	e.str(m.Reason)
	return e.b
}
func DecodeBye(p []byte) (Bye, error) {
	d := decoder{b: p, what: "bye"}
	m := Bye{Reason: d.str("reason")}
	return m, d.err
}

// TimeReq asks for the peer's clock. T1 is the requester's send time.
type TimeReq struct {
	ReqID uint64
	T1    int64
}

func (TimeReq) Type() Type { return TypeTimeReq }
func (m TimeReq) Append(b []byte) []byte {
	e := encoder{b}
	e.u64(m.ReqID)
	e.i64(m.T1)
	return e.b
}
func DecodeTimeReq(p []byte) (TimeReq, error) {
	d := decoder{b: p, what: "time request"}
	m := TimeReq{ReqID: d.u64("request id"), T1: d.i64("t1")}
	return m, d.err
}

// TimeResp answers a TimeReq: T1 echoed, T2 when the request arrived, T3
// when the answer left (all Unix nanoseconds), and the responder's zone so
// its time can be shown as its user sees it.
type TimeResp struct {
	ReqID      uint64
	T1, T2, T3 int64
	Zone       string
	ZoneOffset int32 // seconds east of UTC
}

func (TimeResp) Type() Type { return TypeTimeResp }
func (m TimeResp) Append(b []byte) []byte {
	e := encoder{b}
	e.u64(m.ReqID)
	e.i64(m.T1)
	e.i64(m.T2)
	e.i64(m.T3)
	e.str(m.Zone)
	e.u32(uint32(m.ZoneOffset))
	return e.b
}
func DecodeTimeResp(p []byte) (TimeResp, error) {
	d := decoder{b: p, what: "time response"}
	m := TimeResp{ReqID: d.u64("request id"), T1: d.i64("t1"), T2: d.i64("t2"), T3: d.i64("t3"),
		Zone: d.str("zone"), ZoneOffset: int32(d.u32("zone offset"))}
	if d.err == nil && (m.ZoneOffset < -18*3600 || m.ZoneOffset > 18*3600) {
		d.err = fmt.Errorf("%w: time response: zone offset %ds out of range", ErrMalformed, m.ZoneOffset)
	}
	return m, d.err
}

// Echo is both the echo request and its response: the payload comes back
// unchanged (RFC 862).
type Echo struct {
	Reply   bool
	ReqID   uint64
	Payload []byte
}

func (m Echo) Type() Type {
	if m.Reply {
		return TypeEchoResp
	}
	return TypeEchoReq
}
func (m Echo) Append(b []byte) []byte {
	e := encoder{b}
	e.u64(m.ReqID)
	e.bytes(m.Payload)
	return e.b
}
func DecodeEcho(t Type, p []byte) (Echo, error) {
	m, err := DecodeEchoInPlace(t, p)
	if m.Payload != nil {
		m.Payload = append([]byte{}, m.Payload...)
	}
	return m, err
}

// DecodeEchoInPlace decodes an echo whose Payload points into p: for
// answering at once without a copy.
func DecodeEchoInPlace(t Type, p []byte) (Echo, error) {
	d := decoder{b: p, what: t.String()}
	m := Echo{Reply: t == TypeEchoResp, ReqID: d.u64("request id"), Payload: d.view("payload")}
	if d.err != nil {
		m.Payload = nil
	}
	return m, d.err
}

// Probe opens (and ProbeAck confirms) the datagram channel; Nonce ties the
// answer to the probe.
type Probe struct {
	Ack   bool
	Nonce uint64
}

func (m Probe) Type() Type {
	if m.Ack {
		return TypeProbeAck
	}
	return TypeProbe
}
func (m Probe) Append(b []byte) []byte {
	e := encoder{b}
	e.u64(m.Nonce)
	return e.b
}
func DecodeProbe(t Type, p []byte) (Probe, error) {
	d := decoder{b: p, what: t.String()}
	m := Probe{Ack: t == TypeProbeAck, Nonce: d.u64("nonce")}
	return m, d.err
}

// Decode decodes a payload of a known type. Hello is left to DecodeHello.
func Decode(t Type, p []byte) (Message, error) {
	switch t {
	case TypeHello:
		return DecodeHello(p)
	case TypeWelcome:
		return DecodeWelcome(p)
	case TypeChat:
		return DecodeChat(p)
	case TypeNick:
		return DecodeNick(p)
	case TypeBye:
		return DecodeBye(p)
	case TypeTimeReq:
		return DecodeTimeReq(p)
	case TypeTimeResp:
		return DecodeTimeResp(p)
	case TypeEchoReq, TypeEchoResp:
		return DecodeEcho(t, p)
	case TypeProbe, TypeProbeAck:
		return DecodeProbe(t, p)
	case TypeAck:
		return DecodeAck(p)
	case TypeBeat:
		return Beat{}, nil
	case TypePeerList:
		return DecodePeerList(p)
	case TypeAway:
		return DecodeAway(p)
	case TypeUDPChat:
		return DecodeUDPChat(p)
	}
	return nil, fmt.Errorf("%w: %v", ErrUnknownType, t)
}

// CheckName reports whether s can be a node name: 1 to MaxNameLen bytes of
// printable UTF-8 without spaces, so that it can be typed as a command
// argument.
func CheckName(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("name is empty")
	case len(s) > MaxNameLen:
		return fmt.Errorf("name is %d bytes long, limit %d", len(s), MaxNameLen)
	case !utf8.ValidString(s):
		return fmt.Errorf("name is not valid UTF-8")
	case s[0] == '/':
		return fmt.Errorf("name %q starts with '/'", s)
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029 {
			return fmt.Errorf("name %q contains a space or control character", s)
		}
	}
	return nil
}

// CheckText reports whether s can be a chat message: valid UTF-8 of at most
// MaxText bytes without control characters other than tab (so that a peer
// cannot move the cursor or clear the screen of the reader).
func CheckText(s string) error {
	if len(s) > MaxText {
		return fmt.Errorf("%w: message is %d bytes long, limit %d", ErrTooLong, len(s), MaxText)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: message is not valid UTF-8", ErrMalformed)
	}
	for _, r := range s {
		if (r < ' ' && r != '\t') || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("%w: message contains control character %U", ErrMalformed, r)
		}
	}
	return nil
}

// MaxAwayText bounds the text of an Away message.
const MaxAwayText = 256

// Away tells the peers that the sender's user is away (Away set, with an
// optional Text, which they see in /peers and once when they send a
// direct message), or back (Away clear, no text). It is sent on every
// change and to each newly connected peer while away.
type Away struct {
	Away bool
	Text string
}

func (Away) Type() Type { return TypeAway }
func (m Away) Append(b []byte) []byte {
	e := encoder{b}
	e.boolean(m.Away)
	e.str(m.Text)
	return e.b
}

// DecodeAway accepts texts of at most MaxAwayText bytes that CheckText
// accepts, and no text with Away clear.
func DecodeAway(p []byte) (Away, error) {
	d := decoder{b: p, what: "away"}
	m := Away{Away: d.boolean("away"), Text: d.str("text")}
	if d.err != nil {
		return Away{}, d.err
	}
	if err := CheckAwayText(m.Text); err != nil {
		return Away{}, fmt.Errorf("%w: away: %w", ErrMalformed, err)
	}
	if !m.Away && m.Text != "" {
		return Away{}, fmt.Errorf("%w: away: a text without being away", ErrMalformed)
	}
	return m, nil
}

// CheckAwayText reports whether s can be an away text: a chat text of at
// most MaxAwayText bytes.
func CheckAwayText(s string) error {
	if len(s) > MaxAwayText {
		return fmt.Errorf("%w: away text is %d bytes long, limit %d", ErrTooLong, len(s), MaxAwayText)
	}
	return CheckText(s)
}

// MaxUDPText is the longest text of a UDPChat. The sealed datagram then
// stays under 1280 bytes, the smallest MTU IPv6 allows, so it is never
// fragmented: one lost fragment would lose it all, and some networks drop
// fragments.
const MaxUDPText = 1100

// UDPChat is a direct chat line sent as one sealed datagram: no message
// id, no acknowledgement, no retry (/msg -udp).
type UDPChat struct {
	Sent  int64 // sender's wall clock, Unix nanoseconds
	Flags uint8 // ChatAction
	Text  string
}

func (UDPChat) Type() Type { return TypeUDPChat }
func (m UDPChat) Append(b []byte) []byte {
	e := encoder{b}
	e.i64(m.Sent)
	e.u8(m.Flags)
	e.str(m.Text)
	return e.b
}

// DecodeUDPChat accepts texts of at most MaxUDPText bytes that CheckText
// accepts.
func DecodeUDPChat(p []byte) (UDPChat, error) {
	d := decoder{b: p, what: "udp chat"}
	m := UDPChat{Sent: d.i64("sent"), Flags: d.u8("flags"), Text: d.str("text")}
	if d.err != nil {
		return UDPChat{}, d.err
	}
	if err := CheckUDPText(m.Text); err != nil {
		return UDPChat{}, fmt.Errorf("%w: udp chat: %w", ErrMalformed, err)
	}
	return m, nil
}

// CheckUDPText reports whether s can be sent as a UDPChat.
func CheckUDPText(s string) error {
	if len(s) > MaxUDPText {
		return fmt.Errorf("%w: message is %d bytes long; one datagram carries at most %d bytes of text", ErrTooLong, len(s), MaxUDPText)
	}
	return CheckText(s)
}
