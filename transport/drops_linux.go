package transport

import (
	"encoding/binary"
	"net"
	"syscall"
)

// enableDropCount asks the kernel to report, with each datagram, how
// many it dropped on this socket for want of buffer space (SO_RXQ_OVFL).
func enableDropCount(pc *net.UDPConn) {
	raw, err := pc.SyscallConn()
	if err != nil {
		return
	}
	raw.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RXQ_OVFL, 1)
	})
}

// countDrops records the kernel's drop counter carried in oob.
func (t *Transport) countDrops(oob []byte) {
	if len(oob) == 0 {
		return
	}
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return
	}
	for _, m := range msgs {
		if m.Header.Level == syscall.SOL_SOCKET && m.Header.Type == syscall.SO_RXQ_OVFL && len(m.Data) >= 4 {
			t.overruns.Store(uint64(binary.NativeEndian.Uint32(m.Data)))
		}
	}
}
