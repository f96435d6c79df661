package identity

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadOrCreate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", KeyFile)
	id, created, err := LoadOrCreate(path)
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	if len(id.ID) != 52 || strings.ToUpper(id.ID) != id.ID {
		t.Fatalf("id %q", id.ID)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v", st.Mode(), err)
	}
	if st, _ := os.Stat(filepath.Dir(path)); st.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v", st.Mode())
	}
	again, created, err := LoadOrCreate(path)
	if err != nil || created || again.ID != id.ID {
		t.Fatalf("reload: %v %v %v", again.ID, created, err)
	}
	if !strings.HasPrefix(id.Fingerprint(), "SHA256:") {
		t.Fatal(id.Fingerprint())
	}
}

func TestDamagedKeyIsAClearError(t *testing.T) {
	for name, content := range map[string]string{
		"garbage":      "hello",
		"wrong block":  "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
		"bad key body": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
	} {
		path := filepath.Join(t.TempDir(), KeyFile)
		os.WriteFile(path, []byte(content), 0o600)
		_, _, err := LoadOrCreate(path)
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestCertificateProvesID(t *testing.T) {
	id, _ := New()
	cert, err := id.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	got, err := PeerID(cert.Certificate)
	if err != nil || got != id.ID {
		t.Fatalf("PeerID = %q, %v; want %q", got, err, id.ID)
	}
	if _, err := PeerID(nil); err == nil {
		t.Fatal("no certificate accepted")
	}
	bad := append([]byte{}, cert.Certificate[0]...)
	bad[len(bad)-5] ^= 1 // the signature
	if _, err := PeerID([][]byte{bad}); err == nil {
		t.Fatal("broken signature accepted")
	}
}

func TestKnownPeers(t *testing.T) {
	path := filepath.Join(t.TempDir(), KnownPeersFile)
	k, err := LoadKnown(path)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := New()
	b, _ := New()
	steps := []struct {
		name, id string
		want     Trust
	}{
		{"bob", a.ID, FirstSeen}, {"bob", a.ID, Trusted}, {"bob", b.ID, Conflict}, {"carol", b.ID, FirstSeen},
	}
	for _, s := range steps {
		if got, err := k.Check(s.name, s.id); err != nil || got != s.want {
			t.Fatalf("Check(%s, %s) = %v, %v; want %v", s.name, Short(s.id), got, err, s.want)
		}
	}
	// The file survives a restart.
	k2, err := LoadKnown(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := k2.Check("bob", b.ID); got != Conflict {
		t.Fatalf("after reload: %v", got)
	}
	if err := k2.Trust("bob", b.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := k2.Check("bob", b.ID); got != Trusted {
		t.Fatalf("after trust: %v", got)
	}
	if names, err := k2.Forget(Grouped(b.ID)[:9]); err != nil || len(names) != 2 {
		t.Fatalf("forget by id prefix: %v %v", names, err)
	}
}

func TestGroupedAndNormalize(t *testing.T) {
	id := "ABCDEFGHIJ"
	if g := Grouped(id); g != "ABCD-EFGH-IJ" {
		t.Fatal(g)
	}
	if n := NormalizeID("abcd-efgh-ij"); n != id {
		t.Fatal(n)
	}
}

func TestLockRefusesASecondUser(t *testing.T) {
	path := filepath.Join(t.TempDir(), KeyFile)
	if _, _, err := LoadOrCreate(path); err != nil {
		t.Fatal(err)
	}
	l, err := Lock(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(path); err == nil || !strings.Contains(err.Error(), "--identity") {
		t.Fatalf("second lock: %v", err)
	}
	l.Close()
	l2, err := Lock(path)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	l2.Close()
}
