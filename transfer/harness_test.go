package transfer

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"lanchat/identity"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	goleak.VerifyTestMain(m)
}

// tlsConfig builds a node's TLS configuration the way peer/handshake.go
// does, with the transfer ALPN.
func tlsConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{cert},
		ClientAuth:         tls.RequireAnyClientCert,
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			_, err := identity.PeerID(raw)
			return err
		},
		NextProtos:             []string{ALPN},
		SessionTicketsDisabled: true,
	}
}

// provenID is the id the other end of a finished handshake proved.
func provenID(tc *tls.Conn) (string, error) {
	st := tc.ConnectionState()
	if st.NegotiatedProtocol != ALPN {
		return "", fmt.Errorf("ALPN %q, want %q", st.NegotiatedProtocol, ALPN)
	}
	pub, ok := st.PeerCertificates[0].PublicKey.(ed25519.PublicKey)
	if !ok {
		return "", errors.New("not an Ed25519 key")
	}
	return identity.IDOf(pub), nil
}

// lan routes transfer streams between test nodes by proven id, over
// loopback TLS 1.3, and can cut every connection or slow the dialled
// ones.
type lan struct {
	mu    sync.Mutex
	addrs map[string]string
	conns map[net.Conn]struct{}
	// rate, when set, caps each dialled connection's writes (bytes/s).
	rate  atomic.Int64
	dials atomic.Int64
}

func newLAN() *lan {
	return &lan{addrs: map[string]string{}, conns: map[net.Conn]struct{}{}}
}

func (l *lan) add(c net.Conn) net.Conn {
	l.mu.Lock()
	l.conns[c] = struct{}{}
	l.mu.Unlock()
	return c
}

// cut closes every connection open now, as a pulled cable would end them.
func (l *lan) cut() int {
	l.mu.Lock()
	cs := make([]net.Conn, 0, len(l.conns))
	for c := range l.conns {
		cs = append(cs, c)
	}
	clear(l.conns)
	l.mu.Unlock()
	for _, c := range cs {
		c.Close()
	}
	return len(cs)
}

type dialer struct {
	l    *lan
	conf *tls.Config
}

func (d dialer) DialTransfer(ctx context.Context, peer string) (net.Conn, error) {
	d.l.mu.Lock()
	addr, ok := d.l.addrs[peer]
	d.l.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("peer %s unknown", peer)
	}
	d.l.dials.Add(1)
	var nd net.Dialer
	raw, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &slowConn{Conn: raw, rate: &d.l.rate}
	d.l.add(raw)
	tc := tls.Client(c, d.conf)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, err
	}
	id, err := provenID(tc)
	if err != nil || id != peer {
		raw.Close()
		return nil, fmt.Errorf("dialled %s, reached %s: %v", peer, id, err)
	}
	return tc, nil
}

// slowConn caps its writes at the LAN's rate, bytes per second, when set
// (read at every write, so a change applies to open connections).
type slowConn struct {
	net.Conn
	rate *atomic.Int64
}

func (c *slowConn) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		r := c.rate.Load()
		if r <= 0 {
			w, err := c.Conn.Write(p)
			return n + w, err
		}
		k := min(len(p), 32<<10)
		w, err := c.Conn.Write(p[:k])
		n += w
		if err != nil {
			return n, err
		}
		time.Sleep(min(time.Duration(int64(k)*int64(time.Second)/r), 100*time.Millisecond))
		p = p[k:]
	}
	return n, nil
}

// node is one test node: an identity, a listener, a manager and the
// events it emitted.
type node struct {
	tb   testing.TB
	id   string
	conf *tls.Config
	l    *lan
	ln   net.Listener
	m    *Manager
	opt  Options
	dl   string // download folder
	st   string // state folder

	// patience bounds waits for a transfer's end (20 s when 0).
	patience time.Duration

	emu    sync.Mutex
	events []Event
	notify chan struct{}
	wg     sync.WaitGroup
}

func newNode(tb testing.TB, l *lan, opt Options) *node {
	tb.Helper()
	ident, err := identity.New()
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := ident.Certificate()
	if err != nil {
		tb.Fatal(err)
	}
	n := &node{tb: tb, id: ident.ID, conf: tlsConfig(cert), l: l, notify: make(chan struct{}, 1)}
	if opt.DownloadDir == "" {
		opt.DownloadDir = tb.TempDir()
	}
	if opt.StateDir == "" {
		opt.StateDir = tb.TempDir()
	}
	n.dl, n.st = opt.DownloadDir, opt.StateDir
	n.opt = opt
	n.start()
	tb.Cleanup(n.stop)
	return n
}

// start opens a listener and a manager on the node's folders.
func (n *node) start() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		n.tb.Fatal(err)
	}
	n.ln = ln
	n.l.mu.Lock()
	n.l.addrs[n.id] = ln.Addr().String()
	n.l.mu.Unlock()
	opt := n.opt
	opt.Dialer = dialer{l: n.l, conf: n.conf}
	m, err := New(opt)
	if err != nil {
		n.tb.Fatal(err)
	}
	n.m = m
	n.wg.Add(2)
	go func() {
		defer n.wg.Done()
		for e := range m.Events() {
			n.emu.Lock()
			n.events = append(n.events, e)
			n.emu.Unlock()
			select {
			case n.notify <- struct{}{}:
			default:
			}
		}
	}()
	go func() {
		defer n.wg.Done()
		var hs sync.WaitGroup
		defer hs.Wait()
		for {
			raw, err := ln.Accept()
			if err != nil {
				return
			}
			n.l.add(raw)
			hs.Add(1)
			go func() {
				defer hs.Done()
				tc := tls.Server(raw, n.conf)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := tc.HandshakeContext(ctx); err != nil {
					raw.Close()
					return
				}
				id, err := provenID(tc)
				if err != nil {
					raw.Close()
					return
				}
				m.Accept(id, tc)
			}()
		}
	}()
}

