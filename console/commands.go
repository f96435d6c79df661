package console

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"lanchat/identity"
	"lanchat/invite"
	"lanchat/peer"
	"lanchat/transport"
)

var errUsage = errors.New("usage")

type command struct {
	name  string
	usage string
	help  string
	run   func(c *Console, ctx context.Context, args []string, rest string) error
}

var commands []command

func init() {
	commands = []command{
		{"msg", "/msg [-udp] PEER TEXT", "send TEXT to PEER only. With -udp it goes as one datagram, fire and forget: no acknowledgement, no retry, lost if the network drops it; at most " + strconv.Itoa(transport.MaxUDPText) + " bytes", (*Console).cmdMsg},
		{"me", "/me ACTION", "tell everyone what you do: shown as * NAME ACTION", (*Console).cmdMe},
		{"r", "/r TEXT", "reply to the last direct message", (*Console).cmdReply},
		{"away", "/away [TEXT]", "mark yourself away: peers see TEXT in /peers, and once when they send you a direct message", (*Console).cmdAway},
		{"back", "/back", "you are back: peers are told", (*Console).cmdBack},
		{"time", "/time [-tcp|-udp] [PEER]", "ask PEER (default: every connected peer) for its clock: its time, the offset and the round trip", (*Console).cmdTime},
		{"echo", "/echo [-tcp|-udp] [-n COUNT] [-size BYTES] [-i INTERVAL] PEER [TEXT]", "send TEXT (or BYTES of data) to PEER and time its return; -n repeats, like ping (options may follow PEER; text starting with - goes after --)", (*Console).cmdEcho},
		{"peers", "/peers", "list the peers: state, where they listen, round trip", (*Console).cmdPeers},
		{"pending", "/pending", "list messages not yet delivered (acknowledged) by their peers", (*Console).cmdPending},
		{"drop", "/drop PEER", "discard the messages waiting for PEER", (*Console).cmdDrop},
		{"history", "/history [PEER] [-n N]", "show the last N lines (default 20), of all conversations or of one", (*Console).cmdHistory},
		{"search", "/search TEXT", "find the lines that contain TEXT (case does not matter), newest first", (*Console).cmdSearch},
		{"nick", "/nick NAME", "change your name (one word, not a name a peer holds); peers and mDNS learn it", (*Console).cmdNick},
		{"connect", "/connect [ID@]HOST:PORT|INVITE", "connect to a node that mDNS cannot find; with ID (or an invite line from /invite), it must prove that id", (*Console).cmdConnect},
		{"whoami", "/whoami", "show your name, id and key fingerprint", (*Console).cmdWhoami},
		{"send", "/send PEER PATH...", "offer files and folders to PEER (\"quote\" paths with spaces); it sees the offer and accepts or not", (*Console).cmdSend},
		{"accept", "/accept [ID]", "accept a transfer offered to you (default: the latest offer); also resumes one stopped by a full disk", (*Console).cmdAccept},
		{"reject", "/reject [ID]", "refuse a transfer offered to you (default: the latest offer)", (*Console).cmdReject},
		{"cancel", "/cancel ID", "stop a transfer, on either side", (*Console).cmdCancel},
		{"transfers", "/transfers", "list transfers: waiting, running and finished", (*Console).cmdTransfers},
		{"verify", "/verify PEER [CODE]", "show the code to compare with PEER's user (by voice or in person); with the code they read, mark PEER verified", (*Console).cmdVerify},
		{"trust", "/trust ID", "accept the connected peer with this id (prefix) as the holder of its name", (*Console).cmdTrust},
		{"forget", "/forget NAME|ID", "remove a name or id from the known peers", (*Console).cmdForget},
		{"help", "/help", "show this help", (*Console).cmdHelp},
		{"quit", "/quit", "leave: peers are told, then lanchat exits (also Ctrl-D); warns first if messages are undelivered", nil},
	}
}

