// Package identity owns a node's long-term identity and what it remembers
// of other nodes' identities.
//
// A node's identity is an Ed25519 key kept in a PEM (PKCS #8) file, by
// default os.UserConfigDir()/lanchat/identity.pem, mode 0600 in a 0700
// directory; a key file that group or others may access is refused, with
// the chmod command that fixes it (as ssh does). The node id is the
// SHA-256 of the public key in base32 (52 characters, ValidID; like a
// Syncthing device id without check digits); the first 8 characters are
// the short id shown beside names. The fingerprint is the same hash in
// SSH's "SHA256:base64" form. VerifyCode is the short code two users
// compare to know that their nodes hold each other's real keys.
//
// The known-peers file beside the key (known_peers) works like SSH's
// known_hosts: the first time a name is seen with an id, the pair is
// recorded (trust on first use). Names are compared by their names.Key,
// so "alice", "Alice" and "ａｌｉｃｅ" are one name. A known name that
// later turns up with another id is a conflict, never silently trusted,
// until the user trusts the new id or forgets the old one. A pin is
// trusted, or verified once the users compared the verification code.
// For each pinned id the file also keeps the listening addresses it was
// last reached at (a few, most recent first, each with when), so known
// peers can be dialled again where multicast does not reach.
//
// # File format
//
// The first line is "# lanchat known_peers v2"; then one record a line,
// fields separated by spaces, "#" lines are comments:
//
//	pin "NAME" ID LEVEL FIRST-SEEN
//	addr ID HOST:PORT LAST-REACHED
//
// NAME is a Go-quoted string, so whatever a peer calls itself round-trips;
// LEVEL is trusted or verified; dates are RFC 3339 in UTC. New records are
// appended; the file is rewritten (atomically, mode 0600) when the user
// trusts, verifies or forgets, and to compact superseded addr lines.
// Files of the old format ("NAME ID [DATE]" lines) are read, and rewritten
// in this one at the first change. A line that cannot be read is skipped
// with a warning naming the file and line, and kept as it is when the
// file is rewritten: the node never refuses to start because of it.
package identity
