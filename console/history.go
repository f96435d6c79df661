package console

import (
	"context"
	"errors"

	"fmt"
	"strings"
	"time"

	"lanchat/peer"
	"lanchat/store"
	"lanchat/transport"
)

// History is what /history and /search read (a *store.Store).
type History interface {
	History(peerID string, n int) ([]store.Line, error)
	Search(peerID, text string, limit int) ([]store.Line, error)
}

// historyDefault is how many lines /history shows without -n.
const historyDefault = 20

func (c *Console) cmdDrop(_ context.Context, args []string, _ string) error {
	if len(args) != 1 {
		return errUsage
	}
	p, n, err := c.node.Drop(args[0])
	if err != nil {
		return fmt.Errorf("drop: %w", err)
	}
	c.out.emit(DroppedEvent{Peer: p.Name, ID: p.ID, Messages: n},
		fmt.Sprintf("* dropped %d messages waiting for %s (%s)", n, p.Name, peer.ShortID(p.ID)), false)
	return nil
}

func (c *Console) cmdHistory(_ context.Context, args []string, _ string) error {
	if c.cfg.History == nil {
		return errors.New("history: no history is kept (--no-history)")
	}
	fs := newFlags("history")
	count := fs.Int("n", historyDefault, "lines")
	// The peer may come before or after -n.
	var target string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		target, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("history: %w", err)
	}
	if fs.NArg() > 1 || (fs.NArg() == 1 && target != "") {
		return errUsage
	}
	if fs.NArg() == 1 {
		target = fs.Arg(0)
	}
	if *count < 1 || *count > store.MaxLines {
		return fmt.Errorf("history: -n %d out of range 1-%d", *count, store.MaxLines)
	}
	id, err := c.historyPeer(target)
	if err != nil {
		return err
	}
	lines, err := c.cfg.History.History(id, *count)
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	c.showLines(false, lines, "no lines yet")
	return nil
}

func (c *Console) cmdSearch(_ context.Context, args []string, rest string) error {
	if c.cfg.History == nil {
		return errors.New("search: no history is kept (--no-history)")
	}
	text := strings.TrimSpace(rest)
	if text == "" {
		return errUsage
	}
	lines, err := c.cfg.History.Search("", text, 100)
	if err != nil {
		return fmt.Errorf("search: %w", err)
	}
	c.showLines(true, lines, fmt.Sprintf("no line contains %q", text))
	return nil
}

// historyPeer resolves a /history argument to an id ("" for all).
func (c *Console) historyPeer(arg string) (string, error) {
	if arg == "" {
		return "", nil
	}
	p, err := c.node.ResolveID(arg)
	if err != nil {
		return "", fmt.Errorf("history: %w", err)
	}
	return p.ID, nil
}

// showLines prints history lines, oldest first as given.
func (c *Console) showLines(search bool, lines []store.Line, none string) {
	var b strings.Builder
	list := []HistoryLine{}
	me := c.node.Name()
	for _, l := range lines {
		j := HistoryLine{Peer: l.PeerName, ID: l.Peer, Direct: l.Direct, Action: l.Flags&transport.ChatAction != 0, Text: l.Text, MsgID: l.MsgID,
			SentAt: l.Sent.Format(time.RFC3339Nano), At: l.At.Format(time.RFC3339Nano)}
		from, mark := l.PeerName, ""
		if l.In {
			j.Dir = "in"
		} else {
			j.Dir = "out"
			from = me
			for _, d := range l.To {
				if d.State == store.StateDelivered {
					j.Delivered = append(j.Delivered, d.Peer)
				} else {
					j.Waiting = append(j.Waiting, d.Peer)
				}
			}
			if len(j.Waiting) > 0 {
				mark = fmt.Sprintf(" [waiting for %d]", len(j.Waiting))
			}
		}
		if l.Direct {
			if l.In {
				mark += " (direct)"
			} else {
				mark += fmt.Sprintf(" (to %s)", l.PeerName)
			}
		}
		when := l.At.Format("2006-01-02 15:04:05")
		if l.In && l.At.Sub(l.Sent) > time.Minute {
			when += fmt.Sprintf(" (written %s)", l.Sent.Format("2006-01-02 15:04"))
		}
		if l.Flags&transport.ChatAction != 0 {
			fmt.Fprintf(&b, "[%s] * %s%s %s\n", when, from, mark, l.Text)
		} else {
			fmt.Fprintf(&b, "[%s] <%s>%s %s\n", when, from, mark, l.Text)
		}
		list = append(list, j)
	}
	if len(lines) == 0 {
		b.WriteString(none)
	}
	var ev Event = HistoryEvent{Lines: list}
	if search {
		ev = SearchEvent{Lines: list}
	}
	c.out.emit(ev, strings.TrimRight(b.String(), "\n"), true)
}