func lookupCommand(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// helpKeys ends /help on a terminal.
const helpKeys = `Keys: Tab completes commands, peer names (in chat lines too), ids after /trust and options.
Ctrl-C clears the line; on an empty line it stops a running /echo or /time, which prints its summary.
Ctrl-D on an empty line leaves, as /quit does. A paste of several lines that holds commands asks first.`

func (c *Console) cmdHelp(_ context.Context, _ []string, _ string) error {
	var b strings.Builder
	b.WriteString("A line that does not start with / is sent to every peer (start it with // to send a leading /).\n")
	b.WriteString("PEER is a prefix of a peer's id (4 characters or more, tried first) or its name, in any case.\n")
	list := []HelpCommand{}
	for _, cmd := range commands {
		fmt.Fprintf(&b, "  %s\n      %s\n", cmd.usage, cmd.help)
		list = append(list, HelpCommand{Usage: cmd.usage, Help: cmd.help})
	}
	if c.cfg.Terminal {
		b.WriteString(helpKeys)
	}
	c.out.emit(HelpEvent{Commands: list}, strings.TrimRight(b.String(), "\n"), true)
	return nil
}

// cutWord splits s after its first word; the rest keeps its spacing but
// the one space after the word.
func cutWord(s string) (word, rest string) {
	s = strings.TrimLeft(s, " ")
	word, rest, _ = strings.Cut(s, " ")
	return word, rest
}

func (c *Console) cmdMsg(ctx context.Context, _ []string, rest string) error {
	// Options may come before PEER or right after it; the rest is the
	// text, as typed.
	udp := false
	target, text := cutWord(rest)
	for target == "-udp" || target == "-tcp" {
		udp = target == "-udp"
		target, text = cutWord(text)
	}
	if w, after := cutWord(text); w == "-udp" || w == "-tcp" {
		udp, text = w == "-udp", after
	}
	text = strings.TrimLeft(text, " ")
	if target == "" || text == "" {
		return errUsage
	}
	return c.tell(ctx, target, text, false, udp)
}

// tell sends a direct line (or action) to target and shows it.
func (c *Console) tell(ctx context.Context, target, text string, action, udp bool) error {
	if udp {
		p, err := c.node.TellUDP(target, text, action)
		if err != nil {
			return err
		}
		c.sentOwn(ctx, peer.Sent{To: []peer.Ref{{ID: p.ID, Name: p.Name, Trust: p.Trust}}}, text,
			ownOpts{direct: true, action: action, udp: true, to: p.Name})
		if p.UDP != peer.UDPOK {
			c.notice(fmt.Sprintf("the datagram channel to %s is %s: the line may well be lost", p.Name, p.UDP))
		}
		c.tellAway(p.ID)
		return nil
	}
	send := c.node.Tell
	if action {
		send = c.node.ActTo
	}
	sent, err := send(target, text)
	if err != nil {
		return err
	}
	to := target
	if len(sent.To) == 1 {
		to = sent.To[0].Name
	}
	c.sentOwn(ctx, sent, text, ownOpts{direct: true, action: action, to: to})
	if len(sent.To) == 1 {
		c.tellAway(sent.To[0].ID)
	}
	return nil
}

func (c *Console) cmdMe(ctx context.Context, _ []string, rest string) error {
	text := strings.TrimLeft(rest, " ")
	if text == "" {
		return errUsage
	}
	sent, err := c.node.Act(text)
	if err != nil {
		c.Error(err)
	}
	c.sentOwn(ctx, sent, text, ownOpts{action: true})
	return nil
}

func (c *Console) cmdReply(ctx context.Context, _ []string, rest string) error {
	text := strings.TrimLeft(rest, " ")
	if text == "" {
		return errUsage
	}
	c.mu.Lock()
	id := c.lastDirect
	c.mu.Unlock()
	if id == "" {
		return fmt.Errorf("r: no direct message to reply to yet")
	}
	return c.tell(ctx, id, text, false, false)
}

func (c *Console) cmdAway(_ context.Context, _ []string, rest string) error {
	text := strings.TrimSpace(rest)
	if err := c.node.SetAway(true, text); err != nil {
		return fmt.Errorf("away: %w", err)
	}
	plain := "* you are away; /back when you are back"
	if text != "" {
		plain = fmt.Sprintf("* you are away (%s); /back when you are back", text)
	}
	c.out.emit(AwayEvent{Peer: c.node.Name(), ID: c.node.ID(), Away: true, Text: text, Self: true}, plain, false)
	return nil
}

func (c *Console) cmdBack(_ context.Context, args []string, _ string) error {
	if len(args) > 0 {
		return errUsage
	}
	if err := c.node.SetAway(false, ""); err != nil {
		return fmt.Errorf("back: %w", err)
	}
	c.out.emit(AwayEvent{Peer: c.node.Name(), ID: c.node.ID(), Self: true}, "* you are back", false)
	return nil
}

// newFlags makes a command's option set.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func viaFlags(fs *flag.FlagSet) (tcp, udp *bool) {
	return fs.Bool("tcp", false, "over TCP"), fs.Bool("udp", false, "over UDP")
}

