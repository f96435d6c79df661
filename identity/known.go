package identity

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"lanchat/names"
)

// Trust is what the known-peers file says of a name and id seen together.
type Trust int

const (
	// Trusted: the name was recorded with this id before.
	Trusted Trust = iota
	// FirstSeen: first time this name is seen; it has now been recorded
	// (unless Check also returned an error wrapping ErrNotPinned).
	FirstSeen
	// Conflict: the name was recorded with another id.
	Conflict
	// Verified: the name is recorded with this id and the user compared
	// the verification code with the peer (Verify).
	Verified
)

func (t Trust) String() string {
	switch t {
	case Trusted:
		return "trusted"
	case FirstSeen:
		return "new"
	case Conflict:
		return "CONFLICT"
	case Verified:
		return "verified"
	}
	return "unknown"
}

// ErrNotPinned is wrapped by Check's error when a new name was not
// recorded: the name is not valid, its id holds MaxNamesPerID names
// already, the file holds MaxPins, or new pins come faster than the rate
// limit. The peer is still shown as new; nothing is lost but the pin.
var ErrNotPinned = errors.New("name not pinned")

// ErrUnknownID is returned by RecordAddr for an id without a pin:
// addresses are kept only for known peers, so that strangers cannot grow
// the file.
var ErrUnknownID = errors.New("no pin for this id")

