package console

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"lanchat/peer"
	"lanchat/transfer"
)

// Transfers is what the console drives for sending files (a
// *transfer.Manager).
type Transfers interface {
	Offer(ctx context.Context, peerID string, paths ...string) (transfer.Info, error)
	AcceptOffer(id string) (transfer.Info, error)
	Reject(id string) error
	Cancel(id string) error
	List() []transfer.Info
	LatestOffer() (transfer.Info, bool)
	Events() <-chan transfer.Event
}

// progressEvery bounds how often a plain (not terminal, not JSON)
// console prints a transfer's progress.
const progressEvery = 2 * time.Second

// progress is the state of the progress display: on a terminal, the
// prompt shows the running transfers; elsewhere a line now and then.
type progress struct {
	mu      sync.Mutex // protects following
	running map[string]transfer.Progress
	printed map[string]time.Time
}

func (c *Console) transfers() (Transfers, error) {
	if c.cfg.Transfers == nil {
		return nil, errors.New("file transfers are not available")
	}
	return c.cfg.Transfers, nil
}

func (c *Console) cmdSend(ctx context.Context, args []string, rest string) error {
	tm, err := c.transfers()
	if err != nil {
		return err
	}
	words, err := splitQuoted(rest)
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	if len(words) < 2 {
		return errUsage
	}
	p, err := c.node.Resolve(words[0])
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	var paths []string
	for _, w := range words[1:] {
		paths = append(paths, expandHome(w))
	}
	c.background(ctx, func(ctx context.Context) {
		if _, err := tm.Offer(ctx, p.ID, paths...); err != nil {
			c.Error(fmt.Errorf("send to %s: %w", p.Name, err))
		}
	})
	return nil
}

// latest picks the transfer a command is about: the one named, or the
// latest offer to this node.
func latest(tm Transfers, args []string) (string, error) {
	switch len(args) {
	case 1:
		return args[0], nil
	case 0:
		if info, ok := tm.LatestOffer(); ok {
			return info.ID, nil
		}
		return "", errors.New("no offer is waiting for an answer")
	}
	return "", errUsage
}

func (c *Console) cmdAccept(_ context.Context, args []string, _ string) error {
	tm, err := c.transfers()
	if err != nil {
		return err
	}
	id, err := latest(tm, args)
	if err != nil {
		return fmt.Errorf("accept: %w", err)
	}
	if _, err := tm.AcceptOffer(id); err != nil {
		return fmt.Errorf("accept: %w", err)
	}
	return nil
}

func (c *Console) cmdReject(_ context.Context, args []string, _ string) error {
	tm, err := c.transfers()
	if err != nil {
		return err
	}
	id, err := latest(tm, args)
	if err != nil {
		return fmt.Errorf("reject: %w", err)
	}
	if err := tm.Reject(id); err != nil {
		return fmt.Errorf("reject: %w", err)
	}
	return nil
}

func (c *Console) cmdCancel(_ context.Context, args []string, _ string) error {
	tm, err := c.transfers()
	if err != nil {
		return err
	}
	if len(args) != 1 {
		return errUsage
	}
	if err := tm.Cancel(args[0]); err != nil {
		return fmt.Errorf("cancel: %w", err)
	}
	return nil
}

func (c *Console) cmdTransfers(_ context.Context, args []string, _ string) error {
	tm, err := c.transfers()
	if err != nil {
		return err
	}
	if len(args) > 0 {
		return errUsage
	}
	list := []TransferEntry{}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tDIR\tPEER\tSTATE\tDONE\tNAMES")
	all := tm.List()
	for _, t := range all {
		name := c.peerName(t.Peer)
		list = append(list, TransferEntry{TransferID: t.ID, Peer: name, ID: t.Peer, Direction: t.Dir.String(), State: t.State.String(),
			Names: t.Names, Files: t.Files, Bytes: t.Bytes, Done: t.Done, Path: t.Path, Reason: t.Reason})
		state := t.State.String()
		if t.Reason != "" {
			state += ": " + t.Reason
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s of %s\t%s\n", t.ID, t.Dir, name, clipText(state, 40),
			size(t.Done), size(t.Bytes), clipText(strings.Join(t.Names, ", "), 30))
	}
	tw.Flush()
	plain := strings.TrimRight(b.String(), "\n")
	if len(all) == 0 {
		plain = "no transfers"
	}
	c.out.emit(TransfersEvent{Transfers: list}, plain, true)
	return nil
}