// parseArgs parses a command's options wherever they are before "--"
// (so "/echo alice -n 3" works, as "/echo -n 3 alice" does) and returns
// the other arguments. A word starting with "-" that is not an option is
// an error, never text: text that starts with "-" goes after "--".
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var opts, rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			rest = append(rest, a)
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f := fs.Lookup(name)
		if f == nil {
			return nil, fmt.Errorf("%s: unknown option %s (options: %s; text that starts with - goes after --)", fs.Name(), a, optionList(fs))
		}
		opts = append(opts, a)
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); hasValue || (ok && b.IsBoolFlag()) {
			continue
		}
		if i+1 >= len(args) {
			return nil, fmt.Errorf("%s: option %s needs a value", fs.Name(), a)
		}
		i++
		opts = append(opts, args[i])
	}
	if err := fs.Parse(opts); err != nil {
		return nil, fmt.Errorf("%s: %w", fs.Name(), err)
	}
	return rest, nil
}

func optionList(fs *flag.FlagSet) string {
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, "-"+f.Name) })
	return strings.Join(names, " ")
}

func via(tcp, udp bool) (string, error) {
	switch {
	case tcp && udp:
		return "", fmt.Errorf("give -tcp or -udp, not both")
	case udp:
		return peer.UDP, nil
	}
	return peer.TCP, nil
}

func (c *Console) cmdTime(ctx context.Context, args []string, _ string) error {
	fs := newFlags("time")
	tcp, udp := viaFlags(fs)
	rest, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	v, err := via(*tcp, *udp)
	if err != nil {
		return err
	}
	if len(rest) > 1 {
		return errUsage
	}
	if len(rest) == 1 {
		// Resolved once: the answer is the node's, whatever its name
		// becomes meanwhile.
		info, err := c.node.Resolve(rest[0])
		if err != nil {
			return err
		}
		c.background(ctx, func(ctx context.Context) {
			r, err := c.node.Time(ctx, info.ID, v)
			switch {
			case ctx.Err() != nil:
				c.notice(fmt.Sprintf("time %s: stopped", info.Name))
			case err != nil:
				c.Error(fmt.Errorf("time %s: %w", info.Name, err))
			default:
				c.showTime(r)
			}
		})
		return nil
	}
	var skipped []string
	for _, p := range c.node.Peers() {
		if p.State == peer.Away {
			skipped = append(skipped, p.Name)
		}
	}
	if len(skipped) > 0 {
		c.notice(fmt.Sprintf("time: skipped %s (away: connection lost, being re-established)", strings.Join(skipped, ", ")))
	}
	if len(c.connected()) == 0 {
		return fmt.Errorf("time: %w", peer.ErrNoPeers)
	}
	c.background(ctx, func(ctx context.Context) {
		err := c.node.TimeAll(ctx, v, func(r peer.TimeResult, err error) {
			switch {
			case ctx.Err() != nil:
			case err != nil:
				c.Error(err)
			default:
				c.showTime(r)
			}
		})
		switch {
		case ctx.Err() != nil:
			c.notice("time: stopped")
		case err != nil:
			c.Error(fmt.Errorf("time: %w", err))
		}
	})
	return nil
}

