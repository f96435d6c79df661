// Package console owns what the user sees and types: the readline prompt
// on a terminal (terminal.go: raw mode for as long as it is up, pastes,
// Ctrl-C; keys.go: Home and End as tmux and screen send them;
// complete.go: Tab), plain line reading when stdin is not one (input.go),
// the commands (commands.go, peers.go, history.go, transfer.go,
// verify.go, invite.go), and the rendering of every event
// as a plain line (style.go: colours and the bell; own.go: one's own
// lines with their delivery mark) or, with --json, as one JSON object per
// line (events.go: one struct per event).
//
// All output goes through one Printer under one lock; on a terminal it is
// written through readline's Stdout, which clears the line being typed,
// prints, and redraws the prompt with the input intact. One goroutine
// (the pump) renders the node's events and one's own lines.
package console
