package transfer

import (
	"os"
	"unsafe"
)

// A receiver writes its partial files with direct I/O where it can: a
// chunk whose offset, length and buffer address are multiples of
// directAlign goes from the stream's buffer to the disk, without a copy
// into the page cache, the kernel's writeback of it and the flusher's
// work to write and drop it (flush.go). Everything else (the unaligned
// head after an odd resume point, the tail of a file, a filesystem that
// refuses direct I/O) goes through the page cache as before. Durability
// is unchanged: a checkpoint fsyncs the file, which covers both.
//
// Small files go through the page cache: a direct write waits for the
// device, one file after another, where the page cache takes a folder of
// small files at once and a checkpoint's syncfs writes them out
// together.
const (
	directAlign = 4096
	directMin   = 1 << 20
)

// partialFile is a partial file open for writing: f through the page
// cache, d (nil when not available) with direct I/O.
type partialFile struct {
	f, d *os.File
}

// writeAt writes b at off, directly when it can; direct says how it
// went. A filesystem that refuses a direct write gets this file's later
// writes through the page cache.
func (p *partialFile) writeAt(b []byte, off int64) (direct bool, err error) {
	if p.d != nil && directOK(b, off) {
		_, err := p.d.WriteAt(b, off)
		if err == nil {
			return true, nil
		}
		if !directRefused(err) {
			return false, err
		}
		p.d.Close()
		p.d = nil
	}
	_, err = p.f.WriteAt(b, off)
	return false, err
}

func (p *partialFile) close() {
	if p.d != nil {
		p.d.Close()
	}
	p.f.Close()
}

// directOK reports whether b at off meets direct I/O's alignment.
func directOK(b []byte, off int64) bool {
	return len(b) > 0 && off%directAlign == 0 && len(b)%directAlign == 0 &&
		uintptr(unsafe.Pointer(unsafe.SliceData(b)))%directAlign == 0
}

// alignedBuffer returns n bytes starting at a multiple of directAlign.
func alignedBuffer(n int) []byte {
	b := make([]byte, n+directAlign)
	k := int(uintptr(unsafe.Pointer(unsafe.SliceData(b))) % directAlign)
	if k != 0 {
		k = directAlign - k
	}
	return b[k : k+n : k+n]
}
