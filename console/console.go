package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"lanchat/identity"
	"lanchat/peer"
	"lanchat/transfer"
)

// Node is what the console drives.
type Node interface {
	ID() string
	Name() string
	Say(text string) (peer.Sent, error)
	Act(text string) (peer.Sent, error)
	Tell(peerArg, text string) (peer.Sent, error)
	ActTo(peerArg, text string) (peer.Sent, error)
	TellUDP(peerArg, text string, action bool) (peer.Info, error)
	SetAway(away bool, text string) error
	Pending() []peer.PendingPeer
	PendingCount() int
	Time(ctx context.Context, peerArg, via string) (peer.TimeResult, error)
	TimeAll(ctx context.Context, via string, each func(peer.TimeResult, error)) error
	Echo(ctx context.Context, peerArg, via string, payload []byte) (peer.EchoResult, error)
	EchoSeries(ctx context.Context, peerArg, via string, payload []byte, count int, each func(peer.SeriesReply)) (peer.EchoSeriesResult, error)
	Resolve(peerArg string) (peer.Info, error)
	Peers() []peer.Info
	PeerNames() []string
	Stats() peer.Stats
	SetName(name string) error
	Connect(ctx context.Context, addr string, via peer.Via, expectID string) (peer.Info, error)
	Events() <-chan peer.Event
	Whoami() peer.Whoami
	Trust(idPrefix string) (peer.Info, error)
	Forget(nameOrID string) ([]string, error)
	Drop(peerArg string) (peer.Info, int, error)
	ResolveID(peerArg string) (peer.Info, error)
	Verify(peerArg, code string) (peer.Verification, error)
}

// Config configures a Console.
type Config struct {
	Node Node
	// In is read for commands; Out gets every event. On a terminal, In
	// and Out are the terminal (an *os.File: raw mode is set on In).
	In  io.Reader
	Out io.Writer
	// Terminal selects the readline prompt; otherwise lines are read
	// plainly and no escape codes are written.
	Terminal bool
	JSON     bool
	// Color writes names and warnings in colour; Bell rings the terminal
	// bell for a direct message or a line that names you. The caller
	// sets them only for a terminal (and Color only without NO_COLOR).
	Color, Bell bool
	// HistoryFile is where the prompt keeps its history ("" for none).
	HistoryFile string
	// Log, when set, is redirected through the prompt while it is up.
	Log *LogWriter
	// OnRename is called after /nick has told the peers, to update the
	// mDNS record.
	OnRename func(name string) error
	// History answers /history and /search; nil when there is none.
	History History
	// Transfers runs /send and its kin; nil when there are none.
	Transfers Transfers
	// Durable: undelivered messages are kept on disk (a store), so
	// leaving loses none.
	Durable bool
	// FirstMsgID is the first message id of this run (the store's): the
	// deliveries of lower ids, written by an earlier run, are reported at
	// once, never held for a line of this run.
	FirstMsgID uint64
	// Notices are shown after the ready line (a store moved aside).
	Notices []string
	// Invite makes the line /invite prints; nil disables /invite.
	Invite func() (string, error)
	// TCPPort and UDPPort are shown in the ready event.
	TCPPort, UDPPort int
	Version          string
	// WaitPeers, when above 0, holds the input back until that many
	// peers are connected; if they are not within WaitTimeout (default
	// 30 s), Run returns an error saying which are.
	WaitPeers   int
	WaitTimeout time.Duration
}

// Console runs the user interface of one node.
type Console struct {
	cfg  Config
	node Node
	out  *Printer
	st   style
	// jobs tracks commands that run in the background (/time, /echo,
	// /connect), so that quitting waits for their output.
	jobs sync.WaitGroup
	// prompt is updated by /nick when on a terminal.
	setPrompt func(string)
	// quitWarned is set once /quit has warned about undelivered messages;
	// the next /quit leaves anyway.
	quitWarned bool
	// own carries one's own chat lines to the pump, which shows them
	// with their delivery mark (mine is the pump's bookkeeping).
	own  chan *ownLine
	mine *ownLines
	// prog is the progress display of running transfers.
	prog progress
	// backlog sums up the messages written while this node was off.
	backlog backlog

	mu sync.Mutex // protects following
	// stops ends each running job (Ctrl-C stops them).
	stops   map[int]context.CancelFunc
	nextJob int
	// lastDirect is the id of the last peer that sent a direct message
	// (/r answers it).
	lastDirect string
	// awayTold holds, per peer id, the away text already shown when
	// sending it a direct message (it is shown once).
	awayTold map[string]string
}

