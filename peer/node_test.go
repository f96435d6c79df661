package peer

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"lanchat/identity"
	"lanchat/transport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wait is the generous bound for events in tests; nothing asserts speed.
const wait = 10 * time.Second

type testNode struct {
	*Node
	tr     *transport.Transport
	events chan Event
	// stop stops the node (and closes its store), as the end of the
	// test does; it may be called before.
	stop func()
}

func startNode(t testing.TB, name string) *testNode {
	t.Helper()
	return startNodeWith(t, Config{Name: name})
}

// startNodeWith starts a node with cfg, on a fresh transport on loopback
// and with a logger of its own; dialFrom, when given, is the loopback
// address its outgoing connections leave from, as from another machine.
func startNodeWith(t testing.TB, cfg Config, dialFrom ...string) *testNode {
	t.Helper()
	tr, err := transport.Listen(0)
	if err != nil {
		t.Fatal(err)
	}
	switch w := cfg.Network.(type) {
	case nil:
		cfg.Network = tr
	case *countingNet:
		tr.Close()
		tr = w.Transport
	default:
		t.Fatalf("startNodeWith: unknown network %T", w)
	}
	if len(dialFrom) > 0 {
		cfg.Network = fromAddr{Transport: tr, local: dialFrom[0]}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	cfg.Logger = log
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.allowLoopback = true // every test node is on loopback
	ctx, cancel := context.WithCancel(context.Background())
	tn := &testNode{Node: n, tr: tr, events: make(chan Event, 1000)}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); n.Run(ctx) }()
	// Copy events into a channel the test owns, so that none is lost
	// while the test is not looking.
	go func() {
		defer wg.Done()
		for {
			select {
			case e := <-n.Events():
				select {
				case tn.events <- e:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	tn.stop = sync.OnceFunc(func() {
		cancel()
		wg.Wait()
		tr.Close()
		if cfg.Store != nil {
			cfg.Store.Close()
		}
	})
	t.Cleanup(tn.stop)
	return tn
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (n *testNode) addr() string { return fmt.Sprintf("127.0.0.1:%d", n.tr.TCPPort()) }

// next waits for the next event that match accepts, skipping others.
func next[E Event](t *testing.T, n *testNode, match func(E) bool) E {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case e := <-n.events:
			if ev, ok := e.(E); ok && (match == nil || match(ev)) {
				return ev
			}
		case <-deadline:
			var zero E
			t.Fatalf("%s: no %T within %v", n.Name(), zero, wait)
			return zero
		}
	}
}

func connected(t *testing.T, a, b *testNode) {
	t.Helper()
	if _, err := a.Connect(context.Background(), b.addr(), ViaManual, ""); err != nil {
		t.Fatal(err)
	}
	next(t, a, func(e PeerUp) bool { return e.Peer.ID == b.ID() })
	next(t, b, func(e PeerUp) bool { return e.Peer.ID == a.ID() })
}

func TestChatAndDirect(t *testing.T) {
	a, b, c := startNode(t, "alice"), startNode(t, "bob"), startNode(t, "carol")
	connected(t, a, b)
	connected(t, a, c)
	if s, err := a.Say("hello all"); err != nil || len(s.To) != 2 {
		t.Fatalf("Say = %+v, %v", s, err)
	}
	for _, n := range []*testNode{b, c} {
		m := next[Chat](t, n, nil)
		if m.Text != "hello all" || m.Direct || m.From.ID != a.ID() || m.From.Name != "alice" {
			t.Fatalf("%s got %+v", n.Name(), m)
		}
	}
	if _, err := a.Tell("bob", "psst"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Say("after"); err != nil {
		t.Fatal(err)
	}
	if m := next[Chat](t, b, nil); m.Text != "psst" || !m.Direct {
		t.Fatalf("bob got %+v", m)
	}
	// TCP keeps order: if carol's next message is "after", she never got psst.
	if m := next[Chat](t, c, nil); m.Text != "after" {
		t.Fatalf("carol got %+v", m)
	}
}

func TestTimeAndEchoBothTransports(t *testing.T) {
	a, b := startNode(t, "alice"), startNode(t, "bob")
	connected(t, a, b)
	ctx := context.Background()
	for _, via := range []string{TCP, UDP} {
		r, err := a.Time(ctx, "bob", via)
		if err != nil {
			t.Fatalf("time over %s: %v", via, err)
		}
		if r.Offset.Abs() > 5*time.Millisecond || r.RTT <= 0 || r.Transport != via || r.Peer.Name != "bob" {
			t.Fatalf("time over %s: %+v", via, r)
		}
		e, err := a.Echo(ctx, b.ID()[:6], via, []byte("hello"))
		if err != nil {
			t.Fatalf("echo over %s: %v", via, err)
		}
		if !e.OK || string(e.Got) != "hello" || e.RTT <= 0 {
			t.Fatalf("echo over %s: %+v", via, e)
		}
	}
	big := make([]byte, transport.MaxPayload)
	for i := range big {
		big[i] = byte(i)
	}
	for _, via := range []string{TCP, UDP} {
		if e, err := a.Echo(ctx, "bob", via, big); err != nil || !e.OK {
			t.Fatalf("big echo over %s: %v %v", via, err, e.OK)
		}
	}
	if _, err := a.Echo(ctx, "bob", TCP, make([]byte, transport.MaxPayload+1)); !errors.Is(err, transport.ErrTooLong) {
		t.Fatalf("oversized echo: %v", err)
	}
}

func TestOffsetAndDelay(t *testing.T) {
	tests := []struct {
		name           string
		t1, t2, t3, t4 int64
		offset, delay  time.Duration
	}{
		{"same clock", 100, 150, 160, 210, 0, 100},
		{"peer ahead by 1000", 100, 1150, 1160, 210, 1000, 100},
		{"peer behind by 500", 1000, 550, 560, 1110, -500, 100},
		{"asymmetric path", 0, 30, 30, 40, 10, 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Offset(tt.t1, tt.t2, tt.t3, tt.t4); got != tt.offset {
				t.Errorf("offset = %v, want %v", got, tt.offset)
			}
			if got := Delay(tt.t1, tt.t2, tt.t3, tt.t4); got != tt.delay {
				t.Errorf("delay = %v, want %v", got, tt.delay)
			}
		})
	}
}

// Both ends dialling each other at the same moment must end with one
// connection and one join on each side.
func TestSimultaneousDialKeepsOne(t *testing.T) {
	for i := 0; i < 10; i++ {
		a, b := startNode(t, "alice"), startNode(t, "bob")
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); a.Connect(context.Background(), b.addr(), ViaManual, "") }()
		go func() { defer wg.Done(); b.Connect(context.Background(), a.addr(), ViaManual, "") }()
		wg.Wait()
		next(t, a, func(e PeerUp) bool { return true })
		next(t, b, func(e PeerUp) bool { return true })
		// Give a flapping implementation time to show itself.
		time.Sleep(50 * time.Millisecond)
		for _, n := range []*testNode{a, b} {
			select {
			case e := <-n.events:
				t.Fatalf("%s: unexpected event after the join: %#v", n.Name(), e)
			default:
			}
			if ps := n.Peers(); len(ps) != 1 {
				t.Fatalf("%s has %d peers", n.Name(), len(ps))
			}
		}
		pa, pb := a.Peers()[0], b.Peers()[0]
		if !sameConn(a, pa, b, pb) {
			t.Fatalf("the two sides kept different connections: %s sees %s, %s sees %s", a.Name(), pa.Addr, b.Name(), pb.Addr)
		}
		if _, err := a.Say("one"); err != nil {
			t.Fatal(err)
		}
		next(t, b, func(e Chat) bool { return e.Text == "one" })
	}
}

