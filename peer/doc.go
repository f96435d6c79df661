// Package peer owns a node's view of the other nodes: the peers it is
// connected to or reconnecting to (Peer), the one connection held to each
// (link) with its datagram channel, the handshake that settles which
// connection a pair keeps, delivery (outboxes, acknowledgements), the
// keeper that watches liveness, the dialling policy, and the requests
// (time, echo) sent over either transport.
//
// Files: node.go (the Node, its lock order, Run, Leave), table.go (the
// table and lookups), peer.go (Peer), link.go (a connection's reader),
// keeper.go (heartbeats, silence), outbox.go (delivery), dial.go
// (discovery, reconnection), remember.go (the address book: recording
// where peers listen, redialling absent ones), given.go (nodes given by
// hand in a list that changes: the peers file), handshake.go and
// secure.go (securing and admitting a connection), chat.go, request.go,
// series.go, udp.go, names.go (names are one per person: SameName),
// away.go (/away), udpchat.go (chat over a datagram).
//
// # Writes
//
// No socket is written under a lock or on a caller's goroutine: each
// connection's writes go through its write queue (transport.Conn), which
// is bounded in bytes. A peer's messages wait in its outbox and are handed
// to the queue in order as it has room; a peer that takes nothing for a
// while is reported as not reading (once), and one that takes nothing for
// the stall timeout loses its connection and is reconnected like any
// other, its unacknowledged messages sent again. So one slow or stopped
// peer never delays the others, nor the console, nor the keeper.
//
// # Durable delivery
//
// With a store, a message is on its way to its peers as soon as the store
// has given it an id, while its commit runs; the Stored event waits for
// the commit, and a Delivered event never comes before it. A receiver
// shows a fresh message at once, in order, and acknowledges it only once
// its own commit is durable (and, with ConfirmShown, once it is shown);
// with ConfirmShown it tells the sender at once how far it has shown
// (Ack.Shown), and what the sender sends again is marked shown: a crash
// of the receiver before its commit does not show a message twice. A
// commit that fails on the sender takes the message out of the windows
// (it is not sent again; the Problem says it may have arrived); one that
// fails on the receiver closes the connection, and the sender sends again
// what was not acknowledged.
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
