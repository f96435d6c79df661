// Package peer owns a node's view of the other nodes: the peer table, the
// one TCP connection and the datagram channel held to each peer, the
// handshake that settles which connection a pair keeps, and the requests
// (time, echo) sent over either transport.
//
// # Handshake
//
// Both ends send a hello (magic, protocol version, node id, name, UDP port,
// a per-process session number). The end whose id sorts first is the
// decider: it admits the connection into its table and answers welcome, or
// answers duplicate when it already holds a connection to the same session
// of that node. The other end registers the connection only after welcome.
// So when both ends dial at once, exactly one connection survives, and no
// flapping join/leave is shown. A hello from a new session of a known node
// replaces the old connection (the node restarted).
//
// # Datagram channel
//
// After the handshake each side sends probes to the peer's announced UDP
// port at its TCP address; a probe is answered with a probe ack from which
// the sender learns the address the peer really sends from. Datagrams from
// senders not in the table, and ones that do not decode, are dropped and
// counted.
//
// # Requests
//
// A request is registered under a fresh request id before it is sent, and
// whoever removes the entry completes it (net/rpc's rule). A reply is
// accepted only from the peer the request went to. Over UDP each retry is
// a new request id, so the round trip of the attempt that was answered is
// known exactly. A series of echoes (/echo -n) sends each next echo from
// the goroutine that read the reply, with no hand-off between echoes; its
// caller collects the results.
package peer
