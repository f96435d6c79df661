package peer

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

type handed struct {
	kind, from string
	c          net.Conn
}

// TestTransferStreams: a connected peer opens streams of their own beside
// the chat connection, authenticated with the same keys; a node not
// connected cannot, and a peer's open streams are bounded.
func TestTransferStreams(t *testing.T) {
	got := make(chan handed, 32)
	a := startNode(t, "alice")
	b := startNodeWith(t, Config{Name: "bob", OnStream: func(kind, from string, c net.Conn) {
		got <- handed{kind, from, c}
	}})
	stranger := startNode(t, "mallory")
	ctx := context.Background()
	if _, err := a.DialTransfer(ctx, b.ID()); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("stream to a node never met: %v", err)
	}
	connected(t, a, b)
	c, err := a.DialTransfer(ctx, b.ID())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var h handed
	select {
	case h = <-got:
	case <-time.After(wait):
		t.Fatal("bob was handed no stream")
	}
	defer h.c.Close()
	if h.kind != StreamTransfer || h.from != a.ID() {
		t.Fatalf("bob got a %q stream from %s", h.kind, ShortID(h.from))
	}
	if _, err := c.Write([]byte("bulk")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	h.c.SetReadDeadline(time.Now().Add(wait))
	if _, err := io.ReadFull(h.c, buf); err != nil || string(buf) != "bulk" {
		t.Fatalf("read %q, %v", buf, err)
	}
	// Chat goes on beside it.
	if _, err := a.Say("beside the stream"); err != nil {
		t.Fatal(err)
	}
	next(t, b, func(e Chat) bool { return e.Text == "beside the stream" })

	// A node that is not connected to bob is refused. (It is connected to
	// no one: connected to alice, it would be introduced to bob.)
	stranger.mu.Lock()
	stranger.peers[b.ID()] = &Peer{id: b.ID(), name: "bob", dialAddr: b.addr(), link: &link{}}
	stranger.mu.Unlock()
	sc, err := stranger.DialTransfer(ctx, b.ID())
	if err == nil {
		sc.SetReadDeadline(time.Now().Add(wait))
		if _, err := sc.Read(buf); err == nil {
			t.Fatal("a node not connected to bob got a stream to him")
		}
		sc.Close()
	}
	stranger.mu.Lock()
	delete(stranger.peers, b.ID())
	stranger.mu.Unlock()

	// At most maxStreamsPerPeer at once.
	var extra []net.Conn
	defer func() {
		for _, c := range extra {
			c.Close()
		}
	}()
	for range maxStreamsPerPeer + 2 {
		c, err := a.DialTransfer(ctx, b.ID())
		if err == nil {
			extra = append(extra, c)
		}
	}
	handedOver := 1
	take := func() {
		for len(got) > 0 {
			h := <-got
			extra = append(extra, h.c) // closed at the end
			if h.from != a.ID() {
				t.Errorf("bob was handed a stream from %s", ShortID(h.from))
				continue
			}
			handedOver++
		}
	}
	take()
	time.Sleep(200 * time.Millisecond)
	take()
	if handedOver > maxStreamsPerPeer {
		t.Errorf("bob took %d streams from alice, bound %d", handedOver, maxStreamsPerPeer)
	}
}
