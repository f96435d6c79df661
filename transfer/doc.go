// Package transfer owns file and folder transfers between two nodes: the
// offer and its answer, the streams that carry the data, the checks on
// every name and byte a peer sends, the files under the download folder
// and the state that lets a transfer resume after a cut or a restart.
//
// It sees only authenticated streams and node ids. The node dials a
// stream for it (Dialer: TLS 1.3, ALPN "lanchat-transfer/1", the peer's id
// proven) and hands it every inbound one (Manager.Accept). One transfer
// uses one stream at a time; a new stream for a transfer replaces the old.
//
// # What it guarantees
//
//   - Integrity: every file is hashed (BLAKE3) as it is read on the sender
//     and as it is written on the receiver, written under a temporary name
//     (.lanchat-partial/ID/INDEX in the download folder) and put in place
//     only once the sender's hash matches. A transfer is never done with a
//     wrong byte.
//   - Resume: the sender redials with jittered exponential backoff while a
//     transfer lives (at once on PeerUp). The receiver goes on from every
//     byte it wrote when the stream was cut, and after a restart from its
//     last checkpoint (the partial file synced, position and hash of the
//     prefix saved: see Options.CheckpointBytes for when). On a restart
//     it reads the partial file back and checks it against that hash; a
//     mismatch starts that file again.
//   - Disk: a received file is written out to the disk as it arrives:
//     where the filesystem allows, chunk by chunk with direct I/O, never
//     through the page cache (direct.go); else, and for the unaligned
//     bytes (a file's tail), 4 MiB at a time, dropped from the page cache
//     once written (flush.go). Other fsyncs on that disk, the chat
//     store's, find little of the transfer's to write out, and a large
//     file does not push other files out of memory.
//   - A source that changes (size, modification time, or content, checked
//     by reading the sent prefix back on every resume) fails the transfer:
//     never a splice of two versions.
//   - Receiver safety: names from the sender are untrusted. Offers are
//     refused with a reason for absolute paths, "..", "." or empty
//     components, NUL, control, format and bidirectional characters,
//     backslashes, names over 255 bytes, paths over 4096 bytes or 64
//     levels, folders not listed before their contents, more entries than
//     Options.MaxFiles, more bytes than the free space. Every file
//     operation goes through an os.Root on the download folder, so nothing
//     is written outside it even if a link appears inside meanwhile; only
//     regular files and folders are made; nothing existing is replaced
//     ("name (1).ext", "folder (1)"); names the filesystem cannot hold are
//     refused before any data moves. A sender that sends more than it
//     offered, data out of order or for an entry not offered is cut off
//     and the transfer fails.
//   - A full disk fails the transfer on both sides with a clear reason
//     and keeps the partial data; AcceptOffer on the receiver resumes it
//     (the receiver dials the sender and asks it to go on).
//   - CPU: the goroutines that move a transfer's data (the sender's
//     reading and sending, the receiver's reading and writing) run on
//     threads of their own at nice 10 (background, nice_linux.go), each
//     with a Go processor of its own, given back when the last data
//     goroutine ends (procs.go): on a busy machine chat and commands run
//     first, and never wait for a processor a data goroutine holds.
//   - Chat first: while chat lines pass with the peer (Manager.Chatting,
//     within Options.ChatWindow of the last), the sender paces its data
//     to Options.ChatShare of the rate it measured while none did
//     (pace.go), and its Progress events say Yielding.
//   - Memory is bounded per transfer (a few 256 KiB buffers per side),
//     whatever the size of the files.
//
// # Wire format
//
// A frame is a 4-byte big-endian length N, then a type byte and N-1 bytes
// of payload. N is checked against the type's limit before any payload is
// read: 16 MiB for an offer, 12 bytes plus 256 KiB for data, 4 KiB for
// every other message. Integers are big-endian, strings and byte strings
// a uvarint length and the bytes; a payload with bytes left over, an
// unknown type, kind or code, or a field out of range is an error that
// ends the stream.
//
//	1  offer    id, hash u8 (1 sha256, 2 blake3), count uvarint, then per
//	            entry: kind u8 (0 file, 1 folder), path, size u64 (files)
//	2  accept   next u32, offset u64, prefix hash (empty when offset is 0)
//	3  reject   id, code u8, reason
//	4  data     index u32, offset u64, the bytes (1 to 256 KiB)
//	5  file end index u32, hash
//	6  ack      next u32, offset u64: durable on the receiver up to here
//	7  done     id: every file verified and in place
//	8  cancel   id, reason
//	9  error    id, code u8, reason
//	10 ping     (nothing): sent after a third of the idle timeout
//	11 resume   id: the receiver asks the sender to go on
//
// The sender opens a stream and offers; the receiver answers reject, or
// accept from where its verified data ends (entries before next complete,
// offset bytes of entry next, with their hash). The sender checks that
// hash against its source, then sends data and a file end per file in
// order; the receiver acknowledges checkpoints and ends with done. Either
// side may cancel, or end with an error (codes: rejected, expired,
// invalid, no space, protocol, hash mismatch, source changed, I/O,
// unknown, busy). An offer of a known transfer id is answered from its
// state: resumed, or the message that ended it. A stream may also start
// with resume, cancel or error for a known transfer of that peer.
//
// # State
//
// One JSON file per transfer in the state folder, written with a
// temporary file, fsync and rename. The sender keeps its sources with
// their size and modification time; the receiver its position, the local
// names of the top-level entries, and the renames a checkpoint began
// (finished on load). Every field is checked on load; a file that fails
// is ignored with a log line.
package transfer
