package transfer

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lanchat/identity"
)

// rogue is a test sender with a valid identity that speaks the wire
// protocol directly.
type rogue struct {
	t *testing.T
	c net.Conn
}

func dialRogue(t *testing.T, from, to *node) *rogue {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := dialer{l: from.l, conf: from.conf}.DialTransfer(ctx, to.id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rogue{t: t, c: c}
}

func (r *rogue) send(m message) {
	r.t.Helper()
	b, err := appendFrame(nil, m)
	if err != nil {
		r.t.Fatal(err)
	}
	r.raw(b)
}

func (r *rogue) raw(b []byte) {
	r.t.Helper()
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

// answer returns the next message that is not a ping; nil when the
// stream ends.
func (r *rogue) answer() message {
	for {
		m, _, err := readMessage(r.c, nil)
		if err != nil {
			return nil
		}
		if _, ok := m.(pingMsg); !ok {
			return m
		}
	}
}

func TestHostileOffers(t *testing.T) {
	l := newLAN()
	bad := newNode(t, l, Options{})
	b := newNode(t, l, Options{MaxFiles: 100, AcceptFrom: func(string) bool { return true }})
	outside := t.TempDir()
	for _, tc := range []struct {
		name string
		es   []entry
	}{
		{"dot dot", []entry{{Path: "../../x", Size: 1}}},
		{"dot dot inside", []entry{{Path: "d", Dir: true}, {Path: "d/../../x", Size: 1}}},
		{"absolute", []entry{{Path: filepath.Join(outside, "x"), Size: 1}}},
		{"escape sequence", []entry{{Path: "a\x1b]0;pwned\x07", Size: 1}}},
		{"right-to-left override", []entry{{Path: "invoice\u202efdp.exe", Size: 1}}},
		{"NUL", []entry{{Path: "a\x00b", Size: 1}}},
		{"empty component", []entry{{Path: "d", Dir: true}, {Path: "d//x", Size: 1}}},
		{"undeclared folder", []entry{{Path: "d/x", Size: 1}}},
		{"partial folder", []entry{{Path: partialDir, Dir: true}}},
		{"too many files", func() []entry {
			var es []entry
			for i := range 101 {
				es = append(es, entry{Path: "f" + strings.Repeat("x", i)})
			}
			return es
		}()},
		{"more than the disk", []entry{{Path: "huge", Size: 1 << 49}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRogue(t, bad, b)
			r.send(offerMsg{ID: "rogue", Hash: hashBLAKE3, Entries: tc.es})
			a, ok := r.answer().(rejectMsg)
			if !ok || (a.Code != codeInvalid && a.Code != codeNoSpace) {
				t.Fatalf("answer %#v", a)
			}
			t.Logf("refused: %s", a.Reason)
			if strings.ContainsAny(a.Reason, "\x1b\x00\u202e") {
				t.Errorf("reason carries control characters: %q", a.Reason)
			}
		})
	}
	if l := leftovers(b.dl); len(l) > 0 {
		t.Errorf("download folder: %v", l)
	}
	if l := leftovers(outside); len(l) > 0 {
		t.Errorf("outside: %v", l)
	}
	for _, in := range b.m.List() {
		if in.State != StateRejected || !strings.Contains(in.Reason, "free space") {
			t.Errorf("registered: %+v", in)
		}
	}
	b.wait(time.Second, "rejection events", func(e Event) bool { r, ok := e.(Rejected); return ok && !r.ByPeer })
}

func TestHostileDeclaredCount(t *testing.T) {
	l := newLAN()
	bad := newNode(t, l, Options{})
	b := newNode(t, l, Options{})
	r := dialRogue(t, bad, b)
	// An offer that claims ten million entries in a few bytes.
	p := appendStr(nil, "rogue")
	p = append(p, byte(hashBLAKE3))
	p = binary.AppendUvarint(p, 10_000_000)
	p = append(p, 0, 1, 'a', 0, 0, 0, 0, 0, 0, 0, 1)
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(p)+1))
	r.raw(append(append(frame, typeOffer), p...))
	if m := r.answer(); m != nil {
		t.Errorf("answered %#v", m)
	}
	// A header announcing the largest offer, then nothing.
	r = dialRogue(t, bad, b)
	r.raw([]byte{0, 0xff, 0xff, 0xff, typeOffer})
	r.c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if m := r.answer(); m != nil {
		t.Errorf("answered %#v", m)
	}
}

