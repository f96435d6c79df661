// Package store owns what a node keeps on disk between runs: the outbox of
// every peer (chat and direct messages not yet acknowledged), the id of the
// last message received from each sender (so that a resend is shown once,
// across restarts of either side), the sequence of this node's message ids
// and the chat history. It is one go.etcd.io/bbolt file per identity.
//
// # Guarantees
//
//   - Durability is grouped: Append and Receive decide at once, in memory,
//     and return a Commit; one goroutine (the committer) writes everything
//     that arrived while its previous write ran in one transaction with one
//     sync. Commit.Wait returns nil once the operation is on disk. A failed
//     commit (disk full, I/O error) fails every operation queued behind it
//     as well, and the in-memory state goes back to what is on disk, so a
//     later operation never builds on one that was lost.
//   - A message appended is listed by Outbox, and removed by Acked, while
//     its commit runs: it may go to its peers at once. An acknowledgement
//     that comes before the commit ends is applied after it, never undone
//     by it. Should the commit fail, Lost reports the message's id.
//   - Append refuses a message (ErrDiskFull) when the file system's free
//     space, looked at after each commit and at most 100 ms before, does
//     not cover what the queued commits may write, with a margin: a
//     message that went to its peers is seldom lost for want of space.
//   - Message ids grow strictly across restarts: they are leased in blocks
//     whose ceiling is on disk before an id under it is handed out, so a
//     crash at any point never reuses one.
//   - The epoch is a random number made with the file. A store moved aside
//     and made anew has a new epoch, and its ids may start again: message
//     identity is (sender id, epoch, message id).
//   - Acked is cheap: memory changes at once, and the removal reaches the
//     disk with the next commit, which it does not ask for (it waits at
//     most 200 ms for one). A lost ack only causes a resend, which the
//     receiver drops. Drop waits for its commit.
//   - Bounds (per peer and in all, in messages and bytes of text) are checked
//     before anything is written; a refusal names the peer and the bound.
//   - A corrupt or unreadable file is moved aside (PATH.corrupt-TIMESTAMP) at
//     Open and a fresh store is made; MovedAside reports it. Damage found
//     later is returned as ErrCorrupt and the file is marked, so that the
//     next Open moves it aside. A second process on the same file is
//     refused with ErrLocked.
//
// # On disk
//
// Buckets: meta (format, epoch, id ceiling), out/PEER
// (message id → waiting message), recv (sender → epoch and last id),
// hist (sequence → line), fold (sequence of a block's first line → the
// conversation tags and lowercased texts of up to 128 consecutive lines:
// what Search and History of one peer scan). A waiting message and a line
// end with their text, then its chat flags (/me) when not zero: records
// written before flags were kept read as flags 0. Every value ends with a
// CRC-32C of itself, since bbolt checks only its meta pages.
package store
