//go:build !linux

package discovery

// ifaceWatch is not available here: the loops list the interfaces at
// every poll.
type ifaceWatch struct{}

func newIfaceWatch() *ifaceWatch { return nil }

func (w *ifaceWatch) drain() bool { return true }

func (w *ifaceWatch) release() {}
