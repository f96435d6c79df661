package main

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

// Bugs 6 and 7 of issue 17: a stray argument is refused with the usage,
// and the usage names lanchat bench.
func TestParseFlags(t *testing.T) {
	tests := []struct {
		args []string
		err  error
		want []string // in what is written
	}{
		{[]string{"--name", "alice", "--wait-peers", "2", "--wait-timeout", "5s", "--no-bell"}, nil, nil},
		{[]string{"alice"}, errArgs, []string{`unexpected argument "alice" (to be called alice: --name alice)`, "Usage: lanchat"}},
		{[]string{"--name", "bob", "x", "y"}, errArgs, []string{`unexpected argument "x y"`}},
		{[]string{"--wait-peers", "-1"}, errArgs, []string{"--wait-peers -1"}},
		{[]string{"--help"}, flag.ErrHelp, []string{"lanchat bench [flags]", "-wait-peers N", "-no-bell"}},
	}
	for _, tt := range tests {
		var out strings.Builder
		o, err := parseFlags(tt.args, &out)
		if !errors.Is(err, tt.err) {
			t.Errorf("%q: err %v, want %v", tt.args, err, tt.err)
		}
		for _, w := range tt.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%q: output lacks %q:\n%s", tt.args, w, out.String())
			}
		}
		if tt.err == nil && (o.name != "alice" || o.waitPeers != 2 || o.waitTimeout != 5*time.Second || !o.noBell) {
			t.Errorf("%q: %+v", tt.args, o)
		}
	}
}

// TestYieldFlag: transfers yield to chat unless told not to.
func TestYieldFlag(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want bool
	}{
		{nil, true},
		{[]string{"--yield-to-chat=false"}, false},
		{[]string{"--yield-to-chat"}, true},
	} {
		o, err := parseFlags(tt.args, io.Discard)
		if err != nil || o.yield != tt.want {
			t.Errorf("%q: yield %v, %v; want %v", tt.args, o.yield, err, tt.want)
		}
	}
}
