//go:build !linux

package transfer

// background does nothing here: thread priorities are Linux's (see
// nice_linux.go).
func background() {}
