package discovery

import (
	"errors"

	"golang.org/x/sys/unix"
)

// ifaceWatch is a non-blocking route socket that receives the kernel's
// link and address notifications of this network namespace. Nothing
// reads it between polls: the notifications wait in the socket (kernel
// memory), and an overflow reads as a change.
type ifaceWatch struct {
	fd  int
	buf []byte
	// broken: the socket failed; every call reports a change.
	broken bool
}

// newIfaceWatch opens the watch, or returns nil when it cannot.
func newIfaceWatch() *ifaceWatch {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return nil
	}
	sa := &unix.SockaddrNetlink{
		Family: unix.AF_NETLINK,
		Groups: unix.RTMGRP_LINK | unix.RTMGRP_IPV4_IFADDR | unix.RTMGRP_IPV6_IFADDR,
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil
	}
	return &ifaceWatch{fd: fd, buf: make([]byte, 4096)}
}

// drain reads every notification waiting and reports whether there was
// any. A notification larger than buf is cut, which does not matter:
// that it came is all that counts.
func (w *ifaceWatch) drain() bool {
	if w.broken {
		return true
	}
	changed := false
	for {
		n, err := unix.Read(w.fd, w.buf)
		switch {
		case err == nil && n > 0:
			changed = true
		case err == nil:
			return true // nothing to read yet no EAGAIN: do not spin
		case errors.Is(err, unix.EAGAIN):
			return changed
		case errors.Is(err, unix.ENOBUFS):
			changed = true // notifications were lost: assume the worst
		case errors.Is(err, unix.EINTR):
		default:
			w.broken = true
			return true
		}
	}
}

func (w *ifaceWatch) release() { unix.Close(w.fd) }
