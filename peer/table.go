package peer

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"lanchat/identity"
)

// staleAfter is how old a connection must be before a new one from the
// same process replaces it: younger ones are a simultaneous dial.
const staleAfter = 2 * time.Second

// admit puts l in the table. With force (the other side decided) it
// replaces whatever is there. Otherwise a connection to the same process
// of that node that is already there is kept and l refused, unless it is
// older than staleAfter and the other side says it holds no live
// connection: then the old one is dead on its side, which is why it
// dialled again. It returns the entry l replaced.
func (n *Node) admit(l *link, force, otherConnected bool) (old *link, ok bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, false
	}
	old = n.links[l.id]
	if old != nil && !force && old.session == l.session &&
		(otherConnected || time.Since(old.since) < staleAfter) {
		return nil, false
	}
	n.links[l.id] = l
	return old, true
}

// remove takes l out of the table if it is still the current entry.
func (n *Node) remove(l *link) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.links[l.id] != l {
		return false
	}
	delete(n.links, l.id)
	return true
}

// linksLocked lists the live connections; it runs under n.mu.
func (n *Node) linksLocked() []*link {
	return n.appendLinksLocked(make([]*link, 0, len(n.links)))
}

// appendLinksLocked appends the links to ls, for a caller that reuses
// its slice (the keeper, ten times a second).
func (n *Node) appendLinksLocked(ls []*link) []*link {
	for _, l := range n.links {
		ls = append(ls, l)
	}
	return ls
}

// peerFor returns the peer with id, making it when new.
func (n *Node) peerFor(id string) *Peer {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.peers[id]
	if p == nil {
		p = &Peer{id: id, kick: make(chan struct{}, 1)}
		n.peers[id] = p
	}
	return p
}

// forget drops p from the peers if it is still the entry for its id,
// remembering its name.
func (n *Node) forget(p *Peer) {
	p.mu.Lock()
	name := p.name
	p.mu.Unlock()
	n.left.remember(p.id, name)
	n.mu.Lock()
	if n.peers[p.id] == p {
		delete(n.peers, p.id)
	}
	n.mu.Unlock()
}

func (n *Node) peerList() []*Peer {
	n.mu.Lock()
	defer n.mu.Unlock()
	ps := make([]*Peer, 0, len(n.peers))
	for _, p := range n.peers {
		ps = append(ps, p)
	}
	return ps
}

