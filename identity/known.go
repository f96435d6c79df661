package identity

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Trust is what the known-peers file says of a name and id seen together.
type Trust int

const (
	// Trusted: the name was recorded with this id before.
	Trusted Trust = iota
	// FirstSeen: first time this name is seen; it has now been recorded.
	FirstSeen
	// Conflict: the name was recorded with another id.
	Conflict
)

func (t Trust) String() string {
	switch t {
	case Trusted:
		return "trusted"
	case FirstSeen:
		return "new"
	case Conflict:
		return "CONFLICT"
	}
	return "unknown"
}

// Known is the known-peers file: one "NAME ID [added RFC3339]" line per
// pin, comments with #. It is safe for concurrent use.
type Known struct {
	path string

	mu sync.Mutex // protects pins
	// pins maps a name to the id recorded for it.
	pins map[string]pin
	// unterminated is set when the file's last line has no newline (it
	// was edited by hand): an append must end that line first.
	unterminated bool
}

type pin struct {
	id    string
	added string
}

// LoadKnown reads the known-peers file at path ("" keeps it in memory
// only). A missing file is empty; a damaged one is an error naming the
// line, so the user can fix or remove it.
func LoadKnown(path string) (*Known, error) {
	k := &Known{path: path, pins: map[string]pin{}}
	if path == "" {
		return k, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return k, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read known peers: %w", err)
	}
	k.unterminated = len(data) > 0 && data[len(data)-1] != '\n'
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 64<<10)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		f := strings.Fields(text)
		if len(f) < 2 || len(f) > 3 {
			return nil, fmt.Errorf("known peers file %s line %d: want NAME ID [DATE], got %q: fix or remove the line", path, line, text)
		}
		if !validID(f[1]) {
			return nil, fmt.Errorf("known peers file %s line %d: %q is not a node id: fix or remove the line", path, line, f[1])
		}
		if prev, dup := k.pins[f[0]]; dup {
			if prev.id == f[1] {
				// Two processes sharing the file both appended it.
				continue
			}
			return nil, fmt.Errorf("known peers file %s line %d: name %q appears twice with different ids: remove one", path, line, f[0])
		}
		p := pin{id: f[1]}
		if len(f) == 3 {
			p.added = f[2]
		}
		k.pins[f[0]] = p
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("known peers file %s line %d: longer than 64 KiB: fix or remove the line", path, line+1)
		}
		return nil, fmt.Errorf("known peers file %s: %w", path, err)
	}
	return k, nil
}

func validID(s string) bool {
	if len(s) != 52 {
		return false
	}
	_, err := idEncoding.DecodeString(s)
	return err == nil
}

// Check looks a name and id up, recording them when the name is new.
func (k *Known) Check(name, id string) (Trust, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	p, ok := k.pins[name]
	switch {
	case ok && p.id == id:
		return Trusted, nil
	case ok:
		return Conflict, nil
	}
	p = pin{id: id, added: time.Now().UTC().Format(time.RFC3339)}
	k.pins[name] = p
	return FirstSeen, k.appendLocked(name, p)
}

// PinnedID is the id recorded for name, if any.
func (k *Known) PinnedID(name string) (string, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	p, ok := k.pins[name]
	return p.id, ok
}

// Trust records id for name, replacing what was there.
func (k *Known) Trust(name, id string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.pins[name] = pin{id: id, added: time.Now().UTC().Format(time.RFC3339)}
	return k.saveLocked()
}

// Forget removes the entries whose name is s or whose id starts with s,
// and returns the names removed.
func (k *Known) Forget(s string) ([]string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var gone []string
	norm := NormalizeID(s)
	for name, p := range k.pins {
		if name == s || (len(norm) >= 4 && strings.HasPrefix(p.id, norm)) {
			delete(k.pins, name)
			gone = append(gone, name)
		}
	}
	slices.Sort(gone)
	if len(gone) == 0 {
		return nil, nil
	}
	return gone, k.saveLocked()
}

// header opens a known-peers file written by lanchat.
const header = "# lanchat known peers: NAME ID [FIRST-SEEN]. A name seen with another id is a conflict.\n"

// appendLocked adds one pin at the end of the file: a node meets its
// peers one at a time, often dozens at once, and rewriting the whole file
// for each cost, in a 32-node mesh, a third as much as the TLS handshakes.
func (k *Known) appendLocked(name string, p pin) error {
	if k.path == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(k.path), 0o700); err != nil {
		return fmt.Errorf("save known peers: %w", err)
	}
	f, err := os.OpenFile(k.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("save known peers: %w", err)
	}
	var b []byte
	if st, err := f.Stat(); err == nil && st.Size() == 0 {
		b = append(b, header...)
	} else if k.unterminated {
		b = append(b, '\n')
	}
	k.unterminated = false
	b = fmt.Appendf(b, "%s %s %s\n", name, p.id, p.added)
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("save known peers: %w", err)
	}
	return nil
}

// saveLocked writes the file atomically (temporary file and rename).
func (k *Known) saveLocked() error {
	if k.path == "" {
		return nil
	}
	names := make([]string, 0, len(k.pins))
	for n := range k.pins {
		names = append(names, n)
	}
	slices.Sort(names)
	var b bytes.Buffer
	b.WriteString(header)
	for _, n := range names {
		p := k.pins[n]
		fmt.Fprintf(&b, "%s %s %s\n", n, p.id, p.added)
	}
	if err := os.MkdirAll(filepath.Dir(k.path), 0o700); err != nil {
		return fmt.Errorf("save known peers: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(k.path), ".known_peers-*")
	if err != nil {
		return fmt.Errorf("save known peers: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b.Bytes()); err != nil {
		tmp.Close()
		return fmt.Errorf("save known peers: %w", err)
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("save known peers: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save known peers: %w", err)
	}
	if err := os.Rename(tmp.Name(), k.path); err != nil {
		return fmt.Errorf("save known peers: %w", err)
	}
	k.unterminated = false
	return nil
}

// NamesOf lists the names pinned to id, sorted.
func (k *Known) NamesOf(id string) []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var names []string
	for name, p := range k.pins {
		if p.id == id {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}
