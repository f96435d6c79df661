//go:build !linux

package discovery

import "syscall"

// reusePort does nothing here: a second lanchat process on the host
// cannot bind the beacon port, and runs without beacons.
func reusePort(_, _ string, _ syscall.RawConn) error { return nil }