func (c *Console) showTime(r peer.TimeResult) {
	c.out.emit(TimeEvent{Peer: r.Peer.Name, ID: r.Peer.ID, Transport: r.Transport, Time: r.PeerTime.Format(time.RFC3339Nano),
		Zone: r.PeerTime.Format("MST"), OffsetMS: ms(r.Offset), RTTMS: ms(r.RTT)},
		fmt.Sprintf("%s: %s (%s); offset %+.3f ms, delay %s over %s",
			c.st.name(r.Peer.Name, r.Peer.ID), r.PeerTime.Format("15:04:05.000 Monday 2006-01-02"), r.PeerTime.Format("MST -07:00"),
			ms(r.Offset), fmtDur(r.RTT), r.Transport), false)
}

// maxEchoCount bounds /echo -n, so that one typo cannot run for hours.
const maxEchoCount = 100000

func (c *Console) cmdEcho(ctx context.Context, args []string, _ string) error {
	fs := newFlags("echo")
	tcp, udp := viaFlags(fs)
	count := fs.Int("n", 1, "count")
	size := fs.Int("size", -1, "payload bytes")
	interval := fs.Duration("i", 0, "interval")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	v, err := via(*tcp, *udp)
	if err != nil {
		return err
	}
	if len(rest) < 1 {
		return errUsage
	}
	if *count < 1 || *count > maxEchoCount {
		return fmt.Errorf("echo: -n %d out of range 1-%d", *count, maxEchoCount)
	}
	sizeGiven := false
	fs.Visit(func(f *flag.Flag) { sizeGiven = sizeGiven || f.Name == "size" })
	if sizeGiven && *size < 0 {
		return fmt.Errorf("echo: -size %d: want 0 or more bytes", *size)
	}
	if *size > transport.MaxPayload {
		return fmt.Errorf("echo: -size %d: %w (limit %d bytes)", *size, transport.ErrTooLong, transport.MaxPayload)
	}
	if *interval < 0 {
		return fmt.Errorf("echo: -i must not be negative")
	}
	text := strings.Join(rest[1:], " ")
	payload := echoPayload(text, *size)
	if len(payload) > transport.MaxPayload {
		return fmt.Errorf("echo: payload of %d bytes: %w (limit %d)", len(payload), transport.ErrTooLong, transport.MaxPayload)
	}
	// Resolved once, by id: a peer that changes its name meanwhile is
	// still the one echoing.
	info, err := c.node.Resolve(rest[0])
	if err != nil {
		return err
	}
	n := *count
	if n > 1 && *interval == 0 {
		c.background(ctx, func(ctx context.Context) { c.echoSeries(ctx, info, v, payload, n) })
		return nil
	}
	c.background(ctx, func(ctx context.Context) { c.echoPaced(ctx, info, v, payload, n, *interval) })
	return nil
}

// notSent reports whether an echo failed before it was sent: the peer
// was away or gone.
func notSent(err error) bool {
	return errors.Is(err, peer.ErrAway) || errors.Is(err, peer.ErrUnknownPeer) || errors.Is(err, peer.ErrNoPeers)
}

