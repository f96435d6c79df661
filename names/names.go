package names

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/secure/precis"

	"lanchat/termtext"
)

// Limits, in bytes.
const (
	// MaxLen bounds an enforced name.
	MaxLen = 64
	// MaxInputLen bounds what Enforce and Key will process at all (NFKC
	// may shrink a string, e.g. full-width letters, 3 bytes each, to 1).
	MaxInputLen = 4 * MaxLen
)

// ErrInvalid is wrapped by every error about a name.
var ErrInvalid = errors.New("invalid name")

// profile is the PRECIS Nickname profile of RFC 8266. Its Profile is safe
// for concurrent use.
var profile = precis.Nickname

// Enforce returns the form in which name s is shown and sent: NFKC
// normalised (width folded), case kept. It refuses what lanchat's rules
// refuse (see the package comment), with an error worded for the user.
func Enforce(s string) (string, error) {
	if err := precheck(s); err != nil {
		return "", err
	}
	e, err := guard(profile.String, s)
	if err != nil {
		return "", fmt.Errorf("%w %q: %s", ErrInvalid, s, precisReason(err))
	}
	if err := postcheck(e); err != nil {
		return "", err
	}
	return e, nil
}

// Check reports whether s is a valid name already in enforced form, as a
// name received from the network must be.
func Check(s string) error {
	e, err := Enforce(s)
	if err != nil {
		return err
	}
	if e != s {
		return fmt.Errorf("%w %q: not in normal form (it would be %q)", ErrInvalid, s, e)
	}
	return nil
}

// Key returns the comparison key of name s: its enforced form with case
// folded. Two names are the same name when their keys are equal.
func Key(s string) (string, error) {
	if _, err := Enforce(s); err != nil {
		return "", err
	}
	k, err := guard(profile.CompareKey, s)
	if err != nil {
		return "", fmt.Errorf("%w %q: %s", ErrInvalid, s, precisReason(err))
	}
	return k, nil
}

// Equal reports whether a and b are valid names that compare equal.
func Equal(a, b string) bool {
	ka, err := Key(a)
	if err != nil {
		return false
	}
	kb, err := Key(b)
	return err == nil && ka == kb
}

// LooksLikeID reports whether s could pass for a node id prefix: 4 or
// more characters, only upper-case letters, digits and '-'.
func LooksLikeID(s string) bool {
	n := 0
	for _, r := range s {
		if r != '-' && !unicode.IsUpper(r) && !unicode.IsDigit(r) {
			return false
		}
		n++
	}
	return n >= 4
}

// guard runs a PRECIS function and turns a panic into an error: names
// come from the network, and golang.org/x/text before v0.41.0 panicked on
// some strings (those NFKC expands a lot, such as U+FDFA).
func guard(f func(string) (string, error), s string) (out string, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = "", fmt.Errorf("precis: %v", r)
		}
	}()
	return f(s)
}

// precheck refuses, before PRECIS maps anything away, what the profile
// would silently change (leading, trailing and repeated spaces) and what
// lanchat forbids outright.
func precheck(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: name is empty", ErrInvalid)
	case len(s) > MaxInputLen:
		return fmt.Errorf("%w: name is %d bytes long, limit %d", ErrInvalid, len(s), MaxLen)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: name is not valid UTF-8", ErrInvalid)
	}
	for _, r := range s {
		switch {
		case unicode.IsSpace(r) || unicode.In(r, unicode.Zs, unicode.Zl, unicode.Zp):
			return fmt.Errorf("%w %q: it contains a space (%U); names are one word", ErrInvalid, s, r)
		case termtext.Unsafe(r) || r == '\n':
			return fmt.Errorf("%w %q: it contains the invisible or control character %U", ErrInvalid, s, r)
		case r == 0x2800:
			return fmt.Errorf("%w %q: it contains a blank character (%U)", ErrInvalid, s, r)
		}
	}
	return nil
}

// postcheck applies lanchat's rules to the enforced form.
func postcheck(e string) error {
	switch {
	case e == "":
		return fmt.Errorf("%w: name is empty", ErrInvalid)
	case len(e) > MaxLen:
		return fmt.Errorf("%w %q: %d bytes long, limit %d", ErrInvalid, e, len(e), MaxLen)
	case e[0] == '#':
		return fmt.Errorf("%w %q: names may not start with '#'", ErrInvalid, e)
	case e[0] == '/':
		return fmt.Errorf("%w %q: names may not start with '/'", ErrInvalid, e)
	case LooksLikeID(e):
		return fmt.Errorf("%w %q: it could pass for a node id; use lower-case letters", ErrInvalid, e)
	}
	// NFKC may produce what the input did not contain (U+2028 from
	// nothing is impossible, but a space from U+00A0 is): check again.
	for _, r := range e {
		if unicode.IsSpace(r) || termtext.Unsafe(r) || r == 0x2800 {
			return fmt.Errorf("%w %q: it contains %U", ErrInvalid, e, r)
		}
	}
	return nil
}

// precisReason words a PRECIS error for the user.
func precisReason(err error) string {
	msg := strings.TrimPrefix(err.Error(), "precis: ")
	return "it contains a character names may not have (" + msg + ")"
}