// New makes a console.
func New(cfg Config) *Console {
	if cfg.WaitTimeout <= 0 {
		cfg.WaitTimeout = 30 * time.Second
	}
	return &Console{
		cfg: cfg, node: cfg.Node, out: NewPrinter(cfg.Out, cfg.JSON), st: style{color: cfg.Color && !cfg.JSON},
		setPrompt: func(string) {}, own: make(chan *ownLine, 64), mine: newOwnLines(cfg.FirstMsgID),
		stops: map[int]context.CancelFunc{}, awayTold: map[string]string{},
		backlog: backlog{start: time.Now()},
	}
}

// quitWait bounds how long quitting waits for background commands, and
// in scripted mode for undelivered messages.
const quitWait = 10 * time.Second

// Run shows events and executes commands until /quit, end of input or ctx
// ends. It returns after the background commands have finished (within a
// bound) and the event pump has stopped.
func (c *Console) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.ready()
	for _, text := range c.cfg.Notices {
		c.warn(text)
	}
	pumpDone := make(chan struct{})
	go func() {
		defer close(pumpDone)
		c.pump(ctx)
	}()
	var err error
	if c.cfg.WaitPeers > 0 {
		err = c.waitPeers(ctx)
	}
	if err == nil {
		if c.cfg.Terminal {
			err = c.runTerminal(ctx)
		} else {
			err = c.runLines(ctx)
		}
		c.waitJobs()
		if !c.cfg.Terminal {
			c.waitDelivery(ctx)
		}
	}
	cancel()
	<-pumpDone
	c.stopBacklog()
	return err
}

// waitPeers holds the input back until WaitPeers peers are connected.
func (c *Console) waitPeers(ctx context.Context) error {
	start := time.Now()
	deadline := time.NewTimer(c.cfg.WaitTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		up := c.connected()
		if len(up) >= c.cfg.WaitPeers {
			c.out.emit(NoticeEvent{Text: fmt.Sprintf("%d peers up after %v: %s", len(up), time.Since(start).Round(time.Millisecond), strings.Join(up, ", "))},
				"", false)
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return nil
		case <-deadline.C:
			have := "none"
			if len(up) > 0 {
				have = strings.Join(up, ", ")
			}
			return fmt.Errorf("--wait-peers %d: only %d peers up after %v (%s); not waiting longer (--wait-timeout)",
				c.cfg.WaitPeers, len(up), c.cfg.WaitTimeout, have)
		}
	}
}

// connected names the peers connected now.
func (c *Console) connected() []string {
	var up []string
	for _, p := range c.node.Peers() {
		if p.State == peer.Up || p.State == peer.Unreachable {
			up = append(up, p.Name)
		}
	}
	return up
}

// waitDelivery waits, within quitWait, for every message to be delivered,
// and reports those that were not.
//
// With a store (Config.Durable) it waits only for the peers connected:
// what waits for the others is on disk, and goes when both are connected
// again, which waiting here would not bring about.
func (c *Console) waitDelivery(ctx context.Context) {
	waiting := c.node.PendingCount
	if c.cfg.Durable {
		waiting = c.pendingForConnected
	}
	deadline := time.Now().Add(quitWait)
	for waiting() > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	n := c.node.PendingCount()
	switch {
	case n == 0:
	case c.cfg.Durable:
		c.notice(fmt.Sprintf("%d messages are not delivered yet (%s): they wait on disk, and go when you and they are connected again", n, c.pendingSummary()))
	default:
		c.Error(fmt.Errorf("leaving with %d messages not delivered (%s)", n, c.pendingSummary()))
	}
}

// pendingForConnected counts the messages waiting for connected peers.
func (c *Console) pendingForConnected() int {
	n := 0
	for _, p := range c.node.Pending() {
		if p.Peer.State == peer.Up {
			n += p.Count
		}
	}
	return n
}

