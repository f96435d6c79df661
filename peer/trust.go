package peer

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"lanchat/identity"
)

// checkTrust looks m's name and id up in the known-peers file (recording
// them the first time) and sets m.trust.
func (n *Node) checkTrust(p *Peer) {
	p.mu.Lock()
	name := p.name
	p.mu.Unlock()
	if n.ownName(name) {
		// Never pin this node's own name to another node.
		p.mu.Lock()
		p.trust = identity.Conflict
		p.mu.Unlock()
		return
	}
	t, err := n.known.Check(name, p.id)
	switch {
	case errors.Is(err, identity.ErrNotPinned):
		// Over the bound on pins (a peer renaming itself over and
		// over): not pinned, shown as new; said quietly.
		n.connLog.Log(slog.LevelDebug, "name not pinned", "name", name, "id", ShortID(p.id), "err", err)
	case err != nil:
		n.log.Warn("known peers file not updated", "err", err)
	}
	p.mu.Lock()
	p.trust = t
	p.mu.Unlock()
}

// warnIfConflict tells the user, loudly, about a peer whose name is known
// with another key.
func (n *Node) warnIfConflict(p *Peer) {
	i := p.info()
	if i.Trust != identity.Conflict {
		return
	}
	if n.ownName(i.Name) {
		n.emit(Warning{Text: fmt.Sprintf(
			"NAME CONFLICT: a node with id %s calls itself %q, which is your own name. "+
				"Its messages are marked and /msg %s will not pick it; it is not recorded in your known peers",
			identity.Grouped(i.ID), i.Name, i.Name)})
		return
	}
	pinned, _ := n.known.PinnedID(i.Name)
	n.emit(Warning{Text: fmt.Sprintf(
		"NAME CONFLICT: a node calling itself %q has id %s, but %q is known as %s. "+
			"Its messages are marked and /msg %s will not pick it. If it is genuine (a reinstalled machine), run /trust %s",
		i.Name, identity.Grouped(i.ID), i.Name, identity.Grouped(pinned), i.Name, ShortID(i.ID))})
}

// Whoami describes this node.
type Whoami struct {
	Name, ID, Fingerprint string
}

// Whoami returns this node's name, id and key fingerprint.
func (n *Node) Whoami() Whoami {
	return Whoami{Name: n.Name(), ID: n.id, Fingerprint: n.ident.Fingerprint()}
}

// Trust records the connected peer with id prefix arg as the genuine
// holder of its name, replacing the id known before.
func (n *Node) Trust(arg string) (Info, error) {
	p, err := n.lookupID(arg)
	if err != nil {
		return Info{}, err
	}
	i := p.info()
	if err := n.known.Trust(i.Name, i.ID); err != nil {
		return i, err
	}
	n.recheck(i.Name)
	return p.info(), nil
}

// Forget removes what the known-peers file says of a name or id prefix;
// connected peers of the names removed are checked again, so the first of
// them is trusted on first use once more.
func (n *Node) Forget(arg string) ([]string, error) {
	names, err := n.known.Forget(arg)
	if err != nil {
		return names, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("forget %q: no known peer has that name or id", arg)
	}
	for _, name := range names {
		n.recheck(name)
	}
	return names, nil
}

// recheck updates the trust of every peer called name.
func (n *Node) recheck(name string) {
	for _, p := range n.peerList() {
		p.mu.Lock()
		same := SameName(p.name, name)
		p.mu.Unlock()
		if same {
			n.checkTrust(p)
		}
	}
}

// lookupID finds a peer by id prefix only (at least 4 characters): trust
// decisions must not be made by name.
func (n *Node) lookupID(arg string) (*Peer, error) {
	norm := identity.NormalizeID(arg)
	if len(norm) < 4 {
		return nil, fmt.Errorf("give at least 4 characters of the id, not %q", arg)
	}
	var match []*Peer
	for _, p := range n.peerList() {
		if strings.HasPrefix(p.id, norm) {
			match = append(match, p)
		}
	}
	switch len(match) {
	case 1:
		return match[0], nil
	case 0:
		return nil, fmt.Errorf("no connected peer has an id starting with %s", norm)
	}
	return nil, fmt.Errorf("id prefix %s matches %d peers: give more of the id (%s)", norm, len(match), describe(match))
}

// Verification is the code both users read to each other to be sure the
// connection is between them: the same on both sides (VerifyCode of both
// keys, in any order).
type Verification struct {
	Peer     Info
	Code     string
	Verified bool // the user's code matched and the pin is now verified
}

// ErrCodeMismatch is wrapped when the code a user typed is not the one
// computed from both keys.
var ErrCodeMismatch = errors.New("verification codes differ")

// Verify computes the verification code with the connected peer arg;
// with typed (what the other user read out), it checks it and, when it
// matches, records the peer's name and key as verified.
func (n *Node) Verify(arg, typed string) (Verification, error) {
	l, err := n.lookupLive(arg)
	if err != nil {
		return Verification{}, err
	}
	if l.key == nil {
		return Verification{}, fmt.Errorf("%s proved no key: nothing to verify", l.name())
	}
	v := Verification{Peer: l.info(), Code: identity.VerifyCode(n.ident.Public(), l.key)}
	if typed == "" {
		return v, nil
	}
	if !identity.MatchCode(v.Code, typed) {
		return v, fmt.Errorf("%w: %s (%s) is not verified: the code %s typed does not match %s here. "+
			"Someone may be between you (or a digit was misheard): do not trust this connection until they match",
			ErrCodeMismatch, v.Peer.Name, ShortID(v.Peer.ID), "you", v.Code)
	}
	if err := n.known.Verify(v.Peer.Name, v.Peer.ID); err != nil {
		return v, err
	}
	n.recheck(v.Peer.Name)
	v.Peer, v.Verified = l.info(), true
	return v, nil
}
