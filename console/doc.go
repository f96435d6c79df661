// Package console owns what the user sees and types: the readline prompt
// on a terminal, plain line reading when stdin is not one, the commands
// (/msg, /time, /echo, /peers, /nick, /connect, /help, /quit), and the
// rendering of every event as a plain line or, with --json, as one JSON
// object per line.
//
// All output goes through one Printer under one lock; on a terminal it is
// written through readline's Stdout, which clears the line being typed,
// prints, and redraws the prompt with the input intact.
package console