// TestHostileData: an accepted transfer whose sender breaks the rules is
// cut off; nothing it sent is placed.
func TestHostileData(t *testing.T) {
	l := newLAN()
	bad := newNode(t, l, Options{})
	b := newNode(t, l, Options{AcceptFrom: func(string) bool { return true }})
	ten := []byte("0123456789")
	h := hashBLAKE3.new()
	h.Write(ten)
	sum := h.Sum()
	for i, tc := range []struct {
		name  string
		after func(r *rogue)
		why   string
	}{
		{"more bytes than offered", func(r *rogue) {
			r.send(dataMsg{Index: 0, Offset: 0, Data: append(ten, "and more"...)})
		}, "more bytes than offered"},
		{"more bytes in a second frame", func(r *rogue) {
			r.send(dataMsg{Index: 0, Offset: 0, Data: ten})
			r.send(dataMsg{Index: 0, Offset: 10, Data: []byte("x")})
		}, "more bytes than offered"},
		{"data for a file not offered", func(r *rogue) {
			r.send(dataMsg{Index: 7, Offset: 0, Data: ten})
		}, "not offered"},
		{"data for a folder", func(r *rogue) {
			r.send(dataMsg{Index: 1, Offset: 0, Data: ten})
		}, "due"},
		{"data out of order", func(r *rogue) {
			r.send(dataMsg{Index: 0, Offset: 5, Data: ten[5:]})
		}, "due"},
		{"end too early", func(r *rogue) {
			r.send(dataMsg{Index: 0, Offset: 0, Data: ten[:4]})
			r.send(fileEndMsg{Index: 0, Hash: sum})
		}, "ended after 4 of 10"},
		{"wrong hash", func(r *rogue) {
			r.send(dataMsg{Index: 0, Offset: 0, Data: []byte("0123456780")})
			r.send(fileEndMsg{Index: 0, Hash: sum})
		}, "hash to"},
		{"an offer in the middle", func(r *rogue) {
			r.send(offerMsg{ID: "other", Hash: hashBLAKE3, Entries: []entry{{Path: "x"}}})
		}, "unexpected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "rogue" + string(idAlphabet[i])
			r := dialRogue(t, bad, b)
			r.send(offerMsg{ID: id, Hash: hashBLAKE3, Entries: []entry{{Path: "f" + id, Size: 10}, {Path: "d" + id, Dir: true}}})
			if a, ok := r.answer().(acceptMsg); !ok || a.Next != 0 {
				t.Fatalf("answer %#v", a)
			}
			tc.after(r)
			e, ok := r.answer().(errorMsg)
			r.c.Close()
			if !ok || e.Code != codeProtocol && e.Code != codeHashMismatch || !strings.Contains(e.Reason, tc.why) {
				t.Errorf("answer %#v", e)
			}
			f := b.wait(5*time.Second, "failure", func(e Event) bool { f, ok := e.(Failed); return ok && f.Info.ID == id }).(Failed)
			if !strings.Contains(f.Info.Reason, tc.why) {
				t.Errorf("reason %q", f.Info.Reason)
			}
			if _, err := os.Stat(filepath.Join(b.dl, "f"+id)); err == nil {
				t.Error("file placed")
			}
			waitGone(t, filepath.Join(b.dl, partialDir, id))
		})
	}
}

func waitGone(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Lstat(path); os.IsNotExist(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still there", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSymlinkSwappedIn: a folder of the transfer replaced by a link to
// elsewhere while the data flows: nothing is written outside the
// download folder, and the transfer fails.
func TestSymlinkSwappedIn(t *testing.T) {
	l := newLAN()
	bad := newNode(t, l, Options{})
	b := newNode(t, l, Options{AcceptFrom: func(string) bool { return true }})
	outside := t.TempDir()
	ten := []byte("0123456789")
	h := hashBLAKE3.new()
	h.Write(ten)
	r := dialRogue(t, bad, b)
	r.send(offerMsg{ID: "swap", Hash: hashBLAKE3, Entries: []entry{{Path: "d", Dir: true}, {Path: "d/sub", Dir: true}, {Path: "d/sub/x", Size: 10}}})
	if _, ok := r.answer().(acceptMsg); !ok {
		t.Fatal("not accepted")
	}
	sub := filepath.Join(b.dl, "d", "sub")
	if err := os.Remove(sub); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, sub); err != nil {
		t.Fatal(err)
	}
	r.send(dataMsg{Index: 2, Offset: 0, Data: ten})
	r.send(fileEndMsg{Index: 2, Hash: h.Sum()})
	e, ok := r.answer().(errorMsg)
	if !ok {
		t.Fatalf("answer %#v", e)
	}
	t.Logf("failed: %s", e.Reason)
	if l := leftovers(outside); len(l) > 0 {
		t.Errorf("written outside: %v", l)
	}
}

// TestStalledReceiver: a receiver that accepts and then never reads. The
// sender's writes block; Cancel and Close still return at once, and the
// idle timeout ends the stream.
func TestStalledReceiver(t *testing.T) {
	l := newLAN()
	a := newNode(t, l, Options{IdleTimeout: 2 * time.Second, RedialMin: time.Hour})
	ident, err := identity.New()
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := ident.Certificate()
	conf := tlsConfig(cert)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	l.addrs[ident.ID] = ln.Addr().String()
	got := make(chan net.Conn, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			return
		}
		tc := tls.Server(raw, conf)
		tc.SetDeadline(time.Now().Add(10 * time.Second))
		if _, _, err := readMessage(tc, nil); err != nil {
			raw.Close()
			return
		}
		b, _ := appendFrame(nil, acceptMsg{})
		tc.Write(b)
		got <- raw // and never read again
	}()
	src := filepath.Join(t.TempDir(), "big")
	randomFile(t, src, 64<<20)
	in, err := a.m.Offer(context.Background(), ident.ID, src)
	if err != nil {
		t.Fatal(err)
	}
	var raw net.Conn
	select {
	case raw = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no stream")
	}
	defer raw.Close()
	a.wait(10*time.Second, "progress", progressAt(1))
	time.Sleep(200 * time.Millisecond) // the socket buffers fill
	start := time.Now()
	if err := a.m.Cancel(in.ID); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("cancel and close took %v", d)
	}
	a.m = nil
	a.ln.Close()
	a.wg.Wait()
}
