// Package transport owns lanchat's sockets and wire format: the TCP
// listener and the UDP socket a node binds, the length-prefixed frames
// carried on TCP streams, the datagrams carried over UDP, and the binary
// encoding of every message.
//
// # Frames (TCP)
//
// A frame is a 4-byte big-endian length N followed by N bytes: one byte of
// frame type and N-1 bytes of payload. N is at least 1 and at most
// MaxFrame (64 KiB). A reader skips frames of a type it does not know, so
// later versions can add messages; a frame that is too long or a payload
// that does not decode is a protocol error and the connection is closed.
//
// # Datagrams (UDP)
//
// A datagram is the 2-byte magic "LC", a protocol version byte, the
// sender's node id (uvarint length and bytes) and an 8-byte counter, all
// in clear and authenticated; then, sealed with AES-256-GCM under the key
// of that direction (Channel), a type byte (the same numbering as frame
// types) and the payload. Every request and response payload starts with
// its 8-byte request id. Datagrams that do not parse, fail to open, or
// repeat a counter are dropped.
//
// # Encoding
//
// Integers are big-endian and fixed width; strings and byte strings are a
// uvarint length followed by the bytes. Decoders ignore trailing bytes, so
// a message may grow new fields at its end without a version bump.
//
// # Connections
//
// Conn wraps an accepted or dialled stream (TLS in practice). Its owner
// reads; Send only appends to a write queue bounded in bytes and returns
// at once. A writer goroutine exists while the queue is not empty and
// writes it in large writes; the owner may write a reply itself when
// nothing else is queued (the fastest round trip). A peer that accepts no
// data for the stall timeout while some waits has its connection closed
// (ErrStalled); Close never writes, so it never waits on the peer.
package transport
