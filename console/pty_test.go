package console

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"lanchat/peer"
)

// openPTY opens a pseudo-terminal: the test types on master, the console
// runs on slave.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	// Through SyscallConn, so that master stays in the poller and Close
	// ends a Read under way.
	rc, err := m.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n uint32
	var ierr error
	if err := rc.Control(func(fd uintptr) {
		if ierr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); ierr != nil {
			return
		}
		if n, ierr = unix.IoctlGetUint32(int(fd), unix.TIOCGPTN); ierr != nil {
			return
		}
		ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 120})
	}); err != nil || ierr != nil {
		m.Close()
		t.Fatalf("pseudo-terminal: %v %v", err, ierr)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	return m, s
}

// tty is a console on a pseudo-terminal.
type tty struct {
	master *os.File
	out    *screen
}

func runTTY(t *testing.T, node Node, cfg Config) *tty {
	t.Helper()
	m, s := openPTY(t)
	tt := &tty{master: m, out: &screen{}}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		buf := make([]byte, 4096)
		for {
			n, err := m.Read(buf)
			tt.out.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	cfg.Node, cfg.In, cfg.Out, cfg.Terminal = node, s, s, true
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	con := New(cfg)
	go func() { done <- con.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("console did not stop")
		}
		m.Close() // the slave's reads fail, ending readline's reader
		s.Close()
		<-copied
	})
	tt.out.wait(t, "alice> ")
	return tt
}

// typ types keys.
func (tt *tty) typ(t *testing.T, keys string) {
	t.Helper()
	if _, err := tt.master.WriteString(keys); err != nil {
		t.Fatal(err)
	}
}

// Home and End as every common terminal (and tmux, and screen) sends
// them.
func TestTerminalHomeEnd(t *testing.T) {
	f := newFake("alice", testPeer("bob"))
	tt := runTTY(t, f, Config{})
	for _, k := range []struct{ name, home, end string }{
		{"tmux/screen (vt220)", "\x1b[1~", "\x1b[4~"},
		{"rxvt", "\x1b[7~", "\x1b[8~"},
		{"xterm", "\x1b[H", "\x1b[F"},
		{"xterm application mode", "\x1bOH", "\x1bOF"},
		{"emacs keys", "\x01", "\x05"},
	} {
		text := "ello " + k.name
		tt.typ(t, "ello"+k.home+"h"+k.end+" "+k.name+"\r")
		f.waitCall(t, "say h"+text)
	}
}

// Bug 2 of issue 17: Ctrl-C on an empty line stops a running /echo -n
// (which prints its summary, as ping does) or /time; on a line being
// typed it only clears the line.
func TestTerminalCtrlCStops(t *testing.T) {
	f := newFake("alice", testPeer("bob"))
	echoes := make(chan struct{}, 1000)
	f.echo = func(_ context.Context, id, via string, payload []byte) (peer.EchoResult, error) {
		echoes <- struct{}{}
		return peer.EchoResult{Peer: testPeer("bob"), Transport: via, Sent: payload, Got: payload, RTT: time.Millisecond, OK: true}, nil
	}
	f.timeOf = func(ctx context.Context, id, via string) (peer.TimeResult, error) {
		<-ctx.Done()
		return peer.TimeResult{}, ctx.Err()
	}
	tt := runTTY(t, f, Config{})
	tt.typ(t, "\x03")
	tt.out.wait(t, "nothing to stop")

	tt.typ(t, "/echo -n 1000 -i 10ms bob\r")
	for i := 0; i < 3; i++ {
		select {
		case <-echoes:
		case <-time.After(10 * time.Second):
			t.Fatal("the echoes did not start")
		}
	}
	tt.typ(t, "half a line\x03") // clears the line, stops nothing
	time.Sleep(50 * time.Millisecond)
	if strings.Contains(tt.out.String(), "stopped") {
		t.Fatal("Ctrl-C on a line being typed stopped the echoes")
	}
	tt.typ(t, "\x03")
	out := tt.out.wait(t, "(stopped)")
	if !strings.Contains(out, "--- bob echo over tcp: ") {
		t.Fatalf("no summary:\n%q", out)
	}
	for len(echoes) > 0 {
		<-echoes
	}
	time.Sleep(100 * time.Millisecond)
	if len(echoes) > 0 {
		t.Fatal("echoes go on after Ctrl-C")
	}
	for _, c := range f.called() {
		if strings.Contains(c, "half a line") {
			t.Fatalf("the cleared line was sent: %q", c)
		}
	}

	tt.typ(t, "/time bob\r")
	f.waitCall(t, "time "+testPeer("bob").ID+" tcp")
	tt.typ(t, "\x03")
	tt.out.wait(t, "time bob: stopped")
}

// A paste of several lines that holds a command asks first.
func TestTerminalPaste(t *testing.T) {
	old := pasteGap
	pasteGap = 300 * time.Millisecond // generous: the race detector is slow
	t.Cleanup(func() { pasteGap = old })
	f := newFake("alice", testPeer("bob"))
	tt := runTTY(t, f, Config{})

	tt.typ(t, "first\r/nick pasted\rlast\r")
	tt.out.wait(t, "you pasted 3 lines, 1 of them commands")
	time.Sleep(2 * pasteGap)
	if calls := f.called(); len(calls) > 0 {
		t.Fatalf("ran before the answer: %q", calls)
	}
	tt.typ(t, "n\r")
	tt.out.wait(t, "paste of 3 lines dropped")
	if calls := f.called(); len(calls) > 0 {
		t.Fatalf("ran after a no: %q", calls)
	}

	tt.typ(t, "again\r/nick pasted\r")
	tt.out.wait(t, "you pasted 2 lines")
	time.Sleep(2 * pasteGap)
	tt.typ(t, "y\r")
	f.waitCall(t, "say again")
	f.waitCall(t, "nick pasted")

	// Text only: sent without a question.
	tt.typ(t, "one\rtwo\r")
	f.waitCall(t, "say one")
	f.waitCall(t, "say two")
	if n := strings.Count(tt.out.String(), "you pasted"); n != 2 {
		t.Fatalf("%d questions, want 2", n)
	}
}

// Tab completes a peer's name at the start of a chat line.
func TestTerminalTab(t *testing.T) {
	f := newFake("alice", testPeer("bob"), testPeer("carol"))
	tt := runTTY(t, f, Config{})
	tt.typ(t, "car\t")
	time.Sleep(50 * time.Millisecond)
	tt.typ(t, "hi\r")
	f.waitCall(t, "say carol: hi")
}
