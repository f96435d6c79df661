package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/chzyer/readline"
	"golang.org/x/term"
)

// pasteGap: lines that follow each other closer than this were pasted,
// not typed. A variable for tests.
var pasteGap = 30 * time.Millisecond

// maxPasteShown bounds the lines a paste question lists.
const maxPasteShown = 5

// termLine is one result of readline.
type termLine struct {
	line string
	err  error
}

// lineSource runs readline on a goroutine of its own, one line per
// request, so that the console can wait for the next line with a bound
// (to tell a paste from typing). It owns that goroutine: close stops it.
type lineSource struct {
	rl    *readline.Instance
	stdin io.Closer // what readline reads
	req   chan struct{}
	res   chan termLine
	stop  chan struct{}
	done  chan struct{}
	asked bool
}

func newLineSource(rl *readline.Instance, stdin io.Closer) *lineSource {
	s := &lineSource{rl: rl, stdin: stdin, req: make(chan struct{}, 1), res: make(chan termLine), stop: make(chan struct{}), done: make(chan struct{})}
	go s.loop()
	return s
}

func (s *lineSource) loop() {
	defer close(s.done)
	for {
		select {
		case <-s.req:
		case <-s.stop:
			return
		}
		line, err := s.rl.Readline()
		select {
		case s.res <- termLine{line, err}:
		case <-s.stop:
			return
		}
	}
}

// next returns the next line, waiting at most wait when it is above 0;
// ok is false when that passed, or ctx ended, first.
func (s *lineSource) next(ctx context.Context, wait time.Duration) (l termLine, ok bool) {
	if !s.asked {
		s.req <- struct{}{}
		s.asked = true
	}
	var timeout <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case l = <-s.res:
		s.asked = false
		return l, true
	case <-timeout:
	case <-ctx.Done():
	}
	return termLine{}, false
}

// close stops the goroutine: readline is closed, which ends a Readline
// under way. Its input is closed first: readline's own reader may be in
// the middle of a read, which readline's Close would wait for.
func (s *lineSource) close() {
	close(s.stop)
	s.stdin.Close()
	s.rl.Close()
	<-s.done
}

// terminalFuncs points readline at the console's terminal (In and Out)
// rather than the process's stdin and stdout, and keeps the terminal in
// raw mode for as long as the prompt is up: Ctrl-C is then always a key
// (never SIGINT), wherever the console is between two lines. restore
// puts the terminal back.
func (c *Console) terminalFuncs(cfg *readline.Config) (restore func(), err error) {
	in, ok := c.cfg.In.(*os.File)
	if !ok {
		return nil, errors.New("the terminal is not a file")
	}
	fd := int(in.Fd())
	state, err := readline.MakeRaw(fd)
	if err != nil {
		return nil, fmt.Errorf("set the terminal to raw mode: %w", err)
	}
	outFd := fd
	if out, ok := c.cfg.Out.(*os.File); ok {
		outFd = int(out.Fd())
	}
	cfg.FuncIsTerminal = func() bool { return true }
	cfg.FuncMakeRaw = func() error { return nil }
	cfg.FuncExitRaw = func() error { return nil }
	cfg.FuncGetWidth = func() int {
		if w, _, err := term.GetSize(outFd); err == nil && w > 0 {
			return w
		}
		return 80
	}
	if in != os.Stdin {
		cfg.FuncOnWidthChanged = func(func()) {} // SIGWINCH is the process's terminal's
	}
	return func() { readline.Restore(fd, state) }, nil
}

