package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"lanchat/identity"
	"lanchat/peer"
)

// running is a console under test, reading lines from a pipe.
type running struct {
	in     *io.PipeWriter
	out    *screen
	done   chan error
	cancel context.CancelFunc
}

// runConsole runs a console on node, in plain mode unless cfg says
// otherwise; it is stopped when the test ends.
func runConsole(t *testing.T, node Node, cfg Config) *running {
	t.Helper()
	in, inw := io.Pipe()
	r := &running{in: inw, out: &screen{}, done: make(chan error, 1)}
	cfg.Node, cfg.In = node, in
	if cfg.Out == nil {
		cfg.Out = r.out
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	con := New(cfg)
	go func() { r.done <- con.Run(ctx) }()
	t.Cleanup(func() {
		inw.Close()
		cancel()
		select {
		case <-r.done:
		case <-time.After(15 * time.Second):
			t.Error("console did not stop")
		}
	})
	return r
}

func (r *running) send(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(r.in, line+"\n"); err != nil {
		t.Fatal(err)
	}
}

// setGrace shortens ownGrace for a test.
func setGrace(t *testing.T, d time.Duration) {
	old := ownGrace
	ownGrace = d
	t.Cleanup(func() { ownGrace = old })
}

// One's own lines are shown with the time they were written, and a mark
// once every recipient has acknowledged them.
func TestOwnLinesAndDeliveryMarks(t *testing.T) {
	setGrace(t, 100*time.Millisecond)
	bob, carol := testPeer("bob"), testPeer("carol")
	f := newFake("alice", bob, carol)
	r := runConsole(t, f, Config{})
	ack := func(p peer.Info, id uint64) {
		f.events <- peer.Delivered{Peer: peer.Ref{ID: p.ID, Name: p.Name}, MsgID: id}
	}

	r.send(t, "hello")
	f.waitCall(t, "say hello")
	ack(bob, 1)
	ack(carol, 1)
	out := r.out.wait(t, "<alice> hello ✓")
	if !strings.Contains(out, "] <alice> hello ✓") {
		t.Fatalf("own line without its time:\n%s", out)
	}

	// Not acknowledged by everyone within the grace: shown without the
	// mark, and its delivery told when it comes.
	r.send(t, "slow one")
	f.waitCall(t, "say slow one")
	ack(bob, 2)
	r.out.wait(t, "<alice> slow one (not yet delivered to carol)")
	ack(carol, 2)
	r.out.wait(t, `✓ delivered to every recipient: "slow one"`)

	// An acknowledgement may reach the console before the line does.
	ack(bob, 3)
	ack(carol, 3)
	r.send(t, "quick")
	r.out.wait(t, "<alice> quick ✓")

	// A direct message, an action, a UDP line.
	r.send(t, "/msg Bob psst")
	f.waitCall(t, "tell Bob psst")
	ack(bob, 4)
	r.out.wait(t, "<alice> (direct to bob) psst ✓")
	r.send(t, "/me waves")
	f.waitCall(t, "act waves")
	ack(bob, 5)
	ack(carol, 5)
	r.out.wait(t, "* alice waves ✓")
	r.send(t, "/msg -udp bob over udp")
	f.waitCall(t, "udp bob over udp")
	r.out.wait(t, "<alice> (direct to bob) (udp) over udp")
	r.send(t, "/msg bob -udp after the peer")
	f.waitCall(t, "udp bob after the peer")
	if strings.Contains(r.out.String(), "\x1b") {
		t.Fatalf("escape codes without Color:\n%q", r.out.String())
	}
}

// Incoming lines: marks, the time a late line was written, one's own name
// highlighted and the bell for it and for direct messages.
func TestIncomingLines(t *testing.T) {
	bob := testPeer("bob")
	now := time.Now()
	tests := []struct {
		name  string
		color bool
		ev    peer.Chat
		want  []string
		not   []string
	}{
		{"plain", false, peer.Chat{Text: "hi all"}, []string{"<bob> hi all\n"}, []string{"\a", "written"}},
		{"direct rings", false, peer.Chat{Text: "psst", Direct: true}, []string{"<bob> (direct) psst\a\n"}, nil},
		{"udp", false, peer.Chat{Text: "dgram", Direct: true, UDP: true}, []string{"<bob> (direct) (udp) dgram"}, nil},
		{"action", false, peer.Chat{Text: "waves", Action: true}, []string{"* bob waves\n"}, nil},
		{"mention rings", false, peer.Chat{Text: "Alice, look"}, []string{"<bob> Alice, look\a"}, nil},
		{"not a mention", false, peer.Chat{Text: "malice aforethought"}, nil, []string{"\a"}},
		{"mention highlighted", true, peer.Chat{Text: "hey alice!"}, []string{"hey \x1b[1;7malice\x1b[0m!"}, nil},
		{"late", false, peer.Chat{Text: "old news", Sent: now.Add(-5 * time.Minute)},
			[]string{"<bob> old news (written " + now.Add(-5*time.Minute).Format("15:04:05") + ")"}, nil},
		{"late by days", false, peer.Chat{Text: "older", Sent: now.Add(-50 * time.Hour)},
			[]string{"(written " + now.Add(-50*time.Hour).Format("Mon 2 Jan 15:04:05") + ")"}, nil},
		{"impostor of me", false, peer.Chat{Text: "i am alice", From: peer.Ref{ID: bob.ID, Name: "Alice", Trust: identity.Conflict}},
			[]string{"<Alice?? id BOBXXXXX, NOT you>"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake("alice", bob)
			r := runConsole(t, f, Config{Color: tt.color, Bell: true})
			ev := tt.ev
			if ev.From.ID == "" {
				ev.From = peer.Ref{ID: bob.ID, Name: bob.Name}
			}
			ev.At = now
			if ev.Sent.IsZero() {
				ev.Sent = now
			}
			f.events <- ev
			f.events <- peer.Notice{Text: "end"}
			out := r.out.wait(t, "* end")
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%q", w, out)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(out, w) {
					t.Errorf("output has %q:\n%q", w, out)
				}
			}
		})
	}
}

