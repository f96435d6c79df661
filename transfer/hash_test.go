package transfer

import (
	"bytes"
	"testing"
)

// copyHash gives a state that sums like the original and goes on
// independently of it, whether it reuses dst or not.
func TestCopyHash(t *testing.T) {
	for _, alg := range []hashAlg{hashBLAKE3, hashSHA256} {
		for _, reuse := range []bool{false, true} {
			h := alg.new()
			h.Write(bytes.Repeat([]byte("lanchat"), 5000))
			var dst hasher
			if reuse {
				dst = alg.new()
				dst.Write([]byte("something else"))
			}
			c := copyHash(dst, h)
			if reuse && alg == hashBLAKE3 && c != dst {
				t.Errorf("%v: the copy was not made in dst", alg)
			}
			want := h.Clone().Sum()
			if got := c.Sum(); !bytes.Equal(got, want) {
				t.Errorf("%v reuse=%v: copy sums to %x, want %x", alg, reuse, got, want)
			}
			c.Write([]byte("more"))
			if got := h.Sum(); !bytes.Equal(got, want) {
				t.Errorf("%v reuse=%v: writing to the copy changed the original", alg, reuse)
			}
		}
	}
}