// sameConn checks that the remote address each side sees is the other
// side's end of one connection.
func sameConn(a *testNode, pa Info, b *testNode, pb Info) bool {
	a.mu.Lock()
	ca := a.links[pa.ID].conn
	a.mu.Unlock()
	b.mu.Lock()
	cb := b.links[pb.ID].conn
	b.mu.Unlock()
	return ca.LocalAddr().String() == cb.RemoteAddr().String() && cb.LocalAddr().String() == ca.RemoteAddr().String()
}

func TestDuplicateConnectIsRefused(t *testing.T) {
	a, b := startNode(t, "alice"), startNode(t, "bob")
	connected(t, a, b)
	_, err1 := a.Connect(context.Background(), b.addr(), ViaManual, "")
	_, err2 := b.Connect(context.Background(), a.addr(), ViaManual, "")
	if !errors.Is(err1, ErrDuplicate) || !errors.Is(err2, ErrDuplicate) {
		t.Fatalf("errors %v, %v, want ErrDuplicate", err1, err2)
	}
	if _, err := a.Connect(context.Background(), a.addr(), ViaManual, ""); !errors.Is(err, ErrSelf) {
		t.Fatalf("self connect: %v", err)
	}
	if _, err := a.Say("still"); err != nil {
		t.Fatal(err)
	}
	next(t, b, func(e Chat) bool { return e.Text == "still" })
}