func (c *Console) pendingSummary() string {
	var parts []string
	for _, p := range c.node.Pending() {
		parts = append(parts, fmt.Sprintf("%s: %d", p.Peer.Name, len(p.Messages)))
	}
	return strings.Join(parts, ", ")
}

// confirmQuit reports whether the user may leave now: on a terminal, the
// first /quit with undelivered messages only warns, unless they are kept
// on disk (Config.Durable): then it says so and leaves.
func (c *Console) confirmQuit() bool {
	if !c.cfg.Terminal || c.quitWarned {
		return true
	}
	n := c.node.PendingCount()
	if n == 0 {
		return true
	}
	if c.cfg.Durable {
		c.notice(fmt.Sprintf("%d messages are not delivered yet (%s): they wait on disk, and go when you and they are connected again", n, c.pendingSummary()))
		return true
	}
	c.quitWarned = true
	c.warn(fmt.Sprintf("%d messages are not delivered yet (%s); they are lost if you leave. /quit again (or Ctrl-D) to leave anyway.", n, c.pendingSummary()))
	return false
}

// waitJobs waits, within quitWait, for the background commands; then
// stops those still running, which print what they have.
func (c *Console) waitJobs() {
	done := make(chan struct{})
	go func() {
		c.jobs.Wait()
		close(done)
	}()
	t := time.NewTimer(quitWait)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-t.C:
	}
	c.Error(fmt.Errorf("stopping the commands still running after %v", quitWait))
	c.stopJobs()
	t.Reset(2 * time.Second)
	select {
	case <-done:
	case <-t.C:
	}
}

// Error prints an error event.
func (c *Console) Error(err error) {
	c.out.emit(ErrorEvent{Text: err.Error()}, c.st.err("error: "+err.Error()), false)
}

func (c *Console) notice(text string) {
	c.out.emit(NoticeEvent{Text: text}, "* "+text, false)
}

func (c *Console) warn(text string) {
	c.out.emit(WarningEvent{Text: text}, c.st.warn("!!! "+text), false)
}

func (c *Console) ready() {
	id := c.node.ID()
	c.out.emit(ReadyEvent{Name: c.node.Name(), ID: id, TCPPort: c.cfg.TCPPort, UDPPort: c.cfg.UDPPort, Version: c.cfg.Version},
		fmt.Sprintf("lanchat %s: you are %s (id %s), on TCP port %d and UDP port %d. /help lists the commands.",
			c.cfg.Version, c.st.self(c.node.Name()), id, c.cfg.TCPPort, c.cfg.UDPPort), false)
}

// pump prints the node's events and one's own lines until ctx ends, then
// prints what is already queued.
func (c *Console) pump(ctx context.Context) {
	var tev <-chan transfer.Event
	if c.cfg.Transfers != nil {
		tev = c.cfg.Transfers.Events()
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if next := c.mine.next(); !next.IsZero() {
			timer.Reset(time.Until(next))
		} else {
			timer.Stop()
		}
		select {
		case ev := <-c.node.Events():
			c.show(ev)
		case ev := <-tev:
			c.showTransfer(ev)
		case l := <-c.own:
			c.addOwn(l)
		case <-timer.C:
			c.showOwn(c.mine.due(time.Now()))
			c.showHeld(c.mine.stale(time.Now(), false))
		case <-ctx.Done():
			for {
				select {
				case ev := <-c.node.Events():
					c.show(ev)
				case ev := <-tev:
					c.showTransfer(ev)
				case l := <-c.own:
					c.addOwn(l)
				default:
					c.showOwn(c.mine.due(time.Now().Add(ownGrace)))
					c.showHeld(c.mine.stale(time.Now(), true))
					c.showLate()
					return
				}
			}
		}
		if len(c.node.Events()) == 0 {
			c.showLate()
		}
	}
}

// addOwn registers one's own line; acknowledgements that came before it
// are reported now, after its sent event.
func (c *Console) addOwn(l *ownLine) {
	show, acks := c.mine.add(l, time.Now())
	c.showHeld(acks)
	c.showOwn(show)
}

// showHeld reports acknowledgements held for their line.
func (c *Console) showHeld(acks []heldAck) {
	for _, a := range acks {
		c.out.emit(DeliveredEvent{Peer: a.peer.Name, ID: a.peer.ID, MsgID: a.msgID, All: a.all}, "", false)
	}
}

