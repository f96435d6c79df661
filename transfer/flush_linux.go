package transfer

import (
	"os"

	"golang.org/x/sys/unix"
)

// flushData writes f's bytes from from to to out to the disk, waits for
// them, and drops them out of the page cache (which is only advice). It
// uses sync_file_range: the data only, no journal commit and no flush of
// the disk's cache, which fdatasync would do for every window and which
// every other fsync on the disk (the chat store's) would wait behind.
// The checkpoints' fsyncs make the data durable.
func flushData(f *os.File, from, to int64) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	cerr := rc.Control(func(fd uintptr) {
		ferr = unix.SyncFileRange(int(fd), from, to-from,
			unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
		if ferr == unix.ENOSYS || ferr == unix.EINVAL {
			ferr = unix.Fdatasync(int(fd))
		}
		if ferr == nil {
			unix.Fadvise(int(fd), from, to-from, unix.FADV_DONTNEED)
		}
	})
	if ferr != nil {
		return &os.PathError{Op: "sync_file_range", Path: f.Name(), Err: ferr}
	}
	return cerr
}
