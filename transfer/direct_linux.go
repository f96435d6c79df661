package transfer

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// openDirect opens name in r again, for writing with direct I/O, and
// checks that it is the file f is; nil when the filesystem refuses direct
// I/O (tmpfs) or anything else fails: the writes then all go through f.
func openDirect(r *os.Root, name string, f *os.File) *os.File {
	d, err := r.OpenFile(name, os.O_WRONLY|unix.O_DIRECT, 0)
	if err != nil {
		return nil
	}
	fi, err1 := f.Stat()
	di, err2 := d.Stat()
	if err1 != nil || err2 != nil || !os.SameFile(fi, di) {
		d.Close()
		return nil
	}
	return d
}

// directRefused reports the errors of a direct write the filesystem or
// the device does not take (alignment it wants larger, no support).
func directRefused(err error) bool {
	return errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOTSUP)
}