// showOwn prints one's own lines: with the delivery mark when every
// recipient has acknowledged them, else saying whom they wait for.
func (c *Console) showOwn(ls []*ownLine) {
	if c.cfg.JSON {
		return // scripts have sent and delivered events
	}
	for _, l := range ls {
		plain := l.plain
		if len(l.waiting) == 0 {
			plain += " ✓"
		} else {
			plain += fmt.Sprintf(" (not yet delivered to %s)", waitingFor(l))
		}
		c.out.emitAt(l.at, nil, plain, false)
		l.plain = "" // shown: only its delivery is told later
	}
}

// showLate tells of lines delivered to everyone after they were shown.
func (c *Console) showLate() {
	if late := c.mine.takeLate(); len(late) > 0 && !c.cfg.JSON {
		c.out.emit(nil, lateLine(late), false)
	}
}

func who(i peer.Info) string { return fmt.Sprintf("%s (%s)", i.Name, peer.ShortID(i.ID)) }

// whoStyled is who with the name coloured.
func (c *Console) whoStyled(name, id string) string {
	return fmt.Sprintf("%s (%s)", c.st.name(name, id), peer.ShortID(id))
}

func (c *Console) show(ev peer.Event) {
	switch e := ev.(type) {
	case peer.PeerUp:
		verb := "joined"
		if e.Back || e.Was != "" {
			verb = "is back,"
		}
		name := c.whoStyled(e.Peer.Name, e.Peer.ID)
		if e.Was != "" {
			name = fmt.Sprintf("%s (was %s, %s)", c.st.name(e.Peer.Name, e.Peer.ID), e.Was, peer.ShortID(e.Peer.ID))
		}
		c.out.emit(PeerUpEvent{Peer: e.Peer.Name, ID: e.Peer.ID, Addr: e.Peer.Addr, Listen: e.Peer.Listen, Via: e.Peer.Via.String(),
			Trust: e.Peer.Trust.String(), Fingerprint: e.Peer.Fingerprint, Back: e.Back, Was: e.Was},
			fmt.Sprintf("* %s %s from %s via %s (%s)", name, verb, e.Peer.Addr, e.Peer.Via, e.Peer.Trust), false)
	case peer.PeerDown:
		plain := fmt.Sprintf("* %s left: %s", c.whoStyled(e.Peer.Name, e.Peer.ID), e.Reason)
		if e.Reconnecting {
			plain = fmt.Sprintf("* %s is away: %s; reconnecting (messages to it wait)", c.whoStyled(e.Peer.Name, e.Peer.ID), e.Reason)
		} else {
			c.mine.gone(e.Peer.ID)
		}
		if e.Undelivered > 0 {
			plain += fmt.Sprintf("; %d messages to it were not delivered", e.Undelivered)
		}
		c.out.emit(PeerDownEvent{Peer: e.Peer.Name, ID: e.Peer.ID, Reason: e.Reason, Reconnecting: e.Reconnecting, Undelivered: e.Undelivered},
			plain, false)
	case peer.PeerState:
		plain := fmt.Sprintf("* %s is unreachable (silent for %v)", c.whoStyled(e.Peer.Name, e.Peer.ID), e.Silence.Round(100*time.Millisecond))
		if e.State == peer.Up {
			plain = fmt.Sprintf("* %s is reachable again", c.whoStyled(e.Peer.Name, e.Peer.ID))
		}
		c.out.emit(PeerStateEvent{Peer: e.Peer.Name, ID: e.Peer.ID, State: e.State.String(), SilenceMS: ms(e.Silence)}, plain, false)
	case peer.Stored:
		c.showStored(e)
	case peer.Delivered:
		l, all, held := c.mine.acked(e.Peer, e.MsgID, time.Now())
		if held {
			return // reported once its line is registered
		}
		// One line per message and peer would drown a terminal: the
		// mark on one's own line says it.
		c.out.emit(DeliveredEvent{Peer: e.Peer.Name, ID: e.Peer.ID, MsgID: e.MsgID, All: all}, "", false)
		if all && !l.shown {
			l.shown = true
			c.showOwn([]*ownLine{l})
		}
	case peer.Chat:
		c.showChat(e)
	case peer.Nick:
		c.out.emit(NickEvent{ID: e.ID, Old: e.Old, New: e.New},
			fmt.Sprintf("* %s (%s) is now known as %s", e.Old, peer.ShortID(e.ID), c.st.name(e.New, e.ID)), false)
	case peer.Status:
		plain := fmt.Sprintf("* %s is back", c.whoStyled(e.Peer.Name, e.Peer.ID))
		if e.Away {
			plain = fmt.Sprintf("* %s is away", c.whoStyled(e.Peer.Name, e.Peer.ID))
			if e.Text != "" {
				plain += ": " + e.Text
			}
		} else {
			c.mu.Lock()
			delete(c.awayTold, e.Peer.ID)
			c.mu.Unlock()
		}
		c.out.emit(AwayEvent{Peer: e.Peer.Name, ID: e.Peer.ID, Away: e.Away, Text: e.Text}, plain, false)
	case peer.Warning:
		c.warn(e.Text)
	case peer.Notice:
		c.notice(e.Text)
	case peer.Problem:
		c.Error(e.Err)
	}
}

