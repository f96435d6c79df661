package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBenchSubcommand: `lanchat bench` runs lanchat-bench from beside
// lanchat, on lanchat's nodes, and exits with its status; without it,
// it says how to build it.
func TestBenchSubcommand(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skipf("needs go: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	both, alone := t.TempDir(), t.TempDir()
	build := exec.CommandContext(ctx, "go", "build", "-o", both+"/", ".", "./cmd/lanchat-bench")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(both, "lanchat"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(alone, "lanchat"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		dir    string
		args   []string
		status int
		want   string
	}{
		{both, []string{"bench", "--help"}, 0, "-lanchat binary"},
		{both, []string{"bench", "--nodes", "1"}, 2, `--nodes: "1" is not a node count`},
		{alone, []string{"bench"}, 1, "lanchat-bench is not beside lanchat or in PATH"},
	}
	for _, tt := range tests {
		cmd := exec.CommandContext(ctx, filepath.Join(tt.dir, "lanchat"), tt.args...)
		cmd.Env = append(os.Environ(), "PATH=/nonexistent")
		out, err := cmd.CombinedOutput()
		status := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			status = exit.ExitCode()
		} else if err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		if status != tt.status || !strings.Contains(string(out), tt.want) {
			t.Errorf("lanchat %v (in %s): status %d, want %d; output lacks %q:\n%s", tt.args, filepath.Base(tt.dir), status, tt.status, tt.want, out)
		}
	}
}
