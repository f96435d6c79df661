package console

import (
	"hash/fnv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// style colours plain lines: names, warnings, errors, and one's own name
// in others' lines; it also rings the bell. Its zero value marks nothing
// (stdout not a terminal, or NO_COLOR set).
//
// It does not write escape codes itself: it puts marks in the line (NUL
// and a byte), which the Printer turns into fixed sequences after
// sanitising the text between them (render). So every plain line still
// passes the sanitiser, and a mark can only ever stand for one of
// markCodes.
type style struct{ color bool }

// markByte opens a style mark.
const markByte = 0

// Style marks: the byte after markByte.
const (
	markReset   = 'z'
	markWarn    = 'w'
	markErr     = 'e'
	markSelf    = 's'
	markMention = 'm'
	markBell    = '!'
	markName0   = '0' // '0'+i: the i-th of nameColors
)

// nameColors are the colours names get: not red, which warnings use, and
// readable on dark and light backgrounds alike.
var nameColors = []string{"32", "33", "34", "35", "36", "92", "94", "95", "96"}

// markCodes maps each mark to what it prints; an unknown mark prints
// nothing.
var markCodes = func() (m [256]string) {
	m[markReset] = "\x1b[0m"
	m[markWarn] = "\x1b[1;31m"
	m[markErr] = "\x1b[31m"
	m[markSelf] = "\x1b[1m"
	m[markMention] = "\x1b[1;7m"
	m[markBell] = "\a"
	for i, c := range nameColors {
		m[markName0+i] = "\x1b[" + c + "m"
	}
	return m
}()

func mark(b byte) string { return string([]byte{markByte, b}) }

func (s style) wrap(m byte, text string) string {
	if !s.color || text == "" {
		return text
	}
	return mark(m) + text + mark(markReset)
}

// name colours a peer's name by its id, so that a node keeps its colour
// whatever it is called.
func (s style) name(name, id string) string {
	if !s.color {
		return name
	}
	h := fnv.New32a()
	h.Write([]byte(id))
	return s.wrap(byte(markName0+h.Sum32()%uint32(len(nameColors))), name)
}

func (s style) self(name string) string    { return s.wrap(markSelf, name) }
func (s style) warn(text string) string    { return s.wrap(markWarn, text) }
func (s style) err(text string) string     { return s.wrap(markErr, text) }
func (s style) mention(text string) string { return s.wrap(markMention, text) }

// bell is the mark that rings the terminal bell.
func bell() string { return mark(markBell) }

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
