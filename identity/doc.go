// Package identity owns a node's long-term identity and what it remembers
// of other nodes' identities.
//
// A node's identity is an Ed25519 key kept in a PEM (PKCS #8) file, by
// default os.UserConfigDir()/lanchat/identity.pem, mode 0600 in a 0700
// directory. The node id is the SHA-256 of the public key in base32 (52
// characters, like a Syncthing device id without check digits); the first 8
// characters are the short id shown beside names. The fingerprint is the
// same hash in SSH's "SHA256:base64" form.
//
// The known-peers file beside the key (known_peers) works like SSH's
// known_hosts: the first time a name is seen with an id, the pair is
// recorded (trust on first use). A known name that later turns up with
// another id is a conflict, never silently trusted, until the user trusts
// the new id or forgets the old one.
package identity
