//go:build !linux

package transfer

// background does nothing here: thread priorities are Linux's (see
// nice_linux.go), and without them a data goroutine holds no processor
// longer than any other goroutine.
func background() (done func()) { return func() {} }