// echoPaced runs /echo -n with an interval (or a single /echo): one echo
// at a time, each waiting for its reply. The summary counts only the
// echoes sent; the peer going away, or Ctrl-C, ends the series.
func (c *Console) echoPaced(ctx context.Context, info peer.Info, v string, payload []byte, n int, interval time.Duration) {
	var rtts []time.Duration
	sent := 0
	end := ""
	for i := 1; i <= n && end == ""; i++ {
		r, err := c.node.Echo(ctx, info.ID, v, payload)
		switch {
		case err == nil:
			sent++
			rtts = append(rtts, r.RTT)
			info.Name = r.Peer.Name
			c.showEcho(r, i, n)
		case ctx.Err() != nil:
			end = "stopped" // the echo in flight is not counted
		case errors.Is(err, peer.ErrTimeout):
			sent++
			c.showLost(info, v, i, n, err)
		case notSent(err):
			// The summary says it; a lone echo has none.
			end = fmt.Sprintf("%s went away", info.Name)
			if n == 1 {
				c.Error(fmt.Errorf("echo %s: %s is away or gone", info.Name, info.Name))
			}
		default:
			sent++ // sent, and the connection was lost before the reply
			end = fmt.Sprintf("%s went away", info.Name)
			c.Error(fmt.Errorf("echo %s seq=%d: %w", info.Name, i, err))
		}
		if i < n && interval > 0 && end == "" {
			t := time.NewTimer(interval)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				end = "stopped"
			}
		}
	}
	if n > 1 {
		c.showEchoSummary(info, v, sent, rtts, end)
	} else if end == "stopped" {
		c.notice(fmt.Sprintf("echo %s: stopped", info.Name))
	}
}

// echoSeries runs /echo -n without an interval: back to back, each echo
// sent as soon as the one before is back, like ping -f.
func (c *Console) echoSeries(ctx context.Context, info peer.Info, v string, payload []byte, n int) {
	res, err := c.node.EchoSeries(ctx, info.ID, v, payload, n, func(r peer.SeriesReply) {
		if r.Err != nil {
			c.showLost(info, v, r.Seq, n, r.Err)
			return
		}
		c.showEcho(peer.EchoResult{Peer: info, Transport: v, Sent: payload, Got: r.Got, RTT: r.RTT, OK: r.OK}, r.Seq, n)
	})
	end := ""
	switch {
	case ctx.Err() != nil:
		end = "stopped"
	case err != nil:
		end = err.Error()
		c.Error(fmt.Errorf("echo %s: %w", info.Name, err))
	}
	if res.Peer.ID != "" {
		info = res.Peer
	}
	c.showEchoSummary(info, v, res.Sent, res.RTTs, end)
}

// echoPayload is text, or text repeated (or a pattern) to size bytes.
func echoPayload(text string, size int) []byte {
	if size < 0 {
		if text == "" {
			text = "lanchat echo"
		}
		return []byte(text)
	}
	pattern := text
	if pattern == "" {
		pattern = "abcdefghijklmnopqrstuvwxyz0123456789"
	}
	b := make([]byte, size)
	for i := range b {
		b[i] = pattern[i%len(pattern)]
	}
	return b
}

// preview shortens long payloads in output.
func preview(b []byte) string {
	const max = 1024
	if len(b) <= max {
		return string(b)
	}
	return string(b[:64]) + "…"
}

// clip shortens s to at most n runes, marking the cut with "…".
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func (c *Console) showEcho(r peer.EchoResult, seq, count int) {
	verdict := "payload matches"
	if !r.OK {
		verdict = fmt.Sprintf("PAYLOAD MISMATCH (sent %d bytes, got %d)", len(r.Sent), len(r.Got))
	}
	name := c.st.name(r.Peer.Name, r.Peer.ID)
	plain := fmt.Sprintf("echo from %s over %s: %d bytes in %s, %s", name, r.Transport, len(r.Got), fmtDur(r.RTT), verdict)
	if count > 1 {
		plain = fmt.Sprintf("%d bytes from %s over %s: seq=%d time=%s", len(r.Got), name, r.Transport, seq, fmtDur(r.RTT))
		if !r.OK {
			plain += " " + verdict
		}
	}
	c.out.emit(EchoEvent{Peer: r.Peer.Name, ID: r.Peer.ID, Transport: r.Transport, Text: preview(r.Got),
		Bytes: len(r.Got), RTTMS: ms(r.RTT), OK: r.OK, Seq: seq}, plain, false)
}

