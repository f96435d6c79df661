package bench

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lanchat/bench/baseline"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"1GiB": 1 << 30, "64MiB": 64 << 20, "8M": 8 << 20, "4096": 4096, "2 KiB": 2048, "1B": 1} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1MiB", "1TB", "x"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) took it", in)
		}
	}
	if o, err := parse([]string{"--skip-transfers"}, io.Discard); err != nil || o.transferSize != 0 {
		t.Errorf("--skip-transfers: %d, %v", o.transferSize, err)
	}
	if o, err := parse([]string{"--transfer-size", "64MiB"}, io.Discard); err != nil || o.transferSize != 64<<20 {
		t.Errorf("--transfer-size 64MiB: %d, %v", o.transferSize, err)
	}
	if _, err := parse([]string{"--transfer-size", "lots"}, io.Discard); err == nil {
		t.Error("--transfer-size lots was taken")
	}
}

// The bulk baselines run on loopback.
func TestBulkBaselines(t *testing.T) {
	for _, k := range []baseline.BulkKind{baseline.BulkTCP, baseline.BulkTLS, baseline.BulkTLSHashed} {
		if d, err := baseline.Bulk(baseline.Loopback, k, 3<<20+5); err != nil || d <= 0 {
			t.Fatalf("%s: %v, %v", k, d, err)
		}
	}
	src := filepath.Join(t.TempDir(), "folder")
	if _, err := writeFolder(src, 120, 1000); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if d, err := baseline.TarTCP(baseline.Loopback, src, dst); err != nil || d <= 0 {
		t.Fatalf("tar over TCP: %v, %v", d, err)
	}
	got, err := os.ReadFile(filepath.Join(dst, "folder", "d001", "f00119"))
	want, _ := os.ReadFile(filepath.Join(src, "d001", "f00119"))
	if err != nil || string(got) != string(want) {
		t.Fatalf("tar over TCP: the last file differs: %v", err)
	}
}

// The transfer rows, on a small scale, between two node processes of a
// freshly built binary in two network namespaces (root only).
func TestTransferFigures(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces)")
	}
	for _, tool := range []string{"ip", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	bin := filepath.Join(t.TempDir(), "lanchat")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "lanchat")
	build.Dir = ".." // the module root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	nodeBin = bin
	defer func() { nodeBin = "" }()
	r := &report{}
	plan := transferPlan{size: 3<<20 + 17, files: 150, fileSize: 4096, turns: 2, chatEvery: 10 * time.Millisecond}
	if err := transferFigures(r, plan, func(s string) { t.Log(s) }); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	want := []string{"vs raw TCP", "vs Go TLS", "latency p99", "memory of the sender", "memory of the receiver", "folder of 150"}
	for _, k := range want {
		seen[k] = false
	}
	for _, x := range r.rows {
		t.Logf("%s: %.4g %s (baseline %.4g)", x.Measure, x.Value, x.Unit, x.Baseline)
		// A transfer of a few MiB is over before an echo comes back.
		if (x.Value <= 0 || x.Baseline <= 0) && !strings.HasPrefix(x.Measure, "/echo") {
			t.Errorf("row %q: value %v, baseline %v", x.Measure, x.Value, x.Baseline)
		}
		for _, k := range want {
			seen[k] = seen[k] || strings.Contains(x.Measure, k)
		}
	}
	for k, ok := range seen {
		if !ok {
			t.Errorf("no row %q", k)
		}
	}
}
