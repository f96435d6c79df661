package identity

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

func TestVerifyCode(t *testing.T) {
	a, _ := New()
	b, _ := New()
	c, _ := New()
	ab, ba := VerifyCode(a.Public(), b.Public()), VerifyCode(b.Public(), a.Public())
	if ab != ba {
		t.Fatalf("order matters: %q vs %q", ab, ba)
	}
	if !regexp.MustCompile(`^\d{5}( \d{5}){5}$`).MatchString(ab) {
		t.Fatalf("code %q is not 6 groups of 5 digits", ab)
	}
	if ab == VerifyCode(a.Public(), c.Public()) || ab == VerifyCode(b.Public(), c.Public()) {
		t.Fatal("another pair has the same code")
	}
	if VerifyCode(a.Public(), b.Public()) != ab {
		t.Fatal("not deterministic")
	}
	typed := []struct {
		s  string
		ok bool
	}{
		{ab, true},
		{strings.ReplaceAll(ab, " ", ""), true},
		{strings.ReplaceAll(ab, " ", "-"), true},
		{"  " + strings.ReplaceAll(ab, " ", " - ") + "\n", true},
		{strings.Map(func(r rune) rune { return r - '0' + '０' }, strings.ReplaceAll(ab, " ", "")), true},
		{ab[:len(ab)-1], false},
		{ab + "1", false},
		{ab[:len(ab)-1] + string('0'+(ab[len(ab)-1]-'0'+1)%10), false},
		{strings.Replace(ab, " ", "x", 1), false},
		{"", false},
	}
	for _, tt := range typed {
		if got := MatchCode(ab, tt.s); got != tt.ok {
			t.Errorf("MatchCode(%q, %q) = %v", ab, tt.s, got)
		}
	}
}

func TestKeyFileModeIsChecked(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no file modes")
	}
	path := filepath.Join(t.TempDir(), KeyFile)
	if _, _, err := LoadOrCreate(path); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o644, 0o660, 0o602} {
		os.Chmod(path, mode)
		_, _, err := LoadOrCreate(path)
		if !errors.Is(err, ErrKeyMode) || !strings.Contains(err.Error(), "chmod 600 "+path) {
			t.Errorf("mode %04o: err = %v", mode, err)
		}
	}
	for _, mode := range []os.FileMode{0o600, 0o400} {
		os.Chmod(path, mode)
		if _, _, err := LoadOrCreate(path); err != nil {
			t.Errorf("mode %04o: %v", mode, err)
		}
	}
}

func TestValidID(t *testing.T) {
	id, _ := New()
	for _, tt := range []struct {
		s  string
		ok bool
	}{
		{id.ID, true}, {strings.Repeat("A", 52), true}, {strings.Repeat("A", 51) + "Q", true},
		{strings.Repeat("A", 51) + "B", false}, {strings.Repeat("A", 51), false}, {strings.ToLower(id.ID), false},
		{strings.Repeat("A", 51) + "1", false}, {"", false}, {strings.Repeat("A", 53), false},
	} {
		if ValidID(tt.s) != tt.ok {
			t.Errorf("ValidID(%q) = %v", tt.s, !tt.ok)
		}
	}
}