// lateAfter is how late a chat line must arrive to show when it was
// written.
const lateAfter = time.Minute

func (c *Console) showChat(e peer.Chat) {
	me := c.node.Name()
	// A stranger's line never looks like a verified friend's, nor an
	// impostor's like the real one's.
	from := c.st.name(e.From.Name, e.From.ID)
	switch e.From.Trust {
	case identity.Conflict:
		if peer.SameName(e.From.Name, me) {
			from = c.st.warn(fmt.Sprintf("%s?? id %s, NOT you", e.From.Name, peer.ShortID(e.From.ID)))
		} else {
			from = c.st.warn(fmt.Sprintf("%s?? id %s, NOT the known %s", e.From.Name, peer.ShortID(e.From.ID), e.From.Name))
		}
	case identity.Verified:
		from += " ✓"
	case identity.FirstSeen:
		from = fmt.Sprintf("%s (new, %s)", from, peer.ShortID(e.From.ID))
	}
	marks := ""
	if e.Direct {
		marks += "(direct) "
		c.mu.Lock()
		c.lastDirect = e.From.ID
		c.mu.Unlock()
	}
	if e.UDP {
		marks += "(udp) "
	}
	text, mentioned := c.st.mentions(e.Text, me)
	plain := fmt.Sprintf("<%s> %s%s", from, marks, text)
	if e.Action {
		plain = fmt.Sprintf("* %s %s%s", from, marks, text)
	}
	if e.At.Sub(e.Sent) > lateAfter {
		plain += fmt.Sprintf(" (written %s)", writtenAt(e.Sent, e.At))
	}
	if c.cfg.Bell && (e.Direct || mentioned) {
		plain += bell()
	}
	c.out.emit(ChatEvent{From: e.From.Name, ID: e.From.ID, Text: e.Text, Direct: e.Direct, Trust: e.From.Trust.String(),
		MsgID: e.MsgID, Action: e.Action, UDP: e.UDP, SentAt: e.Sent.Format(time.RFC3339Nano)}, plain, false)
	if e.Shown != nil {
		e.Shown(e.MsgID) // written out: the node may acknowledge it
	}
	c.noteBacklog(e)
}

// writtenAt says when a late line was written: the time, and the day too
// when that was another.
func writtenAt(sent, at time.Time) string {
	sent = sent.In(at.Location())
	if y, m, d := sent.Date(); y == at.Year() && m == at.Month() && d == at.Day() {
		return sent.Format("15:04:05")
	}
	return sent.Format("Mon 2 Jan 15:04:05")
}

