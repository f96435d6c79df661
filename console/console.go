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
	Tell(peerArg, text string) (peer.Sent, error)
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
	// In is read for commands; Out gets every event.
	In  io.Reader
	Out io.Writer
	// Terminal selects the readline prompt; otherwise lines are read
	// plainly and no escape codes are written.
	Terminal bool
	JSON     bool
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
	// Notices are shown after the ready line (a store moved aside).
	Notices []string
	// Invite makes the line /invite prints; nil disables /invite.
	Invite func() (string, error)
	// TCPPort and UDPPort are shown in the ready event.
	TCPPort, UDPPort int
	Version          string
}

// Console runs the user interface of one node.
type Console struct {
	cfg  Config
	node Node
	out  *Printer
	// jobs tracks commands that run in the background (/time, /echo,
	// /connect), so that quitting waits for their output.
	jobs sync.WaitGroup
	// prompt is updated by /nick when on a terminal.
	setPrompt func(string)
	// quitWarned is set once /quit has warned about undelivered messages;
	// the next /quit leaves anyway.
	quitWarned bool
	// prog is the progress display of running transfers.
	prog progress
}

// New makes a console.
func New(cfg Config) *Console {
	return &Console{cfg: cfg, node: cfg.Node, out: NewPrinter(cfg.Out, cfg.JSON), setPrompt: func(string) {}}
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
		c.out.emit("warning", []field{{"text", text}}, "!!! "+text, false)
	}
	pumpDone := make(chan struct{})
	go func() {
		defer close(pumpDone)
		c.pump(ctx)
	}()
	var err error
	if c.cfg.Terminal {
		err = c.runTerminal(ctx)
	} else {
		err = c.runLines(ctx)
	}
	c.waitJobs()
	if !c.cfg.Terminal {
		c.waitDelivery(ctx)
	}
	cancel()
	<-pumpDone
	return err
}

// waitDelivery waits, within quitWait, for every message to be delivered,
// and reports those that were not.
func (c *Console) waitDelivery(ctx context.Context) {
	deadline := time.Now().Add(quitWait)
	for c.node.PendingCount() > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	if n := c.node.PendingCount(); n > 0 {
		c.out.Error(fmt.Errorf("leaving with %d messages not delivered (%s)", n, c.pendingSummary()))
	}
}

func (c *Console) pendingSummary() string {
	var parts []string
	for _, p := range c.node.Pending() {
		parts = append(parts, fmt.Sprintf("%s: %d", p.Peer.Name, len(p.Messages)))
	}
	return strings.Join(parts, ", ")
}

// confirmQuit reports whether the user may leave now: on a terminal, the
// first /quit with undelivered messages only warns.
func (c *Console) confirmQuit() bool {
	if !c.cfg.Terminal || c.quitWarned {
		return true
	}
	n := c.node.PendingCount()
	if n == 0 {
		return true
	}
	c.quitWarned = true
	c.out.emit("warning", []field{{"text", "undelivered messages"}},
		fmt.Sprintf("!!! %d messages are not delivered yet (%s); they are lost if you leave. /quit again (or Ctrl-D) to leave anyway.", n, c.pendingSummary()), false)
	return false
}

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
	case <-t.C:
		c.out.Error(fmt.Errorf("quitting without waiting longer for commands still running after %v", quitWait))
	}
}

func (c *Console) ready() {
	id := c.node.ID()
	c.out.emit("ready", []field{
		{"name", c.node.Name()}, {"id", id}, {"tcp_port", c.cfg.TCPPort}, {"udp_port", c.cfg.UDPPort}, {"version", c.cfg.Version},
	}, fmt.Sprintf("lanchat %s: you are %s (id %s), on TCP port %d and UDP port %d. /help lists the commands.",
		c.cfg.Version, c.node.Name(), id, c.cfg.TCPPort, c.cfg.UDPPort), false)
}

// pump prints the node's events until ctx ends, then prints what is
// already queued.
func (c *Console) pump(ctx context.Context) {
	var tev <-chan transfer.Event
	if c.cfg.Transfers != nil {
		tev = c.cfg.Transfers.Events()
	}
	for {
		select {
		case ev := <-c.node.Events():
			c.show(ev)
		case ev := <-tev:
			c.showTransfer(ev)
		case <-ctx.Done():
			for {
				select {
				case ev := <-c.node.Events():
					c.show(ev)
				case ev := <-tev:
					c.showTransfer(ev)
				default:
					return
				}
			}
		}
	}
}

func who(i peer.Info) string { return fmt.Sprintf("%s (%s)", i.Name, peer.ShortID(i.ID)) }