// showTransfer prints one event of the transfer engine.
func (c *Console) showTransfer(ev transfer.Event) {
	switch e := ev.(type) {
	case transfer.Offered:
		i := e.Info
		name := c.peerName(i.Peer)
		ev := TransferOfferEvent{TransferID: i.ID, Peer: name, ID: i.Peer, Direction: i.Dir.String(),
			Files: i.Files, Entries: i.Entries, Bytes: i.Bytes, Names: i.Names,
			Expires: i.Expires.Format(time.RFC3339), Auto: e.Auto}
		plain := fmt.Sprintf("* offered %s to %s (transfer %s); waiting for an answer", what(i), name, i.ID)
		if i.Dir == transfer.Receive {
			plain = fmt.Sprintf("* %s offers %s (transfer %s): /accept %s or /reject %s (the offer expires at %s)",
				name, what(i), i.ID, i.ID, i.ID, i.Expires.Format("15:04"))
			if e.Auto {
				plain = fmt.Sprintf("* %s sends %s (transfer %s): accepted, from a trusted peer", name, what(i), i.ID)
			}
		}
		c.out.emit(ev, plain, false)
	case transfer.Accepted:
		i := e.Info
		name := c.peerName(i.Peer)
		plain := fmt.Sprintf("* transfer %s accepted by %s", i.ID, name)
		if i.Dir == transfer.Receive {
			plain = fmt.Sprintf("* receiving transfer %s from %s into %s", i.ID, name, i.Path)
		}
		if e.Resumed {
			plain += fmt.Sprintf(" (resuming after %s)", size(e.Offset))
		}
		c.out.emit(TransferAcceptedEvent{TransferID: i.ID, Peer: name, ID: i.Peer, Direction: i.Dir.String(),
			Path: i.Path, Resumed: e.Resumed, Offset: e.Offset}, plain, false)
	case transfer.Progress:
		c.showProgress(e)
	case transfer.Done:
		i := e.Info
		c.endProgress(i.ID)
		name := c.peerName(i.Peer)
		files := []TransferFile{}
		var hashes []string
		for _, f := range e.Files {
			files = append(files, TransferFile{Path: f.Path, Local: f.Local, Bytes: f.Size, BLAKE3: f.Hash})
			if len(hashes) < 3 {
				hashes = append(hashes, fmt.Sprintf("%s %s", f.Hash, f.Path))
			}
		}
		verb := "sent to"
		if i.Dir == transfer.Receive {
			verb = "received from"
		}
		plain := fmt.Sprintf("* transfer %s %s %s: %d files, %s in %.1f s (%s/s), every file verified (BLAKE3)",
			i.ID, verb, name, len(e.Files), size(i.Bytes), e.Seconds, size(int64(e.Rate)))
		if i.Dir == transfer.Receive {
			plain += "; in " + i.Path
		}
		for _, h := range hashes {
			plain += "\n    " + h
		}
		if len(e.Files) > len(hashes) {
			plain += fmt.Sprintf("\n    ... and %d more (/transfers, or --json for all)", len(e.Files)-len(hashes))
		}
		c.out.emit(TransferDoneEvent{TransferID: i.ID, Peer: name, ID: i.Peer, Direction: i.Dir.String(),
			Files: files, Bytes: i.Bytes, Seconds: e.Seconds, Rate: e.Rate, Path: i.Path,
			Hash: "blake3", Resent: max(i.Wire-i.Bytes, 0)}, plain, false)
	case transfer.Failed:
		c.transferFailed(e.Info, e.Info.Reason)
	case transfer.Rejected:
		reason := "rejected here"
		if e.ByPeer {
			reason = "rejected by " + c.peerName(e.Info.Peer)
		}
		if e.Info.Reason != "" {
			reason += ": " + e.Info.Reason
		}
		c.transferFailed(e.Info, reason)
	case transfer.Expired:
		c.transferFailed(e.Info, "expired: the offer was not answered in time")
	case transfer.Cancelled:
		i := e.Info
		c.endProgress(i.ID)
		by := "here"
		if e.ByPeer {
			by = "by " + c.peerName(i.Peer)
		}
		c.out.emit(TransferCancelledEvent{TransferID: i.ID, Peer: c.peerName(i.Peer), ID: i.Peer,
			Direction: i.Dir.String(), ByPeer: e.ByPeer, Reason: i.Reason},
			fmt.Sprintf("* transfer %s cancelled %s", i.ID, by), false)
	case transfer.Interrupted:
		i := e.Info
		c.out.emit(TransferInterruptedEvent{TransferID: i.ID, Peer: c.peerName(i.Peer), ID: i.Peer,
			Direction: i.Dir.String(), Error: e.Err},
			fmt.Sprintf("* transfer %s interrupted (%s); it goes on once %s is reachable", i.ID, e.Err, c.peerName(i.Peer)), false)
	}
}

