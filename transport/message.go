package transport

import (
	"fmt"
	"net/netip"
	"unicode/utf8"

	"lanchat/identity"
	"lanchat/names"
	"lanchat/termtext"
)

// ProtocolVersion is carried in the TCP hello, in every datagram and in the
// mDNS TXT record; nodes of another version are refused.
const ProtocolVersion = 3

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

func (t Type) String() string {
	if s := registry[t]; s != nil {
		return s.Name
	}
	return fmt.Sprintf("type %d", uint8(t))
}

// Known reports whether this version understands t.
func (t Type) Known() bool { return registry[t] != nil }

// Message is anything that travels in a frame or datagram.
type Message interface {
	Type() Type
	// Append appends the encoded payload to b.
	Append(b []byte) []byte
}

// Limits on string fields, checked when decoding so a peer cannot push
// more at us than we would send.
const (
	MaxNameLen = names.MaxLen
	// MaxIDLen bounds the sender id of a datagram header; ids in messages
	// are exactly IDLen characters.
	MaxIDLen = 128
	// IDLen is the length of a node id (identity.ValidID).
	IDLen = 52
	// MaxText is the longest chat message, in bytes.
	MaxText = 16 << 10
	// MaxReason is the longest reason of a welcome or a bye, in bytes.
	MaxReason = 256
	// MaxZone is the longest time zone name, in bytes.
	MaxZone = 32
	// MaxAddr is the longest "host:port" of a peer list entry, in bytes.
	MaxAddr = 64
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
	// Via is how the dialler found this node: 0 by hand, 1 mDNS, 2 a
	// broadcast beacon, 3 a remembered address, 4 a peer list.
	Via uint8
	// TCPPort is where the sender listens, for reconnecting to it.
	TCPPort uint16
	// Flags: HelloConnected, HelloTwin.
	Flags uint8
	// Epoch names the sender's sequence of message ids (its store's):
	// message identity is (sender id, epoch, message id), so a receiver
	// drops a resend after either side restarted. Absent (0) from older
	// senders; then the session is the epoch.
	Epoch uint64
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
	e.u64(m.Epoch)
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
	if d.err == nil && len(d.b) > 0 {
		m.Epoch = d.u64("epoch")
	}
	if d.err != nil {
		return m, d.err
	}
	if m.Version != ProtocolVersion {
		return m, fmt.Errorf("%w: hello: protocol version %d, this node speaks %d", ErrVersion, m.Version, ProtocolVersion)
	}
	if err := CheckNodeID(m.ID); err != nil {
		return m, fmt.Errorf("%w: hello: %w", ErrMalformed, err)
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
	if d.err == nil {
		if err := CheckReason(m.Reason); err != nil {
			d.err = fmt.Errorf("welcome: %w", err)
		}
	}
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

// ChatShown marks a message sent again to a receiver that said it had
// shown it (Ack.Shown) before it acknowledged it: the receiver stores it
// and does not show it again. It is never stored.
const ChatShown uint8 = 2

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

// Ack says that every chat message up to and including Upto has arrived
// (stored and shown). Shown (appended when not zero; absent from older
// receivers, read as 0) says that every message up to it was shown,
// stored or not yet: the sender marks those it sends again ChatShown.
type Ack struct{ Upto, Shown uint64 }

func (Ack) Type() Type { return TypeAck }
func (m Ack) Append(b []byte) []byte {
	e := encoder{b}
	e.u64(m.Upto)
	if m.Shown != 0 {
		e.u64(m.Shown)
	}
	return e.b
}
func DecodeAck(p []byte) (Ack, error) {
	d := decoder{b: p, what: "ack"}
	m := Ack{Upto: d.u64("upto")}
	if d.err == nil && len(d.b) > 0 {
		m.Shown = d.u64("shown")
	}
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
	if n > 0 {
		m.Peers = make([]PeerRef, 0, n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		idb, addr := d.view("id"), d.view("addr")
		if d.err != nil {
			break
		}
		if len(idb) != IDLen {
			return PeerList{}, fmt.Errorf("%w: peer list entry %d: node id of %d bytes, want %d", ErrMalformed, i, len(idb), IDLen)
		}
		id := string(idb)
		if err := CheckNodeID(id); err != nil {
			return PeerList{}, fmt.Errorf("%w: peer list entry %d: %w", ErrMalformed, i, err)
		}
		if err := checkAddr(addr); err != nil {
			return PeerList{}, fmt.Errorf("%w: peer list entry %d: %w", ErrMalformed, i, err)
		}
		m.Peers = append(m.Peers, PeerRef{ID: id, Addr: string(addr)})
	}
	if d.err != nil {
		return PeerList{}, d.err
	}
	return m, nil
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
	if d.err == nil {
		if err := CheckReason(m.Reason); err != nil {
			d.err = fmt.Errorf("bye: %w", err)
		}
	}
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
	if d.err == nil {
		if err := CheckZone(m.Zone); err != nil {
			d.err = fmt.Errorf("time response: %w", err)
		}
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

// Spec describes one message type: what Decode knows of it.
type Spec struct {
	Type Type
	Name string
	// Example is a valid message of this type, every slice in it with at
	// least one element: tests derive hostile variants of it field by
	// field.
	Example Message
	decode  func(Type, []byte) (Message, error)
}

// exampleID is a well-formed node id for the examples.
const exampleID = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

// specs lists every message type this version speaks.
var specs = []Spec{
	{TypeHello, "hello", Hello{Version: ProtocolVersion, ID: exampleID, Name: "alice", UDPPort: 1, Session: 1, Via: 1, TCPPort: 1},
		func(_ Type, p []byte) (Message, error) { return DecodeHello(p) }},
	{TypeWelcome, "welcome", Welcome{Status: WelcomeRefused, Reason: "busy"},
		func(_ Type, p []byte) (Message, error) { return DecodeWelcome(p) }},
	{TypeChat, "chat", Chat{MsgID: 1, Sent: 1, Text: "hello"},
		func(_ Type, p []byte) (Message, error) { return DecodeChat(p) }},
	{TypeNick, "nick", Nick{Name: "bob"},
		func(_ Type, p []byte) (Message, error) { return DecodeNick(p) }},
	{TypeBye, "bye", Bye{Reason: "quit"},
		func(_ Type, p []byte) (Message, error) { return DecodeBye(p) }},
	{TypeTimeReq, "time request", TimeReq{ReqID: 1, T1: 1},
		func(_ Type, p []byte) (Message, error) { return DecodeTimeReq(p) }},
	{TypeTimeResp, "time response", TimeResp{ReqID: 1, T1: 1, T2: 2, T3: 3, Zone: "CET", ZoneOffset: 3600},
		func(_ Type, p []byte) (Message, error) { return DecodeTimeResp(p) }},
	{TypeEchoReq, "echo request", Echo{ReqID: 1, Payload: []byte("ping")},
		func(t Type, p []byte) (Message, error) { return DecodeEcho(t, p) }},
	{TypeEchoResp, "echo response", Echo{Reply: true, ReqID: 1, Payload: []byte("ping")},
		func(t Type, p []byte) (Message, error) { return DecodeEcho(t, p) }},
	{TypeProbe, "probe", Probe{Nonce: 1},
		func(t Type, p []byte) (Message, error) { return DecodeProbe(t, p) }},
	{TypeProbeAck, "probe ack", Probe{Ack: true, Nonce: 1},
		func(t Type, p []byte) (Message, error) { return DecodeProbe(t, p) }},
	{TypeAck, "ack", Ack{Upto: 1, Shown: 2},
		func(_ Type, p []byte) (Message, error) { return DecodeAck(p) }},
	{TypeBeat, "heartbeat", Beat{},
		func(Type, []byte) (Message, error) { return Beat{}, nil }},
	{TypePeerList, "peer list", PeerList{Peers: []PeerRef{{ID: exampleID, Addr: "10.0.0.1:4000"}}},
		func(_ Type, p []byte) (Message, error) { return DecodePeerList(p) }},
	{TypeAway, "away", Away{Away: true, Text: "at lunch"},
		func(_ Type, p []byte) (Message, error) { return DecodeAway(p) }},
	{TypeUDPChat, "udp chat", UDPChat{Sent: 1, Text: "hello"},
		func(_ Type, p []byte) (Message, error) { return DecodeUDPChat(p) }},
}

// registry indexes specs by type (filled by init: the decoders name
// types through it).
var registry [256]*Spec

func init() {
	for i := range specs {
		s := &specs[i]
		if registry[s.Type] != nil || s.Example.Type() != s.Type {
			panic(fmt.Sprintf("transport: bad message registry entry for type %d", s.Type))
		}
		registry[s.Type] = s
	}
}

// Specs lists every message type this version speaks, in type order.
func Specs() []Spec { return append([]Spec(nil), specs...) }

// Decode decodes a payload of a known type. Every string field of every
// message is checked against its grammar here (CheckName, CheckNodeID,
// CheckAddr, CheckZone, CheckReason, CheckText), so nothing a peer sends
// gets further without it.
func Decode(t Type, p []byte) (Message, error) {
	if s := registry[t]; s != nil {
		return s.decode(t, p)
	}
	return nil, fmt.Errorf("%w: %v", ErrUnknownType, t)
}

// CheckName reports whether s can be a node name as received: a valid
// name in its enforced form (package names: PRECIS Nickname, one word,
// no invisible or control characters, not an id look-alike).
func CheckName(s string) error { return names.Check(s) }

// CheckNodeID reports whether s is a node id: IDLen characters of base32
// (A-Z, 2-7) in canonical form (identity.ValidID).
func CheckNodeID(s string) error {
	if !identity.ValidID(s) {
		return fmt.Errorf("%q is not a node id (%d characters of A-Z and 2-7)", clip(s), IDLen)
	}
	return nil
}

// CheckAddr reports whether s is where a node listens: "ip:port" (IPv6
// in brackets) with a literal IP address that is neither unspecified nor
// multicast, no zone, and a port from 1 to 65535; at most MaxAddr bytes.
func CheckAddr(s string) error { return checkAddr([]byte(s)) }

func checkAddr(b []byte) error {
	if len(b) > MaxAddr {
		return fmt.Errorf("address of %d bytes, limit %d", len(b), MaxAddr)
	}
	var ap netip.AddrPort
	if err := ap.UnmarshalText(b); err != nil || !ap.IsValid() {
		return fmt.Errorf("%q is not an ip:port address", clip(string(b)))
	}
	a := ap.Addr()
	switch {
	case ap.Port() == 0:
		return fmt.Errorf("address %s has port 0", ap)
	case a.Zone() != "":
		return fmt.Errorf("address %q has a zone, which means nothing on another host", clip(string(b)))
	case a.IsUnspecified() || a.IsMulticast():
		return fmt.Errorf("address %s is not a node's", ap)
	}
	return nil
}

// CheckZone reports whether s can be a time zone name: up to MaxZone
// bytes of A-Z, a-z, 0-9 and "+-_/" ("CET", "+03", "America/New_York").
// It may be empty: a zone made with a bare offset has no name.
func CheckZone(s string) error {
	if len(s) > MaxZone {
		return fmt.Errorf("%w: zone name of %d bytes, limit %d", ErrMalformed, len(s), MaxZone)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '+' || c == '-' || c == '_' || c == '/') {
			return fmt.Errorf("%w: zone name %q: only letters, digits and +-_/ are allowed", ErrMalformed, clip(s))
		}
	}
	return nil
}

// CheckReason reports whether s can be the reason of a welcome or a bye:
// at most MaxReason bytes of valid UTF-8 without control, bidi or other
// invisible format characters (termtext.Unsafe).
func CheckReason(s string) error {
	if len(s) > MaxReason {
		return fmt.Errorf("%w: reason is %d bytes long, limit %d", ErrTooLong, len(s), MaxReason)
	}
	return checkChars("reason", s, false)
}

// CheckText reports whether s can be a chat message: valid UTF-8 of at
// most MaxText bytes without control characters other than tab, and
// without bidi or other invisible format characters (termtext.Unsafe),
// so that a peer cannot move the cursor, clear the screen or reorder the
// line of the reader.
func CheckText(s string) error {
	if len(s) > MaxText {
		return fmt.Errorf("%w: message is %d bytes long, limit %d", ErrTooLong, len(s), MaxText)
	}
	return checkChars("message", s, true)
}

// checkChars refuses invalid UTF-8 and every termtext.Unsafe character
// (but tab, when allowed). It does not allocate.
func checkChars(what, s string, tab bool) error {
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f {
			i++
			continue
		}
		if c == '\t' && tab {
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			return fmt.Errorf("%w: %s is not valid UTF-8", ErrMalformed, what)
		}
		if termtext.Unsafe(r) {
			return fmt.Errorf("%w: %s contains the control or invisible character %U", ErrMalformed, what, r)
		}
		i += n
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

// clip shortens a refused value for an error message; the message is
// sanitised when printed.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
