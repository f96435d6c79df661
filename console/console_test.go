package console

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"lanchat/peer"
	"lanchat/transport"
)

func TestSummarize(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var d []time.Duration
		for _, x := range v {
			d = append(d, time.Duration(x)*time.Millisecond)
		}
		return d
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		name string
		in   []time.Duration
		want rttSummary
	}{
		{"empty", nil, rttSummary{}},
		{"one", ms(5), rttSummary{5 * time.Millisecond, 5 * time.Millisecond, 5 * time.Millisecond, 5 * time.Millisecond}},
		{"unsorted", ms(3, 1, 2), rttSummary{time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond, 3 * time.Millisecond}},
		{"hundred", ms(hundred...), rttSummary{time.Millisecond, 50500 * time.Microsecond, 100 * time.Millisecond, 99 * time.Millisecond}},
	}
	for _, tt := range tests {
		if got := summarize(tt.in); got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestEchoPayload(t *testing.T) {
	tests := []struct {
		text string
		size int
		want string
	}{
		{"hi", -1, "hi"},
		{"", -1, "lanchat echo"},
		{"ab", 5, "ababa"},
		{"", 3, "abc"},
		{"x", 0, ""},
	}
	for _, tt := range tests {
		if got := string(echoPayload(tt.text, tt.size)); got != tt.want {
			t.Errorf("echoPayload(%q, %d) = %q, want %q", tt.text, tt.size, got, tt.want)
		}
	}
}

func TestLineReader(t *testing.T) {
	in := "short\n" + strings.Repeat("x", 100) + "\nnext\nlast"
	lr := &lineReader{r: bufio.NewReaderSize(strings.NewReader(in), 16), max: 50}
	var got []string
	for {
		line, err := lr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, errLineTooLong) {
			got = append(got, "<too long>")
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, line)
	}
	want := []string{"short", "<too long>", "next", "last"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// jsonLines collects the console's JSON output.
type jsonLines struct {
	mu     sync.Mutex
	buf    []byte
	events []map[string]any
}

func (j *jsonLines) Write(p []byte) (int, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.buf = append(j.buf, p...)
	for {
		i := strings.IndexByte(string(j.buf), '\n')
		if i < 0 {
			return len(p), nil
		}
		var ev map[string]any
		if err := json.Unmarshal(j.buf[:i], &ev); err != nil {
			return 0, fmt.Errorf("not JSON: %q: %w", j.buf[:i], err)
		}
		j.events = append(j.events, ev)
		j.buf = j.buf[i+1:]
	}
}

func (j *jsonLines) wait(t *testing.T, pred func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		j.mu.Lock()
		for _, ev := range j.events {
			if pred(ev) {
				j.mu.Unlock()
				return ev
			}
		}
		j.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	t.Fatalf("no matching event; have %v", j.events)
	return nil
}

func is(kind string) func(map[string]any) bool {
	return func(ev map[string]any) bool { return ev["event"] == kind }
}

func startNode(t *testing.T, ctx context.Context, name string) (*peer.Node, *transport.Transport) {
	t.Helper()
	tr, err := transport.Listen(0)
	if err != nil {
		t.Fatal(err)
	}
	n, err := peer.New(peer.Config{Name: name, Network: tr, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); n.Run(ctx) }()
	t.Cleanup(func() { <-done; tr.Close() })
	return n, tr
}

// The console against two real nodes on loopback, in JSON mode.
func TestConsoleJSON(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, atr := startNode(t, ctx, "alice")
	b, btr := startNode(t, ctx, "bob")
	go func() { // bob's events are not under test; keep them flowing
		for {
			select {
			case <-b.Events():
			case <-ctx.Done():
				return
			}
		}
	}()
	in, inw := io.Pipe()
	out := &jsonLines{}
	var renamed string
	con := New(Config{Node: a, In: in, Out: out, JSON: true, TCPPort: atr.TCPPort(), UDPPort: atr.UDPPort(),
		OnRename: func(name string) error { renamed = name; return nil }})
	runDone := make(chan error, 1)
	go func() { runDone <- con.Run(ctx) }()
	send := func(line string) {
		if _, err := io.WriteString(inw, line+"\n"); err != nil {
			t.Fatal(err)
		}
	}

	ready := out.wait(t, is("ready"))
	if ready["name"] != "alice" || ready["tcp_port"] != float64(atr.TCPPort()) {
		t.Fatalf("ready %v", ready)
	}
	send("hello nobody")
	out.wait(t, func(ev map[string]any) bool {
		return ev["event"] == "error" && strings.Contains(ev["text"].(string), "no peers")
	})
	send(fmt.Sprintf("/connect 127.0.0.1:%d", btr.TCPPort()))
	up := out.wait(t, is("peer_up"))
	if up["peer"] != "bob" || up["id"] != b.ID() || up["via"] != "manual" {
		t.Fatalf("peer_up %v", up)
	}
	if _, err := b.Say("hi alice"); err != nil {
		t.Fatal(err)
	}
	chat := out.wait(t, is("chat"))
	if chat["from"] != "bob" || chat["text"] != "hi alice" || chat["direct"] != false {
		t.Fatalf("chat %v", chat)
	}
	send("/time -udp bob")
	send("/time")
	send("/echo -udp -n 3 -size 200 bob")
	send("/echo -tcp -n 2 -i 10ms bob paced")
	send("/echo bob some text")
	send("/peers")
	send("/msg nobody x")
	send("/frobnicate")
	send("/echo -tcp -udp bob")
	send("/nick alice2")
	send(strings.Repeat("y", maxLine+10))
	send("/help")

	for _, tr := range []string{"udp", "tcp"} {
		ev := out.wait(t, func(ev map[string]any) bool { return ev["event"] == "time" && ev["transport"] == tr })
		if off := ev["offset_ms"].(float64); off > 5 || off < -5 {
			t.Fatalf("offset %v", ev)
		}
		if _, err := time.Parse(time.RFC3339Nano, ev["time"].(string)); err != nil {
			t.Fatalf("time %v: %v", ev, err)
		}
	}
	// Back to back (a series) and paced: a line per echo, then a summary.
	for _, tc := range []struct {
		transport string
		count     int
		bytes     float64
	}{{"udp", 3, 200}, {"tcp", 2, 5}} {
		for seq := 1; seq <= tc.count; seq++ {
			ev := out.wait(t, func(ev map[string]any) bool {
				return ev["event"] == "echo" && ev["transport"] == tc.transport && ev["seq"] == float64(seq) && ev["bytes"] == tc.bytes
			})
			if ev["ok"] != true || ev["peer"] != "bob" || ev["rtt_ms"].(float64) <= 0 {
				t.Fatalf("echo %v", ev)
			}
		}
		sum := out.wait(t, func(ev map[string]any) bool { return ev["event"] == "echo_summary" && ev["transport"] == tc.transport })
		if sum["received"] != float64(tc.count) || sum["sent"] != float64(tc.count) || sum["peer"] != "bob" || sum["loss_pct"] != float64(0) {
			t.Fatalf("summary %v", sum)
		}
	}
	textEcho := out.wait(t, func(ev map[string]any) bool {
		return ev["event"] == "echo" && ev["transport"] == "tcp" && ev["seq"] == float64(1) && ev["bytes"] == float64(9)
	})
	if textEcho["text"] != "some text" || textEcho["ok"] != true || textEcho["bytes"] != float64(9) {
		t.Fatalf("echo %v", textEcho)
	}
	peers := out.wait(t, is("peers"))
	list := peers["peers"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["peer"] != "bob" || list[0].(map[string]any)["tcp"] != "up" {
		t.Fatalf("peers %v", peers)
	}
	for _, want := range []string{"unknown peer \"nobody\"; known peers: bob", "unknown command /frobnicate", "not both", "input line longer"} {
		out.wait(t, func(ev map[string]any) bool {
			return ev["event"] == "error" && strings.Contains(ev["text"].(string), want)
		})
	}
	nick := out.wait(t, is("nick"))
	if nick["new"] != "alice2" || nick["old"] != "alice" || renamed != "alice2" {
		t.Fatalf("nick %v, renamed %q", nick, renamed)
	}
	out.wait(t, is("help"))
	inw.Close() // end of input: a graceful quit
	select {
	case err := <-runDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("console did not return at end of input")
	}
}

// Issue 17 against two real nodes on loopback, in JSON mode: UDP chat,
// actions, away, names one per person, a series that outlives a rename
// (bug 1), delivery to every recipient.
func TestConsoleJSONEverydayUse(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, atr := startNode(t, ctx, "alice")
	b, btr := startNode(t, ctx, "bob")
	bobEvents := make(chan peer.Event, 1000)
	go func() {
		for {
			select {
			case e := <-b.Events():
				select {
				case bobEvents <- e:
				default:
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	bobGot := func(pred func(peer.Chat) bool) peer.Chat {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case e := <-bobEvents:
				if c, ok := e.(peer.Chat); ok && pred(c) {
					return c
				}
			case <-deadline:
				t.Fatal("bob got no such chat")
			}
		}
	}
	in, inw := io.Pipe()
	defer inw.Close()
	out := &jsonLines{}
	con := New(Config{Node: a, In: in, Out: out, JSON: true, TCPPort: atr.TCPPort(), UDPPort: atr.UDPPort()})
	runDone := make(chan error, 1)
	go func() { runDone <- con.Run(ctx) }()
	send := func(line string) {
		t.Helper()
		if _, err := io.WriteString(inw, line+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	out.wait(t, is("ready"))
	send(fmt.Sprintf("/connect 127.0.0.1:%d", btr.TCPPort()))
	up := out.wait(t, is("peer_up"))
	if up["listen"] != fmt.Sprintf("127.0.0.1:%d", btr.TCPPort()) {
		t.Fatalf("peer_up listen: %v", up)
	}

	send("hello bob")
	sent := out.wait(t, func(ev map[string]any) bool { return ev["event"] == "sent" && ev["text"] == "hello bob" })
	out.wait(t, func(ev map[string]any) bool {
		return ev["event"] == "delivered" && ev["msg_id"] == sent["msg_id"] && ev["all"] == true
	})

	send("/msg -udp BOB over udp")
	out.wait(t, func(ev map[string]any) bool {
		return ev["event"] == "sent" && ev["udp"] == true && ev["text"] == "over udp"
	})
	if c := bobGot(func(c peer.Chat) bool { return c.Text == "over udp" }); !c.UDP || !c.Direct {
		t.Fatalf("bob got %+v", c)
	}
	send("/me waves")
	if c := bobGot(func(c peer.Chat) bool { return c.Text == "waves" }); !c.Action {
		t.Fatalf("bob got %+v", c)
	}
	send("/msg -udp bob " + strings.Repeat("x", transport.MaxUDPText+1))
	out.wait(t, func(ev map[string]any) bool {
		return ev["event"] == "error" && strings.Contains(ev["text"].(string), "send it without -udp")
	})

	send("/away out for lunch")
	out.wait(t, func(ev map[string]any) bool {
		return ev["event"] == "away" && ev["self"] == true && ev["text"] == "out for lunch"
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if p, err := b.Resolve("alice"); err == nil && p.UserAway && p.AwayText == "out for lunch" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("bob does not see alice away")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := b.SetAway(true, "busy"); err != nil {
		t.Fatal(err)
	}
	out.wait(t, func(ev map[string]any) bool {
		return ev["event"] == "away" && ev["peer"] == "bob" && ev["text"] == "busy"
	})
	send("/peers")
	peers := out.wait(t, is("peers"))
	entry := peers["peers"].([]any)[0].(map[string]any)
	if entry["away"] != true || entry["away_text"] != "busy" || entry["listen"] != up["listen"] {
		t.Fatalf("peers entry %v", entry)
	}

	// Bug 3: names are one per person.
	send("/nick Bob")
	out.wait(t, func(ev map[string]any) bool {
		return ev["event"] == "error" && strings.Contains(ev["text"].(string), "names are one per person")
	})
	if a.Name() != "alice" {
		t.Fatalf("alice took bob's name: %q", a.Name())
	}

	// Bug 1: a rename in the middle of a series does not end it; the
	// peer leaving does, and the summary counts only what was sent.
	send("/echo -udp -n 1000 -i 20ms bob")
	out.wait(t, func(ev map[string]any) bool { return ev["event"] == "echo" && ev["seq"] == float64(2) })
	if err := b.SetName("robert"); err != nil {
		t.Fatal(err)
	}
	out.wait(t, func(ev map[string]any) bool { return ev["event"] == "echo" && ev["peer"] == "robert" })
	lctx, lcancel := context.WithTimeout(context.Background(), 5*time.Second)
	b.Leave(lctx, "quit")
	lcancel()
	sum := out.wait(t, is("echo_summary"))
	echoes := 0
	out.mu.Lock()
	for _, ev := range out.events {
		if ev["event"] == "echo" && ev["transport"] == "udp" {
			echoes++
		}
		if ev["event"] == "error" && strings.Contains(ev["text"].(string), "unknown peer") {
			t.Errorf("the series looked the peer up by name: %v", ev)
		}
	}
	out.mu.Unlock()
	if sum["sent"] != float64(echoes) || sum["sent"] == float64(1000) || sum["stopped"] == "" {
		t.Fatalf("summary %v after %d echoes", sum, echoes)
	}
	inw.Close()
	select {
	case err := <-runDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("console did not return at end of input")
	}
}