func (c *Console) show(ev peer.Event) {
	switch e := ev.(type) {
	case peer.PeerUp:
		verb := "joined"
		if e.Back {
			verb = "is back,"
		}
		c.out.emit("peer_up", []field{{"peer", e.Peer.Name}, {"id", e.Peer.ID}, {"addr", e.Peer.Addr}, {"via", e.Peer.Via.String()},
			{"trust", e.Peer.Trust.String()}, {"fingerprint", e.Peer.Fingerprint}, {"back", e.Back}},
			fmt.Sprintf("* %s %s from %s via %s (%s)", who(e.Peer), verb, e.Peer.Addr, e.Peer.Via, e.Peer.Trust), false)
	case peer.PeerDown:
		plain := fmt.Sprintf("* %s left: %s", who(e.Peer), e.Reason)
		if e.Reconnecting {
			plain = fmt.Sprintf("* %s is away: %s; reconnecting (messages to it wait)", who(e.Peer), e.Reason)
		}
		if e.Undelivered > 0 {
			plain += fmt.Sprintf("; %d messages to it were not delivered", e.Undelivered)
		}
		c.out.emit("peer_down", []field{{"peer", e.Peer.Name}, {"id", e.Peer.ID}, {"reason", e.Reason},
			{"reconnecting", e.Reconnecting}, {"undelivered", e.Undelivered}}, plain, false)
	case peer.PeerState:
		plain := fmt.Sprintf("* %s is unreachable (silent for %v)", who(e.Peer), e.Silence.Round(100*time.Millisecond))
		if e.State == peer.Up {
			plain = fmt.Sprintf("* %s is reachable again", who(e.Peer))
		}
		c.out.emit("peer_state", []field{{"peer", e.Peer.Name}, {"id", e.Peer.ID}, {"state", e.State.String()},
			{"silence_ms", ms(e.Silence)}}, plain, false)
	case peer.Stored:
		c.showStored(e)
	case peer.Delivered:
		// One line per message and peer would drown a terminal: only
		// scripts get them.
		if c.cfg.JSON {
			c.out.emit("delivered", []field{{"peer", e.Peer.Name}, {"id", e.Peer.ID}, {"msg_id", e.MsgID}}, "", false)
		}
	case peer.Chat:
		mark := ""
		if e.Direct {
			mark = "(direct) "
		}
		// A stranger's line never looks like a verified friend's.
		from := e.From.Name
		switch e.From.Trust {
		case identity.Conflict:
			from = fmt.Sprintf("%s?? id %s, NOT the known %s", e.From.Name, peer.ShortID(e.From.ID), e.From.Name)
		case identity.Verified:
			from += " ✓"
		case identity.FirstSeen:
			from = fmt.Sprintf("%s (new, %s)", e.From.Name, peer.ShortID(e.From.ID))
		}
		c.out.emit("chat", []field{{"from", e.From.Name}, {"id", e.From.ID}, {"text", e.Text}, {"direct", e.Direct},
			{"trust", e.From.Trust.String()}, {"msg_id", e.MsgID}},
			fmt.Sprintf("<%s> %s%s", from, mark, e.Text), false)
	case peer.Nick:
		c.out.emit("nick", []field{{"id", e.ID}, {"old", e.Old}, {"new", e.New}},
			fmt.Sprintf("* %s (%s) is now known as %s", e.Old, peer.ShortID(e.ID), e.New), false)
	case peer.Warning:
		c.out.emit("warning", []field{{"text", e.Text}}, "!!! "+e.Text, false)
	case peer.Notice:
		c.out.emit("notice", []field{{"text", e.Text}}, "* "+e.Text, false)
	case peer.Problem:
		c.out.Error(e.Err)
	}
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
		if _, err := c.node.Say(text); err != nil {
			c.out.Error(err)
		}
		return true
	}
	name, rest, _ := strings.Cut(line[1:], " ")
	cmd, ok := lookupCommand(name)
	if !ok {
		c.out.Error(fmt.Errorf("unknown command /%s: /help lists the commands", name))
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
		c.out.Error(err)
	}
	return true
}

// background runs f as a job the console waits for when quitting.
func (c *Console) background(ctx context.Context, f func(ctx context.Context)) {
	c.jobs.Add(1)
	go func() {
		defer c.jobs.Done()
		f(ctx)
	}()
}

// showStored reports, to scripts, that a message is on disk and on its
// way: its id and who it is for.
func (c *Console) showStored(s peer.Stored) {
	if !c.cfg.JSON {
		return
	}
	to := []string{}
	for _, p := range s.To {
		to = append(to, p.ID)
	}
	c.out.emit("sent", []field{{"msg_id", s.MsgID}, {"text", s.Text}, {"direct", s.Direct}, {"to", to}}, "", false)
}
