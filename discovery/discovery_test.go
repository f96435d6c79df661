package discovery

import (
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grandcat/zeroconf"

	"lanchat/transport"
)

func TestVersionMatchesProtocol(t *testing.T) {
	if Version != strconv.Itoa(transport.ProtocolVersion) {
		t.Fatalf("TXT version %q, protocol %d", Version, transport.ProtocolVersion)
	}
}

func TestParse(t *testing.T) {
	s := &Service{
		cfg:     Config{ID: "SELF"},
		ifaces:  []net.Interface{{Name: "eth0"}},
		log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		skipped: map[string]bool{},
	}
	entry := func(port int, txt ...string) *zeroconf.ServiceEntry {
		e := zeroconf.NewServiceEntry("inst", ServiceType, Domain)
		e.Port = port
		e.Text = txt
		e.AddrIPv4 = []net.IP{net.ParseIP("10.0.0.2")}
		e.AddrIPv6 = []net.IP{net.ParseIP("fd00::2"), net.ParseIP("fe80::2")}
		return e
	}
	tests := []struct {
		name  string
		e     *zeroconf.ServiceEntry
		ok    bool
		addrs []string
	}{
		{"good", entry(4000, "v="+Version, "id=PEER", "name=bob", "udp=4001"), true,
			[]string{"10.0.0.2:4000", "[fd00::2]:4000", "[fe80::2%eth0]:4000"}},
		{"self", entry(4000, "v="+Version, "id=SELF"), false, nil},
		{"no id", entry(4000, "v="+Version), false, nil},
		{"other version", entry(4000, "v=1", "id=PEER"), false, nil},
		{"no version", entry(4000, "id=PEER"), false, nil},
		{"bad port", entry(0, "v="+Version, "id=PEER"), false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := s.parse(tt.e)
			if ok != tt.ok {
				t.Fatalf("ok = %v", ok)
			}
			if ok && (got.ID != "PEER" || got.Name != "bob" || got.UDPPort != 4001 || len(got.Addrs) != len(tt.addrs)) {
				t.Fatalf("got %+v", got)
			}
			for i, a := range tt.addrs {
				if got.Addrs[i] != a {
					t.Fatalf("addr %d = %s, want %s", i, got.Addrs[i], a)
				}
			}
		})
	}
}

// FuzzParse: TXT records come from anyone on the network; no record may
// crash parsing, and an accepted entry always has an id and addresses.
func FuzzParse(f *testing.F) {
	f.Add("v="+Version+"\nid=PEER\nname=bob\nudp=4001", 4000)
	f.Add("v="+Version+"\nid=\nudp=-1", 0)
	f.Add("=\n==\nv\nid=SELF", 70000)
	f.Fuzz(func(t *testing.T, txt string, port int) {
		s := &Service{
			cfg:     Config{ID: "SELF"},
			log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
			skipped: map[string]bool{},
		}
		e := zeroconf.NewServiceEntry("inst", ServiceType, Domain)
		e.Port = port
		e.Text = strings.Split(txt, "\n")
		e.AddrIPv4 = []net.IP{net.ParseIP("10.0.0.2")}
		ent, ok := s.parse(e)
		if ok && (ent.ID == "" || ent.ID == "SELF" || len(ent.Addrs) == 0) {
			t.Fatalf("accepted %+v", ent)
		}
	})
}

// TestGaps: the quiet between browses doubles up to MaxGap and is spread
// within ±25%.
func TestGaps(t *testing.T) {
	want := []time.Duration{FirstGap, 2 * FirstGap, 4 * FirstGap}
	gap := FirstGap
	for i, w := range want {
		if gap != w {
			t.Fatalf("gap %d = %v, want %v", i, gap, w)
		}
		gap = nextGap(gap)
	}
	for range 20 {
		gap = nextGap(gap)
	}
	if gap != MaxGap {
		t.Fatalf("gap after many browses = %v, want MaxGap %v", gap, MaxGap)
	}
	for range 1000 {
		if j := jitter(FirstGap); j < FirstGap*3/4 || j >= FirstGap*5/4 {
			t.Fatalf("jitter(%v) = %v, outside ±25%%", FirstGap, j)
		}
	}
}