// stop closes the manager and the listener, as a process exit would.
func (n *node) stop() {
	if n.m == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.m.Close(ctx); err != nil {
		n.tb.Errorf("close: %v", err)
	}
	n.ln.Close()
	n.wg.Wait()
	n.m = nil
}

// restart stops the node and starts it again on the same folders.
func (n *node) restart() {
	n.stop()
	n.emu.Lock()
	n.events = nil
	n.emu.Unlock()
	n.start()
}

// wait returns the first event (in order) that f accepts, failing the
// test after d.
func (n *node) wait(d time.Duration, what string, f func(Event) bool) Event {
	n.tb.Helper()
	deadline := time.After(d)
	for {
		n.emu.Lock()
		for _, e := range n.events {
			if f(e) {
				n.emu.Unlock()
				return e
			}
		}
		n.emu.Unlock()
		select {
		case <-n.notify:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			n.tb.Fatalf("%s: no %s within %v; events: %s", n.id[:8], what, d, n.eventList())
			return nil
		}
	}
}

func (n *node) eventList() string {
	n.emu.Lock()
	defer n.emu.Unlock()
	var b bytes.Buffer
	for _, e := range n.events {
		if _, ok := e.(Progress); ok {
			continue
		}
		fmt.Fprintf(&b, "\n  %T %+v", e, e)
	}
	return b.String()
}

func (n *node) has(f func(Event) bool) bool {
	n.emu.Lock()
	defer n.emu.Unlock()
	for _, e := range n.events {
		if f(e) {
			return true
		}
	}
	return false
}

// Event matchers.
func isOffered(e Event) bool { _, ok := e.(Offered); return ok }
func isDone(e Event) bool    { _, ok := e.(Done); return ok }
func isFailed(e Event) bool  { _, ok := e.(Failed); return ok }
func progressAt(n int64) func(Event) bool {
	return func(e Event) bool { p, ok := e.(Progress); return ok && p.Bytes >= n }
}

func (n *node) offer(to *node, paths ...string) Info {
	n.tb.Helper()
	in, err := n.m.Offer(context.Background(), to.id, paths...)
	if err != nil {
		n.tb.Fatal(err)
	}
	return in
}

// accept waits for the offer id and accepts it.
func (n *node) accept(id string) {
	n.tb.Helper()
	n.wait(5*time.Second, "offer "+id, func(e Event) bool { o, ok := e.(Offered); return ok && o.Info.ID == id })
	if _, err := n.m.AcceptOffer(id); err != nil {
		n.tb.Fatal(err)
	}
}

func (n *node) done(id string) Done {
	n.tb.Helper()
	d := n.patience
	if d == 0 {
		d = 20 * time.Second
	}
	return n.wait(d, "done of "+id, func(e Event) bool { d, ok := e.(Done); return ok && d.Info.ID == id }).(Done)
}

// pair makes two nodes on one LAN.
func pair(tb testing.TB, opt Options) (*lan, *node, *node) {
	l := newLAN()
	return l, newNode(tb, l, opt), newNode(tb, l, opt)
}

// randomFile writes size random bytes at path.
func randomFile(tb testing.TB, path string, size int) []byte {
	tb.Helper()
	b := make([]byte, size)
	rand.Read(b)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		tb.Fatal(err)
	}
	return b
}

// sameTree fails unless folder b holds exactly what a holds.
func sameTree(tb testing.TB, a, b string) {
	tb.Helper()
	list := func(root string) map[string]string {
		out := map[string]string{}
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				tb.Fatal(err)
			}
			rel, _ := filepath.Rel(root, p)
			switch {
			case d.IsDir():
				out[rel] = "dir"
			case d.Type().IsRegular():
				data, err := os.ReadFile(p)
				if err != nil {
					tb.Fatal(err)
				}
				out[rel] = string(data)
			default:
				out[rel] = "special"
			}
			return nil
		})
		return out
	}
	la, lb := list(a), list(b)
	for k, v := range la {
		if w, ok := lb[k]; !ok {
			tb.Errorf("%s missing from %s", k, b)
		} else if w != v {
			tb.Errorf("%s differs (%d bytes vs %d)", k, len(v), len(w))
		}
	}
	for k := range lb {
		if _, ok := la[k]; !ok {
			tb.Errorf("%s in %s is not in %s", k, b, a)
		}
	}
}

// leftovers lists what is in dir other than the expected names.
func leftovers(dir string, expect ...string) []string {
	des, _ := os.ReadDir(dir)
	var out []string
	for _, de := range des {
		if !contains(expect, de.Name()) {
			out = append(out, de.Name())
		}
	}
	return out
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

var _ = io.EOF
