package discovery

// An ifaceWatch tells the loops that poll the interfaces (every
// ifacePoll) whether the host may have changed any since they last
// listed them. Listing them means a netlink dump per interface and a
// few kilobytes of garbage each time; two loops doing that every two
// seconds were an idle node's largest steady source of garbage, which
// regrows its heap between collections. Where the system can say when
// something changed (Linux: a route socket joined to the link and
// address groups), an unchanged host is not listed again; the poll keeps
// its period, so a change is still seen within ifacePoll. A nil watch
// (elsewhere, or when the socket cannot be opened) reports a change
// every time: the loops list as before.

// changed reports whether anything may have changed since the last call
// (or since the watch was made). It never blocks.
func (w *ifaceWatch) changed() bool {
	if w == nil {
		return true
	}
	return w.drain()
}

// close releases the watch; a nil watch is fine.
func (w *ifaceWatch) close() {
	if w != nil {
		w.release()
	}
}
