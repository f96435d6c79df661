package console

import (
	"hash/fnv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// style colours plain lines: names, warnings, errors, and one's own name
// in others' lines. Its zero value writes no escape codes (stdout not a
// terminal, or NO_COLOR set).
type style struct{ color bool }

func (s style) wrap(code, text string) string {
	if !s.color || text == "" {
		return text
	}
	return "\x1b[" + code + "m" + text + "\x1b[0m"
}

// nameColors are the colours names get: not red, which warnings use, and
// readable on dark and light backgrounds alike.
var nameColors = []string{"32", "33", "34", "35", "36", "92", "94", "95", "96"}

// name colours a peer's name by its id, so that a node keeps its colour
// whatever it is called.
func (s style) name(name, id string) string {
	if !s.color {
		return name
	}
	h := fnv.New32a()
	h.Write([]byte(id))
	return s.wrap(nameColors[h.Sum32()%uint32(len(nameColors))], name)
}

func (s style) self(name string) string    { return s.wrap("1", name) }
func (s style) warn(text string) string    { return s.wrap("1;31", text) }
func (s style) err(text string) string     { return s.wrap("31", text) }
func (s style) mention(text string) string { return s.wrap("1;7", text) }

// mentions finds name in text as a word of its own, compared without
// case, and returns text with each mention highlighted, and whether there
// was one.
func (s style) mentions(text, name string) (string, bool) {
	if name == "" || len(text) < len(name) {
		return text, false
	}
	var b strings.Builder
	found := false
	last := 0
	for i := 0; i+len(name) <= len(text); {
		if strings.EqualFold(text[i:i+len(name)], name) && boundaryBefore(text, i) && boundaryAfter(text, i+len(name)) {
			found = true
			b.WriteString(text[last:i])
			b.WriteString(s.mention(text[i : i+len(name)]))
			i += len(name)
			last = i
			continue
		}
		_, size := utf8.DecodeRuneInString(text[i:])
		i += size
	}
	if !found {
		return text, false
	}
	b.WriteString(text[last:])
	return b.String(), true
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' }

func boundaryBefore(text string, i int) bool {
	if i == 0 {
		return true
	}
	r, _ := utf8.DecodeLastRuneInString(text[:i])
	return !isWordRune(r)
}

func boundaryAfter(text string, i int) bool {
	if i == len(text) {
		return true
	}
	r, _ := utf8.DecodeRuneInString(text[i:])
	return !isWordRune(r)
}
