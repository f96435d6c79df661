// Package names owns lanchat's rules for node names: which strings may be
// a name, the one form in which a name is shown and sent, and the key by
// which two names are compared.
//
// A name is enforced with the IETF PRECIS Nickname profile (RFC 8266,
// golang.org/x/text/secure/precis): Unicode normalisation NFKC, which
// also folds width (full-width "ａｌｉｃｅ" is "alice"), and the PRECIS
// FreeformClass, which refuses control characters, unassigned code points
// and default-ignorable ones. Two names are the same name when their
// comparison keys (Key) are equal: the key is the enforced form with case
// folded, so "alice", "Alice" and "ａｌｉｃｅ" are one name.
//
// On top of the profile, lanchat's own rules, so that a name can be typed
// as one command argument and cannot pass for something else:
//
//   - 1 to MaxLen (64) bytes once enforced; input longer than
//     MaxInputLen bytes is refused before any processing.
//   - No Unicode whitespace of any kind (Nickname allows inner ASCII
//     spaces; lanchat does not), and none of the characters a terminal
//     does not show (control, bidi and other format characters, line and
//     paragraph separators, default-ignorable code points: termtext.Unsafe),
//     nor U+2800 BRAILLE PATTERN BLANK, which prints as a blank.
//   - It may not start with '#' (kept for channels) or '/' (commands).
//   - It may not look like a node id prefix. Ids are 52 characters of
//     base32 (A-Z, 2-7), shown as 8-character upper-case prefixes, and a
//     PEER argument of 4 or more characters may be an id prefix. A name of
//     4 or more characters made only of upper-case letters (of any
//     script), digits (of any script) and '-' is refused: "K7QX-M2PA",
//     "BOB2", "ABCD" and "ＡＢＣＤ" (which NFKC makes "ABCD") could all pass
//     for an id; "alice", "bob2", "Bob", "R2", "IBM" and "k7qx" are names.
//     Lower-case id look-alikes stay possible as names, since ids are
//     never shown in lower case; PEER arguments must therefore resolve an
//     id prefix before a name.
//
// Check is the decoder's test: a name received from the network must
// already be in enforced form, so every node shows and compares it alike.
package names
