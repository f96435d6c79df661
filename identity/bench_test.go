package identity

import (
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkKnownNewPins: each op is a new peer's pin appended to the file,
// as when a node meets a whole mesh at once.
func BenchmarkKnownNewPins(b *testing.B) {
	ids := make([]string, b.N)
	for i := range ids {
		id, _ := New()
		ids[i] = id.ID
	}
	k, _, _ := OpenKnown(filepath.Join(b.TempDir(), KnownPeersFile), KnownOptions{PinBurst: 1 << 30, MaxPins: 1 << 30})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := k.Check(fmt.Sprintf("n%d", i), ids[i]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkKnownRewrite: the cost the appends avoid, one whole rewrite of
// a 64-pin file.
func BenchmarkKnownRewrite(b *testing.B) {
	k, _, _ := OpenKnown(filepath.Join(b.TempDir(), KnownPeersFile), KnownOptions{})
	for i := 0; i < 64; i++ {
		id, _ := New()
		k.Check(fmt.Sprintf("n%d", i), id.ID)
	}
	id, _ := New()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := k.Trust("x", id.ID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkKnownCheckKnown: the lookup on every connection and rename.
func BenchmarkKnownCheckKnown(b *testing.B) {
	k, _, _ := OpenKnown("", KnownOptions{})
	id, _ := New()
	k.Check("alice", id.ID)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k.Check("Alice", id.ID)
	}
}