func TestLeaveAndLoss(t *testing.T) {
	a, b, c := startNode(t, "alice"), startNode(t, "bob"), startNode(t, "carol")
	connected(t, a, b)
	connected(t, a, c)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	b.Leave(ctx, "quit")
	if d := next(t, a, func(e PeerDown) bool { return e.Peer.ID == b.ID() }); d.Reason != "quit" {
		t.Fatalf("reason %q", d.Reason)
	}
	if ps := a.Peers(); len(ps) != 1 || ps[0].ID != c.ID() {
		t.Fatalf("peers after bob left: %v", ps)
	}
	// A connection that dies without a goodbye: carol is away, messages
	// wait for her, and she is reconnected.
	c.dropConnections()
	d := next(t, a, func(e PeerDown) bool { return e.Peer.ID == c.ID() })
	if d.Reason == "quit" || !d.Reconnecting {
		t.Fatalf("lost connection reported as %+v", d)
	}
	if _, err := a.Say("while you were away"); err != nil {
		t.Fatal(err)
	}
	up := next(t, a, func(e PeerUp) bool { return e.Peer.ID == c.ID() })
	if !up.Back {
		t.Fatalf("reconnection not reported as back: %+v", up)
	}
	next(t, c, func(e Chat) bool { return e.Text == "while you were away" })
	next(t, a, func(e Delivered) bool { return e.Peer.ID == c.ID() })
	if n := a.PendingCount(); n != 0 {
		t.Fatalf("%d messages still pending", n)
	}
}

