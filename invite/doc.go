// Package invite reads and writes the ways a user names a node by hand:
// the invite line that /invite prints and /connect and --peer accept,
//
//	lanchat://ID@HOST:PORT[,HOST:PORT...]
//
// the plain form [ID@]HOST:PORT of --peer and /connect, and the peers file
// (--peers-file), one of either form per line, with # comments. ID is a
// node id (52 characters of base32, dashes and case ignored); with it,
// the node reached must prove that id. Everything here comes from users
// or from files others may write: every line, address and count is
// bounded, and a bad line is an error naming it while the others are
// still used. Watch re-reads the peers file when it changes.
package invite
