package names

import (
	"errors"
	"strings"
	"testing"
)

func TestEnforce(t *testing.T) {
	tests := []struct {
		in, want string // want "" means refused
	}{
		{"alice", "alice"},
		{"Alice", "Alice"},
		{"ａｌｉｃｅ", "alice"}, // width folded by NFKC
		{"bob2", "bob2"},
		{"Bob", "Bob"},
		{"R2", "R2"},
		{"IBM", "IBM"},
		{"k7qxm2pa", "k7qxm2pa"},
		{"alice@h1", "alice@h1"},
		{"zoë", "zoë"},
		{"日本語", "日本語"},
		{"💙", "💙"},
		{"ﬁsh", "fish"},
		{`quo"te\back`, `quo"te\back`},
		{"a-b_c.d", "a-b_c.d"},
		// whitespace of every kind
		{"a b", ""}, {" alice", ""}, {"alice ", ""}, {"a\u00a0b", ""}, {"a\u3000b", ""}, {"a\tb", ""},
		{"a\u2028b", ""}, {"a\u1680b", ""},
		// invisible, bidi and control characters
		{"ali\u202ece", ""}, {"a\u200bb", ""}, {"a\u200db", ""}, {"\u2066bob\u2069", ""}, {"a\u00adb", ""},
		{"\u3164bob", ""}, {"a\u2800b", ""}, {"a\x1b[2J", ""}, {"a\u009bb", ""}, {"a\nb", ""}, {"a\x7f", ""},
		{"bob\ufe0f", ""},
		// lanchat's own rules
		{"", ""}, {"#general", ""}, {"/nick", ""}, {"＃general", ""},
		{strings.Repeat("x", MaxLen), strings.Repeat("x", MaxLen)}, {strings.Repeat("x", MaxLen+1), ""},
		{strings.Repeat("é", 33), ""},
		{"\xff", ""},
		{"00000\ufdfa0000000000000000000000", ""}, // NFKC expands it to words; x/text v0.40.0 panicked
		{"a\ufdfa", ""},
		// id look-alikes
		{"K7QX", ""}, {"K7QXM2PA", ""}, {"K7QX-M2PA", ""}, {"BOB2", ""}, {"ABCD", ""}, {"ＡＢＣＤ", ""},
		{"ΑΒΓΔ", ""}, {"1234", ""}, {"----", ""},
	}
	for _, tt := range tests {
		got, err := Enforce(tt.in)
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("Enforce(%q) = %q, want refused", tt.in, got)
		case tt.want == "" && !errors.Is(err, ErrInvalid):
			t.Errorf("Enforce(%q): error %v does not wrap ErrInvalid", tt.in, err)
		case tt.want != "" && (err != nil || got != tt.want):
			t.Errorf("Enforce(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
		// Check accepts exactly the enforced forms.
		if err := Check(tt.in); (err == nil) != (tt.want != "" && tt.want == tt.in) {
			t.Errorf("Check(%q) = %v", tt.in, err)
		}
	}
}

func TestKeyFoldsCaseAndWidth(t *testing.T) {
	same := [][]string{
		{"alice", "Alice", "ALICe", "ａｌｉｃｅ", "Ａlice"},
		{"zoë", "Zoë", "zoe\u0308"},
		{"bob2", "Bob2", "ｂｏｂ２"},
	}
	for _, group := range same {
		for _, n := range group {
			if !Equal(group[0], n) {
				k0, _ := Key(group[0])
				k, err := Key(n)
				t.Errorf("Equal(%q, %q) = false (keys %q, %q, %v)", group[0], n, k0, k, err)
			}
		}
	}
	for _, pair := range [][2]string{{"alice", "alice2"}, {"bob", "b0b"}, {"alice", "a\u202elice"}} {
		if Equal(pair[0], pair[1]) {
			t.Errorf("Equal(%q, %q) = true", pair[0], pair[1])
		}
	}
	if _, err := Key("a b"); err == nil {
		t.Error("Key of an invalid name succeeded")
	}
}

func FuzzEnforce(f *testing.F) {
	for _, s := range []string{"alice", "ａｌｉｃｅ", "a b", "\u202e", "K7QX", "#x", "zoë", "00000\ufdfa0000000000000000000000", "\ufdfa\ufdfa"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := Enforce(s)
		if err != nil {
			return
		}
		if len(e) == 0 || len(e) > MaxLen {
			t.Fatalf("Enforce(%q) = %q: length %d", s, e, len(e))
		}
		if err := Check(e); err != nil {
			t.Fatalf("enforced %q of %q fails Check: %v", e, s, err)
		}
		k, err := Key(e)
		if err != nil {
			t.Fatalf("Key(%q): %v", e, err)
		}
		if k2, err := Key(s); err != nil || k2 != k {
			t.Fatalf("Key(%q) = %q, %v; Key of its enforced form %q = %q", s, k2, err, e, k)
		}
	})
}
