package peer

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"
)

// Streams: connections of their own beside a peer's chat connection, to
// the same port, mutually authenticated with the same keys (a file
// transfer moves on one, so that it never delays chat).

// maxStreamsPerPeer bounds the streams a peer may have handed over at
// once, so that a peer cannot hold many of this node's descriptors.
const maxStreamsPerPeer = 8

// OnStream receives an inbound stream of kind from the connected peer
// peerID, authenticated; it owns c from then on and must not block.
type OnStream func(kind, peerID string, c net.Conn)

// DialTransfer opens a new transfer stream to the connected peer with
// this id, proving its identity (transfer.Dialer).
func (n *Node) DialTransfer(ctx context.Context, peerID string) (net.Conn, error) {
	return n.dialStream(ctx, peerID, StreamTransfer)
}

func (n *Node) dialStream(ctx context.Context, peerID, kind string) (net.Conn, error) {
	<-n.ready
	n.mu.Lock()
	p := n.peers[peerID]
	n.mu.Unlock()
	if p == nil {
		return nil, fmt.Errorf("open a %s stream: %w %s", kind, ErrUnknownPeer, ShortID(peerID))
	}
	p.mu.Lock()
	addr, live := p.dialAddr, p.link != nil
	p.mu.Unlock()
	if !live {
		return nil, fmt.Errorf("open a %s stream to %s: %w", kind, ShortID(peerID), ErrAway)
	}
	if addr == "" {
		return nil, fmt.Errorf("open a %s stream to %s: its listening address is not known", kind, ShortID(peerID))
	}
	raw, err := n.net.Dial(ctx, addr, DialTimeout)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(HandshakeTimeout)
	raw.SetDeadline(deadline)
	hctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	sec, err := n.secure.Secure(hctx, raw, true, kind)
	if err != nil {
		raw.Close()
		return nil, fmt.Errorf("open a %s stream to %s: %w", kind, addr, err)
	}
	if sec.ID != peerID {
		raw.Close()
		return nil, fmt.Errorf("open a %s stream to %s: %w: it proved to be %s", kind, addr, ErrIdentity, ShortID(sec.ID))
	}
	raw.SetDeadline(time.Time{})
	return sec.Conn, nil
}

// acceptStream hands an inbound stream to its owner, if the peer is
// connected and within its bound; otherwise it is closed.
func (n *Node) acceptStream(sec Secured, raw net.Conn) error {
	n.mu.Lock()
	live := n.links[sec.ID] != nil
	ok := live && n.onStream != nil && n.streams[sec.ID] < maxStreamsPerPeer
	if ok {
		n.streams[sec.ID]++
	}
	n.mu.Unlock()
	if !ok {
		raw.Close()
		if !live {
			return fmt.Errorf("%s stream from %s: not a connected peer", sec.Stream, ShortID(sec.ID))
		}
		return fmt.Errorf("%s stream from %s refused: %d open already, or nobody takes them", sec.Stream, ShortID(sec.ID), maxStreamsPerPeer)
	}
	raw.SetDeadline(time.Time{})
	n.onStream(sec.Stream, sec.ID, &countedConn{Conn: sec.Conn, done: func() {
		n.mu.Lock()
		if n.streams[sec.ID]--; n.streams[sec.ID] <= 0 {
			delete(n.streams, sec.ID)
		}
		n.mu.Unlock()
	}})
	return nil
}

// countedConn calls done once when closed.
type countedConn struct {
	net.Conn
	done func()
	once sync.Once
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.done)
	return err
}
