package console

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"testing"

	"lanchat/invite"
)

// TestInvite: /invite prints bob's line, and /connect with it reaches
// bob, who proves the id; a line with another id is refused.
func TestInvite(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, _ := startNode(t, ctx, "alice")
	b, btr := startNode(t, ctx, "bob")
	go func() {
		for {
			select {
			case <-b.Events():
			case <-ctx.Done():
				return
			}
		}
	}()
	bobLine := invite.Format(b.ID(), []netip.Addr{netip.MustParseAddr("127.0.0.1")}, btr.TCPPort())
	in, inw := io.Pipe()
	out := &jsonLines{}
	con := New(Config{Node: a, In: in, Out: out, JSON: true,
		Invite: func() (string, error) {
			return invite.Format(a.ID(), []netip.Addr{netip.MustParseAddr("127.0.0.1")}, 4000), nil
		}})
	runDone := make(chan error, 1)
	go func() { runDone <- con.Run(ctx) }()
	send := func(line string) {
		if _, err := io.WriteString(inw, line+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	out.wait(t, is("ready"))
	send("/invite")
	ev := out.wait(t, is("invite"))
	if ev["id"] != a.ID() || !strings.HasPrefix(ev["line"].(string), "lanchat://"+a.ID()+"@") {
		t.Fatalf("invite %v", ev)
	}
	// Another node's id at bob's address: refused.
	wrong := strings.Replace(bobLine, b.ID(), a.ID(), 1)
	send("/connect " + wrong)
	out.wait(t, func(ev map[string]any) bool {
		return ev["event"] == "error" && strings.Contains(ev["text"].(string), "expected to be node")
	})
	send("/connect lanchat://nonsense")
	out.wait(t, func(ev map[string]any) bool {
		return ev["event"] == "error" && strings.Contains(ev["text"].(string), "connect:")
	})
	// An address that does not answer first, then bob's.
	send(strings.Replace(fmt.Sprintf("/connect %s", bobLine), "@", "@127.0.0.1:1,", 1))
	up := out.wait(t, is("peer_up"))
	if up["id"] != b.ID() || up["via"] != "manual" {
		t.Fatalf("peer_up %v", up)
	}
	inw.Close()
	if err := <-runDone; err != nil {
		t.Fatal(err)
	}
}