// KnownOptions bounds the known-peers file. Zero fields take the defaults.
type KnownOptions struct {
	// MaxNamesPerID is how many names one id may hold (default 4): a
	// peer renaming itself thousands of times claims its first 4 names.
	MaxNamesPerID int
	// MaxPins bounds the pins of the whole file (default 4096).
	MaxPins int
	// PinBurst and PinEvery rate-limit new pins as a token bucket: up to
	// PinBurst at once (default 128, so a node meeting a 64-node mesh
	// pins all of it), then one per PinEvery (default 10 s, 360 an hour).
	PinBurst int
	PinEvery time.Duration
	// MaxAddrs is how many listening addresses are kept per id (default
	// 4, most recent first).
	MaxAddrs int
	// AddrMaxAge is when a remembered address is stale and no longer
	// listed (default 30 days); stale ones are dropped at the next
	// rewrite of the file.
	AddrMaxAge time.Duration
	// AddrRefresh is how old the time recorded for an address must be
	// before reaching it again is written to the file (default 1 h), so
	// that a peer that reconnects often does not grow the file.
	AddrRefresh time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (o *KnownOptions) defaults() {
	if o.MaxNamesPerID <= 0 {
		o.MaxNamesPerID = 4
	}
	if o.MaxPins <= 0 {
		o.MaxPins = 4096
	}
	if o.PinBurst <= 0 {
		o.PinBurst = 128
	}
	if o.PinEvery <= 0 {
		o.PinEvery = 10 * time.Second
	}
	if o.MaxAddrs <= 0 {
		o.MaxAddrs = 4
	}
	if o.AddrMaxAge <= 0 {
		o.AddrMaxAge = 30 * 24 * time.Hour
	}
	if o.AddrRefresh <= 0 {
		o.AddrRefresh = time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Limits of what is read from the file.
const (
	// MaxFileSize is how much of known_peers is read; the rest is
	// ignored with a warning.
	MaxFileSize = 8 << 20
	// maxLine is the longest line read; a longer one is skipped.
	maxLine = 4 << 10
	// maxKept bounds the lines kept as they are (unreadable, or of a
	// later version) when the file is rewritten.
	maxKept = 256
)

// Warning is a line of known_peers that was skipped. The node starts all
// the same: the file may have been damaged, edited by hand, or written
// by a later version.
type Warning struct {
	Path string
	Line int
	Text string
}

func (w Warning) String() string {
	return fmt.Sprintf("known peers file %s line %d: %s; the line is skipped (and kept in the file as it is)", w.Path, w.Line, w.Text)
}

// Addr is a listening address a peer was reached at, and when.
type Addr struct {
	AddrPort netip.AddrPort
	Seen     time.Time
}

// Remembered is what the file holds of one id, for dialling it again.
type Remembered struct {
	ID    string
	Names []string // the names pinned to it, sorted
	Addrs []Addr   // fresh addresses, most recent first
}

// Known is the known-peers file (format in the package documentation).
// It is safe for concurrent use. Lookups never wait for the disk: file
// writes happen outside the lock that guards the pins, one writer at a
// time, and new records are appended (several at once when they arrive
// together) rather than the file rewritten.
type Known struct {
	path string
	opt  KnownOptions

	// fileMu serialises writes to the file; it is taken before mu, and
	// mu is never held during I/O.
	fileMu sync.Mutex

	mu sync.Mutex // protects the fields below
	// pins maps a name's key (names.Key) to its pin.
	pins map[string]*pin
	// ids maps an id to its pinned names' keys and its addresses.
	ids map[string]*idState
	// pending are lines to append at the next flush.
	pending []byte
	// rewrite: the file must be rewritten whole at the next flush (it is
	// missing, in the old format, or has too many dead lines).
	rewrite bool
	// unterminated: the file's last line has no newline.
	unterminated bool
	// lines counts the records in the file, for compaction.
	lines int
	// kept are the lines skipped at load, written back on a rewrite.
	kept []string
	// tokens and tokenAt are the new-pin rate limiter.
	tokens  float64
	tokenAt time.Time
}

type pin struct {
	name  string // enforced form, as shown
	id    string
	level Trust // Trusted or Verified
	added time.Time
}

type idState struct {
	keys  []string
	addrs []Addr // most recent first
}

// header opens a known-peers file in this format.
const header = "# lanchat known_peers v2"

const headerHelp = header + `
# pin NAME ID LEVEL FIRST-SEEN: NAME (a Go-quoted string) is held by node ID;
#   LEVEL is trusted or verified. A name seen with another id is a conflict.
# addr ID HOST:PORT LAST-REACHED: where node ID listened when last reached.
`

// OpenKnown reads the known-peers file at path ("" keeps it in memory
// only). A missing file is empty. Lines that cannot be read are skipped,
// each with a Warning for the caller to show: the node never refuses to
// start because of what a peer called itself. Files in the old format
// ("NAME ID [DATE]" lines) are read, and rewritten in this format at the
// first change. Only an unreadable file is an error.
func OpenKnown(path string, opt KnownOptions) (*Known, []Warning, error) {
	opt.defaults()
	k := &Known{path: path, opt: opt, pins: map[string]*pin{}, ids: map[string]*idState{},
		tokens: float64(opt.PinBurst), tokenAt: opt.Now(), rewrite: true}
	if path == "" {
		return k, nil, nil
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return k, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read known peers: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("read known peers %s: %w", path, err)
	}
	warns := k.load(data)
	return k, warns, nil
}

// LoadKnown is OpenKnown with the default options.
//
// Deprecated: use OpenKnown, which returns the warnings about skipped
// lines that LoadKnown drops.
func LoadKnown(path string) (*Known, error) {
	k, _, err := OpenKnown(path, KnownOptions{})
	return k, err
}

// load parses the file's contents.
func (k *Known) load(data []byte) []Warning {
	var warns []Warning
	warn := func(line int, format string, a ...any) {
		if len(warns) < maxKept {
			warns = append(warns, Warning{Path: k.path, Line: line, Text: fmt.Sprintf(format, a...)})
		}
	}
	if len(data) > MaxFileSize {
		data = data[:MaxFileSize]
		warn(0, "the file is larger than %d bytes: the rest is not read", MaxFileSize)
	}
	k.unterminated = len(data) > 0 && data[len(data)-1] != '\n'
	v2 := false
	first := true
	for n := 1; len(data) > 0; n++ {
		var raw []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			raw, data = data[:i], data[i+1:]
		} else {
			raw, data = data, nil
		}
		if len(raw) > maxLine {
			warn(n, "line of %d bytes, limit %d (not kept)", len(raw), maxLine)
			continue
		}
		line := strings.TrimSpace(string(raw))
		if line == "" {
			continue
		}
		if first {
			first = false
			if line == header {
				v2 = true
				continue
			}
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		var err error
		if v2 {
			err = k.loadRecord(line)
		} else {
			err = k.loadOld(line)
		}
		if err != nil {
			warn(n, "%v", err)
			if len(k.kept) < maxKept {
				k.kept = append(k.kept, string(raw))
			}
			continue
		}
		k.lines++
	}
	// A v2 file is appended to; anything else is rewritten at the first
	// change.
	k.rewrite = !v2
	return warns
}

// loadOld reads a line of the old format: NAME ID [DATE].
func (k *Known) loadOld(line string) error {
	f := strings.Fields(line)
	if len(f) < 2 || len(f) > 3 {
		return fmt.Errorf("want NAME ID [DATE], got %q", clipQ(line))
	}
	if !ValidID(f[1]) {
		return fmt.Errorf("%q is not a node id", clipQ(f[1]))
	}
	var added time.Time
	if len(f) == 3 {
		added, _ = time.Parse(time.RFC3339, f[2])
	}
	return k.addPin(f[0], f[1], Trusted, added)
}

// loadRecord reads a line of this format.
func (k *Known) loadRecord(line string) error {
	f, err := splitFields(line)
	if err != nil {
		return err
	}
	switch {
	case len(f) == 5 && f[0] == "pin":
		name, err := strconv.Unquote(f[1])
		if err != nil || !strings.HasPrefix(f[1], `"`) {
			return fmt.Errorf("pin: the name %s is not a quoted string", clipQ(f[1]))
		}
		if !ValidID(f[2]) {
			return fmt.Errorf("pin: %q is not a node id", clipQ(f[2]))
		}
		var level Trust
		switch f[3] {
		case "trusted":
			level = Trusted
		case "verified":
			level = Verified
		default:
			return fmt.Errorf("pin: unknown level %q", clipQ(f[3]))
		}
		added, err := time.Parse(time.RFC3339, f[4])
		if err != nil {
			return fmt.Errorf("pin: bad date %q", clipQ(f[4]))
		}
		return k.addPin(name, f[2], level, added)
	case len(f) == 4 && f[0] == "addr":
		if !ValidID(f[1]) {
			return fmt.Errorf("addr: %q is not a node id", clipQ(f[1]))
		}
		ap, err := netip.ParseAddrPort(f[2])
		if err != nil || checkAddr(ap) != nil {
			return fmt.Errorf("addr: %q is not a usable ip:port", clipQ(f[2]))
		}
		seen, err := time.Parse(time.RFC3339, f[3])
		if err != nil {
			return fmt.Errorf("addr: bad date %q", clipQ(f[3]))
		}
		st := k.ids[f[1]]
		if st == nil {
			return fmt.Errorf("addr: no pin for node %s above this line", Short(f[1]))
		}
		k.noteAddr(st, ap, seen)
		return nil
	}
	return fmt.Errorf("not a pin or addr record: %q", clipQ(line))
}

// addPin adds a pin read from the file. The first pin of a name wins: a
// later line with another id is skipped, never silently trusted.
func (k *Known) addPin(name, id string, level Trust, added time.Time) error {
	shown, err := names.Enforce(name)
	if err != nil {
		return fmt.Errorf("pin: %w", err)
	}
	key, err := names.Key(shown)
	if err != nil {
		return fmt.Errorf("pin: %w", err)
	}
	if p := k.pins[key]; p != nil {
		if p.id != id {
			return fmt.Errorf("name %q is pinned above to node %s; this pin to node %s is ignored (/trust decides between them)",
				shown, Short(p.id), Short(id))
		}
		// The same pin twice (the file was appended to by two
		// writers): keep the higher level and the earlier date.
		if level == Verified {
			p.level = Verified
		}
		if !added.IsZero() && (p.added.IsZero() || added.Before(p.added)) {
			p.added = added
		}
		return nil
	}
	k.pins[key] = &pin{name: shown, id: id, level: level, added: added}
	st := k.ids[id]
	if st == nil {
		st = &idState{}
		k.ids[id] = st
	}
	st.keys = append(st.keys, key)
	return nil
}

// noteAddr puts ap first among st's addresses (kept sorted by time, most
// recent first, at most MaxAddrs) and reports whether the file must
// learn of it.
func (k *Known) noteAddr(st *idState, ap netip.AddrPort, seen time.Time) bool {
	write := true
	if i := slices.IndexFunc(st.addrs, func(a Addr) bool { return a.AddrPort == ap }); i >= 0 {
		if !seen.After(st.addrs[i].Seen) {
			return false
		}
		write = seen.Sub(st.addrs[i].Seen) >= k.opt.AddrRefresh
		st.addrs = slices.Delete(st.addrs, i, i+1)
	}
	i, _ := slices.BinarySearchFunc(st.addrs, seen, func(a Addr, t time.Time) int { return t.Compare(a.Seen) })
	st.addrs = slices.Insert(st.addrs, i, Addr{AddrPort: ap, Seen: seen})
	if len(st.addrs) > k.opt.MaxAddrs {
		st.addrs = st.addrs[:k.opt.MaxAddrs]
	}
	return write
}

// checkAddr refuses addresses no node listens at.
func checkAddr(ap netip.AddrPort) error {
	a := ap.Addr()
	if !ap.IsValid() || ap.Port() == 0 || a.IsUnspecified() || a.IsMulticast() {
		return fmt.Errorf("%v is not a listening address", ap)
	}
	return nil
}

// splitFields splits a record into fields separated by spaces; a field
// that starts with a double quote runs to its closing quote (Go syntax).
func splitFields(line string) ([]string, error) {
	var f []string
	for i := 0; i < len(line); {
		switch line[i] {
		case ' ', '\t':
			i++
			continue
		case '"':
			j := i + 1
			for ; j < len(line) && line[j] != '"'; j++ {
				if line[j] == '\\' {
					j++
				}
			}
			if j >= len(line) {
				return nil, fmt.Errorf("unterminated quoted field in %q", clipQ(line))
			}
			f = append(f, line[i:j+1])
			i = j + 1
		default:
			j := i
			for j < len(line) && line[j] != ' ' && line[j] != '\t' {
				j++
			}
			f = append(f, line[i:j])
			i = j
		}
		if len(f) > 8 {
			return nil, fmt.Errorf("too many fields in %q", clipQ(line))
		}
	}
	return f, nil
}

// clipQ shortens a value quoted in a warning (warnings are sanitised
// when printed).
func clipQ(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

func pinLine(b []byte, p *pin) []byte {
	b = append(b, "pin "...)
	b = strconv.AppendQuote(b, p.name)
	b = append(b, ' ')
	b = append(b, p.id...)
	b = append(b, ' ')
	b = append(b, p.level.String()...)
	b = append(b, ' ')
	added := p.added
	if added.IsZero() {
		added = time.Unix(0, 0)
	}
	b = added.UTC().AppendFormat(b, time.RFC3339)
	return append(b, '\n')
}

func addrLine(b []byte, id string, a Addr) []byte {
	b = append(b, "addr "...)
	b = append(b, id...)
	b = append(b, ' ')
	b = a.AddrPort.AppendTo(b)
	b = append(b, ' ')
	b = a.Seen.UTC().AppendFormat(b, time.RFC3339)
	return append(b, '\n')
}

// Check looks a name and id up, recording them when the name is new. A
// new name is not recorded (Check returns FirstSeen and an error
// wrapping ErrNotPinned) when it is invalid, when its id holds
// MaxNamesPerID names already, when the file holds MaxPins, or beyond the
// rate limit. Other errors are about writing the file.
func (k *Known) Check(name, id string) (Trust, error) {
	key, err := names.Key(name)
	if err != nil {
		return FirstSeen, fmt.Errorf("%w: %w", ErrNotPinned, err)
	}
	k.mu.Lock()
	if p := k.pins[key]; p != nil {
		k.mu.Unlock()
		if p.id == id {
			return p.level, nil
		}
		return Conflict, nil
	}
	if err := k.admitLocked(id); err != nil {
		k.mu.Unlock()
		return FirstSeen, err
	}
	shown, _ := names.Enforce(name)
	p := &pin{name: shown, id: id, level: Trusted, added: k.opt.Now().UTC().Truncate(time.Second)}
	k.putLocked(key, p)
	k.pending = pinLine(k.pending, p)
	k.mu.Unlock()
	return FirstSeen, k.flush()
}

// admitLocked applies the bounds and the rate limit to a new pin of id.
func (k *Known) admitLocked(id string) error {
	if st := k.ids[id]; st != nil && len(st.keys) >= k.opt.MaxNamesPerID {
		return fmt.Errorf("%w: node %s holds %d names already", ErrNotPinned, Short(id), len(st.keys))
	}
	if len(k.pins) >= k.opt.MaxPins {
		return fmt.Errorf("%w: the file holds %d pins, the limit", ErrNotPinned, len(k.pins))
	}
	now := k.opt.Now()
	if el := now.Sub(k.tokenAt); el > 0 {
		k.tokens = min(float64(k.opt.PinBurst), k.tokens+float64(el)/float64(k.opt.PinEvery))
	}
	k.tokenAt = now
	if k.tokens < 1 {
		return fmt.Errorf("%w: new names arrive faster than one per %v", ErrNotPinned, k.opt.PinEvery)
	}
	k.tokens--
	return nil
}

// putLocked records p under key.
func (k *Known) putLocked(key string, p *pin) {
	if old := k.pins[key]; old != nil {
		k.dropKeyLocked(key, old.id)
	}
	k.pins[key] = p
	st := k.ids[p.id]
	if st == nil {
		st = &idState{}
		k.ids[p.id] = st
	}
	st.keys = append(st.keys, key)
}

// dropKeyLocked removes key from id's names; an id left without names
// loses its addresses too.
func (k *Known) dropKeyLocked(key, id string) {
	delete(k.pins, key)
	st := k.ids[id]
	if st == nil {
		return
	}
	st.keys = slices.DeleteFunc(st.keys, func(s string) bool { return s == key })
	if len(st.keys) == 0 {
		delete(k.ids, id)
	}
}

// PinnedID is the id recorded for name (compared by names.Key), if any.
func (k *Known) PinnedID(name string) (string, bool) {
	key, err := names.Key(name)
	if err != nil {
		return "", false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if p := k.pins[key]; p != nil {
		return p.id, true
	}
	return "", false
}

// Trust records id for name, replacing what was there (the user's
// decision: no bound or rate limit applies). A pin of the same id keeps
// its level, so trusting a verified peer again does not lower it.
func (k *Known) Trust(name, id string) error {
	return k.set(name, id, Trusted)
}

// Verify records id for name as verified: the user compared the
// verification code (VerifyCode) with the peer.
func (k *Known) Verify(name, id string) error {
	return k.set(name, id, Verified)
}

func (k *Known) set(name, id string, level Trust) error {
	if !ValidID(id) {
		return fmt.Errorf("record %q: %q is not a node id", name, id)
	}
	shown, err := names.Enforce(name)
	if err != nil {
		return err
	}
	key, _ := names.Key(shown)
	k.mu.Lock()
	p := k.pins[key]
	if p != nil && p.id == id {
		if level == Verified {
			p.level = Verified
		}
		p.name = shown
	} else {
		p = &pin{name: shown, id: id, level: level, added: k.opt.Now().UTC().Truncate(time.Second)}
		k.putLocked(key, p)
	}
	k.rewrite = true
	k.mu.Unlock()
	return k.flush()
}

// Forget removes the pins whose name compares equal to s or whose id
// starts with s (4 characters at least, dashes ignored), and the
// addresses of ids left without a pin; it returns the names removed.
func (k *Known) Forget(s string) ([]string, error) {
	key, _ := names.Key(s)
	norm := NormalizeID(s)
	k.mu.Lock()
	var gone []string
	for kk, p := range k.pins {
		if (key != "" && kk == key) || (len(norm) >= 4 && strings.HasPrefix(p.id, norm)) {
			k.dropKeyLocked(kk, p.id)
			gone = append(gone, p.name)
		}
	}
	if len(gone) > 0 {
		k.rewrite = true
	}
	k.mu.Unlock()
	slices.Sort(gone)
	if len(gone) == 0 {
		return nil, nil
	}
	return gone, k.flush()
}

// RecordAddr remembers that node id was reached listening at ap, now.
// Only ids with a pin are remembered (ErrUnknownID otherwise). The file
// learns of it when the address is new or its recorded time is older
// than AddrRefresh.
func (k *Known) RecordAddr(id string, ap netip.AddrPort) error {
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	if err := checkAddr(ap); err != nil {
		return err
	}
	now := k.opt.Now().UTC().Truncate(time.Second)
	k.mu.Lock()
	st := k.ids[id]
	if st == nil {
		k.mu.Unlock()
		return fmt.Errorf("remember the address of node %s: %w", Short(id), ErrUnknownID)
	}
	if !k.noteAddr(st, ap, now) {
		k.mu.Unlock()
		return nil
	}
	k.pending = addrLine(k.pending, id, Addr{AddrPort: ap, Seen: now})
	k.mu.Unlock()
	return k.flush()
}

// Addrs lists the fresh addresses node id was reached at (seen within
// AddrMaxAge), most recent first.
func (k *Known) Addrs(id string) []Addr {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.freshLocked(k.ids[id])
}

func (k *Known) freshLocked(st *idState) []Addr {
	if st == nil {
		return nil
	}
	cutoff := k.opt.Now().Add(-k.opt.AddrMaxAge)
	var out []Addr
	for _, a := range st.addrs {
		if a.Seen.After(cutoff) {
			out = append(out, a)
		}
	}
	return out
}

// AppendIDs appends to ids every id with fresh addresses, most recently
// reached first, as Remembered orders them. Unlike Remembered it copies
// nothing else, so that a caller asking every round (the node's redial
// loop) allocates only when ids grows.
func (k *Known) AppendIDs(ids []string) []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	cutoff := k.opt.Now().Add(-k.opt.AddrMaxAge)
	start := len(ids)
	for id, st := range k.ids {
		if len(st.addrs) > 0 && st.addrs[0].Seen.After(cutoff) {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids[start:], func(a, b string) int {
		if c := k.ids[b].addrs[0].Seen.Compare(k.ids[a].addrs[0].Seen); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return ids
}

// Remembered lists every id with fresh addresses, for dialling known
// peers again: most recently reached first.
func (k *Known) Remembered() []Remembered {
	k.mu.Lock()
	var out []Remembered
	for id, st := range k.ids {
		addrs := k.freshLocked(st)
		if len(addrs) == 0 {
			continue
		}
		r := Remembered{ID: id, Addrs: addrs}
		for _, key := range st.keys {
			r.Names = append(r.Names, k.pins[key].name)
		}
		slices.Sort(r.Names)
		out = append(out, r)
	}
	k.mu.Unlock()
	slices.SortFunc(out, func(a, b Remembered) int {
		if c := b.Addrs[0].Seen.Compare(a.Addrs[0].Seen); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// Pins returns the number of pins.
func (k *Known) Pins() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.pins)
}

// NamesOf lists the names pinned to id, sorted.
func (k *Known) NamesOf(id string) []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	st := k.ids[id]
	if st == nil {
		return nil
	}
	var out []string
	for _, key := range st.keys {
		out = append(out, k.pins[key].name)
	}
	slices.Sort(out)
	return out
}

// flush writes what changed: the pending lines appended in one write, or
// the whole file rewritten when that is due. Concurrent callers queue on
// fileMu, and whoever writes takes every line pending by then, so a burst
// of new pins costs a few writes. The error goes to the caller that
// wrote; lines that failed are written by the next rewrite.
func (k *Known) flush() error {
	if k.path == "" {
		k.mu.Lock()
		k.pending = nil
		k.mu.Unlock()
		return nil
	}
	k.fileMu.Lock()
	defer k.fileMu.Unlock()
	k.mu.Lock()
	if !k.rewrite && k.lines > 2*(len(k.pins)+k.addrCountLocked())+64 {
		k.rewrite = true // compact: mostly superseded addr lines
	}
	if k.rewrite {
		data, n := k.renderLocked()
		k.pending, k.rewrite = nil, false
		k.mu.Unlock()
		err := k.writeAtomic(data)
		k.mu.Lock()
		if err != nil {
			k.rewrite = true
		} else {
			k.lines, k.unterminated = n, false
		}
		k.mu.Unlock()
		return err
	}
	batch := k.pending
	k.pending = nil
	if len(batch) == 0 {
		k.mu.Unlock()
		return nil
	}
	if k.unterminated {
		batch = append([]byte{'\n'}, batch...)
	}
	n := bytes.Count(batch, []byte{'\n'})
	k.mu.Unlock()
	err := k.appendFile(batch)
	k.mu.Lock()
	if err != nil {
		k.rewrite = true
	} else {
		k.lines += n
		k.unterminated = false
	}
	k.mu.Unlock()
	return err
}

func (k *Known) addrCountLocked() int {
	n := 0
	for _, st := range k.ids {
		n += len(st.addrs)
	}
	return n
}

// renderLocked is the whole file: pins by name, each id's addresses
// after its first pin, then the lines kept from the last load.
func (k *Known) renderLocked() ([]byte, int) {
	keys := make([]string, 0, len(k.pins))
	for key := range k.pins {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	b := []byte(headerHelp)
	n := 0
	done := map[string]bool{}
	cutoff := k.opt.Now().Add(-k.opt.AddrMaxAge)
	for _, key := range keys {
		p := k.pins[key]
		b = pinLine(b, p)
		n++
		if done[p.id] {
			continue
		}
		done[p.id] = true
		st := k.ids[p.id]
		for i := len(st.addrs) - 1; i >= 0; i-- { // oldest first, so a reader keeps the order
			if a := st.addrs[i]; a.Seen.After(cutoff) {
				b = addrLine(b, p.id, a)
				n++
			}
		}
	}
	if len(k.kept) > 0 {
		b = append(b, "# lines below could not be read; they are kept as they were\n"...)
		for _, l := range k.kept {
			b = append(b, l...)
			b = append(b, '\n')
		}
	}
	return b, n
}

func (k *Known) appendFile(b []byte) error {
	f, err := os.OpenFile(k.path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("save known peers: %w", err)
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("save known peers: %w", err)
	}
	return nil
}

// writeAtomic replaces the file (temporary file and rename), mode 0600.
func (k *Known) writeAtomic(data []byte) error {
	dir := filepath.Dir(k.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save known peers: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".known_peers-*")
	if err != nil {
		return fmt.Errorf("save known peers: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
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
	return nil
}