// showLost reports an echo that got no reply: over UDP, a lost datagram,
// which is what the command measures, not an error.
func (c *Console) showLost(info peer.Info, v string, seq, count int, err error) {
	reason := strings.TrimPrefix(err.Error(), peer.ErrTimeout.Error()+": ")
	plain := fmt.Sprintf("echo from %s over %s: lost (%s)", c.st.name(info.Name, info.ID), v, reason)
	if count > 1 {
		plain = fmt.Sprintf("seq=%d lost: %s", seq, reason)
	}
	c.out.emit(EchoEvent{Peer: info.Name, ID: info.ID, Transport: v, Seq: seq, Lost: true, Reason: reason}, plain, false)
}

func (c *Console) showEchoSummary(info peer.Info, v string, sent int, rtts []time.Duration, end string) {
	s := summarize(rtts)
	loss := 0.0
	if sent > 0 {
		loss = 100 * float64(sent-len(rtts)) / float64(sent)
	}
	plain := fmt.Sprintf("--- %s echo over %s: %d sent, %d received, %.1f%% loss", c.st.name(info.Name, info.ID), v, sent, len(rtts), loss)
	if len(rtts) > 0 {
		plain += fmt.Sprintf("; rtt min/avg/max/p99 = %.3f/%.3f/%.3f/%.3f ms", ms(s.min), ms(s.avg), ms(s.max), ms(s.p99))
	}
	if end != "" {
		plain += " (" + end + ")"
	}
	c.out.emit(EchoSummaryEvent{Peer: info.Name, ID: info.ID, Transport: v, Sent: sent, Received: len(rtts), LossPct: loss,
		MinMS: ms(s.min), AvgMS: ms(s.avg), MaxMS: ms(s.max), P99MS: ms(s.p99), Stopped: end}, plain, false)
}

type rttSummary struct{ min, avg, max, p99 time.Duration }

// summarize computes min, mean, max and the 99th percentile (nearest rank).
func summarize(rtts []time.Duration) rttSummary {
	if len(rtts) == 0 {
		return rttSummary{}
	}
	s := slices.Clone(rtts)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	rank := (99*len(s) + 99) / 100 // ceil(0.99 n)
	return rttSummary{min: s[0], avg: sum / time.Duration(len(s)), max: s[len(s)-1], p99: s[rank-1]}
}

func (c *Console) cmdNick(_ context.Context, args []string, rest string) error {
	switch {
	case len(args) == 0:
		return errUsage
	case len(args) > 1:
		return fmt.Errorf("nick: %q refused: a name is one word, without spaces", strings.TrimSpace(rest))
	}
	old := c.node.Name()
	err := c.node.SetName(args[0])
	if err != nil && c.node.Name() == old {
		return fmt.Errorf("nick: %w", err)
	}
	c.setPrompt(args[0])
	c.out.emit(NickEvent{ID: c.node.ID(), Old: old, New: args[0]}, fmt.Sprintf("* you are now known as %s", c.st.self(args[0])), false)
	if err != nil {
		c.Error(err)
	}
	if c.cfg.OnRename != nil {
		if err := c.cfg.OnRename(args[0]); err != nil {
			c.Error(fmt.Errorf("nick: mDNS record not updated: %w", err))
		}
	}
	return nil
}

