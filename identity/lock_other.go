//go:build !unix

package identity

import "os"

// Lock is a no-op where flock is not available.
func Lock(path string) (*os.File, error) { return os.Open(path) }
