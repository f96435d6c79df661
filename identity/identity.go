package identity

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base32"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// KeyFile and KnownPeersFile are the file names in the identity directory.
const (
	KeyFile        = "identity.pem"
	KnownPeersFile = "known_peers"
)

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// Identity is a node's key pair and the id derived from it.
type Identity struct {
	Key ed25519.PrivateKey
	ID  string
}

// DefaultPath is the key file in the user's config directory.
func DefaultPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the config directory for the identity key: %w", err)
	}
	return filepath.Join(dir, "lanchat", KeyFile), nil
}

// IDOf is the node id of a public key.
func IDOf(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return idEncoding.EncodeToString(sum[:])
}

// Fingerprint is the SSH-style fingerprint of a public key.
func Fingerprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}

// IDLen is the length of a node id: 256 bits in base32 without padding.
const IDLen = 52

// ValidID reports whether s is a node id in canonical form: IDLen
// characters of the base32 alphabet (A-Z, 2-7) whose last character
// carries one bit and four zero bits (A or Q), so that every id has
// exactly one spelling. It does not allocate.
func ValidID(s string) bool {
	if len(s) != IDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || '2' <= c && c <= '7') {
			return false
		}
	}
	last := s[IDLen-1]
	return last == 'A' || last == 'Q'
}

// Short is the 8-character display form of an id.
func Short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// Grouped writes an id in groups of 4 for reading aloud.
func Grouped(id string) string {
	var b strings.Builder
	for i := 0; i < len(id); i += 4 {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(id[i:min(i+4, len(id))])
	}
	return b.String()
}

// NormalizeID turns a typed id or id prefix into canonical form: upper
// case, without the dashes of the grouped form.
func NormalizeID(s string) string {
	return strings.ToUpper(strings.ReplaceAll(s, "-", ""))
}

// New makes a fresh identity in memory.
func New() (*Identity, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate identity key: %w", err)
	}
	return &Identity{Key: key, ID: IDOf(key.Public().(ed25519.PublicKey))}, nil
}

// LoadOrCreate reads the key at path, or creates it (and its directory)
// when there is none. created reports a new key.
func LoadOrCreate(path string) (id *Identity, created bool, err error) {
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := checkKeyMode(path); err != nil {
			return nil, false, err
		}
		id, err := parseKey(data)
		if err != nil {
			return nil, false, fmt.Errorf("identity key %s: %w (move it away to make a new identity)", path, err)
		}
		return id, false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, false, fmt.Errorf("read identity key: %w", err)
	}
	id, err = New()
	if err != nil {
		return nil, false, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(id.Key)
	if err != nil {
		return nil, false, fmt.Errorf("encode identity key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("create identity directory: %w", err)
	}
	pemData := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	// O_EXCL: two nodes starting at once must not overwrite each other's key.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return LoadOrCreate(path)
	}
	if err != nil {
		return nil, false, fmt.Errorf("create identity key: %w", err)
	}
	if _, err := f.Write(pemData); err != nil {
		f.Close()
		os.Remove(path)
		return nil, false, fmt.Errorf("write identity key: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return nil, false, fmt.Errorf("write identity key: %w", err)
	}
	return id, true, nil
}

// ErrKeyMode is wrapped when the key file can be read or written by
// other users than its owner.
var ErrKeyMode = errors.New("identity key is accessible by other users")

// checkKeyMode refuses a key file that group or others may access, as
// ssh does for private keys: anyone who can read it can be this node.
func checkKeyMode(path string) error {
	if runtime.GOOS == "windows" {
		return nil // modes carry no meaning there
	}
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("identity key: %w", err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%w: %s has mode %04o; make it private with: chmod 600 %s", ErrKeyMode, path, perm, path)
	}
	return nil
}

func parseKey(data []byte) (*Identity, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("not a PEM private key")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("bad private key: %w", err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key is %T, want Ed25519", k)
	}
	return &Identity{Key: key, ID: IDOf(key.Public().(ed25519.PublicKey))}, nil
}

// Public is the public key.
func (id *Identity) Public() ed25519.PublicKey { return id.Key.Public().(ed25519.PublicKey) }

// Fingerprint of this identity.
func (id *Identity) Fingerprint() string { return Fingerprint(id.Public()) }

// Certificate is a self-signed TLS certificate for the key. Its validity
// dates carry no meaning: peers check the key, not the certificate chain.
func (id *Identity) Certificate() (tls.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "lanchat " + id.ID},
		NotBefore:    time.Now().Add(-24 * time.Hour),
		NotAfter:     time.Now().Add(100 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, id.Public(), crypto.Signer(id.Key))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("make TLS certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: id.Key}, nil
}

// PeerID checks a peer's certificate chain as presented in a TLS handshake
// and returns the id of its key. Only a single Ed25519 self-signed
// certificate whose signature verifies is accepted.
func PeerID(rawCerts [][]byte) (string, error) {
	pub, err := PeerKey(rawCerts)
	if err != nil {
		return "", err
	}
	return IDOf(pub), nil
}

// PeerKey is PeerID returning the public key itself (for VerifyCode).
func PeerKey(rawCerts [][]byte) (ed25519.PublicKey, error) {
	if len(rawCerts) != 1 {
		return nil, fmt.Errorf("peer presented %d certificates, want 1", len(rawCerts))
	}
	cert, err := x509.ParseCertificate(rawCerts[0])
	if err != nil {
		return nil, fmt.Errorf("peer certificate: %w", err)
	}
	pub, ok := cert.PublicKey.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("peer certificate key is %T, want Ed25519", cert.PublicKey)
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		return nil, fmt.Errorf("peer certificate is not self-signed by its key: %w", err)
	}
	return pub, nil
}
