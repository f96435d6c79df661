package identity

import (
	"bytes"
	"crypto/ed25519"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"strings"
	"unicode"
)

// Verification codes. A code is CodeDigits decimal digits in groups of
// CodeGroup, e.g. "12345 67890 12345 67890 12345 67890".
const (
	CodeDigits = 30
	CodeGroup  = 5
	// codeIterations of PBKDF2-HMAC-SHA256 make every code cost an
	// attacker that many hash computations.
	codeIterations = 20000
	codeSalt       = "lanchat verify v1"
)

// VerifyCode is the authentication code of the pair of nodes with keys a
// and b: the same whichever of the two computes it (the keys are sorted
// first), for their users to compare aloud or in person. If the codes
// the two users read are equal, each node holds the other's real key: no
// one in between replaced them.
//
// Why 30 digits are enough: a man in the middle of A and B holds a key
// M1 that B takes for A's and M2 that A takes for B's, and A and B read
// code(A, M2) and code(M1, B). To make them equal he can vary both M1
// and M2, a collision search: about 10^15 (2^50) keys and codes, each
// code 20,000 iterations of HMAC-SHA256, some 10^19 hash computations
// for one pair of victims, decades on a GPU; and he must have been in
// the middle since their first contact. Signal's safety numbers have 60
// digits because they also guard against an attacker who controls the
// server for years; 30 keep the reading short.
func VerifyCode(a, b ed25519.PublicKey) string {
	lo, hi := a, b
	if bytes.Compare(lo, hi) > 0 {
		lo, hi = hi, lo
	}
	pw := make([]byte, 0, len(lo)+len(hi))
	pw = append(append(pw, lo...), hi...)
	sum, err := pbkdf2.Key(sha256.New, string(pw), []byte(codeSalt), codeIterations, 32)
	if err != nil {
		panic("identity: pbkdf2: " + err.Error()) // fixed parameters: cannot fail
	}
	var s strings.Builder
	// Each group of 5 digits is 5 bytes (40 bits) reduced mod 10^5, as
	// Signal does: the bias is below 10^-7.
	for g := 0; g < CodeDigits/CodeGroup; g++ {
		var buf [8]byte
		copy(buf[3:], sum[g*5:g*5+5])
		v := binary.BigEndian.Uint64(buf[:]) % 100000
		if g > 0 {
			s.WriteByte(' ')
		}
		d := [5]byte{}
		for i := 4; i >= 0; i-- {
			d[i] = byte('0' + v%10)
			v /= 10
		}
		s.Write(d[:])
	}
	return s.String()
}

// MatchCode reports whether what the user typed is code: spaces, dashes
// and dots are ignored, and so is the width of the digits (full-width
// digits count). Anything else, or a wrong length, does not match.
func MatchCode(code, typed string) bool {
	want := digitsOf(code)
	got := digitsOf(typed)
	if want == nil || got == nil || len(want) != CodeDigits {
		return false
	}
	return subtle.ConstantTimeCompare(want, got) == 1
}

// digitsOf returns the ASCII digits of s, or nil if s holds anything but
// digits and separators.
func digitsOf(s string) []byte {
	out := make([]byte, 0, CodeDigits)
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			out = append(out, byte(r))
		case r >= '０' && r <= '９':
			out = append(out, byte('0'+r-'０'))
		case r == '-' || r == '.' || unicode.IsSpace(r):
		default:
			return nil
		}
		if len(out) > CodeDigits {
			return nil
		}
	}
	return out
}
