package transfer

import (
	"crypto/sha256"
	"encoding"
	"fmt"
	"hash"

	"github.com/zeebo/blake3"
)

// hashAlg names the hash that checks each file. Both produce 32 bytes.
type hashAlg uint8

const (
	hashSHA256 hashAlg = 1
	hashBLAKE3 hashAlg = 2
)

// defaultHash is what a sender offers (see doc.go for why).
const defaultHash = hashBLAKE3

const (
	hashSize    = 32
	maxHashSize = 64
)

func (h hashAlg) valid() bool { return h == hashSHA256 || h == hashBLAKE3 }

func (h hashAlg) String() string {
	switch h {
	case hashSHA256:
		return "sha256"
	case hashBLAKE3:
		return "blake3"
	}
	return fmt.Sprintf("hash(%d)", uint8(h))
}

func parseHashAlg(s string) (hashAlg, bool) {
	switch s {
	case "sha256":
		return hashSHA256, true
	case "blake3":
		return hashBLAKE3, true
	}
	return 0, false
}

// hasher is a running file hash whose state can be copied, so a resume
// point can be kept without reading the file again.
type hasher interface {
	Write(p []byte)
	Sum() []byte
	Clone() hasher
}

func (h hashAlg) new() hasher {
	if h == hashSHA256 {
		return &sha{h: sha256.New()}
	}
	return &b3{h: blake3.New()}
}

type sha struct{ h hash.Hash }

func (s *sha) Write(p []byte) { s.h.Write(p) }
func (s *sha) Sum() []byte    { return s.h.Sum(nil) }
func (s *sha) Clone() hasher {
	if c, err := s.h.(hash.Cloner).Clone(); err == nil {
		return &sha{h: c}
	}
	// Cloning can fail only in FIPS 140 v1.0.0 mode; the marshalled
	// state says the same.
	c := sha256.New()
	st, err := s.h.(encoding.BinaryMarshaler).MarshalBinary()
	if err == nil {
		err = c.(encoding.BinaryUnmarshaler).UnmarshalBinary(st)
	}
	if err != nil {
		return &sha{h: brokenHash{c}}
	}
	return &sha{h: c}
}

// brokenHash sums to nothing, so a hash whose state was lost can never
// match.
type brokenHash struct{ hash.Hash }

func (brokenHash) Sum(b []byte) []byte { return b }

type b3 struct{ h *blake3.Hasher }

func (b *b3) Write(p []byte) { b.h.Write(p) }
func (b *b3) Sum() []byte    { return b.h.Sum(nil) }
func (b *b3) Clone() hasher  { return &b3{h: b.h.Clone()} }

// copyHash returns a copy of h's state, made in dst when dst is of the
// same kind (no allocation: a BLAKE3 state is 11 KB, and a sender keeps
// one per chunk sent), else a new one.
func copyHash(dst, h hasher) hasher {
	if s, ok := h.(*b3); ok {
		if d, ok := dst.(*b3); ok {
			*d.h = *s.h
			return d
		}
	}
	return h.Clone()
}