func (c *Console) transferFailed(i transfer.Info, reason string) {
	c.endProgress(i.ID)
	plain := c.st.warn(fmt.Sprintf("!!! transfer %s failed: %s", i.ID, reason))
	if i.Resumable {
		plain += fmt.Sprintf("; what arrived is kept: /accept %s resumes it once there is space", i.ID)
	}
	c.out.emit(TransferFailedEvent{TransferID: i.ID, Peer: c.peerName(i.Peer), ID: i.Peer,
		Direction: i.Dir.String(), Reason: reason, Resumable: i.Resumable}, plain, false)
}

// showProgress reports a running transfer: a JSON event (the engine
// sends at most four a second), the prompt on a terminal, a line now and
// then elsewhere.
func (c *Console) showProgress(e transfer.Progress) {
	line := fmt.Sprintf("%s %s %d%% %s/s", e.ID, arrow(e.Dir), percent(e.Bytes, e.Total), size(int64(e.Rate)))
	if e.ETA > 0 {
		line += " ETA " + e.ETA.Round(time.Second).String()
	}
	if e.Yielding {
		line += " (yielding to chat)"
	}
	switch {
	case c.cfg.JSON:
		c.out.emit(TransferProgressEvent{TransferID: e.ID, ID: e.Peer, Direction: e.Dir.String(),
			Bytes: e.Bytes, Total: e.Total, Files: e.Files, FileCount: e.FileCount,
			Rate: e.Rate, ETAS: e.ETA.Seconds(), Yielding: e.Yielding}, "", false)
	case c.cfg.Terminal:
		c.prog.mu.Lock()
		if c.prog.running == nil {
			c.prog.running = map[string]transfer.Progress{}
		}
		c.prog.running[e.ID] = e
		c.prog.mu.Unlock()
		c.drawPrompt()
	default:
		c.prog.mu.Lock()
		if c.prog.printed == nil {
			c.prog.printed = map[string]time.Time{}
		}
		due := time.Since(c.prog.printed[e.ID]) >= progressEvery
		if due {
			c.prog.printed[e.ID] = time.Now()
		}
		c.prog.mu.Unlock()
		if due {
			c.out.emit(nil, "* transfer "+line, false)
		}
	}
}

// endProgress takes a finished transfer off the progress display.
func (c *Console) endProgress(id string) {
	c.prog.mu.Lock()
	_, shown := c.prog.running[id]
	delete(c.prog.running, id)
	delete(c.prog.printed, id)
	c.prog.mu.Unlock()
	if shown {
		c.drawPrompt()
	}
}

// drawPrompt puts the running transfers before the prompt: readline
// redraws it without touching what is being typed.
func (c *Console) drawPrompt() {
	c.prog.mu.Lock()
	var parts []string
	for _, e := range c.prog.running {
		part := fmt.Sprintf("%s %s %d%%", e.ID[:min(4, len(e.ID))], arrow(e.Dir), percent(e.Bytes, e.Total))
		if e.Yielding {
			part += ", yielding"
		}
		parts = append(parts, part)
	}
	c.prog.mu.Unlock()
	prefix := ""
	if len(parts) > 0 {
		prefix = "[" + strings.Join(parts, " ") + "] "
	}
	c.setPrompt(prefix + c.node.Name())
}

func arrow(d transfer.Dir) string {
	if d == transfer.Send {
		return "↑"
	}
	return "↓"
}

func percent(done, total int64) int64 {
	if total <= 0 {
		return 100
	}
	return done * 100 / total
}

// what says what a transfer holds: "3 files (1.2 GiB): a.iso, photos".
func what(i transfer.Info) string {
	return fmt.Sprintf("%d files (%s): %s", i.Files, size(i.Bytes), clipText(strings.Join(i.Names, ", "), 80))
}

// size writes a byte count for people.
func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// peerName is the name of the node id, or its short id.
func (c *Console) peerName(id string) string {
	if p, err := c.node.ResolveID(id); err == nil && p.Name != "" {
		return p.Name
	}
	return peer.ShortID(id)
}

// splitQuoted splits a command line at spaces; "double quotes" keep
// spaces in one word.
func splitQuoted(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	in, have := false, false
	for _, r := range s {
		switch {
		case r == '"':
			in, have = !in, true
		case r == ' ' && !in:
			if have {
				words = append(words, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if in {
		return nil, errors.New("a quote is not closed")
	}
	if have {
		words = append(words, cur.String())
	}
	return words, nil
}

// expandHome replaces a leading ~ with the home directory.
func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[1:])
		}
	}
	return p
}
