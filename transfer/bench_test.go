package transfer

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zeebo/blake3"

	"lanchat/identity"
)

// benchSize is the file size of the bulk benchmarks: LANCHAT_BENCH_SIZE
// bytes (default 256 MiB; the figure is for 1 GiB).
func benchSize(b *testing.B, def int64) int64 {
	if s := os.Getenv("LANCHAT_BENCH_SIZE"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	return def
}

// rawBulk sends size bytes over loopback TCP in 256 KiB writes and
// returns how long until the reader has them all.
func rawBulk(size int64) (time.Duration, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		buf := make([]byte, 256<<10)
		var n int64
		for n < size {
			k, err := c.Read(buf)
			n += int64(k)
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return 0, err
	}
	defer c.Close()
	buf := make([]byte, 256<<10)
	start := time.Now()
	for sent := int64(0); sent < size; {
		k, err := c.Write(buf[:min(int64(len(buf)), size-sent)])
		sent += int64(k)
		if err != nil {
			return 0, err
		}
	}
	err = <-done
	return time.Since(start), err
}

// tlsBulk is rawBulk over TLS 1.3 with the nodes' certificates.
func tlsBulk(a, b *node, size int64) (time.Duration, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		c := tls.Server(raw, b.conf)
		defer c.Close()
		buf := make([]byte, 256<<10)
		var n int64
		for n < size {
			k, err := c.Read(buf)
			n += int64(k)
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), a.conf)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	buf := make([]byte, 256<<10)
	start := time.Now()
	for sent := int64(0); sent < size; {
		k, err := c.Write(buf[:min(int64(len(buf)), size-sent)])
		sent += int64(k)
		if err != nil {
			return 0, err
		}
	}
	err = <-done
	return time.Since(start), err
}

// timedTransfer sends paths from a to b and returns the time from the
// offer to the sender's done (the receiver verified and placed it all).
func timedTransfer(b *testing.B, from, to *node, paths ...string) time.Duration {
	b.Helper()
	from.patience, to.patience = 10*time.Minute, 10*time.Minute
	start := time.Now()
	in := from.offer(to, paths...)
	to.accept(in.ID)
	from.done(in.ID)
	el := time.Since(start)
	from.emu.Lock()
	from.events = nil
	from.emu.Unlock()
	to.emu.Lock()
	to.events = nil
	to.emu.Unlock()
	return el
}

func clearDir(b *testing.B, dir string) {
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		if err := os.RemoveAll(filepath.Join(dir, de.Name())); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBulk measures, in the same run and in alternating turns, raw
// loopback TCP, TLS 1.3 and a transfer of one file of the same size
// between two managers (TLS, hashing on both sides, the receiver writing
// to disk with checkpoints). LANCHAT_BENCH_DIR puts the received file
// elsewhere (a tmpfs, to take the disk out).
func BenchmarkBulk(b *testing.B) {
	for _, alg := range []hashAlg{hashBLAKE3, hashSHA256} {
		b.Run(alg.String(), func(b *testing.B) { benchBulk(b, alg) })
	}
}

func benchBulk(b *testing.B, alg hashAlg) {
	size := benchSize(b, 256<<20)
	dl := b.TempDir()
	if d := os.Getenv("LANCHAT_BENCH_DIR"); d != "" {
		dl = filepath.Join(d, "lanchat-bench-dl")
		os.MkdirAll(dl, 0o700)
		b.Cleanup(func() { os.RemoveAll(dl) })
	}
	l := newLAN()
	a := newNode(b, l, Options{hash: alg})
	r := newNode(b, l, Options{DownloadDir: dl})
	src := filepath.Join(b.TempDir(), "bulk")
	f, err := os.Create(src)
	if err != nil {
		b.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i * 7)
	}
	for w := int64(0); w < size; w += int64(len(chunk)) {
		f.Write(chunk[:min(int64(len(chunk)), size-w)])
	}
	f.Close()
	var raw, tl, tr time.Duration
	b.SetBytes(size)
	only := os.Getenv("LANCHAT_BENCH_ONLY") == "transfer" // for profiles
	for b.Loop() {
		if only {
			clearDir(b, dl)
			tr += timedTransfer(b, a, r, src)
			continue
		}
		d, err := rawBulk(size)
		if err != nil {
			b.Fatal(err)
		}
		raw += d
		d, err = tlsBulk(a, r, size)
		if err != nil {
			b.Fatal(err)
		}
		tl += d
		clearDir(b, dl)
		tr += timedTransfer(b, a, r, src)
	}
	n := float64(b.N) * float64(size) / 1e6
	b.ReportMetric(n/raw.Seconds(), "raw-MB/s")
	b.ReportMetric(n/tl.Seconds(), "tls-MB/s")
	b.ReportMetric(n/tr.Seconds(), "transfer-MB/s")
	b.ReportMetric(raw.Seconds()/tr.Seconds(), "ratio-vs-raw")
	b.ReportMetric(tl.Seconds()/tr.Seconds(), "ratio-vs-tls")
}

