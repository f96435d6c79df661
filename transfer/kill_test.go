package transfer

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"lanchat/identity"
)

// childEnv, when set, makes the test binary a receiver process (see
// childMain) instead of running tests.
const childEnv = "LANCHAT_TRANSFER_CHILD"

// childMain is a receiving node in a process of its own, for the kill -9
// test: it loads its key, listens on loopback, prints "ADDR host:port",
// accepts every offer, and exits when its stdin closes (or after a
// minute).
func childMain() int {
	if p := os.Getenv("LT_CPUPROFILE"); p != "" {
		if f, err := os.Create(p); err == nil {
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	ident, _, err := identity.LoadOrCreate(os.Getenv("LT_KEY"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cert, err := ident.Certificate()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	conf := tlsConfig(cert)
	listen := os.Getenv("LT_LISTEN")
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if os.Getenv("LT_RAW") != "" {
		raw, err := net.Listen("tcp", listen)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer raw.Close()
		go rawSink(raw)
		fmt.Printf("RAW %s\n", raw.Addr())
	}
	m, err := New(Options{
		Dialer: noDialer{}, StateDir: os.Getenv("LT_STATE"), DownloadDir: os.Getenv("LT_DL"),
		AcceptFrom: func(string) bool { return true }, CheckpointBytes: 1 << 20, CheckpointMin: time.Millisecond,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go func() {
		for e := range m.Events() {
			if _, ok := e.(Progress); !ok {
				fmt.Fprintf(os.Stderr, "child event %T\n", e)
			}
		}
	}()
	go func() {
		for {
			raw, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				tc := tls.Server(raw, conf)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := tc.HandshakeContext(ctx); err != nil {
					raw.Close()
					return
				}
				if id, err := provenID(tc); err == nil {
					m.Accept(id, tc)
				} else {
					raw.Close()
				}
			}()
		}
	}()
	fmt.Printf("ADDR %s\n", ln.Addr())
	stdin := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(stdin)
	}()
	select {
	case <-stdin:
	case <-time.After(time.Minute):
	}
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.Close(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// rawSink serves the raw TCP baseline: each connection sends an 8-byte
// count, then that many bytes; the sink answers one byte when it has read
// them all.
func rawSink(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			var hdr [8]byte
			if _, err := io.ReadFull(c, hdr[:]); err != nil {
				return
			}
			n := int64(binary.BigEndian.Uint64(hdr[:]))
			buf := make([]byte, 256<<10)
			for n > 0 {
				k, err := c.Read(buf[:min(int64(len(buf)), n)])
				n -= int64(k)
				if err != nil {
					return
				}
			}
			c.Write([]byte{1})
		}()
	}
}

type noDialer struct{}

func (noDialer) DialTransfer(context.Context, string) (net.Conn, error) {
	return nil, errors.New("this test node does not dial")
}

// child is a running receiver process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
	raw   string // the raw sink's address, with LT_RAW
}

func startChild(t testing.TB, env []string, prefix ...string) *child {
	t.Helper()
	args := append(prefix, os.Args[0], "-test.run=^$")
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), append(env, childEnv+"=1")...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, stdin: stdin}
	t.Cleanup(func() {
		c.stdin.Close()
		c.cmd.Process.Kill()
		c.cmd.Wait()
	})
	line := make(chan string, 1)
	raw := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
				line <- a
			}
			if a, ok := strings.CutPrefix(sc.Text(), "RAW "); ok {
				raw <- a
			}
		}
	}()
	select {
	case c.addr = <-line:
	case <-time.After(20 * time.Second):
		t.Fatal("child did not start")
	}
	select {
	case c.raw = <-raw:
	default:
	}
	return c
}

// TestKillReceiver: kill -9 of the receiving process mid-transfer, and a
// new process on the same folders: the transfer resumes from the last
// checkpoint and the file is whole.
func TestKillReceiver(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	key := filepath.Join(dir, "key", "identity.pem")
	ident, _, err := identity.LoadOrCreate(key)
	if err != nil {
		t.Fatal(err)
	}
	dl, st := filepath.Join(dir, "dl"), filepath.Join(dir, "state")
	env := []string{"LT_KEY=" + key, "LT_DL=" + dl, "LT_STATE=" + st}

	l := newLAN()
	a := newNode(t, l, resumeOpts)
	src := filepath.Join(t.TempDir(), "movie")
	data := randomFile(t, src, 8<<20)
	c := startChild(t, env)
	l.mu.Lock()
	l.addrs[ident.ID] = c.addr
	l.mu.Unlock()
	l.rate.Store(6 << 20)
	in, err := a.m.Offer(context.Background(), ident.ID, src)
	if err != nil {
		t.Fatal(err)
	}
	a.wait(20*time.Second, "progress", progressAt(4<<20))
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	c.cmd.Wait()
	a.wait(10*time.Second, "interruption", isInterrupted)
	fi, _ := os.Stat(filepath.Join(dl, partialDir, in.ID, "0"))
	t.Logf("killed with %d bytes in the partial file", fi.Size())

	c = startChild(t, env)
	l.mu.Lock()
	l.addrs[ident.ID] = c.addr
	l.mu.Unlock()
	l.rate.Store(0)
	a.m.PeerUp(ident.ID)
	d := a.done(in.ID)
	got, err := os.ReadFile(filepath.Join(dl, "movie"))
	if err != nil || string(got) != string(data) {
		t.Fatalf("received file differs (%d bytes, %v)", len(got), err)
	}
	resent := d.Info.Wire - d.Info.Bytes
	t.Logf("re-sent %d bytes after kill -9 (checkpoint every 1 MiB)", resent)
	if resent > 3<<20 {
		t.Errorf("re-sent %d bytes", resent)
	}
	c.stdin.Close()
	if err := c.cmd.Wait(); err != nil {
		t.Errorf("child: %v", err)
	}
}