func (c *Console) cmdConnect(ctx context.Context, args []string, _ string) error {
	if len(args) != 1 {
		return errUsage
	}
	if invite.IsInvite(args[0]) {
		return c.connectInvite(ctx, args[0])
	}
	expect, addr := peer.SplitPeerAddr(args[0])
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("connect: %q is not HOST:PORT", addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 || host == "" {
		return fmt.Errorf("connect: %q is not HOST:PORT with a port from 1 to 65535", addr)
	}
	c.background(ctx, func(ctx context.Context) {
		_, err := c.node.Connect(ctx, addr, peer.ViaManual, expect)
		switch {
		case errors.Is(err, peer.ErrDuplicate):
			c.notice(err.Error())
		case ctx.Err() != nil:
			c.notice(fmt.Sprintf("connect %s: stopped", addr))
		case err != nil:
			c.Error(connectError(addr, err))
		}
	})
	return nil
}

// handshakePrefix is how the node's handshake errors begin.
var handshakePrefix = regexp.MustCompile(`^(handshake with|connect to) [^ ]+: `)

// connectError words a failed /connect once: "connect ADDR: why", not
// the dial, the socket and the handshake each adding their own prefix.
func connectError(addr string, err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		cause := op.Err
		var sys *os.SyscallError
		if errors.As(cause, &sys) {
			cause = sys.Err
		}
		return fmt.Errorf("connect %s: %v", addr, cause)
	}
	msg := err.Error()
	for {
		trimmed := handshakePrefix.ReplaceAllString(msg, "")
		if trimmed == msg {
			break
		}
		msg = trimmed
	}
	return fmt.Errorf("connect %s: %s", addr, msg)
}

func (c *Console) cmdWhoami(_ context.Context, args []string, _ string) error {
	if len(args) > 0 {
		return errUsage
	}
	w := c.node.Whoami()
	c.out.emit(WhoamiEvent{Name: w.Name, ID: w.ID, Fingerprint: w.Fingerprint},
		fmt.Sprintf("you are %s\n  id          %s\n  fingerprint %s", c.st.self(w.Name), identity.Grouped(w.ID), w.Fingerprint), true)
	return nil
}

func (c *Console) cmdTrust(_ context.Context, args []string, _ string) error {
	if len(args) != 1 {
		return errUsage
	}
	p, err := c.node.Trust(args[0])
	if err != nil {
		return fmt.Errorf("trust: %w", err)
	}
	c.out.emit(TrustEvent{Peer: p.Name, ID: p.ID, Trust: p.Trust.String()},
		fmt.Sprintf("* %s is now known as %s (%s)", identity.Grouped(p.ID), p.Name, p.Trust), false)
	return nil
}

func (c *Console) cmdForget(_ context.Context, args []string, _ string) error {
	if len(args) != 1 {
		return errUsage
	}
	names, err := c.node.Forget(args[0])
	if err != nil {
		return err
	}
	c.out.emit(ForgetEvent{Names: names},
		fmt.Sprintf("* forgot %s; the next node seen under each name is trusted on first use", strings.Join(names, ", ")), false)
	return nil
}

func (c *Console) cmdPending(_ context.Context, args []string, _ string) error {
	if len(args) > 0 {
		return errUsage
	}
	pending := c.node.Pending()
	var b strings.Builder
	list := []PendingPeer{}
	total := 0
	for _, p := range pending {
		total += p.Count
		more := ""
		if p.Count > len(p.Messages) {
			more = fmt.Sprintf(" (the first %d:)", len(p.Messages))
		}
		fmt.Fprintf(&b, "%s (%s, %s): %d undelivered%s\n", p.Peer.Name, peer.ShortID(p.Peer.ID), p.Peer.State, p.Count, more)
		msgs := []PendingMessage{}
		for _, m := range p.Messages {
			age := time.Since(m.Queued)
			fmt.Fprintf(&b, "  #%d %s ago: %s\n", m.MsgID, age.Round(100*time.Millisecond), preview([]byte(m.Text)))
			msgs = append(msgs, PendingMessage{MsgID: m.MsgID, Text: m.Text, Direct: m.Direct, AgeMS: ms(age)})
		}
		list = append(list, PendingPeer{Peer: p.Peer.Name, ID: p.Peer.ID, TCP: p.Peer.State.String(), Count: p.Count, Messages: msgs})
	}
	if total == 0 {
		b.WriteString("every message has been delivered")
	}
	c.out.emit(PendingEvent{Pending: list, Total: total}, strings.TrimRight(b.String(), "\n"), true)
	return nil
}
