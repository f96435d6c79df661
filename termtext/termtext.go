package termtext

import (
	"strconv"
	"unicode"
	"unicode/utf8"
)

// MinCap is the smallest cap honoured: room for some text and the cut mark.
const MinCap = 32

// markReserve is room for the longest cut mark, "…(+N bytes)".
const markReserve = 3 + 2 + 20 + 7

// Unsafe reports whether r is a character the sanitiser renders as an
// escape: a control (C0 including '\n', DEL, C1), a format character
// (category Cf, which holds the bidi controls), a line or paragraph
// separator, or another default-ignorable code point. Validators use it
// too, so that what is refused on input and what is escaped on output
// are one set.
func Unsafe(r rune) bool {
	switch {
	case r < 0x20 || r == 0x7f:
		return true
	case r < 0x7f:
		return false
	case r < 0xa0:
		return true
	case r == utf8.RuneError:
		return false // a visible replacement character when validly encoded
	}
	return unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp, unicode.Other_Default_Ignorable_Code_Point)
}

// Sanitize returns s safe to print: every Unsafe character but '\n' and
// every invalid byte rendered visibly, and the result at most max bytes
// (at least MinCap), cut with a mark when longer. It returns s itself,
// without allocating, when nothing needs changing.
func Sanitize(s string, max int) string { return sanitize(s, max, true) }

// Inline is Sanitize for a value shown inside a line: '\n' is rendered
// too, so the value cannot start a line of its own.
func Inline(s string, max int) string { return sanitize(s, max, false) }

func sanitize(s string, max int, keepNL bool) string {
	max = max0(max)
	if len(s) <= max && clean(s, keepNL) {
		return s
	}
	return string(appendText(make([]byte, 0, min(len(s)+16, max)), s, max, keepNL))
}

// AppendSanitized appends the sanitised form of s (as Sanitize, or as
// Inline when keepNL is false) to dst.
func AppendSanitized(dst []byte, s string, max int, keepNL bool) []byte {
	max = max0(max)
	if len(s) <= max && clean(s, keepNL) {
		return append(dst, s...)
	}
	return appendText(dst, s, max, keepNL)
}

func max0(max int) int { return maxInt(max, MinCap) }

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// clean reports whether s needs no escape.
func clean(s string, keepNL bool) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f {
			i++
			continue
		}
		if c < 0x80 {
			if c == '\n' && keepNL {
				i++
				continue
			}
			return false
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && n == 1) || Unsafe(r) {
			return false
		}
		i += n
	}
	return true
}

// appendText renders s into dst, at most max bytes of it.
func appendText(dst []byte, s string, max int, keepNL bool) []byte {
	start := len(dst)
	// The last point where the output still leaves room for the mark.
	cutOut, cutIn := start, 0
	var esc [16]byte
	for i := 0; i < len(s); {
		if len(dst)-start <= max-markReserve {
			cutOut, cutIn = len(dst), i
		}
		c := s[i]
		var piece []byte
		n := 1
		switch {
		case c >= 0x20 && c < 0x7f, c == '\n' && keepNL:
			if len(dst)-start+1 > max {
				return appendMark(dst[:cutOut], len(s)-cutIn)
			}
			dst = append(dst, c)
			i++
			continue
		case c < 0x80:
			piece = hexByte(esc[:0], c)
		default:
			var r rune
			r, n = utf8.DecodeRuneInString(s[i:])
			switch {
			case r == utf8.RuneError && n == 1:
				piece = hexByte(esc[:0], c)
			case Unsafe(r):
				piece = codePoint(esc[:0], r)
			default:
				piece = nil
			}
		}
		size := len(piece)
		if piece == nil {
			size = n
		}
		if len(dst)-start+size > max {
			return appendMark(dst[:cutOut], len(s)-cutIn)
		}
		if piece == nil {
			dst = append(dst, s[i:i+n]...)
		} else {
			dst = append(dst, piece...)
		}
		i += n
	}
	return dst
}

const hexDigits = "0123456789abcdef"

func hexByte(b []byte, c byte) []byte {
	return append(b, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
}

// codePoint writes r as <U+XXXX>.
func codePoint(b []byte, r rune) []byte {
	b = append(b, "<U+"...)
	h := strconv.FormatInt(int64(r), 16)
	for i := len(h); i < 4; i++ {
		b = append(b, '0')
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if c >= 'a' {
			c -= 'a' - 'A'
		}
		b = append(b, c)
	}
	return append(b, '>')
}

func appendMark(dst []byte, cut int) []byte {
	dst = append(dst, "…(+"...)
	dst = strconv.AppendInt(dst, int64(cut), 10)
	return append(dst, " bytes)"...)
}

// EscapeJSON appends src, the output of a JSON encoder, to dst with every
// Unsafe character written as a \uXXXX escape (a surrogate pair above
// U+FFFF) and every invalid byte as \ufffd. Outside strings JSON holds
// only ASCII punctuation, digits, letters and whitespace that encoders do
// not emit, so the result decodes to the same value.
func EscapeJSON(dst, src []byte) []byte {
	for i := 0; i < len(src); {
		c := src[i]
		if c >= 0x20 && c < 0x7f {
			dst = append(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(src[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			dst = append(dst, `\ufffd`...)
		case Unsafe(r):
			if r > 0xffff {
				r1, r2 := utf16Surrogates(r)
				dst = appendU(appendU(dst, r1), r2)
			} else {
				dst = appendU(dst, r)
			}
		default:
			dst = append(dst, src[i:i+n]...)
		}
		i += n
	}
	return dst
}

func appendU(dst []byte, r rune) []byte {
	return append(dst, '\\', 'u', hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
}

func utf16Surrogates(r rune) (rune, rune) {
	r -= 0x10000
	return 0xd800 + (r>>10)&0x3ff, 0xdc00 + r&0x3ff
}
