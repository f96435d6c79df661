package invite

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const id = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567ABCDEFGHIJKLMNOPQRST"

func TestParse(t *testing.T) {
	grouped := strings.ToLower(id[:4] + "-" + id[4:8] + "-" + id[8:])
	tests := []struct {
		in    string
		id    string
		addrs []string
		err   bool
	}{
		{"10.0.0.2:4000", "", []string{"10.0.0.2:4000"}, false},
		{"  host.lan:4000 ", "", []string{"host.lan:4000"}, false},
		{"[fd00::2]:4000", "", []string{"[fd00::2]:4000"}, false},
		{"[fe80::2%eth0]:4000", "", []string{"[fe80::2%eth0]:4000"}, false},
		{id + "@10.0.0.2:4000", id, []string{"10.0.0.2:4000"}, false},
		{grouped + "@10.0.0.2:4000", id, []string{"10.0.0.2:4000"}, false},
		{"lanchat://" + id + "@10.0.0.2:4000,[fd00::2]:4000", id, []string{"10.0.0.2:4000", "[fd00::2]:4000"}, false},
		{"LANCHAT://" + id + "@10.0.0.2:4000", id, []string{"10.0.0.2:4000"}, false},
		{"lanchat://10.0.0.2:4000", "", nil, true},                  // an invite names the node
		{"10.0.0.2:4000,10.0.0.3:4000", "", nil, true},              // several: invite lines only
		{"ABC@10.0.0.2:4000", "", nil, true},                        // short id
		{strings.Repeat("1", 52) + "@10.0.0.2:4000", "", nil, true}, // not base32
		{"10.0.0.2", "", nil, true},
		{"10.0.0.2:0", "", nil, true},
		{"10.0.0.2:65536", "", nil, true},
		{"10.0.0.2:http", "", nil, true},
		{":4000", "", nil, true},
		{"a b:4000", "", nil, true},
		{"lanchat://" + id + "@", "", nil, true},
		{"lanchat://" + id + "@10.0.0.2:4000,", "", nil, true},
		{"lanchat://" + id + "@" + strings.Repeat("10.0.0.2:1,", MaxAddrs) + "10.0.0.2:1", "", nil, true},
		{strings.Repeat("x", MaxLine+1), "", nil, true},
		{"", "", nil, true},
	}
	for _, tt := range tests {
		t.Run(clip(tt.in), func(t *testing.T) {
			got, err := Parse(tt.in)
			if tt.err {
				if !errors.Is(err, ErrBadTarget) {
					t.Fatalf("err = %v, want ErrBadTarget", err)
				}
				return
			}
			if err != nil || got.ID != tt.id || !slices.Equal(got.Addrs, tt.addrs) {
				t.Fatalf("got %+v, %v; want %s %v", got, err, tt.id, tt.addrs)
			}
		})
	}
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40]
	}
	return s
}

func TestFormat(t *testing.T) {
	addrs := []netip.Addr{netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("fd00::2")}
	line := Format(id, addrs, 4000)
	if want := "lanchat://" + id + "@10.0.0.2:4000,[fd00::2]:4000"; line != want {
		t.Fatalf("Format = %q, want %q", line, want)
	}
	if !IsInvite(line) {
		t.Fatal("IsInvite(Format(...)) = false")
	}
	got, err := Parse(line)
	if err != nil || got.ID != id || len(got.Addrs) != 2 {
		t.Fatalf("Parse(Format(...)) = %+v, %v", got, err)
	}
}

func TestParseFile(t *testing.T) {
	data := strings.Join([]string{
		"# my peers",
		"10.0.0.2:4000",
		"",
		"   " + id + "@10.0.0.3:4000   # the server",
		"not an address",
		"lanchat://" + id + "@10.0.0.4:4000,10.0.0.5:4000",
		"10.0.0.6:99999",
		"\t",
	}, "\n")
	entries, errs := ParseFile([]byte(data), "/home/u/peers")
	var lines []int
	for _, e := range entries {
		lines = append(lines, e.Line)
	}
	if !slices.Equal(lines, []int{2, 4, 6}) || entries[1].ID != id || len(entries[2].Addrs) != 2 {
		t.Fatalf("entries %+v", entries)
	}
	if len(errs) != 2 {
		t.Fatalf("errors %v, want 2", errs)
	}
	for i, want := range []string{"peers file /home/u/peers line 5:", "peers file /home/u/peers line 7:"} {
		if !strings.HasPrefix(errs[i].Error(), want) || !errors.Is(errs[i], ErrBadTarget) {
			t.Errorf("error %q, want it to start with %q", errs[i], want)
		}
	}
	// Bounds: too many entries.
	many := strings.Repeat("10.0.0.2:4000\n", MaxEntries+5)
	entries, errs = ParseFile([]byte(many), "f")
	if len(entries) != MaxEntries || len(errs) != 1 {
		t.Fatalf("%d entries, %d errors", len(entries), len(errs))
	}
}

func FuzzParseFile(f *testing.F) {
	f.Add([]byte("# c\n10.0.0.2:4000\nlanchat://" + id + "@[fd00::1]:1,h:2\n"))
	f.Add([]byte("@@@:\n,,,\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, _ := ParseFile(data, "f")
		for _, e := range entries {
			if len(e.Addrs) == 0 || len(e.Addrs) > MaxAddrs || (e.ID != "" && !validID(e.ID)) {
				t.Fatalf("bad entry %+v", e)
			}
		}
	})
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	if e, errs := ReadFile(filepath.Join(dir, "missing")); e != nil || errs != nil {
		t.Fatalf("missing file: %v %v", e, errs)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, MaxFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errs := ReadFile(big); len(errs) != 1 {
		t.Fatalf("oversized file: %v", errs)
	}
}

func TestWatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "peers")
	var mu sync.Mutex
	var got [][]Entry
	changed := make(chan struct{}, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Watch(ctx, path, 10*time.Millisecond, func(e []Entry, _ []error) {
			mu.Lock()
			got = append(got, e)
			mu.Unlock()
			changed <- struct{}{}
		})
	}()
	defer func() { cancel(); <-done }()
	wait := func(n int) []Entry {
		t.Helper()
		select {
		case <-changed:
		case <-time.After(5 * time.Second):
			t.Fatalf("no change %d seen", n)
		}
		mu.Lock()
		defer mu.Unlock()
		return got[len(got)-1]
	}
	if e := wait(0); len(e) != 0 {
		t.Fatalf("missing file gave %v", e)
	}
	if err := os.WriteFile(path, []byte("10.0.0.2:4000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if e := wait(1); len(e) != 1 {
		t.Fatalf("after writing: %v", e)
	}
	// Replaced by rename, as editors do.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte("10.0.0.3:4000\n10.0.0.4:4000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	if e := wait(2); len(e) != 2 {
		t.Fatalf("after replacing: %v", e)
	}
	os.Remove(path)
	if e := wait(3); len(e) != 0 {
		t.Fatalf("after removing: %v", e)
	}
}
