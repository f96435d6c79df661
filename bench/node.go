package bench

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// The node processes the bench measures run the lanchat binary users
// run, which does not carry the bench: its code would be mapped into
// every node and counted in the memory figures.

// nodeBin is the lanchat binary the node processes run (Main sets it;
// tests set a freshly built one).
var nodeBin string

// nodeExe returns the node binary, or why there is none.
func nodeExe() (string, error) {
	if nodeBin == "" {
		return "", errors.New("no lanchat binary to run nodes of (--lanchat)")
	}
	return nodeBin, nil
}

// findNode returns the node binary: path if given, else lanchat beside
// this program, else lanchat in PATH.
func findNode(path string) (string, error) {
	if path == "" {
		if self, err := os.Executable(); err == nil {
			if p := filepath.Join(filepath.Dir(self), "lanchat"); isExecutable(p) {
				return p, nil
			}
		}
		p, err := exec.LookPath("lanchat")
		if err != nil {
			return "", fmt.Errorf("no lanchat binary beside this program or in PATH: build both with `go build -o . . ./cmd/lanchat-bench`, or name one with --lanchat")
		}
		path = p
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("--lanchat %s: %w", path, err)
	}
	if !isExecutable(abs) {
		return "", fmt.Errorf("--lanchat %s: not an executable file", path)
	}
	return abs, nil
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
