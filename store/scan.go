package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	bolt "go.etcd.io/bbolt"
)

// The search index is read with pread from the file, not through bbolt's
// mapping of it: a search that finds little reads all of it, and mapping
// tens of megabytes of pages in (then out again, see dropPages) cost more
// than the search itself. The pages reachable from a read transaction's
// root are never written while it is open (bbolt copies on write and
// keeps the pages it frees until no older reader is left), so the file
// holds what the mapping would show.
//
// The page layout is bbolt's (go.etcd.io/bbolt/internal/common, pinned in
// go.mod): a 16-byte header (id u64, flags u16, count u16, overflow u32,
// in the machine's byte order), then count elements of 16 bytes: on a
// branch page pos u32, ksize u32, child page u64; on a leaf page flags
// u32, pos u32, ksize u32, vsize u32, with the key pos bytes after the
// element and its value after the key. Everything read is checked against
// the page; a page that does not parse is damage (ErrCorrupt).

const (
	pageHeader     = 16
	pageElement    = 16
	branchPageFlag = 0x01
	leafPageFlag   = 0x02
	bucketLeafFlag = 0x01
	// maxTreeDepth bounds the walk down a damaged file's pages.
	maxTreeDepth = 32
	// firstGuess is how many pages a page is read with at first: the
	// index's blocks take two pages each, and bbolt splits a leaf of more
	// than four into leaves of two (the last may hold up to four). Then
	// the size of the last leaf read is the guess: too short costs a
	// second read, too long copies pages for nothing (the copy is most
	// of a search's cost).
	firstGuess = 4
)

var native = binary.NativeEndian

// pageReader reads the pages of one read transaction from the file.
type pageReader struct {
	f        *os.File
	pageSize int
	pages    uint64 // the transaction's high-water mark: ids below it
	leaf     []byte // the buffer leaves are read into, reused
	guess    int    // pages to read a page with at first
}

// read reads page id with its overflow into buf (grown as needed), and
// returns the page and its flags and element count.
func (r *pageReader) read(id uint64, buf []byte, guess int) ([]byte, uint16, int, error) {
	if id < 2 || id >= r.pages {
		return nil, 0, 0, damage("page %d outside the file's %d", id, r.pages)
	}
	want := min(guess, int(r.pages-id)) * r.pageSize
	if cap(buf) < want {
		buf = make([]byte, want)
	}
	buf = buf[:want]
	n, err := r.f.ReadAt(buf, int64(id)*int64(r.pageSize))
	if n < pageHeader {
		return nil, 0, 0, damage("reading page %d: %w", id, errors.Join(err, io.ErrUnexpectedEOF))
	}
	if got := native.Uint64(buf); got != id {
		return nil, 0, 0, damage("page %d says it is page %d", id, got)
	}
	flags, count, overflow := native.Uint16(buf[8:]), int(native.Uint16(buf[10:])), uint64(native.Uint32(buf[12:]))
	if id+overflow >= r.pages {
		return nil, 0, 0, damage("page %d runs past the end of the file", id)
	}
	size := int(overflow+1) * r.pageSize
	if size > n {
		if cap(buf) < size {
			buf = append(buf[:n], make([]byte, size-n)...)
		}
		buf = buf[:size]
		if _, err := r.f.ReadAt(buf[n:], int64(id)*int64(r.pageSize)+int64(n)); err != nil {
			return nil, 0, 0, damage("reading page %d: %w", id, err)
		}
	}
	buf = buf[:size]
	if pageHeader+count*pageElement > len(buf) {
		return nil, 0, 0, damage("page %d: %d elements do not fit", id, count)
	}
	return buf, flags, count, nil
}

// walk calls f with the keys and values under page id, last first, until
// f says stop (more false).
func (r *pageReader) walk(id uint64, depth int, f func(k, v []byte) (bool, error)) (more bool, err error) {
	if depth > maxTreeDepth {
		return false, damage("pages nested deeper than %d", maxTreeDepth)
	}
	p, flags, count, err := r.read(id, r.leaf, r.guess)
	if err != nil {
		return false, err
	}
	switch flags {
	case branchPageFlag:
		// The children, before the buffer is reused for them.
		kids := make([]uint64, count)
		for i := range count {
			kids[i] = native.Uint64(p[pageHeader+i*pageElement+8:])
		}
		for i := count - 1; i >= 0; i-- {
			if more, err := r.walk(kids[i], depth+1, f); err != nil || !more {
				return more, err
			}
		}
		return true, nil
	case leafPageFlag:
		r.leaf, r.guess = p[:cap(p)], len(p)/r.pageSize
		for i := count - 1; i >= 0; i-- {
			e := p[pageHeader+i*pageElement:]
			eflags, pos, ksize, vsize := native.Uint32(e), uint64(native.Uint32(e[4:])), uint64(native.Uint32(e[8:])), uint64(native.Uint32(e[12:]))
			at := uint64(pageHeader+i*pageElement) + pos
			if eflags&bucketLeafFlag != 0 || at+ksize+vsize > uint64(len(p)) {
				return false, damage("page %d: element %d does not fit or is a bucket", id, i)
			}
			k := p[at : at+ksize : at+ksize]
			v := p[at+ksize : at+ksize+vsize : at+ksize+vsize]
			if more, err := f(k, v); err != nil || !more {
				return more, err
			}
		}
		return true, nil
	}
	return false, damage("page %d: flags %#x, not a branch or leaf page", id, flags)
}

// scanFold calls f with each block of the search index (its key and
// value), newest first, until f says stop. The slices are valid during
// the call only.
func scanFold(tx *bolt.Tx, f func(k, v []byte) (bool, error)) error {
	b := tx.Bucket(bFold)
	root := uint64(b.Root())
	if root == 0 {
		// An inline bucket, in its parent's page: a small store.
		c := b.Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			if more, err := f(k, v); err != nil || !more {
				return err
			}
		}
		return nil
	}
	file, err := os.Open(tx.DB().Path())
	if err != nil {
		return fmt.Errorf("reading the search index: %w", err)
	}
	defer file.Close()
	r := pageReader{f: file, pageSize: tx.DB().Info().PageSize, guess: firstGuess}
	if r.pageSize < pageHeader+pageElement {
		return damage("page size %d", r.pageSize)
	}
	r.pages = uint64(tx.Size()) / uint64(r.pageSize)
	_, err = r.walk(root, 0, f)
	return err
}

// damage is an error of a page that does not read or parse: as the
// mapping would have it (a fault there is ErrCorrupt, see guard).
func damage(format string, args ...any) error {
	return fmt.Errorf("%w: search index: %w", ErrCorrupt, fmt.Errorf(format, args...))
}