// A restart under a new name says which name it had.
func TestPeerBackUnderAnotherName(t *testing.T) {
	f := newFake("alice")
	r := runConsole(t, f, Config{})
	piper := testPeer("piper")
	f.events <- peer.PeerUp{Peer: piper, Back: true, Was: "dave"}
	r.out.wait(t, "* piper (was dave, PIPERXXX) is back, from")
}

// /peers fits 80 columns and shows where each peer listens.
func TestPeersFitsEightyColumns(t *testing.T) {
	long := testPeer("a-very-long-name-for-a-peer@some-host.example")
	long.State, long.UDP, long.LastRTT = peer.Unreachable, peer.UDPNoReply, 1234567*time.Microsecond
	long.Listen = "192.168.100.200:65535"
	away := testPeer("carol")
	away.State, away.UDP, away.Listen = peer.Away, peer.UDPNone, "10.0.0.3:4000"
	away.UserAway, away.AwayText = true, strings.Repeat("gone fishing ", 20)
	away.Trust, away.Pending, away.Queued = identity.Conflict, 12, 4096
	f := newFake("alice", testPeer("bob"), long, away)
	f.stats = peer.Stats{BadDatagrams: 123456, AuthFailures: 123456, Replays: 123456, UnknownSenders: 123456,
		StrayReplies: 123456, DatagramOverruns: 123456, HandshakesFailed: 123456, StrangersRefused: 123456}
	r := runConsole(t, f, Config{})
	r.send(t, "/peers")
	out := r.out.wait(t, "over the handshake limit")
	for _, want := range []string{"10.0.0.2:4242", "192.168.100.200:65535", "1235ms", "a-very-long-n…", "AWAY: gone fishing", "trust CONFLICT", "12 undelivered"} {
		if !strings.Contains(out, want) {
			t.Errorf("/peers lacks %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(out[strings.Index(out, "PEER "):], "\n") {
		if n := utf8.RuneCountInString(line); n > 80 {
			t.Errorf("line of %d columns: %q", n, line)
		}
	}
}

// /time prints the day once; without a peer it names the peers it
// skipped.
func TestTimeOutput(t *testing.T) {
	bob, carol := testPeer("bob"), testPeer("carol")
	carol.State = peer.Away
	f := newFake("alice", bob, carol)
	zone := time.FixedZone("IST", 5*3600+1800)
	f.timeOf = func(_ context.Context, id, via string) (peer.TimeResult, error) {
		return peer.TimeResult{Peer: bob, Transport: via, PeerTime: time.Date(2024, 3, 4, 5, 6, 7, 0, zone), RTT: time.Millisecond}, nil
	}
	r := runConsole(t, f, Config{})
	r.send(t, "/time")
	out := r.out.wait(t, "over tcp")
	r.out.wait(t, "skipped carol")
	line := out[strings.Index(out, "bob: "):]
	line = line[:strings.Index(line, "\n")]
	if !strings.Contains(line, "05:06:07.000 Monday 2024-03-04 (IST +05:30)") || strings.Count(line, "Mon") != 1 {
		t.Fatalf("time line %q: want the day once", line)
	}
}

// A lost UDP echo is reported as lost, not as an error; the summary
// counts it.
func TestLostEchoIsNotAnError(t *testing.T) {
	f := newFake("alice", testPeer("bob"))
	f.echo = func(context.Context, string, string, []byte) (peer.EchoResult, error) {
		return peer.EchoResult{}, fmt.Errorf("%w: no reply over udp after 4 tries in 3.75s", peer.ErrTimeout)
	}
	r := runConsole(t, f, Config{})
	r.send(t, "/echo -udp bob")
	r.out.wait(t, "echo from bob over udp: lost (no reply over udp after 4 tries in 3.75s)")
	r.send(t, "/echo -udp -n 2 -i 1ms bob")
	out := r.out.wait(t, "2 sent, 0 received, 100.0% loss")
	if !strings.Contains(out, "seq=2 lost") || strings.Contains(out, "error:") {
		t.Fatalf("output:\n%s", out)
	}
}

// Bug 1 of issue 17: a series resolves its peer once, by id; a rename
// does not end it, the peer going away does, and the summary counts what
// was sent.
func TestEchoSeriesFollowsThePeer(t *testing.T) {
	bob := testPeer("bob")
	f := newFake("alice", bob)
	calls := 0
	f.echo = func(_ context.Context, id, via string, payload []byte) (peer.EchoResult, error) {
		calls++
		f.mu.Lock()
		switch calls {
		case 3: // bob becomes robert
			f.peers[0].Name = "robert"
		case 5: // and goes away after this echo
			f.peers = nil
		}
		f.mu.Unlock()
		p := bob
		if calls >= 3 {
			p.Name = "robert"
		}
		return peer.EchoResult{Peer: p, Transport: via, Sent: payload, Got: payload, RTT: time.Millisecond, OK: true}, nil
	}
	r := runConsole(t, f, Config{})
	r.send(t, "/echo -udp -n 1000 -i 1ms bob")
	out := r.out.wait(t, "--- robert echo over udp: 5 sent, 5 received, 0.0% loss")
	if !strings.Contains(out, "(robert went away)") {
		t.Fatalf("the summary does not say why it ended:\n%s", out)
	}
	for _, c := range f.called() {
		if strings.HasPrefix(c, "echo ") && c != "echo "+bob.ID+" udp" {
			t.Fatalf("echo by %q, not by id", c)
		}
	}
}

// Options may follow the peer; an unknown option is an error, never text.
func TestEchoOptionsAfterThePeer(t *testing.T) {
	f := newFake("alice", testPeer("bob"))
	payloads := make(chan string, 10)
	f.echo = func(_ context.Context, id, via string, payload []byte) (peer.EchoResult, error) {
		payloads <- string(payload)
		return peer.EchoResult{Peer: testPeer("bob"), Transport: via, Sent: payload, Got: payload, OK: true}, nil
	}
	r := runConsole(t, f, Config{})
	r.send(t, "/echo bob -n 2 -i 1ms")
	r.out.wait(t, "2 sent, 2 received")
	for i := 0; i < 2; i++ {
		if p := <-payloads; p != "lanchat echo" {
			t.Fatalf("payload %q", p)
		}
	}
	r.send(t, "/echo bob -x")
	r.out.wait(t, "error: echo: unknown option -x")
	r.send(t, "/echo bob -- -n 3")
	r.out.wait(t, "echo from bob over tcp: 4 bytes")
	if p := <-payloads; p != "-n 3" {
		t.Fatalf("payload after --: %q", p)
	}
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		args []string
		rest string
		n    int
		udp  bool
		err  string
	}{
		{[]string{"-n", "3", "bob"}, "bob", 3, false, ""},
		{[]string{"bob", "-n", "3"}, "bob", 3, false, ""},
		{[]string{"bob", "-n=3", "-udp", "hi", "there"}, "bob hi there", 3, true, ""},
		{[]string{"bob", "--", "-n", "3"}, "bob -n 3", 1, false, ""},
		{[]string{"bob", "-x"}, "", 0, false, "unknown option -x"},
		{[]string{"bob", "-n"}, "", 0, false, "needs a value"},
		{[]string{"bob", "-n", "three"}, "", 0, false, "invalid value"},
	}
	for _, tt := range tests {
		fs := newFlags("echo")
		n := fs.Int("n", 1, "")
		udp := fs.Bool("udp", false, "")
		rest, err := parseArgs(fs, tt.args)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: err %v, want %q", tt.args, err, tt.err)
			}
			continue
		}
		if err != nil || strings.Join(rest, " ") != tt.rest || *n != tt.n || *udp != tt.udp {
			t.Errorf("%q: rest %q n %d udp %v err %v", tt.args, rest, *n, *udp, err)
		}
	}
}

