//go:build !linux

package transfer

import (
	"errors"
	"os"
	"syscall"
)

var errUnknownSpace = errors.New("free space unknown on this system")

func freeSpace(dir string) (int64, error) { return 0, errUnknownSpace }

// syncFS is not available: the caller syncs file by file.
func syncFS(f *os.File) error { return errors.ErrUnsupported }

func isNoSpace(err error) bool { return errors.Is(err, syscall.ENOSPC) }

func linkUnsupported(err error) bool {
	return errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EXDEV)
}
