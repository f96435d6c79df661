package console

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

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
		{"msg", "/msg PEER TEXT", "send TEXT to PEER only", (*Console).cmdMsg},
		{"time", "/time [-tcp|-udp] [PEER]", "ask PEER (default: every peer) for its clock: its time, the offset and the round trip", (*Console).cmdTime},
		{"echo", "/echo [-tcp|-udp] [-n COUNT] [-size BYTES] [-i INTERVAL] PEER [TEXT]", "send TEXT (or BYTES of data) to PEER and time its return; -n repeats, like ping", (*Console).cmdEcho},
		{"peers", "/peers", "list the connected peers", (*Console).cmdPeers},
		{"nick", "/nick NAME", "change your name; peers and mDNS learn it", (*Console).cmdNick},
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
		{"pending", "/pending", "list messages not yet delivered (acknowledged) by their peers", (*Console).cmdPending},
		{"drop", "/drop PEER", "discard the messages waiting for PEER", (*Console).cmdDrop},
		{"history", "/history [PEER] [-n N]", "show the last N lines (default 20), of all conversations or of one", (*Console).cmdHistory},
		{"search", "/search TEXT", "find the lines that contain TEXT (case does not matter), newest first", (*Console).cmdSearch},
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

func (c *Console) cmdHelp(_ context.Context, _ []string, _ string) error {
	var b strings.Builder
	b.WriteString("A line that does not start with / is sent to every peer (start it with // to send a leading /).\n")
	b.WriteString("PEER is a peer's name, or a prefix of its id when names clash.\n")
	var list []map[string]string
	for _, cmd := range commands {
		fmt.Fprintf(&b, "  %s\n      %s\n", cmd.usage, cmd.help)
		list = append(list, map[string]string{"usage": cmd.usage, "help": cmd.help})
	}
	c.out.emit("help", []field{{"commands", list}}, strings.TrimRight(b.String(), "\n"), true)
	return nil
}

func (c *Console) cmdMsg(_ context.Context, args []string, rest string) error {
	if len(args) < 2 {
		return errUsage
	}
	rest = strings.TrimLeft(rest, " ")
	target := args[0]
	text := strings.TrimLeft(rest[len(target):], " ")
	_, err := c.node.Tell(target, text)
	return err
}

// flags parses a command's options; options come before the other
// arguments, as with ping.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func viaFlags(fs *flag.FlagSet) (tcp, udp *bool) {
	return fs.Bool("tcp", false, "over TCP"), fs.Bool("udp", false, "over UDP")
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
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("time: %w", err)
	}
	v, err := via(*tcp, *udp)
	if err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return errUsage
	}
	if fs.NArg() == 1 {
		target := fs.Arg(0)
		if _, err := c.node.Resolve(target); err != nil {
			return err
		}
		c.background(ctx, func(ctx context.Context) {
			r, err := c.node.Time(ctx, target, v)
			if err != nil {
				c.out.Error(fmt.Errorf("time %s: %w", target, err))
				return
			}
			c.showTime(r)
		})
		return nil
	}
	if len(c.node.Peers()) == 0 {
		return fmt.Errorf("time: %w", peer.ErrNoPeers)
	}
	c.background(ctx, func(ctx context.Context) {
		err := c.node.TimeAll(ctx, v, func(r peer.TimeResult, err error) {
			if err != nil {
				c.out.Error(err)
				return
			}
			c.showTime(r)
		})
		if err != nil {
			c.out.Error(fmt.Errorf("time: %w", err))
		}
	})
	return nil
}

func (c *Console) showTime(r peer.TimeResult) {
	zone := r.PeerTime.Format("MST -07:00")
	c.out.emit("time", []field{
		{"peer", r.Peer.Name}, {"id", r.Peer.ID}, {"transport", r.Transport},
		{"time", r.PeerTime.Format(time.RFC3339Nano)}, {"zone", r.PeerTime.Format("MST")},
		{"offset_ms", ms(r.Offset)}, {"rtt_ms", ms(r.RTT)},
	}, fmt.Sprintf("%s: %s %s (%s); offset %+.3f ms, delay %s over %s",
		r.Peer.Name, r.PeerTime.Format("Mon 2006-01-02 15:04:05.000"), zone,
		r.PeerTime.Format("Monday"), ms(r.Offset), fmtDur(r.RTT), r.Transport), false)
}

