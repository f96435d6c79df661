package invite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"
)

// Bounds on the peers file.
const (
	// MaxFileSize bounds the peers file; a larger one is an error.
	MaxFileSize = 1 << 20
	// MaxEntries bounds the entries used; the lines past it are errors.
	MaxEntries = 1024
	// WatchEvery is how often Watch looks at the file.
	WatchEvery = 3 * time.Second
)

// Entry is a line of the peers file.
type Entry struct {
	Target
	Line int
}

// ParseFile reads the peers file data, named name in errors: one
// [ID@]HOST:PORT or invite line per line, blank lines and # comments
// skipped (a # anywhere starts a comment). Every bad line gives an error
// naming the file and the line; the good ones are returned all the same.
func ParseFile(data []byte, name string) ([]Entry, []error) {
	var out []Entry
	var errs []error
	for i, line := range bytes.Split(data, []byte("\n")) {
		num := i + 1
		if len(line) > MaxLine {
			errs = append(errs, fmt.Errorf("peers file %s line %d: %d bytes, limit %d", name, num, len(line), MaxLine))
			continue
		}
		text, _, _ := strings.Cut(string(line), "#")
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		if len(out) >= MaxEntries {
			errs = append(errs, fmt.Errorf("peers file %s line %d: more than %d entries; the rest are skipped", name, num, MaxEntries))
			break
		}
		t, err := Parse(text)
		if err != nil {
			errs = append(errs, fmt.Errorf("peers file %s line %d: %w", name, num, err))
			continue
		}
		out = append(out, Entry{Target: t, Line: num})
	}
	return out, errs
}

// ReadFile reads and parses the peers file at path. A missing file is an
// empty one.
func ReadFile(path string) ([]Entry, []error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, []error{fmt.Errorf("peers file: %w", err)}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, []error{fmt.Errorf("peers file %s: %w", path, err)}
	}
	if len(data) > MaxFileSize {
		return nil, []error{fmt.Errorf("peers file %s: larger than %d bytes", path, MaxFileSize)}
	}
	return ParseFile(data, path)
}

// stamp is what tells a changed file: its size, modification time and
// identity (a file replaced by rename is another file).
type stamp struct {
	exists bool
	size   int64
	mod    time.Time
	sys    string
}

func stampOf(path string) stamp {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{}
	}
	return stamp{exists: true, size: fi.Size(), mod: fi.ModTime(), sys: fileID(fi)}
}

// Watch reads the peers file at path and calls apply with what it holds,
// then again each time it changes (looked at every every; 0 means
// WatchEvery), until ctx ends. A file that goes away is applied as empty.
// apply runs on Watch's goroutine.
func Watch(ctx context.Context, path string, every time.Duration, apply func([]Entry, []error)) {
	if every <= 0 {
		every = WatchEvery
	}
	last := stampOf(path)
	apply(ReadFile(path))
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if s := stampOf(path); s != last {
			last = s
			apply(ReadFile(path))
		}
	}
}