// Messages worded for the reader.
func TestWording(t *testing.T) {
	f := newFake("alice", testPeer("bob"))
	r := runConsole(t, f, Config{})
	r.send(t, "/nick two words")
	r.out.wait(t, `error: nick: "two words" refused: a name is one word, without spaces`)

	f.connectErr = fmt.Errorf("connect to 127.0.0.1:1: %w", &net.OpError{Op: "dial", Net: "tcp",
		Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)})
	r.send(t, "/connect 127.0.0.1:1")
	r.out.wait(t, "error: connect 127.0.0.1:1: connection refused\n")

	f.connectErr = errors.New("handshake with 127.0.0.1:2: no hello: EOF")
	r.send(t, "/connect 127.0.0.1:2")
	r.out.wait(t, "error: connect 127.0.0.1:2: no hello: EOF\n")
}

// /r answers the last direct message; /away and /back; a peer's away
// text is shown once when messaging it.
func TestReplyAndAway(t *testing.T) {
	bob := testPeer("bob")
	bob.UserAway, bob.AwayText = true, "at lunch"
	f := newFake("alice", bob, testPeer("carol"))
	r := runConsole(t, f, Config{})
	r.send(t, "/r hello?")
	r.out.wait(t, "error: r: no direct message to reply to yet")
	f.events <- peer.Chat{From: peer.Ref{ID: bob.ID, Name: "bob"}, Text: "psst", Direct: true}
	r.out.wait(t, "<bob> (direct) psst")
	r.send(t, "/r yes?")
	f.waitCall(t, "tell "+bob.ID+" yes?")
	r.out.wait(t, "* bob is away: at lunch")
	r.send(t, "/msg bob again")
	f.waitCall(t, "tell bob again")
	r.send(t, "/away gone fishing")
	f.waitCall(t, "away true gone fishing")
	r.send(t, "/back")
	f.waitCall(t, "away false ")
	out := r.out.wait(t, "* you are back")
	if strings.Count(out, "bob is away") != 1 {
		t.Fatalf("the away text is not shown once:\n%s", out)
	}
	f.events <- peer.Status{Peer: peer.Ref{ID: bob.ID, Name: "bob"}, Away: true, Text: "brb"}
	r.out.wait(t, "* bob (BOBXXXXX) is away: brb")
}