// BenchmarkSmallFiles sends a folder of 10,000 files of 4 KiB, against
// tar over raw loopback TCP doing the same (archive/tar writing from the
// folder, reading into a new one), in alternating turns; files per
// second.
func BenchmarkSmallFiles(b *testing.B) {
	const files, size = 10000, 4096
	dl := b.TempDir()
	l := newLAN()
	a := newNode(b, l, Options{})
	r := newNode(b, l, Options{DownloadDir: dl})
	src := filepath.Join(b.TempDir(), "many")
	data := make([]byte, size)
	for i := range files {
		data[0], data[1] = byte(i), byte(i>>8)
		dir := filepath.Join(src, fmt.Sprintf("d%02d", i%100))
		os.MkdirAll(dir, 0o755)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%05d", i)), data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	tarDst := b.TempDir()
	var tt, tr time.Duration
	for b.Loop() {
		clearDir(b, tarDst)
		d, err := tarOverTCP(src, tarDst)
		if err != nil {
			b.Fatal(err)
		}
		tt += d
		clearDir(b, dl)
		tr += timedTransfer(b, a, r, src)
	}
	n := float64(b.N * files)
	b.ReportMetric(n/tt.Seconds(), "tar-files/s")
	b.ReportMetric(n/tr.Seconds(), "transfer-files/s")
	b.ReportMetric(tt.Seconds()/tr.Seconds(), "ratio-vs-tar")
}

// tarOverTCP is the small-file baseline: tar | raw TCP | untar.
func tarOverTCP(src, dst string) (time.Duration, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		tr := tar.NewReader(c)
		buf := make([]byte, 64<<10)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				done <- nil
				return
			}
			if err != nil {
				done <- err
				return
			}
			p := filepath.Join(dst, filepath.FromSlash(h.Name))
			if !strings.HasPrefix(p, dst) {
				done <- errors.New("bad name")
				return
			}
			if h.Typeflag == tar.TypeDir {
				os.MkdirAll(p, 0o755)
				continue
			}
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				done <- err
				return
			}
			_, err = io.CopyBuffer(f, tr, buf)
			f.Close()
			if err != nil {
				done <- err
				return
			}
		}
	}()
	start := time.Now()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return 0, err
	}
	tw := tar.NewWriter(c)
	base := filepath.Dir(src)
	err = filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(base, p)
		h, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		_, err = io.Copy(tw, f)
		f.Close()
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	c.Close()
	if err != nil {
		return 0, err
	}
	err = <-done
	return time.Since(start), err
}

// BenchmarkHash: the two hashes on one core, 256 KiB at a time.
func BenchmarkHash(b *testing.B) {
	buf := make([]byte, ChunkSize)
	for i := range buf {
		buf[i] = byte(i * 13)
	}
	b.Run("sha256", func(b *testing.B) {
		h := sha256.New()
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			h.Write(buf)
		}
	})
	b.Run("blake3", func(b *testing.B) {
		h := blake3.New()
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			h.Write(buf)
		}
	})
}

// BenchmarkLargeFileRSS sends one large file (LANCHAT_BENCH_SIZE, default
// 4 GiB, sparse on the sender) and reports the process's peak resident
// memory while both managers run in it, sampled every 50 ms.
func BenchmarkLargeFileRSS(b *testing.B) {
	size := benchSize(b, 4<<30)
	dl := b.TempDir()
	if d := os.Getenv("LANCHAT_BENCH_DIR"); d != "" {
		dl = filepath.Join(d, "lanchat-bench-dl")
		os.MkdirAll(dl, 0o700)
		b.Cleanup(func() { os.RemoveAll(dl) })
	}
	l := newLAN()
	a := newNode(b, l, Options{})
	r := newNode(b, l, Options{DownloadDir: dl})
	src := filepath.Join(b.TempDir(), "sparse")
	f, err := os.Create(src)
	if err != nil {
		b.Fatal(err)
	}
	f.Truncate(size)
	f.Close()
	before := rssKiB("VmRSS")
	var peak int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			if v := rssKiB("VmRSS"); v > peak {
				peak = v
			}
			select {
			case <-t.C:
			case <-stop:
				return
			}
		}
	}()
	var el time.Duration
	for b.Loop() {
		clearDir(b, dl)
		el += timedTransfer(b, a, r, src)
	}
	close(stop)
	<-sampled
	b.ReportMetric(float64(before)/1024, "RSS-before-MiB")
	b.ReportMetric(float64(peak)/1024, "RSS-peak-MiB")
	b.ReportMetric(float64(b.N)*float64(size)/1e6/el.Seconds(), "transfer-MB/s")
}

