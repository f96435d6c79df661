package identity

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a settable clock for the options.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func newID(t *testing.T) string {
	t.Helper()
	id, err := New()
	if err != nil {
		t.Fatal(err)
	}
	return id.ID
}

func open(t *testing.T, path string, opt KnownOptions) (*Known, []Warning) {
	t.Helper()
	k, w, err := OpenKnown(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	return k, w
}

// Names are compared by their names.Key: case and width do not make a
// new name.
func TestKnownComparesNamesByKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), KnownPeersFile)
	k, _ := open(t, path, KnownOptions{})
	a, b := newID(t), newID(t)
	steps := []struct {
		name, id string
		want     Trust
	}{
		{"alice", a, FirstSeen}, {"Alice", a, Trusted}, {"ａｌｉｃｅ", a, Trusted},
		{"ALICe", b, Conflict}, {"Ａlice", b, Conflict}, {"alice2", b, FirstSeen},
	}
	for _, s := range steps {
		if got, err := k.Check(s.name, s.id); err != nil || got != s.want {
			t.Errorf("Check(%q, %s) = %v, %v; want %v", s.name, Short(s.id), got, err, s.want)
		}
	}
	if id, ok := k.PinnedID("ALICe"); !ok || id != a {
		t.Errorf("PinnedID(ALICe) = %s, %v", id, ok)
	}
}

// Whatever a peer calls itself (within the name rules), it round-trips
// through the file, and the file reloads without a warning.
func TestKnownHostileNamesRoundTrip(t *testing.T) {
	hostile := []string{`q"uote`, `back\slash`, `a"b\"c`, `x\n`, `\x1b[2J`, "zoë", "日本語", "💙", "pin", "addr",
		"#", "a#b", `""`, "trusted", "a\u00e9\u0301"}
	path := filepath.Join(t.TempDir(), KnownPeersFile)
	k, _ := open(t, path, KnownOptions{MaxNamesPerID: 100})
	ids := map[string]string{}
	for _, n := range hostile {
		id := newID(t)
		got, err := k.Check(n, id)
		if errors.Is(err, ErrNotPinned) {
			t.Logf("%q is not a valid name: %v", n, err)
			continue
		}
		if err != nil || got != FirstSeen {
			t.Fatalf("Check(%q) = %v, %v", n, got, err)
		}
		ids[n] = id
	}
	if len(ids) < 12 {
		t.Fatalf("only %d of the names were valid", len(ids))
	}
	k2, warns := open(t, path, KnownOptions{})
	if len(warns) > 0 {
		data, _ := os.ReadFile(path)
		t.Fatalf("warnings on reload: %v\nfile:\n%s", warns, data)
	}
	for n, id := range ids {
		if got, _ := k2.Check(n, id); got != Trusted {
			t.Errorf("after reload, %q is %v", n, got)
		}
	}
	// A rewrite (by Trust) keeps them too.
	if err := k2.Trust("somebody", newID(t)); err != nil {
		t.Fatal(err)
	}
	k3, warns := open(t, path, KnownOptions{})
	if len(warns) > 0 {
		t.Fatalf("warnings after a rewrite: %v", warns)
	}
	for n, id := range ids {
		if got, _ := k3.Check(n, id); got != Trusted {
			t.Errorf("after a rewrite, %q is %v", n, got)
		}
	}
}

