package transfer

import (
	"os"

	"golang.org/x/sys/unix"
)

// flushData makes f's data durable (fdatasync: its size and blocks too,
// not its times) and drops the bytes from from to to out of the page
// cache, which is only advice.
func flushData(f *os.File, from, to int64) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	cerr := rc.Control(func(fd uintptr) {
		if ferr = unix.Fdatasync(int(fd)); ferr == nil {
			unix.Fadvise(int(fd), from, to-from, unix.FADV_DONTNEED)
		}
	})
	if ferr != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: ferr}
	}
	return cerr
}
