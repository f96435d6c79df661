package termtext

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSanitize(t *testing.T) {
	tests := []struct {
		name, in, text, inline string
	}{
		{"plain", "hello, world", "hello, world", "hello, world"},
		{"unicode kept", "zoë 日本 💙 ä", "zoë 日本 💙 ä", "zoë 日本 💙 ä"},
		{"newline", "a\nb", "a\nb", `a\x0ab`},
		{"clear screen", "\x1b[2J\x1b[H", `\x1b[2J\x1b[H`, `\x1b[2J\x1b[H`},
		{"window title", "\x1b]0;pwned\x07", `\x1b]0;pwned\x07`, `\x1b]0;pwned\x07`},
		{"osc 52 clipboard", "\x1b]52;c;ZWNobyBwd25lZA==\x1b\\", `\x1b]52;c;ZWNobyBwd25lZA==\x1b\`, `\x1b]52;c;ZWNobyBwd25lZA==\x1b\`},
		{"forged line", "hi\r[12:00:00] <alice> x", `hi\x0d[12:00:00] <alice> x`, `hi\x0d[12:00:00] <alice> x`},
		{"tab and nul", "a\tb\x00", `a\x09b\x00`, `a\x09b\x00`},
		{"del", "a\x7fb", `a\x7fb`, `a\x7fb`},
		{"c1 csi", "a\u009b2Jb", "a<U+009B>2Jb", "a<U+009B>2Jb"},
		{"bidi override", "abc\u202edcba", "abc<U+202E>dcba", "abc<U+202E>dcba"},
		{"bidi isolates and marks", "\u2066\u2067\u2068\u2069\u200e\u200f\u061c", "<U+2066><U+2067><U+2068><U+2069><U+200E><U+200F><U+061C>", "<U+2066><U+2067><U+2068><U+2069><U+200E><U+200F><U+061C>"},
		{"zero width", "a\u200bb\u200dc\ufeff", "a<U+200B>b<U+200D>c<U+FEFF>", "a<U+200B>b<U+200D>c<U+FEFF>"},
		{"separators", "a\u2028b\u2029", "a<U+2028>b<U+2029>", "a<U+2028>b<U+2029>"},
		{"hangul filler", "\u3164bob", "<U+3164>bob", "<U+3164>bob"},
		{"tag character", "a\U000e0041", "a<U+E0041>", "a<U+E0041>"},
		{"invalid utf-8", "a\xffb\xc3", `a\xffb\xc3`, `a\xffb\xc3`},
		{"replacement char kept", "a\ufffdb", "a\ufffdb", "a\ufffdb"},
		{"backslash left alone", `C:\x1b`, `C:\x1b`, `C:\x1b`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Sanitize(tt.in, 1000); got != tt.text {
				t.Errorf("Sanitize(%q) = %q, want %q", tt.in, got, tt.text)
			}
			if got := Inline(tt.in, 1000); got != tt.inline {
				t.Errorf("Inline(%q) = %q, want %q", tt.in, got, tt.inline)
			}
		})
	}
}

func TestSanitizeCap(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"fits exactly", strings.Repeat("a", 40), 40, strings.Repeat("a", 40)},
		{"one over", strings.Repeat("a", 41), 40, "aaaaaaaa…(+33 bytes)"},
		{"cap below minimum raised", strings.Repeat("a", 40), 1, "…(+40 bytes)"},
		{"escapes count", strings.Repeat("\x1b", 20), 40, strings.Repeat(`\x1b`, 2) + "…(+18 bytes)"},
		{"never cuts inside a character", "aaaaaaa" + strings.Repeat("é", 30), 40, "aaaaaaa…(+60 bytes)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Sanitize(tt.in, tt.max)
			if got != tt.want {
				t.Errorf("Sanitize(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
			}
			if len(got) > maxInt(tt.max, MinCap) {
				t.Errorf("%d bytes, cap %d", len(got), tt.max)
			}
		})
	}
}

func TestSanitizeDoesNotAllocateCleanText(t *testing.T) {
	s := strings.Repeat("hello world ", 20) + "\n"
	if n := testing.AllocsPerRun(100, func() { _ = Sanitize(s, 1<<16) }); n != 0 {
		t.Errorf("%v allocations for clean text", n)
	}
}

func TestUnsafeSet(t *testing.T) {
	for _, r := range []rune{0, '\n', '\t', 0x1b, 0x7f, 0x80, 0x9f, 0xad, 0x61c, 0x200b, 0x200e, 0x202a, 0x202e, 0x2028, 0x2029, 0x2066, 0x2069, 0xfeff, 0x3164, 0x115f, 0x34f, 0xe0001} {
		if !Unsafe(r) {
			t.Errorf("Unsafe(%U) = false", r)
		}
	}
	for _, r := range []rune{' ', 'a', '~', 0xa0, 0xe9, 0x5d0, 0x627, 0x1f499, 0xfffd, 0xfe0f} {
		if Unsafe(r) {
			t.Errorf("Unsafe(%U) = true", r)
		}
	}
}

func TestEscapeJSON(t *testing.T) {
	in := "a\x1b\u009b\u202e\u2028\U000e0041\x7f é 💙"
	raw, err := json.Marshal(map[string]string{"text": in})
	if err != nil {
		t.Fatal(err)
	}
	out := EscapeJSON(nil, raw)
	assertSafe(t, string(out), false)
	var back map[string]string
	if err := json.Unmarshal(out, &back); err != nil || back["text"] != in {
		t.Fatalf("escaped JSON %s decodes to %q (%v), want %q", out, back["text"], err, in)
	}
}

// assertSafe fails if s holds anything a terminal would act on.
func assertSafe(t *testing.T, s string, keepNL bool) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Fatalf("output is not valid UTF-8: %q", s)
	}
	for _, r := range s {
		if Unsafe(r) && !(keepNL && r == '\n') {
			t.Fatalf("output holds %U: %q", r, s)
		}
	}
}

func FuzzSanitize(f *testing.F) {
	for _, s := range []string{"", "hello", "\x1b[2J", "\u202e", "a\nb", "\xff\xfe", strings.Repeat("é", 100), "\U000e0041\u2028"} {
		f.Add(s, 40)
	}
	f.Fuzz(func(t *testing.T, s string, max int) {
		max = max % 4096
		for _, keepNL := range []bool{true, false} {
			out := sanitize(s, max, keepNL)
			assertSafe(t, out, keepNL)
			if len(out) > maxInt(max, MinCap) {
				t.Fatalf("%d bytes out, cap %d", len(out), max)
			}
			if again := sanitize(out, max, keepNL); again != out {
				t.Fatalf("not idempotent: %q then %q", out, again)
			}
			if len(s) <= maxInt(max, MinCap)/10 && strings.Contains(out, "…(+") && !strings.Contains(s, "…(+") {
				t.Fatalf("short input %q cut: %q", s, out)
			}
		}
		js, _ := json.Marshal(s)
		esc := EscapeJSON(nil, js)
		assertSafe(t, string(esc), false)
		var back, want string
		_ = json.Unmarshal(js, &want)
		if err := json.Unmarshal(esc, &back); err != nil || back != want {
			t.Fatalf("EscapeJSON changed the value: %q vs %q (%v)", back, want, err)
		}
	})
}
