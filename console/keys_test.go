package console

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
)

func TestKeyFilter(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text", "plain text"},
		{"a\x1b[1~b\x1b[4~c", "a\x01b\x05c"},
		{"\x1b[7~\x1b[8~", "\x01\x05"},
		// Left alone: readline knows these, or they are other keys.
		{"\x1b[H\x1b[F\x1bOH\x1bOF", "\x1b[H\x1b[F\x1bOH\x1bOF"},
		{"\x1b[3~\x1b[1;5C\x1b[A", "\x1b[3~\x1b[1;5C\x1b[A"},
		{"\x1b\x1b[1~", "\x1b\x01"},
		{"x\x1b[1", "x\x1b[1"}, // cut short by the end of input
		{"\x1b[14~", "\x1b[14~"},
	}
	for _, tt := range tests {
		for _, split := range []bool{false, true} {
			var r io.Reader = strings.NewReader(tt.in)
			if split {
				r = iotest.OneByteReader(r) // sequences split across reads
			}
			got, err := io.ReadAll(newKeyFilter(io.NopCloser(r)))
			if err != nil || string(got) != tt.want {
				t.Errorf("%q (one byte at a time: %v): got %q, %v; want %q", tt.in, split, got, err, tt.want)
			}
		}
	}
}

func TestCompleter(t *testing.T) {
	f := newFake("alice", testPeer("Bob"), testPeer("bobby"), testPeer("carol"))
	cp := completer{New(Config{Node: f})}
	dir := t.TempDir()
	for _, p := range []string{"alpha.txt", "archive/inner.bin", "beta.txt", ".hidden"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		line string
		want []string
	}{
		{"car", []string{"ol: "}},
		{"hi car", []string{"ol "}},
		{"CAR", []string{"ol: "}},
		{"bo", []string{"b: ", "bby: "}},
		{"/ec", []string{"ho "}},
		{"/msg ca", []string{"rol "}},
		{"/msg -", []string{"udp "}},
		{"/echo carol -", []string{"tcp ", "udp ", "n ", "size ", "i "}},
		{"/echo -n 3 ca", []string{"rol "}},
		{"/trust CAR", []string{"OL" + strings.Repeat("X", 47) + " "}},
		{"/trust carol", []string{strings.Repeat("X", 47) + " "}},
		{"/nick ca", nil},
		{"//not a command ca", []string{"rol "}},
		{"/send ca", []string{"rol "}},
		{"/send carol " + dir + "/a", []string{"lpha.txt ", "rchive/"}},
		{"/send carol " + dir + "/archive/", []string{"inner.bin "}},
	}
	for _, tt := range tests {
		got, n := cp.Do([]rune(tt.line), len([]rune(tt.line)))
		var gs []string
		for _, g := range got {
			gs = append(gs, string(g))
		}
		word := tt.line[strings.LastIndexByte(tt.line, ' ')+1:]
		if strings.Join(gs, "|") != strings.Join(sortedCopy(tt.want), "|") || n != len(word) {
			t.Errorf("%q: got %q (%d), want %q", tt.line, gs, n, tt.want)
		}
	}
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}
