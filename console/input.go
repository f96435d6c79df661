package console

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"

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
				c.Error(r.err)
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