// --wait-peers holds the input until the peers are up, or fails saying
// who is.
func TestWaitPeers(t *testing.T) {
	f := newFake("alice")
	r := runConsole(t, f, Config{WaitPeers: 1, WaitTimeout: 10 * time.Second})
	go io.WriteString(r.in, "hello\n") // a pipe: it waits for the reader
	time.Sleep(100 * time.Millisecond)
	if len(f.called()) != 0 {
		t.Fatalf("input read before the peer was up: %q", f.called())
	}
	f.mu.Lock()
	f.peers = []peer.Info{testPeer("bob")}
	f.mu.Unlock()
	f.waitCall(t, "say hello")
	if strings.Contains(r.out.String(), "no peers") {
		t.Fatalf("sent before the peer was up:\n%s", r.out.String())
	}

	lonely := newFake("carol")
	con := New(Config{Node: lonely, In: strings.NewReader("hello\n"), Out: &screen{}, WaitPeers: 2, WaitTimeout: 50 * time.Millisecond})
	err := con.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "--wait-peers 2: only 0 peers up after 50ms (none)") {
		t.Fatalf("err %v", err)
	}
	if len(lonely.called()) != 0 {
		t.Fatalf("input read after the wait failed: %q", lonely.called())
	}
}

// At the end of piped input, a console waits for deliveries only where
// they can come: with a store, not for a peer that is away (its messages
// wait on disk); without one, for every peer, within quitWait.
func TestEndOfInputWaitsForConnectedPeers(t *testing.T) {
	away := testPeer("bob")
	away.State = peer.Away
	tests := []struct {
		name    string
		durable bool
		peer    peer.Info
		quick   bool   // Run returns well within quitWait
		says    string // in the output at the end
	}{
		{"store, peer away", true, away, true, "wait on disk"},
		{"store, peer connected", true, testPeer("bob"), false, "wait on disk"},
		{"no store, peer away", false, away, false, "leaving with 1 messages not delivered"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // two of them wait out quitWait
			f := newFake("alice", tc.peer)
			f.pending = []peer.PendingPeer{{Peer: tc.peer, Count: 1}}
			r := runConsole(t, f, Config{Durable: tc.durable})
			start := time.Now()
			r.in.Close()
			select {
			case err := <-r.done:
				r.done <- err // for runConsole's cleanup
			case <-time.After(quitWait + 5*time.Second):
				t.Fatal("console did not stop")
			}
			took := time.Since(start)
			if quick := took < quitWait/2; quick != tc.quick {
				t.Errorf("stopped after %v, want quick %v", took, tc.quick)
			}
			if out := r.out.String(); !strings.Contains(out, tc.says) {
				t.Errorf("output does not say %q:\n%s", tc.says, out)
			}
		})
	}
}
