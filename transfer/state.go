package transfer

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// recordVersion is the layout of a state file; a file of another version
// is ignored (with a log line), never guessed at.
const recordVersion = 1

// maxRecordSize bounds a state file read at start.
const maxRecordSize = 256 << 20

// record is one transfer's state file, <id>.json in the state directory.
// It holds what a restart needs to resume: on the sender the sources and
// what they looked like when offered, on the receiver how far the data is
// verified and durable. Files a program other than this one could have
// written are checked field by field on load.
type record struct {
	Version int        `json:"version"`
	ID      string     `json:"id"`
	Peer    string     `json:"peer"`
	Dir     string     `json:"dir"`
	State   string     `json:"state"`
	Hash    string     `json:"hash"`
	Entries []recEntry `json:"entries"`
	Created time.Time  `json:"created"`
	Started time.Time  `json:"started,omitzero"`
	Ended   time.Time  `json:"ended,omitzero"`
	Expires time.Time  `json:"expires,omitzero"`
	Reason  string     `json:"reason,omitempty"`
	Code    int        `json:"code,omitempty"`
	// Resumable: failed, partial kept (the receiver's disk was full).
	Resumable bool  `json:"resumable,omitempty"`
	Wire      int64 `json:"wire,omitempty"`
	// Hashes of the files before Next, hex ("" for folders, or where the
	// sender has not recorded it yet).
	Hashes []string `json:"hashes,omitempty"`
	// Next, Offset: on the receiver, entries before Next are verified and
	// durable, and Offset bytes of entry Next are durable in its partial
	// file and hash to Prefix. On the sender, what the receiver last
	// acknowledged.
	Next   int    `json:"next"`
	Offset int64  `json:"offset,omitempty"`
	Prefix string `json:"prefix,omitempty"`
	// Receiver only. Renamed: entries before it are in their final place;
	// those from Renamed to Next are verified partial files still to be
	// renamed. Tops maps offered top-level names to the local ones, Moved
	// the entries whose local path is not Tops' mapping (a name taken).
	Renamed int               `json:"renamed,omitempty"`
	Tops    map[string]string `json:"tops,omitempty"`
	Moved   map[int]string    `json:"moved,omitempty"`
}

type recEntry struct {
	Path string `json:"path"`
	Dir  bool   `json:"dir,omitempty"`
	Size int64  `json:"size"`
	// Sender only: the local source, and a file's modification time
	// (Unix ns) when offered.
	Source string `json:"source,omitempty"`
	MTime  int64  `json:"mtime,omitempty"`
}

func stateOf(s string) (State, bool) {
	for i, n := range stateNames {
		if i > 0 && n == s {
			return State(i), true
		}
	}
	return 0, false
}

// check validates a record read from disk.
func (r *record) check(name string, lim limits) error {
	if r.Version != recordVersion {
		return fmt.Errorf("version %d, want %d", r.Version, recordVersion)
	}
	if !validID(r.ID) || name != r.ID+".json" {
		return fmt.Errorf("id %q does not match the file name", r.ID)
	}
	if !validPeerID(r.Peer) {
		return fmt.Errorf("bad peer id %q", r.Peer)
	}
	if r.Dir != Send.String() && r.Dir != Receive.String() {
		return fmt.Errorf("bad direction %q", r.Dir)
	}
	if _, ok := stateOf(r.State); !ok {
		return fmt.Errorf("bad state %q", r.State)
	}
	if _, ok := parseHashAlg(r.Hash); !ok {
		return fmt.Errorf("bad hash %q", r.Hash)
	}
	es := r.entries()
	if _, err := checkOffer(es, lim); err != nil {
		return err
	}
	if r.Next < 0 || r.Next > len(es) {
		return fmt.Errorf("next %d out of range", r.Next)
	}
	if r.Offset < 0 || r.Offset > 0 && (r.Next == len(es) || es[r.Next].Dir || r.Offset > es[r.Next].Size) {
		return fmt.Errorf("offset %d out of range", r.Offset)
	}
	if r.Offset > 0 {
		if b, err := hex.DecodeString(r.Prefix); err != nil || len(b) != hashSize {
			return fmt.Errorf("bad prefix hash")
		}
	}
	if len(r.Hashes) > len(es) {
		return fmt.Errorf("%d hashes for %d entries", len(r.Hashes), len(es))
	}
	for _, h := range r.Hashes {
		if b, err := hex.DecodeString(h); err != nil || len(b) != 0 && len(b) != hashSize {
			return fmt.Errorf("bad file hash")
		}
	}
	if r.Renamed < 0 || r.Renamed > r.Next {
		return fmt.Errorf("renamed %d out of range", r.Renamed)
	}
	if r.Dir == Send.String() {
		for _, e := range r.Entries {
			if !filepath.IsAbs(e.Source) {
				return fmt.Errorf("source %q is not an absolute path", e.Source)
			}
		}
		return nil
	}
	for top, local := range r.Tops {
		if err := checkPath(local); err != nil || strings.Contains(local, "/") || topName(top) != top {
			return fmt.Errorf("bad local name %q for %q", local, top)
		}
	}
	for i, p := range r.Moved {
		if i < 0 || i >= len(es) || checkPath(p) != nil {
			return fmt.Errorf("bad moved entry %d", i)
		}
	}
	return nil
}

func (r *record) entries() []entry {
	es := make([]entry, len(r.Entries))
	for i, e := range r.Entries {
		es[i] = entry{Path: e.Path, Dir: e.Dir, Size: e.Size}
	}
	return es
}

// validPeerID accepts node ids as the identity package makes them
// (base32, upper case) and shorter test ids.
func validPeerID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// writeFileAtomic replaces path with data: a temporary file in the same
// directory is written and synced, renamed over path, and the directory
// synced, so a crash leaves the old content or the new, never a mix.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("save %s: %w", path, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	err = d.Sync()
	d.Close()
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

func saveRecord(dir string, r *record) error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode state of transfer %s: %w", r.ID, err)
	}
	return writeFileAtomic(filepath.Join(dir, r.ID+".json"), data)
}

func removeRecord(dir, id string) error {
	err := os.Remove(filepath.Join(dir, id+".json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// loadRecords reads every state file in dir. Files that fail their checks
// are returned as errors, one per file, and otherwise left alone.
func loadRecords(dir string, lim limits) ([]*record, []error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, []error{fmt.Errorf("read state directory: %w", err)}
	}
	var out []*record
	var errs []error
	for _, de := range des {
		name := de.Name()
		if !strings.HasSuffix(name, ".json") || strings.HasPrefix(name, ".") {
			continue
		}
		path := filepath.Join(dir, name)
		if !de.Type().IsRegular() {
			errs = append(errs, fmt.Errorf("state file %s: not a regular file", path))
			continue
		}
		r, err := readRecord(path, name, lim)
		if err != nil {
			errs = append(errs, fmt.Errorf("state file %s: %w", path, err))
			continue
		}
		out = append(out, r)
	}
	return out, errs
}

func readRecord(path, name string, lim limits) (*record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxRecordSize {
		return nil, fmt.Errorf("%d bytes, limit %d", fi.Size(), maxRecordSize)
	}
	var r record
	dec := json.NewDecoder(f)
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if err := r.check(name, lim); err != nil {
		return nil, err
	}
	return &r, nil
}
