//go:build unix

package identity

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// Lock takes an exclusive lock on the key file for the life of the
// process (the kernel drops it when the process ends, however it ends).
// Two running nodes with one key would be one id in two places: peers
// would keep replacing one connection with the other.
func Lock(path string) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("lock identity key: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("identity %s is in use by another running lanchat: give this one its own with --identity PATH", path)
		}
		return nil, fmt.Errorf("lock identity key %s: %w", path, err)
	}
	return f, nil
}
