package baseline

import (
	"archive/tar"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/zeebo/blake3"
)

// Bulk baselines: one stream from host 1 (the sender, which dials) to
// host 0 (the receiver, which listens), the way a file transfer goes.
// Each is timed from the sender's first write until it has read the
// receiver's one-byte answer, which the receiver writes once it has read
// (and, where it applies, hashed or written to disk) every byte: the time
// a transfer takes from its first data byte to the receiver's "done".
// Connections and handshakes are made before the clock starts.

// BulkChunk is the size of every read and write of the bulk baselines,
// that of a transfer's data frame.
const BulkChunk = 256 << 10

// BulkKind says what a bulk baseline does besides moving bytes.
type BulkKind int

const (
	// BulkTCP is plain TCP: the floor of any stream.
	BulkTCP BulkKind = iota
	// BulkTLS is Go's TLS 1.3 with Ed25519 certificates on both ends, as
	// lanchat's streams are.
	BulkTLS
	// BulkTLSHashed is BulkTLS with BLAKE3 over every byte on both ends,
	// as a transfer hashes each file where it reads and where it writes:
	// the work a transfer cannot avoid, without the disk.
	BulkTLSHashed
)

func (k BulkKind) String() string {
	switch k {
	case BulkTCP:
		return "raw TCP"
	case BulkTLS:
		return "Go TLS 1.3"
	case BulkTLSHashed:
		return "Go TLS 1.3 + BLAKE3 on both ends"
	}
	return fmt.Sprintf("bulk(%d)", int(k))
}

// bulkDeadline bounds every socket operation of a bulk measurement of
// size bytes: a minute plus the size at 10 MB/s, far past any healthy
// run, so a stuck measurement fails instead of hanging the bench.
func bulkDeadline(size int64) time.Time {
	return time.Now().Add(time.Minute + time.Duration(size/10e6)*time.Second)
}

// Bulk sends size bytes from host 1 to host 0 over one connection of
// kind k, in BulkChunk writes, and returns the time from the first write
// to the receiver's answer.
func Bulk(h Hosts, k BulkKind, size int64) (time.Duration, error) {
	var conf *tls.Config
	if k != BulkTCP {
		var err error
		if conf, err = bulkTLSConfig(); err != nil {
			return 0, err
		}
	}
	ln, err := h.listenTCP()
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	deadline := bulkDeadline(size)
	// The receiver: its goroutine ends when it has answered, or when
	// its connection fails (the sender closes its end on every error);
	// Bulk waits for it before returning.
	done := make(chan error, 1)
	go func() { done <- bulkReceive(ln, conf, k == BulkTLSHashed, size, deadline) }()
	took, err := bulkSend(h, ln.Addr().String(), conf, k == BulkTLSHashed, size, deadline)
	ln.Close() // a receiver still in Accept (the dial failed) returns
	rerr := <-done
	if err != nil {
		return 0, fmt.Errorf("%s bulk: %w", k, errors.Join(err, rerr))
	}
	if rerr != nil {
		return 0, fmt.Errorf("%s bulk: receiver: %w", k, rerr)
	}
	return took, nil
}

func bulkReceive(ln net.Listener, conf *tls.Config, hashed bool, size int64, deadline time.Time) error {
	c, err := ln.Accept()
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(deadline)
	if conf != nil {
		tc := tls.Server(c, conf)
		if err := tc.Handshake(); err != nil {
			return err
		}
		c = tc
	}
	buf := make([]byte, BulkChunk)
	var h *blake3.Hasher
	if hashed {
		h = blake3.New()
	}
	for got := int64(0); got < size; {
		n, err := c.Read(buf[:min(int64(len(buf)), size-got)])
		if h != nil {
			h.Write(buf[:n])
		}
		got += int64(n)
		if err != nil && got < size {
			return err
		}
	}
	ack := []byte{1}
	if h != nil {
		ack[0] = h.Sum(nil)[0] | 1 // the sum is computed before answering
	}
	_, err = c.Write(ack)
	return err
}

