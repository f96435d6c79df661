package peer

import (
	"fmt"
	"sync"

	"lanchat/names"
	"lanchat/transport"
)

// SameName reports whether two names are the same person's. Names are
// one per person and compared as package names compares them (PRECIS:
// case and width folded): every comparison of names in this package, and
// in the console, goes through this function.
func SameName(a, b string) bool { return names.Equal(a, b) }

// checkNewName reports why this node may not take name: it is not a
// valid name, or a peer (connected, being reconnected, or pinned in the
// known peers) holds it. Taking another's name would make /msg, the
// known-peers pins and every screen confuse the two.
func (n *Node) checkNewName(name string) error {
	if err := transport.CheckName(name); err != nil {
		return err
	}
	for _, p := range n.peerList() {
		p.mu.Lock()
		held, live := p.name, p.link != nil
		p.mu.Unlock()
		if !SameName(held, name) {
			continue
		}
		where := "connected now"
		if !live {
			where = "being reconnected"
		}
		return fmt.Errorf("%q is the name of %s (%s), %s: names are one per person; pick another", name, held, ShortID(p.id), where)
	}
	if id, ok := n.known.PinnedID(name); ok && id != n.id {
		return fmt.Errorf("%q is the name of a known peer (%s, in known_peers): names are one per person; pick another, or /forget %s if that node is gone for good", name, ShortID(id), name)
	}
	return nil
}

// ownName reports whether a peer's name is this node's own: such a peer
// is never pinned under it, and is marked as a conflict.
func (n *Node) ownName(name string) bool { return SameName(name, n.Name()) }

// maxLeftNames bounds the names remembered of peers that left.
const maxLeftNames = 1024

// leftNames holds the last name of each peer that left (said goodbye,
// or was given up), so that one coming back under another name is shown
// as "piper (was dave)". It is bounded: when full, an arbitrary entry
// makes room.
type leftNames struct {
	mu    sync.Mutex // protects names
	names map[string]string
}

func (r *leftNames) remember(id, name string) {
	if name == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.names == nil {
		r.names = map[string]string{}
	}
	if _, ok := r.names[id]; !ok && len(r.names) >= maxLeftNames {
		for k := range r.names {
			delete(r.names, k)
			break
		}
	}
	r.names[id] = name
}

func (r *leftNames) lookup(id string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.names[id]
}
