package console

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"lanchat/identity"
	"lanchat/peer"
)

// fakeNode is a Node for tests of the console alone: it records what the
// console asks of it, and answers with what the test set.
type fakeNode struct {
	events chan peer.Event

	mu      sync.Mutex // protects following
	name    string
	peers   []peer.Info
	calls   []string // "say TEXT", "tell PEER TEXT", "nick NAME", ...
	nextMsg uint64
	away    bool
	// echo and timeOf answer /echo and /time when set.
	echo       func(ctx context.Context, id, via string, payload []byte) (peer.EchoResult, error)
	timeOf     func(ctx context.Context, id, via string) (peer.TimeResult, error)
	connectErr error
	stats      peer.Stats
	// pending answers Pending and PendingCount.
	pending []peer.PendingPeer
}

func newFake(name string, peers ...peer.Info) *fakeNode {
	return &fakeNode{events: make(chan peer.Event, 100), name: name, peers: peers}
}

// testPeer makes a connected peer with a recognisable id.
func testPeer(name string) peer.Info {
	id := strings.ToUpper(name)
	for len(id) < 52 {
		id += "X"
	}
	return peer.Info{ID: id[:52], Name: name, Addr: "10.0.0.2:40000", Listen: "10.0.0.2:4242", State: peer.Up, UDP: peer.UDPOK,
		Via: peer.ViaMDNS, Trust: identity.Trusted, Since: time.Now().Add(-time.Minute)}
}

func (f *fakeNode) record(format string, a ...any) {
	f.mu.Lock()
	f.calls = append(f.calls, fmt.Sprintf(format, a...))
	f.mu.Unlock()
}

// called returns the calls recorded so far.
func (f *fakeNode) called() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// waitCall waits for a recorded call.
func (f *fakeNode) waitCall(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, c := range f.called() {
			if c == want {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no call %q; calls: %q", want, f.called())
}

func (f *fakeNode) ID() string { return "SELF" + strings.Repeat("S", 48) }
func (f *fakeNode) Name() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.name
}

func (f *fakeNode) refs() []peer.Ref {
	var out []peer.Ref
	for _, p := range f.peers {
		out = append(out, peer.Ref{ID: p.ID, Name: p.Name, Trust: p.Trust})
	}
	return out
}

func (f *fakeNode) send(kind, text string) (peer.Sent, error) {
	f.record("%s %s", kind, text)
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.peers) == 0 {
		return peer.Sent{}, fmt.Errorf("message not sent: %w", peer.ErrNoPeers)
	}
	f.nextMsg++
	return peer.Sent{MsgID: f.nextMsg, To: f.refs()}, nil
}

func (f *fakeNode) Say(text string) (peer.Sent, error) { return f.send("say", text) }
func (f *fakeNode) Act(text string) (peer.Sent, error) { return f.send("act", text) }

func (f *fakeNode) sendTo(kind, arg, text string) (peer.Sent, error) {
	f.record("%s %s %s", kind, arg, text)
	p, err := f.Resolve(arg)
	if err != nil {
		return peer.Sent{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextMsg++
	return peer.Sent{MsgID: f.nextMsg, To: []peer.Ref{{ID: p.ID, Name: p.Name}}}, nil
}

func (f *fakeNode) Tell(arg, text string) (peer.Sent, error)  { return f.sendTo("tell", arg, text) }
func (f *fakeNode) ActTo(arg, text string) (peer.Sent, error) { return f.sendTo("actto", arg, text) }
func (f *fakeNode) TellUDP(arg, text string, action bool) (peer.Info, error) {
	f.record("udp %s %s", arg, text)
	return f.Resolve(arg)
}
func (f *fakeNode) SetAway(away bool, text string) error {
	f.record("away %v %s", away, text)
	return nil
}
func (f *fakeNode) Pending() []peer.PendingPeer {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pending
}

func (f *fakeNode) PendingCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, p := range f.pending {
		n += p.Count
	}
	return n
}
func (f *fakeNode) Time(ctx context.Context, arg, via string) (peer.TimeResult, error) {
	f.record("time %s %s", arg, via)
	if f.timeOf == nil {
		return peer.TimeResult{}, fmt.Errorf("no time here")
	}
	return f.timeOf(ctx, arg, via)
}
func (f *fakeNode) TimeAll(ctx context.Context, via string, each func(peer.TimeResult, error)) error {
	for _, p := range f.Peers() {
		if p.State != peer.Away {
			each(f.Time(ctx, p.ID, via))
		}
	}
	return nil
}
func (f *fakeNode) Echo(ctx context.Context, arg, via string, payload []byte) (peer.EchoResult, error) {
	f.record("echo %s %s", arg, via)
	if _, err := f.Resolve(arg); err != nil {
		return peer.EchoResult{}, err
	}
	return f.echo(ctx, arg, via, payload)
}
func (f *fakeNode) EchoSeries(ctx context.Context, arg, via string, payload []byte, count int, each func(peer.SeriesReply)) (peer.EchoSeriesResult, error) {
	return peer.EchoSeriesResult{}, fmt.Errorf("no series here")
}
func (f *fakeNode) Resolve(arg string) (peer.Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.peers {
		if p.ID == arg || peer.SameName(p.Name, arg) {
			return p, nil
		}
	}
	return peer.Info{}, fmt.Errorf("%w %q", peer.ErrUnknownPeer, arg)
}
func (f *fakeNode) Peers() []peer.Info {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]peer.Info(nil), f.peers...)
}
func (f *fakeNode) PeerNames() []string {
	var names []string
	for _, p := range f.Peers() {
		names = append(names, p.Name)
	}
	return names
}
func (f *fakeNode) Stats() peer.Stats { return f.stats }
func (f *fakeNode) SetName(name string) error {
	f.record("nick %s", name)
	f.mu.Lock()
	f.name = name
	f.mu.Unlock()
	return nil
}
func (f *fakeNode) Connect(ctx context.Context, addr string, via peer.Via, expectID string) (peer.Info, error) {
	f.record("connect %s", addr)
	return peer.Info{}, f.connectErr
}
func (f *fakeNode) Events() <-chan peer.Event { return f.events }
func (f *fakeNode) Whoami() peer.Whoami       { return peer.Whoami{Name: f.Name(), ID: f.ID()} }
func (f *fakeNode) Trust(arg string) (peer.Info, error) {
	f.record("trust %s", arg)
	return f.Resolve(arg)
}
func (f *fakeNode) Forget(arg string) ([]string, error) { return []string{arg}, nil }
func (f *fakeNode) Drop(arg string) (peer.Info, int, error) {
	p, err := f.Resolve(arg)
	return p, 0, err
}
func (f *fakeNode) ResolveID(arg string) (peer.Info, error) { return f.Resolve(arg) }
func (f *fakeNode) Verify(arg, code string) (peer.Verification, error) {
	return peer.Verification{}, fmt.Errorf("no verification here")
}

// screen collects the console's plain output.
type screen struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (s *screen) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *screen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// wait waits until the output holds want, and returns the output.
func (s *screen) wait(t *testing.T, want string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if out := s.String(); strings.Contains(out, want) {
			return out
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("output lacks %q:\n%s", want, s.String())
	return ""
}