// Messages queued for a peer that is away reach it once, in order, when
// it is back; the outbox is bounded.
func TestOutboxWhileAway(t *testing.T) {
	a, b := startNode(t, "alice"), startNode(t, "bob")
	connected(t, a, b)
	// Stop bob's node from reconnecting by itself; alice will.
	b.dropConnections()
	next(t, a, func(e PeerDown) bool { return e.Reconnecting })
	const count = 50
	for i := 0; i < count; i++ {
		if _, err := a.Say(fmt.Sprintf("m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < count; i++ {
		m := next[Chat](t, b, nil)
		if m.Text != fmt.Sprintf("m%d", i) {
			t.Fatalf("message %d is %q", i, m.Text)
		}
	}
	deadline := time.Now().Add(wait)
	for a.PendingCount() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := a.PendingCount(); n != 0 {
		t.Fatalf("%d messages still pending", n)
	}
	select {
	case e := <-b.events:
		if m, ok := e.(Chat); ok {
			t.Fatalf("duplicate %q", m.Text)
		}
	case <-time.After(200 * time.Millisecond):
	}
}

func TestOutboxBookkeeping(t *testing.T) {
	n, m := &Node{}, &Peer{name: "bob"}
	for i := uint64(1); i <= OutboxLimit; i++ {
		if err := n.queue(m, transport.Chat{MsgID: i}); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if err := n.queue(m, transport.Chat{MsgID: OutboxLimit + 1}); err == nil || !strings.Contains(err.Error(), "bob") {
		t.Fatalf("full outbox: %v", err)
	}
	if got := n.acked(m, 10, nil); len(got) != 10 || got[0] != 1 || got[9] != 10 || len(m.outbox) != OutboxLimit-10 || m.outbox[0].msg.MsgID != 11 {
		t.Fatalf("acked 10: %v delivered, %d left", got, len(m.outbox))
	}
	if got := n.acked(m, 5, nil); len(got) != 0 {
		t.Fatalf("old ack delivered %d", len(got))
	}
	if got := n.acked(m, 12, []uint64{99}); len(got) != 3 || got[0] != 99 || got[2] != 12 {
		t.Fatalf("acked 12 appended to [99]: %v", got)
	}
	steps := []struct {
		id    uint64
		fresh bool
		ack   uint64
	}{{1, true, 1}, {2, true, 2}, {2, false, 2}, {1, false, 2}, {5, true, 5}, {3, false, 5}}
	for _, s := range steps {
		if fresh, ack := m.received(s.id); fresh != s.fresh || ack != s.ack {
			t.Fatalf("received(%d) = %v, %d; want %v, %d", s.id, fresh, ack, s.fresh, s.ack)
		}
	}
}

func TestNickAndResolve(t *testing.T) {
	a, b, c := startNode(t, "alice"), startNode(t, "bob"), startNode(t, "carol")
	connected(t, a, b)
	connected(t, a, c)
	if p, err := a.Resolve(c.ID()[:8]); err != nil || p.ID != c.ID() {
		t.Fatalf("id prefix: %v %v", p, err)
	}
	if p, err := a.Resolve(strings.ToLower(identity.Grouped(c.ID())[:9])); err != nil || p.ID != c.ID() {
		t.Fatalf("grouped lower-case id prefix: %v %v", p, err)
	}
	if _, err := a.Resolve("nobody"); err == nil || !strings.Contains(err.Error(), "known peers: bob") {
		t.Fatalf("unknown: %v", err)
	}
	if err := c.SetName("carla"); err != nil {
		t.Fatal(err)
	}
	n := next(t, a, func(e Nick) bool { return true })
	if n.Old != "carol" || n.New != "carla" || n.ID != c.ID() {
		t.Fatalf("nick event %+v", n)
	}
	if p, err := a.Resolve("carla"); err != nil || p.ID != c.ID() || p.Trust != identity.FirstSeen {
		t.Fatalf("after nick: %+v %v", p, err)
	}
	if err := a.SetName("bad name"); err == nil {
		t.Fatal("a name with a space was accepted")
	}
}

// Trust on first use: a second node under a known name is flagged, never
// picked by name, until the user trusts it.
func TestNameConflict(t *testing.T) {
	a, bob, fake := startNode(t, "alice"), startNode(t, "bob"), startNode(t, "bob")
	connected(t, a, bob)
	if _, err := a.Connect(context.Background(), fake.addr(), ViaManual, ""); err != nil {
		t.Fatal(err)
	}
	up := next(t, a, func(e PeerUp) bool { return e.Peer.ID == fake.ID() })
	next(t, fake, func(e PeerUp) bool { return e.Peer.ID == a.ID() })
	if up.Peer.Trust != identity.Conflict {
		t.Fatalf("impostor trust %v", up.Peer.Trust)
	}
	w := next(t, a, func(e Warning) bool { return true })
	if !strings.Contains(w.Text, "NAME CONFLICT") || !strings.Contains(w.Text, identity.Grouped(fake.ID())) || !strings.Contains(w.Text, identity.Grouped(bob.ID())) {
		t.Fatalf("warning %q", w.Text)
	}
	if p, err := a.Resolve("bob"); err != nil || p.ID != bob.ID() {
		t.Fatalf("bob resolves to %v, %v", p.ID, err)
	}
	if _, err := a.Tell("bob", "for the real bob"); err != nil {
		t.Fatal(err)
	}
	next(t, bob, func(e Chat) bool { return e.Text == "for the real bob" })
	if _, err := fake.Say("i am bob"); err != nil {
		t.Fatal(err)
	}
	if m := next(t, a, func(e Chat) bool { return e.Text == "i am bob" }); m.From.Trust != identity.Conflict {
		t.Fatalf("impostor's message not marked: %+v", m.From)
	}
	// Once the real bob is gone, the name still does not pick the impostor.
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	bob.Leave(ctx, "quit")
	next(t, a, func(e PeerDown) bool { return e.Peer.ID == bob.ID() })
	if _, err := a.Tell("bob", "x"); err == nil || !strings.Contains(err.Error(), "/trust") {
		t.Fatalf("Tell picked the impostor: %v", err)
	}
	if _, err := a.Trust(fake.ID()[:8]); err != nil {
		t.Fatal(err)
	}
	if p, err := a.Resolve("bob"); err != nil || p.ID != fake.ID() || p.Trust != identity.Trusted {
		t.Fatalf("after /trust: %+v %v", p, err)
	}
	if names, err := a.Forget("bob"); err != nil || len(names) != 1 {
		t.Fatalf("forget: %v %v", names, err)
	}
	if _, err := a.Forget("bob-never-seen"); err == nil {
		t.Fatal("forgetting an unknown name succeeded")
	}
}

// A node that proves another id than the one expected of it is refused
// with a warning that names both ids.
func TestIdentityMismatchRefused(t *testing.T) {
	a, b, c := startNode(t, "alice"), startNode(t, "bob"), startNode(t, "carol")
	_, err := a.Connect(context.Background(), c.addr(), ViaMDNS, b.ID())
	if !errors.Is(err, ErrIdentity) {
		t.Fatalf("err = %v, want ErrIdentity", err)
	}
	w := next(t, a, func(e Warning) bool { return true })
	if !strings.Contains(w.Text, identity.Grouped(b.ID())) || !strings.Contains(w.Text, identity.Grouped(c.ID())) {
		t.Fatalf("warning %q does not name both ids", w.Text)
	}
	if len(a.Peers()) != 0 {
		t.Fatalf("peers %v", a.Peers())
	}
	if _, err := a.Connect(context.Background(), b.addr(), ViaManual, b.ID()); err != nil {
		t.Fatalf("the right id: %v", err)
	}
}

// Nothing typed crosses the wire in clear: a relay between two nodes
// records every byte of the TCP stream.
func TestStreamIsEncrypted(t *testing.T) {
	a, b := startNode(t, "alice"), startNode(t, "bob")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	var seen bytes.Buffer
	relayDone := make(chan struct{})
	go func() {
		defer close(relayDone)
		in, err := ln.Accept()
		if err != nil {
			return
		}
		defer in.Close()
		out, err := net.Dial("tcp", b.addr())
		if err != nil {
			return
		}
		defer out.Close()
		cp := func(dst, src net.Conn) {
			buf := make([]byte, 4096)
			for {
				n, err := src.Read(buf)
				if n > 0 {
					mu.Lock()
					seen.Write(buf[:n])
					mu.Unlock()
					dst.Write(buf[:n])
				}
				if err != nil {
					dst.Close()
					return
				}
			}
		}
		go cp(out, in)
		cp(in, out)
	}()
	if _, err := a.Connect(context.Background(), ln.Addr().String(), ViaManual, b.ID()); err != nil {
		t.Fatal(err)
	}
	next(t, b, func(e PeerUp) bool { return true })
	secret := "the eagle lands at midnight"
	if _, err := a.Say(secret); err != nil {
		t.Fatal(err)
	}
	next(t, b, func(e Chat) bool { return e.Text == secret })
	if _, err := b.Echo(context.Background(), "alice", TCP, []byte(secret)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	a.Leave(ctx, "quit")
	<-relayDone
	mu.Lock()
	defer mu.Unlock()
	if seen.Len() == 0 {
		t.Fatal("relay saw nothing")
	}
	for _, clear := range []string{secret, "alice", "LANCHAT"} {
		if bytes.Contains(seen.Bytes(), []byte(clear)) {
			t.Fatalf("%q crossed the wire in clear", clear)
		}
	}
}

// A client that speaks plaintext gets nothing and is dropped.
func TestPlaintextClientDropped(t *testing.T) {
	a := startNode(t, "alice")
	c, err := net.Dial("tcp", a.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f, _ := transport.AppendFrame(nil, transport.Hello{Version: transport.ProtocolVersion, ID: "x", Name: "plain"})
	c.Write(f)
	c.SetReadDeadline(time.Now().Add(HandshakeTimeout + 5*time.Second))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("not dropped: %v", err)
	}
	if bytes.Contains(got, []byte("LANCHAT")) || bytes.Contains(got, []byte("alice")) {
		t.Fatalf("plaintext client was told %q", got)
	}
}

func TestBadInput(t *testing.T) {
	a, b := startNode(t, "alice"), startNode(t, "bob")
	connected(t, a, b)

	tests := []struct {
		name string
		send []byte
	}{
		{"silent client", nil},
		{"garbage", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
		{"4 GiB frame header", []byte{0xff, 0xff, 0xff, 0xff, byte(transport.TypeHello)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", a.addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write(tt.send)
			c.SetReadDeadline(time.Now().Add(HandshakeTimeout + 5*time.Second))
			// The node sends its hello, then must close the connection.
			if _, err := io.Copy(io.Discard, c); err != nil {
				t.Fatalf("connection not closed by the node: %v", err)
			}
		})
	}

	// Junk datagrams are dropped and counted; so are datagrams from
	// unknown senders, forged ones, replays and stray replies.
	u, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", a.tr.UDPPort()))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	for i := 0; i < 200; i++ {
		u.Write([]byte(fmt.Sprintf("junk %d", i)))
	}
	stranger, _ := transport.NewChannel(make([]byte, transport.KeySize), make([]byte, transport.KeySize))
	forged, _ := stranger.Seal(nil, strings.Repeat("Z", 52), transport.TimeReq{ReqID: 1}) // no such node
	u.Write(forged)
	wrongKey, _ := stranger.Seal(nil, b.ID(), transport.TimeReq{ReqID: 1})
	u.Write(wrongKey)
	// A reply sealed with b's real key, to a request a never made.
	b.mu.Lock()
	bToA := b.links[a.ID()].ch
	b.mu.Unlock()
	stray, _ := bToA.Seal(nil, b.ID(), transport.TimeResp{ReqID: 12345})
	u.Write(stray)
	u.Write(stray) // and its replay
	flipped := bytes.Clone(stray)
	flipped[len(flipped)-1] ^= 1
	u.Write(flipped)
	deadline := time.Now().Add(wait)
	for {
		st := a.Stats()
		if st.BadDatagrams+st.DatagramOverruns >= 200 && st.UnknownSenders >= 1 && st.StrayReplies >= 1 &&
			st.AuthFailures >= 2 && st.Replays >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The real peer is undisturbed.
	if _, err := a.Time(context.Background(), "bob", UDP); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Say("fine"); err != nil {
		t.Fatal(err)
	}
	next(t, a, func(e Chat) bool { return e.Text == "fine" })
}

// A peer whose frames do not decode is dropped; the others stay.
func TestMalformedFrameClosesOnlyThatPeer(t *testing.T) {
	a, b := startNode(t, "alice"), startNode(t, "bob")
	connected(t, a, b)
	// A hand-made client that passes the handshake, then sends a broken chat.
	c, id := handMadeClient(t, a)
	defer c.Close()
	next(t, a, func(e PeerUp) bool { return e.Peer.ID == id })
	c.Send(rawFrame{transport.TypeChat, []byte{0xff, 0xff}})
	d := next(t, a, func(e PeerDown) bool { return e.Peer.ID == id })
	if !strings.Contains(d.Reason, "protocol error") {
		t.Fatalf("reason %q", d.Reason)
	}
	if _, err := b.Say("unaffected"); err != nil {
		t.Fatal(err)
	}
	next(t, a, func(e Chat) bool { return e.Text == "unaffected" })
}

func TestUDPTarget(t *testing.T) {
	tcp := netip.MustParseAddrPort("10.0.0.2:5000")
	if got := udpTarget(netip.AddrPort{}, tcp, 6000); got.String() != "10.0.0.2:6000" {
		t.Fatal(got)
	}
	learned := netip.MustParseAddrPort("10.0.0.2:7000")
	if got := udpTarget(learned, tcp, 6000); got != learned {
		t.Fatal(got)
	}
}

// rawFrame sends arbitrary bytes as a frame payload.
type rawFrame struct {
	t transport.Type
	p []byte
}

func (f rawFrame) Type() transport.Type   { return f.t }
func (f rawFrame) Append(b []byte) []byte { return append(b, f.p...) }

// handMadeClient connects to n as a lanchat node of its own making, with a
// fresh identity, and completes the handshake.
func handMadeClient(t *testing.T, n *testNode) (*transport.Conn, string) {
	t.Helper()
	id, err := identity.New()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := id.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	tc, err := tls.Dial("tcp", n.addr(), tlsConfig(cert))
	if err != nil {
		t.Fatal(err)
	}
	c := transport.NewConn(tc, transport.ConnOptions{})
	t.Cleanup(func() { c.Close(); c.Wait() })
	c.Send(transport.Hello{Version: transport.ProtocolVersion, ID: id.ID, Name: "handmade", UDPPort: 1, Session: 1})
	if typ, _, err := c.Read(time.Now().Add(wait)); err != nil || typ != transport.TypeHello {
		t.Fatalf("no hello: %v %v", typ, err)
	}
	if id.ID < n.ID() {
		c.Send(transport.Welcome{Status: transport.WelcomeOK})
	} else if typ, _, err := c.Read(time.Now().Add(wait)); err != nil || typ != transport.TypeWelcome {
		t.Fatalf("no welcome: %v %v", typ, err)
	}
	return c, id.ID
}

// dropConnections closes every connection as a network failure would,
// leaving the node running (closeAll is for stopping it).
func (n *Node) dropConnections() {
	n.mu.Lock()
	ls := n.linksLocked()
	n.mu.Unlock()
	for _, l := range ls {
		l.conn.Close()
	}
}

// A node that reaches one member of a group is introduced to the rest.
// (On loopback addresses are not passed on, so this uses the test's own
// peer list as a LAN address would be.)
func TestPeerListIntroduces(t *testing.T) {
	a, b, c := startNode(t, "alice"), startNode(t, "bob"), startNode(t, "carol")
	connected(t, a, b)
	// As if bob had told carol about alice at a routable address.
	c.Discovered(Found{Via: ViaManual, Instance: "introduced by bob", ID: a.ID(), Addrs: []string{a.addr()}})
	up := next(t, c, func(e PeerUp) bool { return e.Peer.ID == a.ID() })
	if up.Peer.Via != ViaManual {
		t.Fatalf("introduced peer via %q", up.Peer.Via)
	}
	// The list a node sends leaves out loopback and link-local addresses.
	for addr, want := range map[string]bool{"127.0.0.1:4000": false, "[::1]:4000": false, "[fe80::1%eth0]:4000": false,
		"10.1.2.3:4000": true, "[fd00::1]:4000": true, "not an address": false} {
		if got := (&Node{}).listable(addr); got != want {
			t.Errorf("listable(%q) = %v, want %v", addr, got, want)
		}
	}
	// A wrong id for an address is refused, as from mDNS.
	other, err := identity.New()
	if err != nil {
		t.Fatal(err)
	}
	c.Discovered(Found{Instance: "lie", ID: other.ID, Addrs: []string{b.addr()}})
	if w := next(t, c, func(e Warning) bool { return true }); !strings.Contains(w.Text, "identity mismatch") {
		t.Fatalf("warning %q", w.Text)
	}
}

// Of a pair that discovers each other, one end dials at once and the
// other holds off, so that the pair pays for one handshake, not two.
func TestHoldOff(t *testing.T) {
	const mine, smaller, larger = "M", "A", "Z"
	busy := netip.MustParseAddr("10.0.0.9")
	tests := []struct {
		name   string
		f      Found
		from   []netip.Addr // connections being accepted from
		lo, hi time.Duration
	}{
		{"answered our query", Found{ID: larger, Answer: true, Addrs: []string{"10.0.0.2:1"}}, nil, 0, 0},
		{"answered our query, larger", Found{ID: smaller, Answer: true, Addrs: []string{"10.0.0.2:1"}}, nil, 0, 0},
		{"answered, but dialling us", Found{ID: smaller, Answer: true, Addrs: []string{"10.0.0.9:1"}}, []netip.Addr{busy}, shortHoldOff, shortHoldOff * 3 / 2},
		{"new node, our id smaller", Found{ID: larger, Addrs: []string{"10.0.0.2:1"}}, nil, shortHoldOff, shortHoldOff * 3 / 2},
		{"new node, our id larger", Found{ID: smaller, Addrs: []string{"10.0.0.2:1"}}, nil, DialHoldOff, DialHoldOff * 3 / 2},
		{"heard in a beacon", Found{ID: smaller, Via: ViaBroadcast, Addrs: []string{"10.0.0.2:1"}}, nil, 0, answerJitter},
		{"introduced by a peer list", Found{ID: smaller, Via: ViaIntroduced, Addrs: []string{"10.0.0.2:1"}}, nil, 0, answerJitter},
		{"introduced, but dialling us", Found{ID: larger, Via: ViaIntroduced, Addrs: []string{"10.0.0.9:1"}}, []netip.Addr{busy}, shortHoldOff, shortHoldOff * 3 / 2},
		{"dialling us over IPv4-mapped", Found{ID: larger, Answer: true, Addrs: []string{"[::ffff:10.0.0.9]:1"}}, []netip.Addr{busy}, shortHoldOff, shortHoldOff * 3 / 2},
	}
	for _, tc := range tests {
		n := &Node{id: mine, accepting: map[netip.Addr]int{}}
		for _, a := range tc.from {
			n.accepting[a]++
		}
		if got := n.holdOffLocked(tc.f); got < tc.lo || got > tc.hi {
			t.Errorf("%s: hold off %v, want %v to %v", tc.name, got, tc.lo, tc.hi)
		}
	}
}

// TestWatches: of a connected group, the nodes with the two lowest ids
// keep watching for other groups.
func TestWatches(t *testing.T) {
	tests := []struct {
		self  string
		peers []string
		want  bool
	}{
		{"M", nil, true},
		{"M", []string{"A"}, true},
		{"M", []string{"A", "Z"}, true},
		{"M", []string{"A", "B"}, false},
		{"A", []string{"B", "C", "D"}, true},
		{"C", []string{"A", "B", "D"}, false},
		{"B", []string{"A", "C", "D"}, true},
	}
	for _, tt := range tests {
		n := &Node{id: tt.self, links: map[string]*link{}}
		for _, id := range tt.peers {
			n.links[id] = &link{id: id}
		}
		if got := n.Watches(); got != tt.want {
			t.Errorf("%s with peers %v: Watches() = %v, want %v", tt.self, tt.peers, got, tt.want)
		}
	}
}