func rssKiB(field string) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return 0
}

// BenchmarkBulkNetns is BenchmarkBulk with the receiver in another process
// in a network namespace of its own, joined to this one by a veth pair,
// so that the bytes cross a link as between two hosts; raw TCP to a sink
// in that process and the transfer take alternating turns. It needs root
// and LANCHAT_BENCH_NETNS=1; the namespace is removed at the end.
func BenchmarkBulkNetns(b *testing.B) {
	if os.Getenv("LANCHAT_BENCH_NETNS") == "" || os.Geteuid() != 0 {
		b.Skip("set LANCHAT_BENCH_NETNS=1, as root, to measure across a veth pair")
	}
	ns := fmt.Sprintf("lt%d", os.Getpid()%100000)
	va, vb := ns+"a", ns+"b"
	run := func(args ...string) {
		b.Helper()
		if out, err := exec.Command("timeout", append([]string{"10"}, args...)...).CombinedOutput(); err != nil {
			b.Fatalf("%v: %v: %s", args, err, out)
		}
	}
	run("ip", "netns", "add", ns)
	b.Cleanup(func() {
		exec.Command("timeout", "10", "ip", "link", "del", va).Run()
		exec.Command("timeout", "10", "ip", "netns", "del", ns).Run()
	})
	run("ip", "link", "add", va, "type", "veth", "peer", "name", vb)
	run("ip", "link", "set", vb, "netns", ns)
	run("ip", "addr", "add", "10.213.0.1/24", "dev", va)
	run("ip", "link", "set", va, "up")
	run("ip", "netns", "exec", ns, "ip", "addr", "add", "10.213.0.2/24", "dev", vb)
	run("ip", "netns", "exec", ns, "ip", "link", "set", vb, "up")
	run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")

	dir := b.TempDir()
	key := filepath.Join(dir, "key", "identity.pem")
	ident, _, err := identity.LoadOrCreate(key)
	if err != nil {
		b.Fatal(err)
	}
	dl := filepath.Join(dir, "dl")
	if d := os.Getenv("LANCHAT_BENCH_DIR"); d != "" {
		dl = filepath.Join(d, "lanchat-bench-dl")
		b.Cleanup(func() { os.RemoveAll(dl) })
	}
	c := startChild(b, []string{"LT_KEY=" + key, "LT_DL=" + dl, "LT_STATE=" + filepath.Join(dir, "state"),
		"LT_LISTEN=10.213.0.2:0", "LT_RAW=1", "LT_CPUPROFILE=" + os.Getenv("LANCHAT_BENCH_CHILD_PROFILE")}, "ip", "netns", "exec", ns)
	l := newLAN()
	a := newNode(b, l, Options{})
	a.patience = 10 * time.Minute
	l.addrs[ident.ID] = c.addr

	size := benchSize(b, 256<<20)
	src := filepath.Join(b.TempDir(), "bulk")
	f, err := os.Create(src)
	if err != nil {
		b.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i * 7)
	}
	for w := int64(0); w < size; w += int64(len(chunk)) {
		f.Write(chunk[:min(int64(len(chunk)), size-w)])
	}
	f.Close()
	var raw, tr time.Duration
	b.SetBytes(size)
	for b.Loop() {
		d, err := rawTo(c.raw, size)
		if err != nil {
			b.Fatal(err)
		}
		raw += d
		clearDir(b, dl)
		start := time.Now()
		in, err := a.m.Offer(context.Background(), ident.ID, src)
		if err != nil {
			b.Fatal(err)
		}
		a.done(in.ID)
		tr += time.Since(start)
	}
	n := float64(b.N) * float64(size) / 1e6
	b.ReportMetric(n/raw.Seconds(), "raw-MB/s")
	b.ReportMetric(n/tr.Seconds(), "transfer-MB/s")
	b.ReportMetric(raw.Seconds()/tr.Seconds(), "ratio-vs-raw")
	c.stdin.Close()
	c.cmd.Wait()
}

// rawTo sends size bytes to a rawSink in 256 KiB writes and waits for its
// answer.
func rawTo(addr string, size int64) (time.Duration, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	buf := make([]byte, 256<<10)
	start := time.Now()
	binary.BigEndian.PutUint64(buf, uint64(size))
	if _, err := c.Write(buf[:8]); err != nil {
		return 0, err
	}
	for sent := int64(0); sent < size; {
		k, err := c.Write(buf[:min(int64(len(buf)), size-sent)])
		sent += int64(k)
		if err != nil {
			return 0, err
		}
	}
	if _, err := io.ReadFull(c, buf[:1]); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}
