package discovery

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"lanchat/identity"
	"lanchat/transport"
)

func newKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	id, err := identity.New()
	if err != nil {
		t.Fatal(err)
	}
	return id.Key
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func sample(at time.Time, addrs ...string) Beacon {
	b := Beacon{Protocol: transport.ProtocolVersion, Name: "bob@h2", TCPPort: 4000, UDPPort: 4001, Sent: at}
	for _, a := range addrs {
		b.Addrs = append(b.Addrs, netip.MustParseAddr(a))
	}
	return b
}

func TestBeaconRoundTrip(t *testing.T) {
	key := newKey(t)
	in := sample(t0, "10.0.0.2", "fd00::2", "fe80::2")
	wire := in.AppendSigned(nil, key)
	if len(wire) > MaxBeaconSize {
		t.Fatalf("%d bytes, limit %d", len(wire), MaxBeaconSize)
	}
	out, err := DecodeBeacon(wire)
	if err != nil {
		t.Fatal(err)
	}
	if !out.Verify() {
		t.Fatal("signature does not verify")
	}
	pub := key.Public().(ed25519.PublicKey)
	if out.ID() != identity.IDOf(pub) || !bytes.Equal(out.Key, pub) {
		t.Fatalf("id %s, want %s", out.ID(), identity.IDOf(pub))
	}
	if out.Name != in.Name || out.TCPPort != 4000 || out.UDPPort != 4001 || !out.Sent.Equal(t0) ||
		out.Protocol != transport.ProtocolVersion || len(out.Addrs) != 3 || out.Addrs[1] != in.Addrs[1] {
		t.Fatalf("got %+v", out)
	}
	// The largest beacon fits the bound.
	big := sample(t0)
	big.Name = strings.Repeat("x", transport.MaxNameLen)
	for i := 0; i < MaxBeaconAddrs+3; i++ {
		big.Addrs = append(big.Addrs, netip.MustParseAddr("fd00::1"))
	}
	if w := big.AppendSigned(nil, key); len(w) != MaxBeaconSize {
		t.Fatalf("largest beacon %d bytes, MaxBeaconSize %d", len(w), MaxBeaconSize)
	} else if b, err := DecodeBeacon(w); err != nil || len(b.Addrs) != MaxBeaconAddrs || !b.Verify() {
		t.Fatalf("largest beacon: %v, %d addresses", err, len(b.Addrs))
	}
}

func TestBeaconDecodeRejects(t *testing.T) {
	key := newKey(t)
	good := sample(t0, "10.0.0.2").AppendSigned(nil, key)
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	tests := []struct {
		name string
		p    []byte
	}{
		{"empty", nil},
		{"short", good[:40]},
		{"magic", mod(func(b []byte) []byte { b[0] = 'X'; return b })},
		{"format", mod(func(b []byte) []byte { b[4] = 2; return b })},
		{"too many addresses", mod(func(b []byte) []byte { b[7] = MaxBeaconAddrs + 1; return b })},
		{"more addresses than bytes", mod(func(b []byte) []byte { b[7] = 2; return b })},
		{"fewer addresses than bytes", mod(func(b []byte) []byte { b[7] = 0; return b })},
		{"tcp port 0", mod(func(b []byte) []byte { b[48], b[49] = 0, 0; return b })},
		{"udp port 0", mod(func(b []byte) []byte { b[50], b[51] = 0, 0; return b })},
		{"name overruns", mod(func(b []byte) []byte { b[52] = 255; return b })},
		{"empty name", mod(func(b []byte) []byte {
			// drop the name: length 0, bytes removed
			n := int(b[52])
			b[52] = 0
			return append(b[:beaconFixed], b[beaconFixed+n:]...)
		})},
		{"bad family", mod(func(b []byte) []byte { b[beaconFixed+int(b[52])] = 5; return b })},
		{"too long", append(append([]byte(nil), good...), make([]byte, MaxBeaconSize)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeBeacon(tt.p); !errors.Is(err, ErrBadBeacon) {
				t.Fatalf("err = %v, want ErrBadBeacon", err)
			}
		})
	}
	// A name with a control character is refused like any bad name.
	b := sample(t0, "10.0.0.2")
	b.Name = "bad\x1bname"
	if _, err := DecodeBeacon(b.AppendSigned(nil, key)); !errors.Is(err, ErrBadBeacon) {
		t.Fatalf("control character in name: err = %v", err)
	}
}

func TestBeaconSignature(t *testing.T) {
	key, other := newKey(t), newKey(t)
	good := sample(t0, "10.0.0.2").AppendSigned(nil, key)
	tests := []struct {
		name string
		p    []byte
		ok   bool
	}{
		{"genuine", good, true},
		{"any signed byte changed", func() []byte {
			b := append([]byte(nil), good...)
			b[beaconFixed+2] ^= 1 // a byte of the name
			return b
		}(), false},
		{"time changed", func() []byte {
			b := append([]byte(nil), good...)
			b[15]++
			return b
		}(), false},
		{"signature changed", func() []byte {
			b := append([]byte(nil), good...)
			b[len(b)-1] ^= 0x80
			return b
		}(), false},
		{"another node's key claimed", func() []byte {
			// Signed by other, but carrying key's public key: the id
			// claimed is key's.
			b := append([]byte(nil), good[:len(good)-ed25519.SignatureSize]...)
			return append(b, ed25519.Sign(other, append([]byte(beaconContext), b...))...)
		}(), false},
		{"signed without the context", func() []byte {
			b := append([]byte(nil), good[:len(good)-ed25519.SignatureSize]...)
			return append(b, ed25519.Sign(key, b)...)
		}(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := DecodeBeacon(tt.p)
			if err != nil {
				t.Fatal(err)
			}
			if b.Verify() != tt.ok {
				t.Fatalf("Verify() = %v", !tt.ok)
			}
		})
	}
}

// FuzzDecodeBeacon: no input panics or decodes into something that does
// not encode back the same (signature aside).
func FuzzDecodeBeacon(f *testing.F) {
	key := newKey(f)
	f.Add(sample(t0, "10.0.0.2", "fd00::2", "fe80::2").AppendSigned(nil, key))
	f.Add(sample(t0).AppendSigned(nil, key))
	f.Add([]byte(beaconMagic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, p []byte) {
		b, err := DecodeBeacon(p)
		if err != nil {
			return
		}
		_ = b.Verify()
		if len(p) > MaxBeaconSize || len(b.Addrs) > MaxBeaconAddrs || transport.CheckName(b.Name) != nil {
			t.Fatalf("decoded out of bounds: %+v", b)
		}
		again := b.AppendSigned(nil, key)
		n := len(p) - ed25519.SignatureSize
		if len(again) != len(p) || !bytes.Equal(again[:16], p[:16]) || !bytes.Equal(again[48:n], p[48:n]) {
			t.Fatalf("re-encoding differs:\n%x\n%x", p, again)
		}
	})
}