// Bad lines are skipped with a warning naming the file and line; the good
// ones load, and the bad ones survive the next rewrite.
func TestKnownBadLinesAreWarnings(t *testing.T) {
	a, b := newID(t), newID(t)
	tests := []struct {
		name    string
		content string
		line    int
	}{
		{"old: not an id", "bob not-an-id\n", 3},
		{"old: too many words", "bob " + a + " date extra\n", 3},
		{"old: one word", "bob\n", 3},
		{"old: duplicate name", "bob " + a + "\nbob " + b + "\n", 4},
		{"old: id cut short", "bob " + a[:40] + "\n", 3},
		{"old: binary junk", "\x00\x01\x02 \xff\xfe\n", 3},
		{"old: name with bidi", "bo\u202eb " + b + "\n", 3},
		{"old: huge line", strings.Repeat("x", 100<<10) + "\n", 3},
		{"v2: unquoted name", header + "\npin bob " + b + " trusted 2026-01-01T00:00:00Z\n", 2},
		{"v2: unterminated quote", header + "\npin \"bob " + b + " trusted 2026-01-01T00:00:00Z\n", 2},
		{"v2: unknown level", header + "\npin \"bob\" " + b + " great 2026-01-01T00:00:00Z\n", 2},
		{"v2: bad date", header + "\npin \"bob\" " + b + " trusted yesterday\n", 2},
		{"v2: addr without a pin", header + "\naddr " + b + " 10.0.0.1:4000 2026-01-01T00:00:00Z\n", 2},
		{"v2: addr with a host name", header + "\npin \"bob\" " + b + " trusted 2026-01-01T00:00:00Z\naddr " + b + " evil:4000 2026-01-01T00:00:00Z\n", 3},
		{"v2: unknown record", header + "\nfrobnicate 1 2 3\n", 2},
		{"v2: name too long", header + "\npin \"" + strings.Repeat("x", 65) + "\" " + b + " trusted 2026-01-01T00:00:00Z\n", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), KnownPeersFile)
			content := tt.content
			if !strings.HasPrefix(content, header) {
				content = "# comment\n\n" + content
			}
			content += "carol " + a + "\n"
			if strings.HasPrefix(content, header) {
				content = strings.TrimSuffix(content, "carol "+a+"\n") + "pin \"carol\" " + a + " trusted 2026-01-01T00:00:00Z\n"
			}
			os.WriteFile(path, []byte(content), 0o600)
			k, warns, err := OpenKnown(path, KnownOptions{})
			if err != nil {
				t.Fatalf("OpenKnown: %v", err)
			}
			if len(warns) == 0 {
				t.Fatal("no warning")
			}
			w := warns[0].String()
			if warns[0].Line != tt.line || !strings.Contains(w, path) || !strings.Contains(w, fmt.Sprintf("line %d", tt.line)) {
				t.Errorf("warning %q, want line %d of %s", w, tt.line, path)
			}
			for _, bad := range []string{"remove", "delete"} {
				if strings.Contains(strings.ToLower(w), bad) {
					t.Errorf("warning suggests to %s: %q", bad, w)
				}
			}
			if got, _ := k.Check("carol", a); got != Trusted {
				t.Errorf("the good line was lost: carol is %v", got)
			}
			if tt.name == "old: duplicate name" {
				if got, _ := k.Check("bob", a); got != Trusted {
					t.Errorf("the first pin of bob lost: %v", got)
				}
			}
			// A rewrite keeps the bad line (but not a huge one).
			if err := k.Trust("dave", newID(t)); err != nil {
				t.Fatal(err)
			}
			_, warns2, _ := OpenKnown(path, KnownOptions{})
			if tt.name != "old: huge line" && len(warns2) == 0 {
				data, _ := os.ReadFile(path)
				t.Errorf("the bad line was not kept by the rewrite:\n%s", data)
			}
		})
	}
}

// An old-format file loads and is rewritten in the new format at the
// first change; the file keeps mode 0600.
func TestKnownReadsOldFormat(t *testing.T) {
	a, b := newID(t), newID(t)
	path := filepath.Join(t.TempDir(), KnownPeersFile)
	os.WriteFile(path, []byte("# lanchat known peers: NAME ID [FIRST-SEEN].\nbob "+a+" 2025-01-01T00:00:00Z\nalice "+b), 0o600)
	k, warns := open(t, path, KnownOptions{})
	if len(warns) > 0 {
		t.Fatal(warns)
	}
	for n, id := range map[string]string{"bob": a, "alice": b, "Bob": a} {
		if got, _ := k.Check(n, id); got != Trusted {
			t.Errorf("%s: %v", n, got)
		}
	}
	c := newID(t)
	if got, err := k.Check("carol", c); got != FirstSeen || err != nil {
		t.Fatal(got, err)
	}
	data, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(data), header+"\n") || !strings.Contains(string(data), `pin "bob" `+a+` trusted 2025-01-01T00:00:00Z`) {
		t.Errorf("not rewritten in the new format:\n%s", data)
	}
	k2, warns := open(t, path, KnownOptions{})
	if len(warns) > 0 || k2.Pins() != 3 {
		t.Errorf("reload: %d pins, %v", k2.Pins(), warns)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode().Perm())
	}
}

