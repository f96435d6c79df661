package transport

import (
	"net"
	"strings"
	"testing"
	"time"
)

// connPair is two Conns over loopback TCP, closed at the end of the test.
func connPair(t *testing.T) (*Conn, *Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	d, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var a net.Conn
	select {
	case a = <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted")
	}
	if a == nil {
		t.Fatal("accept failed")
	}
	ca, cb := NewConn(d), NewConn(a)
	t.Cleanup(func() { ca.Close(); cb.Close() })
	return ca, cb
}

// TestConnLetsLargeBuffersGo: a large frame (a peer list, a long message)
// grows a connection's buffers; once the connection is quiet they are let
// go, so that the many idle connections of a large group stay small.
func TestConnLetsLargeBuffersGo(t *testing.T) {
	tests := []struct {
		name string
		big  int // bytes of text in the large frame
	}{
		{"just over the kept size", keepBuffer + 1},
		{"largest message", MaxText},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := connPair(t)
			small := Chat{MsgID: 2, Text: "hi"}
			if err := a.Send(Chat{MsgID: 1, Text: strings.Repeat("x", tt.big)}); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(5 * time.Second)
			if _, p, err := b.Read(deadline); err != nil || len(p) <= tt.big {
				t.Fatalf("large frame: %d bytes, %v", len(p), err)
			}
			if cap(b.buf) <= tt.big {
				t.Fatalf("read buffer of %d bytes holds a frame of more than %d", cap(b.buf), tt.big)
			}
			// Nothing more was waiting: the next read lets it go.
			if err := a.Send(small); err != nil {
				t.Fatal(err)
			}
			if _, _, err := b.Read(deadline); err != nil {
				t.Fatal(err)
			}
			if cap(b.buf) > keepBuffer {
				t.Errorf("read buffer of %d bytes kept after the large frame (keep at most %d)", cap(b.buf), keepBuffer)
			}

			writeBufs := func() int {
				a.mu.Lock()
				defer a.mu.Unlock()
				return max(cap(a.pend), cap(a.spare))
			}
			// A Send soon after a write is left to a flush goroutine:
			// wait for it, as Trim does not touch a connection writing.
			for quiet := false; !quiet; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("writes still under way")
				}
				a.mu.Lock()
				quiet = !a.writing && !a.flushing && len(a.pend) == 0
				a.mu.Unlock()
			}
			sent := writeBufs()
			if sent <= tt.big {
				t.Fatalf("write buffers of %d bytes sent a frame of more than %d", sent, tt.big)
			}
			a.Trim(time.Now()) // too soon: kept for the next burst
			if kept := writeBufs(); kept != sent {
				t.Errorf("Trim right after a write let buffers go (%d bytes, had %d)", kept, sent)
			}
			a.Trim(time.Now().Add(trimAfter))
			if left := writeBufs(); left > keepBuffer {
				t.Errorf("Trim after %v of quiet kept %d bytes of write buffer", trimAfter, left)
			}
			// Still usable.
			if err := a.Send(small); err != nil {
				t.Fatal(err)
			}
			if _, p, err := b.Read(deadline); err != nil || !strings.Contains(string(p), "hi") {
				t.Fatalf("after Trim: %q, %v", p, err)
			}
		})
	}
}
