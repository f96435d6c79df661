package transport

import "errors"

var (
	// ErrTooLong is wrapped when a frame, datagram or text exceeds its limit.
	ErrTooLong = errors.New("too long")
	// ErrVersion is wrapped when the other side speaks another protocol version.
	ErrVersion = errors.New("unsupported protocol version")
	// ErrUnknownType is wrapped when a message type is not known here.
	ErrUnknownType = errors.New("unknown message type")
	// ErrClosed is returned by Send on a closed connection.
	ErrClosed = errors.New("connection closed")
)
