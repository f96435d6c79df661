package console

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/chzyer/readline"

	"lanchat/transport"
)

// maxLine is the longest input line accepted; longer ones are refused
// whole. It leaves room for a command around the longest message.
const maxLine = transport.MaxText + 1024

// errLineTooLong reports a refused input line.
var errLineTooLong = fmt.Errorf("input line longer than %d bytes: refused, nothing sent", maxLine)

// lineReader reads lines of at most max bytes; a longer line is consumed
// and reported as errLineTooLong, so the next line is read normally.
type lineReader struct {
	r   *bufio.Reader
	max int
}

func (l *lineReader) next() (string, error) {
	var line []byte
	tooLong := false
	for {
		chunk, isPrefix, err := l.r.ReadLine()
		if err != nil {
			if err == io.EOF && (len(line) > 0 || tooLong) {
				break
			}
			return "", err
		}
		if !tooLong {
			line = append(line, chunk...)
			if len(line) > l.max {
				tooLong, line = true, nil
			}
		}
		if !isPrefix {
			break
		}
	}
	if tooLong {
		return "", errLineTooLong
	}
	return string(line), nil
}

// runLines reads commands from a non-terminal: no prompt, no escape codes.
// End of input is /quit.
func (c *Console) runLines(ctx context.Context) error {
	type result struct {
		line string
		err  error
	}
	lines := make(chan result)
	// This reader blocks in Read and cannot be interrupted; it ends at end
	// of input, or with the process. It never blocks on lines once Run has
	// returned, because stop is closed then.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		// Longer lines are read in pieces (see lineReader).
		lr := &lineReader{r: bufio.NewReaderSize(c.cfg.In, 4<<10), max: maxLine}
		for {
			line, err := lr.next()
			select {
			case lines <- result{line, err}:
			case <-stop:
				return
			}
			if err != nil && !errors.Is(err, errLineTooLong) {
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case r := <-lines:
			switch {
			case errors.Is(r.err, errLineTooLong):
				c.out.Error(r.err)
			case errors.Is(r.err, io.EOF):
				return nil
			case r.err != nil:
				return fmt.Errorf("read input: %w", r.err)
			default:
				if !c.execute(ctx, r.line) {
					return nil
				}
			}
		}
	}
}

// runTerminal runs the readline prompt.
func (c *Console) runTerminal(ctx context.Context) error {
	peers := readline.PcItemDynamic(func(string) []string { return c.node.PeerNames() })
	transports := func(next ...readline.PrefixCompleterInterface) []readline.PrefixCompleterInterface {
		return []readline.PrefixCompleterInterface{
			readline.PcItem("-tcp", next...), readline.PcItem("-udp", next...),
		}
	}
	// Every command completes; what follows depends on its arguments.
	next := map[string][]readline.PrefixCompleterInterface{
		"msg":    {peers},
		"time":   append(transports(peers), peers),
		"echo":   append(transports(peers), peers),
		"forget": {peers},
	}
	var items []readline.PrefixCompleterInterface
	for _, cmd := range commands {
		items = append(items, readline.PcItem("/"+cmd.name, next[cmd.name]...))
	}
	completer := readline.NewPrefixCompleter(items...)
	if c.cfg.HistoryFile != "" {
		if err := os.MkdirAll(filepath.Dir(c.cfg.HistoryFile), 0o700); err != nil {
			c.out.Error(fmt.Errorf("history not kept: %w", err))
			c.cfg.HistoryFile = ""
		}
	}
	rl, err := readline.NewEx(&readline.Config{
		Prompt:            c.node.Name() + "> ",
		HistoryFile:       c.cfg.HistoryFile,
		HistoryLimit:      1000,
		AutoComplete:      completer,
		InterruptPrompt:   "^C",
		HistorySearchFold: true,
	})
	if err != nil {
		return fmt.Errorf("start the prompt: %w", err)
	}
	defer rl.Close()
	// From here every line goes through readline, which redraws the
	// prompt and the partial input after it.
	c.out.SetWriter(rl.Stdout())
	defer c.out.SetWriter(c.cfg.Out)
	if c.cfg.Log != nil {
		old := c.cfg.Log.set(c.out)
		defer c.cfg.Log.set(old)
	}
	c.setPrompt = func(name string) { rl.SetPrompt(name + "> ") }
	stop := context.AfterFunc(ctx, func() { rl.Close() })
	defer stop()
	for {
		line, err := rl.Readline()
		switch {
		case errors.Is(err, readline.ErrInterrupt):
			continue // Ctrl-C clears the line
		case errors.Is(err, io.EOF):
			if c.confirmQuit() {
				return nil // Ctrl-D
			}
			continue
		case err != nil:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read input: %w", err)
		}
		if len(line) > maxLine {
			c.out.Error(errLineTooLong)
			continue
		}
		if !c.execute(ctx, line) {
			return nil
		}
	}
}