// Peers returns a snapshot of every peer, connected or away, sorted by
// name then id.
func (n *Node) Peers() []Info {
	ps := n.peerList()
	out := make([]Info, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.info())
	}
	slices.SortFunc(out, func(a, b Info) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// PeerNames returns the names of the peers, for completion.
func (n *Node) PeerNames() []string {
	var names []string
	for _, p := range n.Peers() {
		names = append(names, p.Name)
	}
	return names
}

// lookup finds a peer, connected or away, by id prefix first, then by
// name (compared as names are: case and width folded). An id prefix wins
// so that no peer can capture messages meant for an id by taking it as
// its name.
func (n *Node) lookup(arg string) (*Peer, error) {
	ps := n.peerList()
	norm := identity.NormalizeID(arg)
	if len(norm) >= 4 && isIDPrefix(norm) {
		var byID []*Peer
		for _, p := range ps {
			if strings.HasPrefix(p.id, norm) {
				byID = append(byID, p)
			}
		}
		switch len(byID) {
		case 1:
			return byID[0], nil
		case 0:
		default:
			return nil, fmt.Errorf("id prefix %q matches %d peers: give more of the id (%s)", arg, len(byID), describe(byID))
		}
	}
	var byName, conflicts []*Peer
	for _, p := range ps {
		p.mu.Lock()
		name, trust := p.name, p.trust
		p.mu.Unlock()
		if !SameName(name, arg) {
			continue
		}
		// A name is never resolved to a node that is not the one known
		// by that name.
		if trust == identity.Conflict {
			conflicts = append(conflicts, p)
		} else {
			byName = append(byName, p)
		}
	}
	switch {
	case len(byName) == 0 && len(conflicts) > 0 && n.ownName(arg):
		return nil, fmt.Errorf("%s is your own name; %s calls itself so: give its id prefix (%s)", arg, describe(conflicts), ShortID(conflicts[0].id))
	case len(byName) == 0 && len(conflicts) > 0:
		pinned, _ := n.known.PinnedID(arg)
		return nil, fmt.Errorf("%s is not the %s you know (%s): /trust %s to accept it, or give its id prefix", describe(conflicts), arg, ShortID(pinned), ShortID(conflicts[0].id))
	case len(byName) == 1:
		return byName[0], nil
	case len(byName) > 1:
		return nil, fmt.Errorf("%q is the name of %d peers: give an id prefix instead (%s)", arg, len(byName), describe(byName))
	case len(ps) == 0:
		return nil, fmt.Errorf("unknown peer %q: %w", arg, ErrNoPeers)
	}
	return nil, fmt.Errorf("%w %q; known peers: %s", ErrUnknownPeer, arg, describe(ps))
}

// lookupLive finds a connected peer: requests need a connection.
func (n *Node) lookupLive(arg string) (*link, error) {
	p, err := n.lookup(arg)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.link == nil {
		return nil, fmt.Errorf("%s (%s) %w: its connection was lost and is being re-established", p.name, ShortID(p.id), ErrAway)
	}
	return p.link, nil
}

// Resolve finds a peer by name, or by id prefix when names clash.
func (n *Node) Resolve(arg string) (Info, error) {
	p, err := n.lookup(arg)
	if err != nil {
		return Info{}, err
	}
	return p.info(), nil
}

// describe lists peers as "name (id prefix)", sorted.
func describe(ps []*Peer) string {
	var s []string
	for _, p := range ps {
		p.mu.Lock()
		s = append(s, fmt.Sprintf("%s (%s)", p.name, ShortID(p.id)))
		p.mu.Unlock()
	}
	slices.Sort(s)
	return strings.Join(s, ", ")
}

// infoOf describes the node id: a peer of this session, or one known
// only from the known-peers file or the store.
func (n *Node) infoOf(id string) Info {
	n.mu.Lock()
	p := n.peers[id]
	n.mu.Unlock()
	if p != nil {
		return p.info()
	}
	return Info{ID: id, Name: n.knownName(id), State: Away, UDP: UDPNone}
}

// knownName is a name the known-peers file gives id, or its short id.
func (n *Node) knownName(id string) string {
	if names := n.known.NamesOf(id); len(names) > 0 {
		return names[0]
	}
	return ShortID(id)
}

// ResolveID finds a peer of this session (name or id prefix), or one
// known from an earlier session by name, or by an id prefix of the peers
// with messages waiting on disk.
func (n *Node) ResolveID(arg string) (Info, error) {
	id, err := n.resolveID(arg)
	if err != nil {
		return Info{}, err
	}
	return n.infoOf(id), nil
}

func (n *Node) resolveID(arg string) (string, error) {
	p, err := n.lookup(arg)
	if err == nil {
		return p.id, nil
	}
	if id, ok := n.known.PinnedID(arg); ok {
		return id, nil
	}
	if n.store != nil {
		norm := identity.NormalizeID(arg)
		var match []string
		for id := range n.store.Pending() {
			if len(norm) >= 4 && strings.HasPrefix(id, norm) {
				match = append(match, id)
			}
		}
		if len(match) == 1 {
			return match[0], nil
		}
	}
	return "", err
}

// isIDPrefix reports whether s, normalised, is made of the characters of
// node ids (base32: A-Z, 2-7).
func isIDPrefix(s string) bool {
	for _, r := range s {
		if !('A' <= r && r <= 'Z' || '2' <= r && r <= '7') {
			return false
		}
	}
	return true
}