// maxEchoCount bounds /echo -n, so that one typo cannot run for hours.
const maxEchoCount = 100000

func (c *Console) cmdEcho(ctx context.Context, args []string, _ string) error {
	fs := newFlags("echo")
	tcp, udp := viaFlags(fs)
	count := fs.Int("n", 1, "count")
	size := fs.Int("size", -1, "payload bytes")
	interval := fs.Duration("i", 0, "interval")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("echo: %w", err)
	}
	v, err := via(*tcp, *udp)
	if err != nil {
		return err
	}
	if fs.NArg() < 1 {
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
	target := fs.Arg(0)
	text := strings.Join(fs.Args()[1:], " ")
	payload := echoPayload(text, *size)
	if len(payload) > transport.MaxPayload {
		return fmt.Errorf("echo: payload of %d bytes: %w (limit %d)", len(payload), transport.ErrTooLong, transport.MaxPayload)
	}
	info, err := c.node.Resolve(target)
	if err != nil {
		return err
	}
	n := *count
	if n > 1 && *interval == 0 {
		c.background(ctx, func(ctx context.Context) { c.echoSeries(ctx, info, target, v, payload, n) })
		return nil
	}
	c.background(ctx, func(ctx context.Context) {
		var rtts []time.Duration
		var last peer.EchoResult
		for i := 1; i <= n && ctx.Err() == nil; i++ {
			r, err := c.node.Echo(ctx, target, v, payload)
			if err != nil {
				c.out.Error(fmt.Errorf("echo %s seq=%d: %w", target, i, err))
				if errors.Is(err, peer.ErrNoPeers) || errors.Is(err, peer.ErrUnknownPeer) || errors.Is(err, peer.ErrAway) {
					break
				}
			} else {
				last = r
				rtts = append(rtts, r.RTT)
				c.showEcho(r, i, n)
			}
			if i < n && *interval > 0 {
				t := time.NewTimer(*interval)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
				}
			}
		}
		if n > 1 {
			c.showEchoSummary(target, last, v, n, rtts)
		}
	})
	return nil
}

