// Package discovery advertises this node over mDNS/DNS-SD and browses for
// the others, using github.com/grandcat/zeroconf.
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
package discovery
