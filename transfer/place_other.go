//go:build !linux

package transfer

import (
	"errors"
	"os"
)

// renameNoReplace is not available here: files are placed with a link
// and a removal.
func renameNoReplace(oldDir *os.File, oldName string, newDir *os.File, newName string) error {
	return errors.ErrUnsupported
}

func renameNoReplaceUnsupported(err error) bool { return errors.Is(err, errors.ErrUnsupported) }
