package invite

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"lanchat/identity"
)

// Scheme starts an invite line.
const Scheme = "lanchat://"

// Bounds on what is read.
const (
	// MaxAddrs bounds the addresses of one line.
	MaxAddrs = 16
	// MaxLine bounds a line, in bytes.
	MaxLine = 4096
	// idLen is the length of a node id.
	idLen = 52
)

// ErrBadTarget is wrapped by every parsing error.
var ErrBadTarget = errors.New("not [ID@]HOST:PORT or " + Scheme + "ID@HOST:PORT")

// Target is a node named by hand: the addresses to try, in order, and
// the id it must prove ("" when none was given).
type Target struct {
	ID    string
	Addrs []string
}

// Format makes the invite line of node id listening on port at addrs.
func Format(id string, addrs []netip.Addr, port int) string {
	var hp []string
	for _, a := range addrs[:min(len(addrs), MaxAddrs)] {
		hp = append(hp, net.JoinHostPort(a.String(), strconv.Itoa(port)))
	}
	return Scheme + id + "@" + strings.Join(hp, ",")
}

// IsInvite reports whether s is written as an invite line (it may still
// be a bad one).
func IsInvite(s string) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(s)), Scheme)
}

// Parse reads an invite line or [ID@]HOST:PORT. An invite line must
// carry an id.
func Parse(s string) (Target, error) {
	s = strings.TrimSpace(s)
	bad := func(format string, args ...any) (Target, error) {
		return Target{}, fmt.Errorf("%w: %s", ErrBadTarget, fmt.Sprintf(format, args...))
	}
	if len(s) > MaxLine {
		return bad("%d bytes, limit %d", len(s), MaxLine)
	}
	invite := IsInvite(s)
	rest := s
	if invite {
		rest = s[len(Scheme):]
	}
	var t Target
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		raw := rest[:i]
		t.ID = identity.NormalizeID(raw)
		rest = rest[i+1:]
		if !validID(t.ID) {
			return bad("%q is not a node id (52 characters of A-Z and 2-7)", raw)
		}
	} else if invite {
		return bad("the invite has no node id")
	}
	parts := strings.Split(rest, ",")
	if len(parts) > MaxAddrs {
		return bad("%d addresses, limit %d", len(parts), MaxAddrs)
	}
	if len(parts) > 1 && !invite {
		return bad("several addresses are for invite lines (%s...)", Scheme)
	}
	for _, hp := range parts {
		if err := checkHostPort(hp); err != nil {
			return Target{}, fmt.Errorf("%w: %v", ErrBadTarget, err)
		}
		t.Addrs = append(t.Addrs, hp)
	}
	return t, nil
}

// checkHostPort checks HOST:PORT: a port from 1 to 65535 and a host
// that is an address or could be a name.
func checkHostPort(hp string) error {
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		return fmt.Errorf("%q: %v", hp, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%q: port %q is not 1-65535", hp, port)
	}
	if host == "" {
		return fmt.Errorf("%q: no host", hp)
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	for _, r := range host {
		if !(r == '-' || r == '.' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return fmt.Errorf("%q: %q is neither an address nor a host name", hp, host)
		}
	}
	return nil
}

// validID reports whether s is a node id in canonical form.
func validID(s string) bool {
	if len(s) != idLen {
		return false
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= '2' && r <= '7') {
			return false
		}
	}
	return true
}