// New pins are appended, not rewritten; a hand-edited last line without
// a newline is ended first.
func TestKnownAppends(t *testing.T) {
	a, b := newID(t), newID(t)
	path := filepath.Join(t.TempDir(), KnownPeersFile)
	os.WriteFile(path, []byte(header+"\npin \"bob\" "+a+" trusted 2026-01-01T00:00:00Z"), 0o600)
	k, _ := open(t, path, KnownOptions{})
	st1, _ := os.Stat(path)
	ino1 := inode(st1)
	if _, err := k.Check("carol", b); err != nil {
		t.Fatal(err)
	}
	st2, _ := os.Stat(path)
	if inode(st2) != ino1 {
		t.Error("a new pin rewrote the file instead of appending")
	}
	k2, warns := open(t, path, KnownOptions{})
	if len(warns) > 0 || k2.Pins() != 2 {
		data, _ := os.ReadFile(path)
		t.Fatalf("%d pins, %v\n%s", k2.Pins(), warns, data)
	}
}

// A peer renaming itself claims MaxNamesPerID names at most; new pins are
// rate-limited.
func TestKnownBoundsPins(t *testing.T) {
	clk := newClock()
	path := filepath.Join(t.TempDir(), KnownPeersFile)
	k, _ := open(t, path, KnownOptions{Now: clk.Now, PinBurst: 10, PinEvery: time.Minute})
	mallory := newID(t)
	pinned := 0
	for i := range 1000 {
		got, err := k.Check(fmt.Sprintf("name%d", i), mallory)
		if got != FirstSeen {
			t.Fatalf("rename %d: %v", i, got)
		}
		if err == nil {
			pinned++
		} else if !errors.Is(err, ErrNotPinned) {
			t.Fatal(err)
		}
	}
	if pinned != 4 || len(k.NamesOf(mallory)) != 4 {
		t.Errorf("1000 renames pinned %d names (%v), want 4", pinned, k.NamesOf(mallory))
	}
	// 6 tokens are left of the burst of 10: the 7th new id waits.
	for i := range 6 {
		if _, err := k.Check(fmt.Sprintf("peer%d", i), newID(t)); err != nil {
			t.Fatalf("peer %d: %v", i, err)
		}
	}
	if _, err := k.Check("late", newID(t)); !errors.Is(err, ErrNotPinned) {
		t.Fatalf("beyond the burst: %v", err)
	}
	clk.Add(time.Minute)
	if _, err := k.Check("later", newID(t)); err != nil {
		t.Fatalf("a minute later: %v", err)
	}
	// The user's /trust is not rate-limited.
	if err := k.Trust("chosen", newID(t)); err != nil {
		t.Fatal(err)
	}
	k2, _ := open(t, path, KnownOptions{})
	if k2.Pins() != 12 {
		t.Errorf("%d pins in the file, want 12", k2.Pins())
	}
	k3, _ := open(t, "", KnownOptions{MaxPins: 3})
	for i := range 5 {
		k3.Check(fmt.Sprintf("p%d", i), newID(t))
	}
	if k3.Pins() != 3 {
		t.Errorf("MaxPins 3: %d pins", k3.Pins())
	}
}

func TestKnownVerifiedLevel(t *testing.T) {
	path := filepath.Join(t.TempDir(), KnownPeersFile)
	k, _ := open(t, path, KnownOptions{})
	a, b := newID(t), newID(t)
	k.Check("bob", a)
	if err := k.Verify("Bob", a); err != nil {
		t.Fatal(err)
	}
	if got, _ := k.Check("bob", a); got != Verified {
		t.Fatalf("after Verify: %v", got)
	}
	k.Trust("bob", a) // does not lower it
	k2, _ := open(t, path, KnownOptions{})
	if got, _ := k2.Check("BOB", a); got != Verified {
		t.Fatalf("after reload: %v", got)
	}
	if got, _ := k2.Check("bob", b); got != Conflict {
		t.Fatalf("another id: %v", got)
	}
	if Verified.String() != "verified" {
		t.Fatal(Verified.String())
	}
	// Trusting another id replaces the verified pin with a trusted one.
	k2.Trust("bob", b)
	if got, _ := k2.Check("bob", b); got != Trusted {
		t.Fatalf("after /trust of another id: %v", got)
	}
}

