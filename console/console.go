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
)

// Node is what the console drives.
type Node interface {
	ID() string
	Name() string
	Say(text string) (int, error)
	Tell(peerArg, text string) (peer.Info, error)
	Time(ctx context.Context, peerArg, via string) (peer.TimeResult, error)
	TimeAll(ctx context.Context, via string, each func(peer.TimeResult, error)) error
	Echo(ctx context.Context, peerArg, via string, payload []byte) (peer.EchoResult, error)
	Resolve(peerArg string) (peer.Info, error)
	Peers() []peer.Info
	PeerNames() []string
	Stats() peer.Stats
	SetName(name string) error
	Connect(ctx context.Context, addr, via, expectID string) (peer.Info, error)
	Events() <-chan peer.Event
	Whoami() peer.Whoami
	Trust(idPrefix string) (peer.Info, error)
	Forget(nameOrID string) ([]string, error)
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
	// OnRename is called after /nick has told the peers, to update the
	// mDNS record.
	OnRename func(name string) error
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
}

// New makes a console.
func New(cfg Config) *Console {
	return &Console{cfg: cfg, node: cfg.Node, out: NewPrinter(cfg.Out, cfg.JSON), setPrompt: func(string) {}}
}

// Printer is where all output goes; main's logger may share it.
func (c *Console) Printer() *Printer { return c.out }

// quitWait bounds how long quitting waits for background commands.
const quitWait = 10 * time.Second

// Run shows events and executes commands until /quit, end of input or ctx
// ends. It returns after the background commands have finished (within a
// bound) and the event pump has stopped.
func (c *Console) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.ready()
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
	cancel()
	<-pumpDone
	return err
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
	for {
		select {
		case ev := <-c.node.Events():
			c.show(ev)
		case <-ctx.Done():
			for {
				select {
				case ev := <-c.node.Events():
					c.show(ev)
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
		c.out.emit("peer_up", []field{{"peer", e.Peer.Name}, {"id", e.Peer.ID}, {"addr", e.Peer.Addr}, {"via", e.Peer.Via},
			{"trust", e.Peer.Trust.String()}, {"fingerprint", e.Peer.Fingerprint}},
			fmt.Sprintf("* %s joined from %s via %s (%s)", who(e.Peer), e.Peer.Addr, e.Peer.Via, e.Peer.Trust), false)
	case peer.PeerDown:
		c.out.emit("peer_down", []field{{"peer", e.Peer.Name}, {"id", e.Peer.ID}, {"reason", e.Reason}},
			fmt.Sprintf("* %s left: %s", who(e.Peer), e.Reason), false)
	case peer.Chat:
		mark := ""
		if e.Direct {
			mark = "(direct) "
		}
		from := e.From.Name
		if e.From.Trust == identity.Conflict {
			// Never let an impostor's line look like the real one's.
			from = fmt.Sprintf("%s?? id %s, NOT the known %s", e.From.Name, peer.ShortID(e.From.ID), e.From.Name)
		}
		c.out.emit("chat", []field{{"from", e.From.Name}, {"id", e.From.ID}, {"text", e.Text}, {"direct", e.Direct}, {"trust", e.From.Trust.String()}},
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
		return false
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
