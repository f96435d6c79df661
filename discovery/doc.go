// Package discovery finds the other lanchat nodes of the LAN in two ways:
// mDNS/DNS-SD (Service, with github.com/grandcat/zeroconf) and a signed
// broadcast beacon (Beacons) for networks that filter multicast DNS.
//
// # mDNS
//
// The service type is _lanchat._tcp in the local. domain. The instance name
// is the node name plus the first 8 characters of its id, so that two nodes
// with the same name stay two entries. The SRV record carries the TCP port;
// the TXT record carries:
//
//	v=3        protocol version; other versions are skipped
//	id=...     node id; entries without one are skipped
//	name=...   node name at registration time
//	udp=PORT   the node's UDP port
//
// zeroconf reports each instance once per browse and never reports one
// leaving, so departures are detected by the peer connections, not here.
// A browse listens for BrowseRound. The node browses when it starts, then
// again after gaps that double from FirstGap to MaxGap while it finds no
// one, and every MaxGap once it has, if Config.Watch agrees: a newcomer
// needs no browse by the others, since it finds them with its own and
// dials them. Rescan (a peer
// was lost, and again while it is being reconnected) browses at once and
// starts the gaps over, so that stale entries are queried again. The interfaces are watched: when one appears, comes back
// up or changes address, the node registers again (announcing itself) and
// browses again.
//
// # Beacons
//
// A beacon is one UDP datagram to port BeaconPort (47474), sent to the
// broadcast address of each IPv4 subnet of each usable interface (up,
// not loopback, BROADCAST) and to ff02::1 on each interface that
// multicasts and has an IPv6 link-local address. Every lanchat process
// on a host binds that port (SO_REUSEADDR, SO_REUSEPORT), so each gets
// every beacon. Layout, integers big-endian:
//
//	"LCBN"               magic
//	1 byte               layout version, 1
//	1 byte               protocol version (transport.ProtocolVersion)
//	1 byte               flags, 0 (ignored when heard)
//	1 byte               address count, at most MaxBeaconAddrs
//	8 bytes              when it was made, Unix nanoseconds
//	32 bytes             the node's Ed25519 public key; its id is the hash
//	2 + 2 bytes          TCP and UDP ports, not 0
//	1 byte + name        the node's name (transport.CheckName)
//	per address          1 byte family (4 or 6) + 4 or 16 bytes: the
//	                     sender's addresses on that interface, IPv4 first
//	64 bytes             Ed25519 signature of "lanchat beacon v1\x00"
//	                     followed by every byte above
//
// What a hearer does with a datagram, cheapest check first: it drops
// what does not decode, its own beacons, beacons whose time is more than
// MaxBeaconSkew from its clock, and beacons not newer than the last one
// of the same key (replays, and the IPv6 copy of an IPv4 beacon); it
// checks at most verifyPerSecond signatures a second and drops those
// that fail. An authentic beacon counts as heard (for pacing, below).
// It becomes a sighting only when it has this protocol version, came
// from an address on the subnet of a usable interface, and carries
// addresses in that interface's subnets that are not loopback, not this
// host's own, not a network or broadcast address: only those are
// dialled (IPv6 link-local ones with the zone of the interface it came
// in by). The times of at most maxSeen keys are kept, and at most
// inboxSize datagrams wait to be checked: a flood can grow nothing
// further.
//
// When beacons are sent (pacer): a node sends one only when no beacon,
// its own or another's, was heard for BeaconGap (one second); a node
// that found the LAN busy decides again after a gap plus a random time
// spread over as many gaps as it heard senders lately (doubling while it
// keeps finding it busy), so that decisions stay near one a gap however
// many nodes there are. Two beacons come less than a gap apart only when
// two nodes decide within the time one beacon takes to be heard. The
// first beacon waits a random time from BeaconStartMin to
// BeaconStartSpread, and is not sent if the node has found peers
// meanwhile (of nodes started together, the first to send is heard by
// the others, who dial it; where mDNS works, a newcomer has its peers by
// then and sends none). A node with no
// peer beacons again after BeaconAloneFirst, doubling up to
// BeaconEveryMin; a node with peers beacons every BeaconEveryMin to
// BeaconEveryMax, and only if it keeps watch for its group (the same
// Watch as mDNS browsing: the two lowest ids). A change of interfaces
// starts over as at start.
package discovery
