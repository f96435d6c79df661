package transfer

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// freeSpace is how many bytes an unprivileged writer can still put in
// dir's filesystem.
func freeSpace(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, &os.PathError{Op: "statfs", Path: dir, Err: err}
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// syncFS makes everything written to f's filesystem durable with one
// call (syncfs(2)): cheaper than an fsync per file for many small files.
func syncFS(f *os.File) error {
	return unix.Syncfs(int(f.Fd()))
}

func isNoSpace(err error) bool {
	return errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT)
}

// linkUnsupported reports the errors of a filesystem without hard links.
func linkUnsupported(err error) bool {
	return errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EMLINK) || errors.Is(err, unix.EXDEV)
}
