package transfer

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// renameNoReplace renames oldName in oldDir to newName in newDir unless
// newName exists (fs.ErrExist then): one system call (renameat2 with
// RENAME_NOREPLACE) where a link and a removal take two, and never a
// moment with both names. Both names are single components: the final
// one is never followed.
func renameNoReplace(oldDir *os.File, oldName string, newDir *os.File, newName string) error {
	err := unix.Renameat2(int(oldDir.Fd()), oldName, int(newDir.Fd()), newName, unix.RENAME_NOREPLACE)
	if err != nil {
		return &os.LinkError{Op: "renameat2", Old: oldName, New: newName, Err: err}
	}
	return nil
}

// renameNoReplaceUnsupported reports the errors of a kernel or a
// filesystem without RENAME_NOREPLACE.
func renameNoReplaceUnsupported(err error) bool {
	return errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP)
}
