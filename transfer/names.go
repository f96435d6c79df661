package transfer

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on names in an offer.
const (
	// maxComponent is the longest file or folder name, in bytes (the
	// NAME_MAX of common Linux filesystems).
	maxComponent = 255
	// maxPathLen is the longest relative path, in bytes.
	maxPathLen = 4096
	// maxDepth is the deepest tree: components in one path.
	maxDepth = 64
	// reservedPrefix starts the names of lanchat's own entries in the
	// download folder (the partial files); no offered top-level name may.
	reservedPrefix = ".lanchat-"
)

// ErrUnsafeName is wrapped when a name from a peer breaks a safety rule.
var ErrUnsafeName = errors.New("unsafe name")

// unsafeRune reports characters never allowed in a name or in text from
// a peer: C0 and C1 controls, DEL, line and paragraph separators, and
// format characters (bidirectional overrides and isolates, zero-width
// spaces, the byte order mark). Zero-width joiner and non-joiner are
// format characters that some scripts and emoji need; they are allowed.
func unsafeRune(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0:
		return true
	case r == 0x2028, r == 0x2029:
		return true
	case r == 0x200c, r == 0x200d:
		return false
	}
	return unicode.Is(unicode.Cf, r)
}

// checkPath returns why p, a relative path from a peer with "/" between
// components, may not be created under the download folder, or nil.
func checkPath(p string) error {
	bad := func(why string) error { return fmt.Errorf("%w %q: %s", ErrUnsafeName, p, why) }
	switch {
	case p == "":
		return bad("empty name")
	case len(p) > maxPathLen:
		return bad(fmt.Sprintf("path of %d bytes, limit %d", len(p), maxPathLen))
	case !utf8.ValidString(p):
		return bad("not valid UTF-8")
	case p[0] == '/':
		return bad("absolute path")
	}
	depth := 0
	for c := range strings.SplitSeq(p, "/") {
		depth++
		switch {
		case depth > maxDepth:
			return bad(fmt.Sprintf("more than %d levels deep", maxDepth))
		case c == "":
			return bad("empty path component")
		case c == ".", c == "..":
			return bad(fmt.Sprintf("%q component", c))
		case len(c) > maxComponent:
			return bad(fmt.Sprintf("a name of %d bytes, limit %d", len(c), maxComponent))
		}
		for _, r := range c {
			switch {
			case r == 0:
				return bad("NUL character")
			case r == '\\':
				return bad(`backslash (a folder separator on Windows)`)
			case unsafeRune(r):
				return bad(fmt.Sprintf("control or format character %U", r))
			}
		}
	}
	return nil
}

// topName is the first component of a checked path.
func topName(p string) string {
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return p
}

// limits bound what an offer may ask of the receiver.
type limits struct {
	maxFiles int
	maxBytes int64 // 0: no limit beyond free space
}

// checkOffer checks everything an offer's entries mean: safe names, no
// duplicates, each directory listed before what it holds, and the
// limits. It returns the total size.
func checkOffer(es []entry, lim limits) (int64, error) {
	if len(es) == 0 {
		return 0, fmt.Errorf("%w: an empty offer", ErrUnsafeName)
	}
	if len(es) > lim.maxFiles {
		return 0, fmt.Errorf("%w: an offer of %d entries, limit %d", ErrUnsafeName, len(es), lim.maxFiles)
	}
	dirs := make(map[string]bool)
	seen := make(map[string]bool, len(es))
	var total int64
	for _, e := range es {
		if err := checkPath(e.Path); err != nil {
			return 0, err
		}
		if seen[e.Path] {
			return 0, fmt.Errorf("%w %q: listed twice", ErrUnsafeName, e.Path)
		}
		seen[e.Path] = true
		if i := strings.LastIndexByte(e.Path, '/'); i >= 0 {
			if !dirs[e.Path[:i]] {
				return 0, fmt.Errorf("%w %q: its folder %q is not listed before it", ErrUnsafeName, e.Path, e.Path[:i])
			}
		} else if strings.HasPrefix(e.Path, reservedPrefix) {
			return 0, fmt.Errorf("%w %q: names starting %q are lanchat's own", ErrUnsafeName, e.Path, reservedPrefix)
		}
		if e.Dir {
			if e.Size != 0 {
				return 0, fmt.Errorf("%w %q: a folder with a size", ErrUnsafeName, e.Path)
			}
			dirs[e.Path] = true
			continue
		}
		if e.Size < 0 || e.Size > maxFileSize {
			return 0, fmt.Errorf("%w %q: size %d", ErrUnsafeName, e.Path, e.Size)
		}
		total += e.Size
		if lim.maxBytes > 0 && total > lim.maxBytes {
			return 0, fmt.Errorf("%w: an offer of more than %d bytes, limit %d", ErrUnsafeName, total, lim.maxBytes)
		}
	}
	return total, nil
}

// variant is the n-th alternative to a name that is taken: "name (n).ext"
// for a file, "name (n)" for a folder, shortened at a character boundary
// to fit maxComponent.
func variant(name string, n int, dir bool) string {
	stem, ext := name, ""
	if !dir {
		if i := strings.LastIndexByte(name, '.'); i > 0 && len(name)-i <= 16 {
			stem, ext = name[:i], name[i:]
		}
	}
	suffix := fmt.Sprintf(" (%d)", n)
	for len(stem)+len(suffix)+len(ext) > maxComponent && stem != "" {
		_, size := utf8.DecodeLastRuneInString(stem)
		stem = stem[:len(stem)-size]
	}
	return stem + suffix + ext
}
