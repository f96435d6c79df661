package transfer

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckPath(t *testing.T) {
	long := strings.Repeat("a", maxComponent)
	deep := strings.Repeat("d/", maxDepth-1) + "f"
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{"notes.txt", true},
		{"photos/2024/a.jpg", true},
		{".hidden", true},
		{"a b/c d", true},
		{"résumé.pdf", true},
		{"日本語/ファイル", true},
		{"family \U0001F468\u200d\U0001F469\u200d\U0001F467.png", true}, // ZWJ in an emoji sequence
		{"-rf", true},
		{"~", true},
		{"...", true},
		{"a..b", true},
		{long, true},
		{deep, true},
		{"", false},
		{"/etc/passwd", false},
		{"/", false},
		{"../../x", false},
		{"..", false},
		{".", false},
		{"a/../b", false},
		{"a/./b", false},
		{"a//b", false},
		{"a/", false},
		{"a/b/", false},
		{"a\x00b", false},
		{"a\x1b[31mred", false},
		{"a\nb", false},
		{"a\rb", false},
		{"a\tb", false},
		{"del\x7f", false},
		{"c1\u0085", false},
		{"gpj.\u202eexe", false}, // right-to-left override
		{"a\u2066b", false},      // left-to-right isolate
		{"zero\u200bwidth", false},
		{"bom\ufeff", false},
		{"line\u2028sep", false},
		{"soft\u00adhyphen", false},
		{"back\\slash", false},
		{"bad\xffutf8", false},
		{long + "a", false},
		{deep + "/g", false},
		{strings.Repeat("a/", maxPathLen/2) + "b", false},
	} {
		err := checkPath(tc.path)
		if (err == nil) != tc.ok {
			t.Errorf("checkPath(%q) = %v, want ok %v", tc.path, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrUnsafeName) {
			t.Errorf("checkPath(%q): %v does not wrap ErrUnsafeName", tc.path, err)
		}
	}
}

func TestCheckOffer(t *testing.T) {
	lim := limits{maxFiles: 5, maxBytes: 100}
	f := func(p string, n int64) entry { return entry{Path: p, Size: n} }
	d := func(p string) entry { return entry{Path: p, Dir: true} }
	for _, tc := range []struct {
		name string
		es   []entry
		ok   bool
	}{
		{"one file", []entry{f("a", 1)}, true},
		{"tree", []entry{d("a"), d("a/b"), f("a/b/c", 3), f("a/d", 0)}, true},
		{"empty folder", []entry{d("a")}, true},
		{"nothing", nil, false},
		{"parent not listed", []entry{f("a/b", 1)}, false},
		{"parent listed after", []entry{f("a/b", 1), d("a")}, false},
		{"parent is a file", []entry{f("a", 1), f("a/b", 1)}, false},
		{"twice", []entry{f("a", 1), f("a", 1)}, false},
		{"file and folder of one name", []entry{d("a"), f("a", 1)}, false},
		{"folder with a size", []entry{{Path: "a", Dir: true, Size: 3}}, false},
		{"negative size", []entry{f("a", -1)}, false},
		{"too many", []entry{f("a", 1), f("b", 1), f("c", 1), f("d", 1), f("e", 1), f("f", 1)}, false},
		{"too big", []entry{f("a", 60), f("b", 41)}, false},
		{"reserved name", []entry{d(".lanchat-partial")}, false},
		{"reserved prefix inside is fine", []entry{d("x"), f("x/.lanchat-partial", 1)}, true},
		{"unsafe inside", []entry{d("x"), f("x/..", 1)}, false},
	} {
		_, err := checkOffer(tc.es, lim)
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}

func TestVariant(t *testing.T) {
	long := strings.Repeat("é", 127) + ".txt" // 258 bytes
	for _, tc := range []struct {
		name string
		n    int
		dir  bool
		want string
	}{
		{"notes.txt", 1, false, "notes (1).txt"},
		{"notes.txt", 12, false, "notes (12).txt"},
		{"archive.tar.gz", 1, false, "archive.tar (1).gz"},
		{".bashrc", 1, false, ".bashrc (1)"},
		{"noext", 2, false, "noext (2)"},
		{"photos.2024", 1, true, "photos.2024 (1)"},
		{"x." + strings.Repeat("e", 20), 1, false, "x." + strings.Repeat("e", 20) + " (1)"},
	} {
		if got := variant(tc.name, tc.n, tc.dir); got != tc.want {
			t.Errorf("variant(%q, %d, %v) = %q, want %q", tc.name, tc.n, tc.dir, got, tc.want)
		}
	}
	v := variant(long, 3, false)
	if len(v) > maxComponent || !strings.HasSuffix(v, " (3).txt") || checkPath(v) != nil {
		t.Errorf("long variant %q (%d bytes)", v, len(v))
	}
}

func TestCleanText(t *testing.T) {
	for in, want := range map[string]string{
		"disk full":               "disk full",
		"a\x1b[2Jb":               "a?[2Jb",
		"rtl\u202eevil":           "rtl?evil",
		"bad\xff":                 "bad\uFFFD",
		strings.Repeat("x", 2000): strings.Repeat("x", maxReason),
	} {
		if got := cleanText(in); got != want {
			t.Errorf("cleanText(%q) = %q, want %q", in, got, want)
		}
	}
}
