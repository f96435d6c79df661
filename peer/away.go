package peer

import (
	"fmt"
	"sync"

	"lanchat/transport"
)

// userStatus is this node's user's away state, told to every peer when
// it changes and to each peer when it connects.
type userStatus struct {
	mu   sync.Mutex // protects following
	away bool
	text string
}

func (s *userStatus) get() transport.Away {
	s.mu.Lock()
	defer s.mu.Unlock()
	return transport.Away{Away: s.away, Text: s.text}
}

// SetAway marks this node's user as away, with a text (may be empty), or
// back (away false, no text), and tells every connected peer. A peer
// that connects later is told when it connects.
func (n *Node) SetAway(away bool, text string) error {
	if !away && text != "" {
		return fmt.Errorf("no text when back")
	}
	if err := transport.CheckAwayText(text); err != nil {
		return err
	}
	n.status.mu.Lock()
	n.status.away, n.status.text = away, text
	n.status.mu.Unlock()
	n.mu.Lock()
	ls := n.linksLocked()
	n.mu.Unlock()
	for _, l := range ls {
		n.tellStatus(l)
	}
	return nil
}

// Away reports this node's user's away state.
func (n *Node) Away() (away bool, text string) {
	m := n.status.get()
	return m.Away, m.Text
}

// tellStatus sends the user's away state to l. A full queue drops it: the
// peer then shows a stale state until the next change or connection,
// which is better than holding the state here for a peer not reading.
func (n *Node) tellStatus(l *link) {
	if err := l.conn.Send(n.status.get()); err != nil {
		n.log.Debug("away state not sent", "peer", l.name(), "err", err)
	}
}

// statusFrame takes a peer's away state and reports a change.
func (l *link) statusFrame(payload []byte) error {
	m, err := transport.DecodeAway(payload)
	if err != nil {
		return err
	}
	p := l.p
	p.mu.Lock()
	changed := p.userAway != m.Away || p.awayText != m.Text
	p.userAway, p.awayText = m.Away, m.Text
	p.mu.Unlock()
	if changed {
		l.n.emit(Status{Peer: p.ref(), Away: m.Away, Text: m.Text})
	}
	return nil
}