func TestKnownForget(t *testing.T) {
	k, _ := open(t, filepath.Join(t.TempDir(), KnownPeersFile), KnownOptions{})
	a, b := newID(t), newID(t)
	k.Check("bob", a)
	k.Check("bobby", a)
	k.Check("carol", b)
	k.RecordAddr(a, netip.MustParseAddrPort("10.0.0.1:4000"))
	if names, err := k.Forget("BOB"); err != nil || len(names) != 1 || names[0] != "bob" {
		t.Fatalf("forget by name: %v %v", names, err)
	}
	if len(k.Addrs(a)) != 1 {
		t.Error("the id still has a name: its address must stay")
	}
	if names, err := k.Forget(Grouped(a)[:9]); err != nil || len(names) != 1 {
		t.Fatalf("forget by id prefix: %v %v", names, err)
	}
	if len(k.Addrs(a)) != 0 {
		t.Error("addresses of a forgotten id stay")
	}
	if names, _ := k.Forget("nobody"); names != nil {
		t.Fatal(names)
	}
}

func TestKnownRemembersAddresses(t *testing.T) {
	clk := newClock()
	path := filepath.Join(t.TempDir(), KnownPeersFile)
	opt := KnownOptions{Now: clk.Now, MaxAddrs: 3, AddrMaxAge: 48 * time.Hour, AddrRefresh: time.Hour}
	k, _ := open(t, path, opt)
	a := newID(t)
	ap := func(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
	if err := k.RecordAddr(a, ap("10.0.0.1:4000")); !errors.Is(err, ErrUnknownID) {
		t.Fatalf("address of an unknown id: %v", err)
	}
	k.Check("alice", a)
	for i, s := range []string{"10.0.0.1:4000", "[fd00::1]:4000", "10.0.0.2:4001", "[::ffff:10.0.0.3]:4002"} {
		if i > 0 {
			clk.Add(time.Minute)
		}
		if err := k.RecordAddr(a, ap(s)); err != nil {
			t.Fatal(err)
		}
	}
	for _, bad := range []string{"0.0.0.0:1", "10.0.0.1:0", "224.0.0.251:5353"} {
		if err := k.RecordAddr(a, ap(bad)); err == nil {
			t.Errorf("RecordAddr(%s) accepted", bad)
		}
	}
	want := []string{"10.0.0.3:4002", "10.0.0.2:4001", "[fd00::1]:4000"}
	check := func(k *Known, when string) {
		t.Helper()
		got := k.Addrs(a)
		var s []string
		for _, x := range got {
			s = append(s, x.AddrPort.String())
		}
		if strings.Join(s, " ") != strings.Join(want, " ") {
			t.Errorf("%s: addresses %v, want %v", when, s, want)
		}
	}
	check(k, "in memory")
	k2, warns := open(t, path, opt)
	if len(warns) > 0 {
		t.Fatal(warns)
	}
	check(k2, "after reload")
	// Reaching an old address again puts it first.
	clk.Add(2 * time.Hour)
	k2.RecordAddr(a, ap("[fd00::1]:4000"))
	want = []string{"[fd00::1]:4000", "10.0.0.3:4002", "10.0.0.2:4001"}
	check(k2, "after reaching one again")
	r := k2.Remembered()
	if len(r) != 1 || r[0].ID != a || len(r[0].Names) != 1 || r[0].Names[0] != "alice" {
		t.Errorf("Remembered = %+v", r)
	}
	// Stale ones age out.
	clk.Add(47 * time.Hour)
	want = []string{"[fd00::1]:4000"}
	check(k2, "two days later")
	clk.Add(2 * time.Hour)
	if len(k2.Addrs(a)) != 0 || len(k2.Remembered()) != 0 {
		t.Errorf("stale addresses listed: %v", k2.Addrs(a))
	}
}

// A peer that reconnects all the time does not grow the file: an address
// is written again only after AddrRefresh, and superseded lines are
// compacted away.
func TestKnownFileStaysSmall(t *testing.T) {
	clk := newClock()
	path := filepath.Join(t.TempDir(), KnownPeersFile)
	k, _ := open(t, path, KnownOptions{Now: clk.Now})
	a := newID(t)
	k.Check("alice", a)
	for range 10000 {
		clk.Add(10 * time.Minute)
		k.RecordAddr(a, netip.MustParseAddrPort("10.0.0.1:4000"))
	}
	st, _ := os.Stat(path)
	if st.Size() > 16<<10 {
		t.Errorf("file of %d bytes after 10000 reconnections", st.Size())
	}
}

// Concurrent pins from a mesh meeting its peers at once all land in the
// file, each once.
func TestKnownConcurrentPins(t *testing.T) {
	path := filepath.Join(t.TempDir(), KnownPeersFile)
	k, _ := open(t, path, KnownOptions{})
	var wg sync.WaitGroup
	ids := make([]string, 64)
	for i := range ids {
		ids[i] = newID(t)
	}
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := k.Check(fmt.Sprintf("node%d", i), id); err != nil {
				t.Error(err)
			}
			k.RecordAddr(id, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), 4000))
		}()
	}
	wg.Wait()
	k2, warns := open(t, path, KnownOptions{})
	if len(warns) > 0 || k2.Pins() != 64 {
		t.Fatalf("%d pins, %v", k2.Pins(), warns)
	}
	for _, id := range ids {
		if len(k2.Addrs(id)) != 1 {
			t.Errorf("%s: addresses %v", Short(id), k2.Addrs(id))
		}
	}
}