// execute runs one typed line. It returns false when the line was /quit.
func (c *Console) execute(ctx context.Context, line string) bool {
	line = strings.TrimRight(line, "\r\n")
	if strings.TrimSpace(line) == "" {
		return true
	}
	if !strings.HasPrefix(line, "/") || strings.HasPrefix(line, "//") {
		// "//" sends a line that starts with a slash, as IRC does.
		text := strings.TrimPrefix(line, "/")
		sent, err := c.node.Say(text)
		if err != nil {
			c.Error(err)
		}
		c.sentOwn(ctx, sent, text, ownOpts{})
		return true
	}
	name, rest, _ := strings.Cut(line[1:], " ")
	cmd, ok := lookupCommand(name)
	if !ok {
		c.Error(fmt.Errorf("unknown command /%s: /help lists the commands", name))
		return true
	}
	if cmd.name == "quit" {
		return !c.confirmQuit()
	}
	args := strings.Fields(rest)
	if err := cmd.run(c, ctx, args, rest); err != nil {
		if errors.Is(err, errUsage) {
			err = fmt.Errorf("usage: %s", cmd.usage)
		}
		c.Error(err)
	}
	return true
}

// background runs f as a job the console waits for when quitting, and
// that Ctrl-C (on an empty line) stops: f's ctx then ends.
func (c *Console) background(ctx context.Context, f func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(ctx)
	c.mu.Lock()
	id := c.nextJob
	c.nextJob++
	c.stops[id] = cancel
	c.mu.Unlock()
	c.jobs.Add(1)
	go func() {
		defer c.jobs.Done()
		defer func() {
			c.mu.Lock()
			delete(c.stops, id)
			c.mu.Unlock()
			cancel()
		}()
		f(ctx)
	}()
}

// stopJobs stops every running job and returns how many there were.
func (c *Console) stopJobs() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, stop := range c.stops {
		stop()
	}
	return len(c.stops)
}

// ownOpts describe one's own line.
type ownOpts struct {
	direct, action, udp bool
	to                  string // the recipient of a direct line
}

// showStored reports, to scripts, that a message is on disk and on its
// way: its id and who it is for.
func (c *Console) showStored(s peer.Stored) {
	to := []string{}
	for _, p := range s.To {
		to = append(to, p.ID)
	}
	c.out.emit(SentEvent{MsgID: s.MsgID, Text: s.Text, Direct: s.Direct, To: to, Action: s.Action}, "", false)
}

// sentOwn shows a line of one's own on screen with its delivery mark; it
// is tracked until every recipient has acknowledged it (delivered events
// say when: all). Scripts learn of it from the sent event (Stored), or at
// once for a UDP line, which is not stored.
func (c *Console) sentOwn(ctx context.Context, s peer.Sent, text string, o ownOpts) {
	if s.MsgID == 0 && !o.udp {
		return // not sent
	}
	if c.cfg.JSON && o.udp {
		to := []string{}
		for _, p := range s.To {
			to = append(to, p.ID)
		}
		c.out.emit(SentEvent{Text: text, Direct: true, To: to, Action: o.action, UDP: true}, "", false)
	}
	me := c.st.self(c.node.Name())
	marks := ""
	if o.direct {
		marks = fmt.Sprintf("(direct to %s) ", o.to)
	}
	if o.udp {
		marks += "(udp) "
	}
	plain := fmt.Sprintf("<%s> %s%s", me, marks, text)
	if o.action {
		plain = fmt.Sprintf("* %s %s%s", me, marks, text)
	}
	// Only what is shown later is kept: a line may wait long for a
	// peer that does not acknowledge (maxOwnLines of them).
	l := &ownLine{msgID: s.MsgID, at: time.Now(), text: clip(text, lateClip), plain: plain, waiting: map[string]string{}}
	if c.cfg.JSON {
		l.plain = "" // scripts have sent and delivered events
	}
	if o.udp {
		// Fire and forget: there is nothing to wait for.
		if !c.cfg.JSON {
			c.out.emitAt(l.at, nil, plain, false)
		}
		return
	}
	for _, p := range s.To {
		l.waiting[p.ID] = p.Name
	}
	select {
	case c.own <- l:
	case <-ctx.Done():
	}
}

// tellAway shows, once per away text, that the peer a direct message went
// to is away.
func (c *Console) tellAway(id string) {
	p, err := c.node.Resolve(id)
	if err != nil || !p.UserAway {
		return
	}
	c.mu.Lock()
	told, ok := c.awayTold[id]
	c.awayTold[id] = p.AwayText
	c.mu.Unlock()
	if ok && told == p.AwayText {
		return
	}
	text := fmt.Sprintf("%s is away", p.Name)
	if p.AwayText != "" {
		text += ": " + p.AwayText
	}
	c.notice(text)
}
