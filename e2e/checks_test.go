package e2e

import (
	"fmt"
	"math"
	"net"
	"strings"
	"testing"
	"time"
)

// chat sends a group message from one node and checks that each of to gets
// it, not marked direct.
func chat(t *testing.T, from *Node, text string, to ...*Node) {
	t.Helper()
	from.Send(t, text)
	for _, n := range to {
		ev := n.Wait(t, fmt.Sprintf("group chat %q from %s", text, from.Label), eventTimeout,
			is("chat", "id", from.ID, "text", text))
		if ev.Bool("direct") {
			t.Errorf("%s: group message %q arrived with direct=true: %v", n.Label, text, ev)
		}
		if ev.Str("from") == "" {
			t.Errorf("%s: chat event without sender name: %v", n.Label, ev)
		}
	}
}

// direct sends /msg target text from one node and checks that to gets it
// with direct=true.
func direct(t *testing.T, from *Node, target, text string, to *Node) Event {
	t.Helper()
	from.Send(t, "/msg "+target+" "+text)
	ev := to.Wait(t, fmt.Sprintf("direct message %q from %s", text, from.Label), eventTimeout,
		is("chat", "id", from.ID, "text", text))
	if !ev.Bool("direct") {
		t.Errorf("%s: /msg arrived without direct=true: %v", to.Label, ev)
	}
	return ev
}

// checkTime runs /time -transport target on n and checks the answer from
// peer: same machine clock, so the offset must be within 5 ms.
func checkTime(t *testing.T, n *Node, transport, target string, peer *Node) Event {
	t.Helper()
	mark := n.Mark()
	n.Send(t, fmt.Sprintf("/time -%s %s", transport, target))
	ev := n.WaitFrom(t, mark, fmt.Sprintf("time event over %s from %s", transport, peer.Label), eventTimeout,
		is("time", "id", peer.ID, "transport", transport))
	off, rtt := ev.Num("offset_ms"), ev.Num("rtt_ms")
	// One clock: the true offset is 0, and NTP's estimate is off by at
	// most half the round trip (the delay), whatever the load.
	if bound := rtt/2 + 0.5; math.IsNaN(off) || math.Abs(off) > bound {
		t.Errorf("%s: /time -%s: offset_ms %v, want |offset| ≤ %.2f (half the delay; one clock): %v", n.Label, transport, ev["offset_ms"], bound, ev)
	}
	if math.IsNaN(rtt) || rtt < 0 {
		t.Errorf("%s: /time -%s: bad rtt_ms %v: %v", n.Label, transport, ev["rtt_ms"], ev)
	}
	pt, err := time.Parse(time.RFC3339Nano, ev.Str("time"))
	if err != nil {
		t.Errorf("%s: /time -%s: time %q is not RFC 3339: %v", n.Label, transport, ev.Str("time"), err)
	} else if d := time.Since(pt); d < -5*time.Second || d > 20*time.Second {
		t.Errorf("%s: /time -%s: peer time %v is %v away from ours", n.Label, transport, pt, d)
	}
	return ev
}

// checkEcho runs /echo -transport target text on n and checks the reply.
func checkEcho(t *testing.T, n *Node, transport, target, text string, peer *Node) {
	t.Helper()
	mark := n.Mark()
	n.Send(t, fmt.Sprintf("/echo -%s %s %s", transport, target, text))
	ev := n.WaitFrom(t, mark, fmt.Sprintf("echo event over %s from %s", transport, peer.Label), eventTimeout,
		is("echo", "id", peer.ID, "transport", transport))
	if !ev.Bool("ok") || ev.Str("text") != text {
		t.Errorf("%s: /echo -%s %s: want ok=true text=%q: %v", n.Label, transport, target, text, ev)
	}
	if rtt := ev.Num("rtt_ms"); math.IsNaN(rtt) || rtt < 0 {
		t.Errorf("%s: /echo -%s: bad rtt_ms %v: %v", n.Label, transport, ev["rtt_ms"], ev)
	}
	if b := ev.Num("bytes"); math.IsNaN(b) || b < float64(len(text)) {
		t.Errorf("%s: /echo -%s: bytes %v, want at least %d: %v", n.Label, transport, ev["bytes"], len(text), ev)
	}
}

// waitPeerUp waits for n's peer_up for peer from cursor from on, and checks
// the name, the via and that addr is one of the peer host's addresses.
func waitPeerUp(t *testing.T, n *Node, from int, peer *Node, via string) Event {
	t.Helper()
	ev := n.WaitFrom(t, from, "peer_up for "+peer.Label, discoveryTimeout, is("peer_up", "id", peer.ID))
	if ev.Str("peer") != peer.Name {
		t.Errorf("%s: peer_up name %q, want %q: %v", n.Label, ev.Str("peer"), peer.Name, ev)
	}
	if via != "" && ev.Str("via") != via {
		t.Errorf("%s: peer_up via %q, want %q: %v", n.Label, ev.Str("via"), via, ev)
	}
	host, _, err := net.SplitHostPort(ev.Str("addr"))
	if err != nil {
		t.Errorf("%s: peer_up addr %q is not host:port: %v", n.Label, ev.Str("addr"), ev)
	} else if peer.Host != nil && peer.Host.IP4 != "" {
		ipaddr := net.ParseIP(strings.Split(host, "%")[0])
		if ipaddr == nil || !(ipaddr.Equal(net.ParseIP(peer.Host.IP4)) ||
			ipaddr.Equal(net.ParseIP(peer.Host.IP6)) || ipaddr.IsLinkLocalUnicast()) {
			t.Errorf("%s: peer_up addr %q is not an address of %s (%s, %s): %v",
				n.Label, ev.Str("addr"), peer.Host.Hostname, peer.Host.IP4, peer.Host.IP6, ev)
		}
	}
	return ev
}

func noPanics(t *testing.T, nodes ...*Node) {
	t.Helper()
	for _, n := range nodes {
		if s := n.Stderr(); strings.Contains(s, "panic:") {
			t.Errorf("%s panicked:\n%s", n.Label, clipTail(s, 4000))
		}
	}
}