// echoSeries runs /echo -n without an interval: back to back, each echo
// sent as soon as the one before is back, like ping -f.
func (c *Console) echoSeries(ctx context.Context, info peer.Info, target, v string, payload []byte, n int) {
	res, err := c.node.EchoSeries(ctx, target, v, payload, n, func(r peer.SeriesReply) {
		if r.Err != nil {
			c.out.Error(fmt.Errorf("echo %s seq=%d: %w", target, r.Seq, r.Err))
			return
		}
		c.showEcho(peer.EchoResult{Peer: info, Transport: v, Sent: payload, Got: r.Got, RTT: r.RTT, OK: r.OK}, r.Seq, n)
	})
	if err != nil && ctx.Err() == nil {
		c.out.Error(fmt.Errorf("echo %s: %w", target, err))
	}
	if res.Sent > 0 {
		c.showEchoSummary(target, peer.EchoResult{Peer: res.Peer}, v, res.Sent, res.RTTs)
	}
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

func (c *Console) showEcho(r peer.EchoResult, seq, count int) {
	verdict := "payload matches"
	if !r.OK {
		verdict = fmt.Sprintf("PAYLOAD MISMATCH (sent %d bytes, got %d)", len(r.Sent), len(r.Got))
	}
	plain := fmt.Sprintf("echo from %s over %s: %d bytes in %s, %s", r.Peer.Name, r.Transport, len(r.Got), fmtDur(r.RTT), verdict)
	if count > 1 {
		plain = fmt.Sprintf("%d bytes from %s over %s: seq=%d time=%s", len(r.Got), r.Peer.Name, r.Transport, seq, fmtDur(r.RTT))
		if !r.OK {
			plain += " " + verdict
		}
	}
	c.out.emit("echo", []field{
		{"peer", r.Peer.Name}, {"id", r.Peer.ID}, {"transport", r.Transport}, {"text", preview(r.Got)},
		{"bytes", len(r.Got)}, {"rtt_ms", ms(r.RTT)}, {"ok", r.OK}, {"seq", seq},
	}, plain, false)
}

func (c *Console) showEchoSummary(target string, last peer.EchoResult, v string, sent int, rtts []time.Duration) {
	name, id := target, ""
	if last.Peer.ID != "" {
		name, id = last.Peer.Name, last.Peer.ID
	}
	s := summarize(rtts)
	loss := 100 * float64(sent-len(rtts)) / float64(sent)
	plain := fmt.Sprintf("--- %s echo over %s: %d sent, %d received, %.1f%% loss", name, v, sent, len(rtts), loss)
	if len(rtts) > 0 {
		plain += fmt.Sprintf("; rtt min/avg/max/p99 = %.3f/%.3f/%.3f/%.3f ms", ms(s.min), ms(s.avg), ms(s.max), ms(s.p99))
	}
	c.out.emit("echo_summary", []field{
		{"peer", name}, {"id", id}, {"transport", v}, {"sent", sent}, {"received", len(rtts)}, {"loss_pct", loss},
		{"min_ms", ms(s.min)}, {"avg_ms", ms(s.avg)}, {"max_ms", ms(s.max)}, {"p99_ms", ms(s.p99)},
	}, plain, false)
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

func (c *Console) cmdPeers(_ context.Context, args []string, _ string) error {
	if len(args) > 0 {
		return errUsage
	}
	ps := c.node.Peers()
	st := c.node.Stats()
	var list []map[string]any
	var b strings.Builder
	if len(ps) == 0 {
		b.WriteString("no peers connected\n")
	} else {
		fmt.Fprintf(&b, "%-20s %-8s %-8s %-10s %-24s %-4s %-8s %-24s %-10s %s\n", "PEER", "ID", "TRUST", "VIA", "TCP ADDRESS", "TCP", "UDP", "UDP ADDRESS", "LAST RTT", "SINCE")
	}
	for _, p := range ps {
		rtt := "-"
		if p.LastRTT > 0 {
			rtt = fmtDur(p.LastRTT)
		}
		fmt.Fprintf(&b, "%-20s %-8s %-8s %-10s %-24s %-4s %-8s %-24s %-10s %s (%s)\n", p.Name, peer.ShortID(p.ID), p.Trust, p.Via, p.Addr,
			p.State, p.UDP, p.UDPAddr, rtt, p.Since.Format("15:04:05"), time.Since(p.Since).Round(time.Second))
		list = append(list, map[string]any{
			"peer": p.Name, "id": p.ID, "addr": p.Addr, "udp_addr": p.UDPAddr, "tcp": p.State.String(), "udp": p.UDP.String(),
			"via": p.Via.String(), "since": p.Since.Format(time.RFC3339Nano), "rtt_ms": ms(p.LastRTT),
			"trust": p.Trust.String(), "fingerprint": p.Fingerprint, "pending": p.Pending, "queued": p.Queued,
		})
	}
	if list == nil {
		list = []map[string]any{}
	}
	fmt.Fprintf(&b, "datagrams dropped: %d malformed, %d failed authentication, %d replayed, %d from unknown senders, %d stray replies, %d overruns\n",
		st.BadDatagrams, st.AuthFailures, st.Replays, st.UnknownSenders, st.StrayReplies, st.DatagramOverruns)
	fmt.Fprintf(&b, "connections refused: %d handshakes failed, %d closed at once (too many handshakes under way)",
		st.HandshakesFailed, st.StrangersRefused)
	c.out.emit("peers", []field{{"peers", list}, {"dropped", map[string]uint64{
		"malformed": st.BadDatagrams, "auth_failed": st.AuthFailures, "replayed": st.Replays,
		"unknown_sender": st.UnknownSenders, "stray_reply": st.StrayReplies, "overrun": st.DatagramOverruns,
	}}, {"refused", map[string]uint64{
		"handshake_failed": st.HandshakesFailed, "over_limit": st.StrangersRefused,
	}}}, b.String(), true)
	return nil
}

func (c *Console) cmdNick(_ context.Context, args []string, _ string) error {
	if len(args) != 1 {
		return errUsage
	}
	old := c.node.Name()
	err := c.node.SetName(args[0])
	if err != nil && c.node.Name() == old {
		return fmt.Errorf("nick: %w", err)
	}
	c.setPrompt(args[0])
	c.out.emit("nick", []field{{"id", c.node.ID()}, {"old", old}, {"new", args[0]}},
		fmt.Sprintf("* you are now known as %s", args[0]), false)
	if err != nil {
		c.out.Error(err)
	}
	if c.cfg.OnRename != nil {
		if err := c.cfg.OnRename(args[0]); err != nil {
			c.out.Error(fmt.Errorf("nick: mDNS record not updated: %w", err))
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
		return fmt.Errorf("connect: %q is not HOST:PORT: %w", addr, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 || host == "" {
		return fmt.Errorf("connect: %q is not HOST:PORT with a port from 1 to 65535", addr)
	}
	c.background(ctx, func(ctx context.Context) {
		_, err := c.node.Connect(ctx, addr, peer.ViaManual, expect)
		switch {
		case errors.Is(err, peer.ErrDuplicate):
			c.out.emit("notice", []field{{"text", err.Error()}}, "* "+err.Error(), false)
		case err != nil:
			c.out.Error(fmt.Errorf("connect: %w", err))
		}
	})
	return nil
}

func (c *Console) cmdWhoami(_ context.Context, args []string, _ string) error {
	if len(args) > 0 {
		return errUsage
	}
	w := c.node.Whoami()
	c.out.emit("whoami", []field{{"name", w.Name}, {"id", w.ID}, {"fingerprint", w.Fingerprint}},
		fmt.Sprintf("you are %s\n  id          %s\n  fingerprint %s", w.Name, identity.Grouped(w.ID), w.Fingerprint), true)
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
	c.out.emit("trust", []field{{"peer", p.Name}, {"id", p.ID}, {"trust", p.Trust.String()}},
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
	c.out.emit("forget", []field{{"names", names}},
		fmt.Sprintf("* forgot %s; the next node seen under each name is trusted on first use", strings.Join(names, ", ")), false)
	return nil
}

func (c *Console) cmdPending(_ context.Context, args []string, _ string) error {
	if len(args) > 0 {
		return errUsage
	}
	pending := c.node.Pending()
	var b strings.Builder
	list := []map[string]any{}
	total := 0
	for _, p := range pending {
		total += p.Count
		more := ""
		if p.Count > len(p.Messages) {
			more = fmt.Sprintf(" (the first %d:)", len(p.Messages))
		}
		fmt.Fprintf(&b, "%s (%s, %s): %d undelivered%s\n", p.Peer.Name, peer.ShortID(p.Peer.ID), p.Peer.State, p.Count, more)
		var msgs []map[string]any
		for _, m := range p.Messages {
			age := time.Since(m.Queued)
			fmt.Fprintf(&b, "  #%d %s ago: %s\n", m.MsgID, age.Round(100*time.Millisecond), preview([]byte(m.Text)))
			msgs = append(msgs, map[string]any{"msg_id": m.MsgID, "text": m.Text, "direct": m.Direct, "age_ms": ms(age)})
		}
		list = append(list, map[string]any{"peer": p.Peer.Name, "id": p.Peer.ID, "tcp": p.Peer.State.String(), "count": p.Count, "messages": msgs})
	}
	if total == 0 {
		b.WriteString("every message has been delivered")
	}
	c.out.emit("pending", []field{{"pending", list}, {"total", total}}, strings.TrimRight(b.String(), "\n"), true)
	return nil
}