// runTerminal runs the readline prompt.
func (c *Console) runTerminal(ctx context.Context) error {
	if c.cfg.HistoryFile != "" {
		if err := os.MkdirAll(filepath.Dir(c.cfg.HistoryFile), 0o700); err != nil {
			c.Error(fmt.Errorf("history not kept: %w", err))
			c.cfg.HistoryFile = ""
		}
	}
	stdin := newKeyFilter(readline.NewCancelableStdin(c.cfg.In))
	cfg := &readline.Config{
		Prompt:            c.node.Name() + "> ",
		HistoryFile:       c.cfg.HistoryFile,
		HistoryLimit:      1000,
		AutoComplete:      completer{c},
		InterruptPrompt:   "^C",
		HistorySearchFold: true,
		// The line typed is erased once entered: one's own lines are
		// printed like the others, with a time and a delivery mark.
		UniqueEditLine: true,
		Stdin:          stdin,
		Stdout:         c.cfg.Out,
		Stderr:         c.cfg.Out,
	}
	restore, err := c.terminalFuncs(cfg)
	if err != nil {
		return err
	}
	defer restore()
	rl, err := readline.NewEx(cfg)
	if err != nil {
		return fmt.Errorf("start the prompt: %w", err)
	}
	src := newLineSource(rl, stdin)
	defer src.close()
	// From here every line goes through readline, which redraws the
	// prompt and the partial input after it.
	c.out.SetWriter(rl.Stdout())
	defer c.out.SetWriter(c.cfg.Out)
	if c.cfg.Log != nil {
		old := c.cfg.Log.set(c.out)
		defer c.cfg.Log.set(old)
	}
	c.setPrompt = func(name string) { rl.SetPrompt(name + "> ") }

	var held *termLine   // a result read while collecting a paste
	var confirm []string // a paste waiting for the user's yes
	for {
		var r termLine
		if held != nil {
			r, held = *held, nil
		} else {
			var ok bool
			if r, ok = src.next(ctx, 0); !ok {
				return nil // ctx ended
			}
		}
		switch {
		case errors.Is(r.err, readline.ErrInterrupt):
			switch {
			case confirm != nil:
				c.notice(fmt.Sprintf("paste of %d lines dropped: nothing sent", len(confirm)))
				confirm = nil
			case r.line == "":
				c.interrupt()
			}
			continue
		case errors.Is(r.err, io.EOF):
			if ctx.Err() != nil {
				return nil
			}
			if c.confirmQuit() {
				return nil // Ctrl-D
			}
			continue
		case r.err != nil:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read input: %w", r.err)
		}
		if confirm != nil {
			lines := confirm
			confirm = nil
			if answer := strings.ToLower(strings.TrimSpace(r.line)); answer != "y" && answer != "yes" {
				c.notice(fmt.Sprintf("paste of %d lines dropped: nothing sent", len(lines)))
				continue
			}
			if !c.executeAll(ctx, lines) {
				return nil
			}
			continue
		}
		// Lines that come faster than anyone types were pasted.
		batch := []string{r.line}
		for {
			next, ok := src.next(ctx, pasteGap)
			if !ok {
				break
			}
			if next.err != nil {
				held = &next
				break
			}
			batch = append(batch, next.line)
		}
		if cmds := pastedCommands(batch); len(batch) > 1 && len(cmds) > 0 {
			confirm = batch
			c.askPaste(batch, cmds)
			continue
		}
		if !c.executeAll(ctx, batch) {
			return nil
		}
	}
}

// executeAll runs lines in order; it returns false after /quit.
func (c *Console) executeAll(ctx context.Context, lines []string) bool {
	for _, line := range lines {
		if len(line) > maxLine {
			c.Error(errLineTooLong)
			continue
		}
		if !c.execute(ctx, line) {
			return false
		}
	}
	return true
}

// pastedCommands lists the lines of a paste that are commands.
func pastedCommands(lines []string) []string {
	var cmds []string
	for _, l := range lines {
		if strings.HasPrefix(l, "/") && !strings.HasPrefix(l, "//") {
			cmds = append(cmds, l)
		}
	}
	return cmds
}

// askPaste asks before running a paste that holds commands: a /quit or a
// /nick pasted by mistake along with some text would otherwise run.
func (c *Console) askPaste(lines, cmds []string) {
	var b strings.Builder
	fmt.Fprintf(&b, "you pasted %d lines, %d of them commands. Run them all? Type y to do so; anything else drops them.", len(lines), len(cmds))
	for i, l := range lines {
		if i == maxPasteShown {
			fmt.Fprintf(&b, "\n    ... and %d more", len(lines)-maxPasteShown)
			break
		}
		fmt.Fprintf(&b, "\n    %s", clip(l, 72))
	}
	c.warn(b.String())
}

// interrupt is Ctrl-C on an empty line: it stops the running /echo and
// /time, which print their summary, as ping does.
func (c *Console) interrupt() {
	if c.stopJobs() == 0 {
		c.notice("nothing to stop (Ctrl-D or /quit leaves)")
	}
}