func bulkSend(h Hosts, addr string, conf *tls.Config, hashed bool, size int64, deadline time.Time) (time.Duration, error) {
	c, err := h.dialTCP(addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(deadline)
	if conf != nil {
		tc := tls.Client(c, conf)
		if err := tc.Handshake(); err != nil {
			return 0, err
		}
		c = tc
	}
	buf := make([]byte, BulkChunk)
	rand.Read(buf)
	var hs *blake3.Hasher
	if hashed {
		hs = blake3.New()
	}
	start := time.Now()
	for sent := int64(0); sent < size; {
		n := min(int64(len(buf)), size-sent)
		if hs != nil {
			hs.Write(buf[:n])
		}
		if _, err := c.Write(buf[:n]); err != nil {
			return 0, err
		}
		sent += n
	}
	if hs != nil {
		hs.Sum(nil)
	}
	var ack [1]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		return 0, fmt.Errorf("waiting for the receiver's answer: %w", err)
	}
	return time.Since(start), nil
}

var (
	bulkConfOnce sync.Once
	bulkConf     *tls.Config
	bulkConfErr  error
)

// bulkTLSConfig is TLS 1.3 only, a self-signed Ed25519 certificate
// presented by both ends and not verified (lanchat checks the key after
// the handshake, which costs nothing per byte), no session tickets.
func bulkTLSConfig() (*tls.Config, error) {
	bulkConfOnce.Do(func() {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			bulkConfErr = err
			return
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
		if err != nil {
			bulkConfErr = err
			return
		}
		bulkConf = &tls.Config{
			MinVersion:             tls.VersionTLS13,
			Certificates:           []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: priv}},
			ClientAuth:             tls.RequireAnyClientCert,
			InsecureSkipVerify:     true,
			SessionTicketsDisabled: true,
		}
	})
	return bulkConf, bulkConfErr
}

// TarTCP is the baseline for a folder: tar | raw TCP | untar. Host 1
// walks src and writes it as a tar stream (archive/tar) to host 0, which
// unpacks it under dst, each file created and written, none synced; it
// answers once the archive's end is read and the last file closed. The
// time runs from the start of the walk to that answer.
func TarTCP(h Hosts, src, dst string) (time.Duration, error) {
	ln, err := h.listenTCP()
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	deadline := time.Now().Add(5 * time.Minute)
	done := make(chan error, 1)
	go func() { done <- untar(ln, dst, deadline) }()
	took, err := tarSend(h, ln.Addr().String(), src, deadline)
	ln.Close()
	rerr := <-done
	if err != nil {
		return 0, fmt.Errorf("tar over TCP: %w", errors.Join(err, rerr))
	}
	if rerr != nil {
		return 0, fmt.Errorf("tar over TCP: receiver: %w", rerr)
	}
	return took, nil
}

func tarSend(h Hosts, addr, src string, deadline time.Time) (time.Duration, error) {
	c, err := h.dialTCP(addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(deadline)
	start := time.Now()
	tw := tar.NewWriter(c)
	base := filepath.Dir(src)
	buf := make([]byte, 64<<10)
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if !fi.IsDir() && !fi.Mode().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(base, p)
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: filepath.ToSlash(rel), Mode: int64(fi.Mode().Perm()), ModTime: fi.ModTime(), Typeflag: tar.TypeReg, Size: fi.Size()}
		if fi.IsDir() {
			hdr.Typeflag, hdr.Size, hdr.Name = tar.TypeDir, 0, hdr.Name+"/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.IsDir() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		_, err = io.CopyBuffer(tw, f, buf)
		f.Close()
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		return 0, err
	}
	var ack [1]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		return 0, fmt.Errorf("waiting for the receiver's answer: %w", err)
	}
	return time.Since(start), nil
}

func untar(ln net.Listener, dst string, deadline time.Time) error {
	c, err := ln.Accept()
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(deadline)
	tr := tar.NewReader(c)
	buf := make([]byte, 64<<10)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(filepath.FromSlash(hdr.Name))
		if filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, ".."+string(filepath.Separator)) {
			return fmt.Errorf("unsafe name %q in the archive", hdr.Name)
		}
		p := filepath.Join(dst, name)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				return err
			}
			_, err = io.CopyBuffer(f, tr, buf)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
	}
	_, err = c.Write([]byte{1})
	return err
}