func FuzzOpenKnown(f *testing.F) {
	f.Add([]byte("bob AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"))
	f.Add([]byte(header + "\npin \"a\\\"b\" AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA verified 2026-01-01T00:00:00Z\naddr AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA [fd00::1]:9 2026-01-01T00:00:00Z\n"))
	f.Add([]byte("\x00\xff\n\n#\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), KnownPeersFile)
		os.WriteFile(path, data, 0o600)
		k, _, err := OpenKnown(path, KnownOptions{})
		if err != nil {
			t.Fatal(err)
		}
		n := k.Pins()
		// What loaded survives a rewrite and loads again the same.
		if err := k.Trust("fuzz", "QAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"); err != nil {
			t.Fatal(err)
		}
		k2, _, err := OpenKnown(path, KnownOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if k2.Pins() < n {
			t.Fatalf("%d pins before the rewrite, %d after", n, k2.Pins())
		}
	})
}

// AppendIDs lists what Remembered lists, in the same order (most recently
// reached first), and allocates nothing once its slice has room: the
// node's redial loop asks every half second for as long as it runs.
func TestKnownAppendIDs(t *testing.T) {
	clk := newClock()
	path := filepath.Join(t.TempDir(), KnownPeersFile)
	opt := KnownOptions{Now: clk.Now, MaxAddrs: 3, AddrMaxAge: 48 * time.Hour, AddrRefresh: time.Hour}
	k, _ := open(t, path, opt)
	ids := map[string]string{}
	for i, name := range []string{"alice", "bob", "carol", "dave"} {
		id := newID(t)
		ids[name] = id
		k.Check(name, id)
		if name == "dave" {
			continue // pinned, no address
		}
		if err := k.RecordAddr(id, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), 4000)); err != nil {
			t.Fatal(err)
		}
		clk.Add(time.Minute)
	}
	remembered := func() []string {
		var out []string
		for _, r := range k.Remembered() {
			out = append(out, r.ID)
		}
		return out
	}
	tests := []struct {
		name  string
		later time.Duration
		want  []string
	}{
		{"fresh", 0, []string{ids["carol"], ids["bob"], ids["alice"]}},
		{"bob reached again", 0, []string{ids["bob"], ids["carol"], ids["alice"]}},
		{"alice aged out", 46*time.Hour - 2*time.Minute, []string{ids["bob"], ids["carol"]}},
	}
	for _, tt := range tests {
		clk.Add(tt.later)
		if tt.name == "bob reached again" {
			clk.Add(2 * time.Hour)
			if err := k.RecordAddr(ids["bob"], netip.MustParseAddrPort("10.0.0.9:4000")); err != nil {
				t.Fatal(err)
			}
		}
		got := k.AppendIDs(nil)
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: AppendIDs = %v, want %v", tt.name, got, tt.want)
		}
		if r := remembered(); !slices.Equal(got, r) {
			t.Errorf("%s: AppendIDs = %v, Remembered lists %v", tt.name, got, r)
		}
		if got := k.AppendIDs([]string{"x"}); len(got) != len(tt.want)+1 || got[0] != "x" {
			t.Errorf("%s: AppendIDs did not append: %v", tt.name, got)
		}
	}
	buf := make([]string, 0, 8)
	if a := testing.AllocsPerRun(100, func() { buf = k.AppendIDs(buf[:0]) }); a != 0 {
		t.Errorf("AppendIDs allocated %v times a call with room in its slice", a)
	}
}
