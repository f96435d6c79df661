package transfer

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestPartialFileMixedWrites writes a file in aligned chunks (direct
// where the filesystem allows) and unaligned ones (through the page
// cache), in the order a receiver would, and reads back every byte.
func TestPartialFileMixedWrites(t *testing.T) {
	tests := []struct {
		name  string
		sizes []int // written one after the other from offset 0
	}{
		{"aligned only", []int{4096, 8192, ChunkSize}},
		{"unaligned head then aligned", []int{100, 3996, 8192, 4096}},
		{"aligned then a short tail", []int{ChunkSize, ChunkSize, 777}},
		{"unaligned only", []int{1, 2, 3, 5000}},
		{"aligned after an unaligned one", []int{4096, 10, 4086, ChunkSize, 4096}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			r, err := os.OpenRoot(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			pf, err := openPartial(r, 0, 0, directMin)
			if err != nil {
				t.Fatal(err)
			}
			var want []byte
			buf := alignedBuffer(ChunkSize)
			pos := int64(0)
			for i, n := range tc.sizes {
				b := buf[:n]
				for j := range b {
					b[j] = byte(i*31 + j*7)
				}
				if _, err := pf.writeAt(b, pos); err != nil {
					t.Fatalf("write %d bytes at %d: %v", n, pos, err)
				}
				want = append(want, b...)
				pos += int64(n)
			}
			pf.close()
			got, err := os.ReadFile(filepath.Join(dir, "0"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("read back %d bytes that differ from the %d written", len(got), len(want))
			}
		})
	}
}

func TestDirectOK(t *testing.T) {
	buf := alignedBuffer(2 * directAlign)
	tests := []struct {
		name string
		b    []byte
		off  int64
		want bool
	}{
		{"aligned", buf, directAlign, true},
		{"empty", buf[:0], 0, false},
		{"odd offset", buf, 100, false},
		{"odd length", buf[:directAlign+1], 0, false},
		{"odd address", buf[1 : directAlign+1], 0, false},
	}
	for _, tc := range tests {
		if got := directOK(tc.b, tc.off); got != tc.want {
			t.Errorf("%s: directOK = %v, want %v", tc.name, got, tc.want)
		}
	}
}
