package console

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"lanchat/identity"
	"lanchat/peer"
)

// The /peers table fits 80 columns: a row per peer (a long name is
// shortened; the listening address, last, may run over only when it is
// a long IPv6 one), a line of details under it, and one with the away
// text of a peer whose user is away.
const (
	peersWidth   = 80
	peerNameCols = 14
)

func (c *Console) cmdPeers(_ context.Context, args []string, _ string) error {
	if len(args) > 0 {
		return errUsage
	}
	ps := c.node.Peers()
	st := c.node.Stats()
	list := []PeerEntry{}
	for _, p := range ps {
		list = append(list, PeerEntry{
			Peer: p.Name, ID: p.ID, Addr: p.Addr, Listen: p.Listen, UDPAddr: p.UDPAddr, TCP: p.State.String(), UDP: p.UDP.String(),
			Via: p.Via.String(), Since: p.Since.Format(time.RFC3339Nano), RTTMS: ms(p.LastRTT),
			Trust: p.Trust.String(), Fingerprint: p.Fingerprint, Pending: p.Pending, Queued: p.Queued,
			Away: p.UserAway, AwayText: p.AwayText,
		})
	}
	ev := PeersEvent{
		Peers: list,
		Dropped: DropCounters{Malformed: st.BadDatagrams, AuthFailed: st.AuthFailures, Replayed: st.Replays,
			UnknownSender: st.UnknownSenders, StrayReply: st.StrayReplies, Overrun: st.DatagramOverruns},
		Refused:   RefusedCount{HandshakeFailed: st.HandshakesFailed, OverLimit: st.StrangersRefused},
		Discovery: DiscoveryCount{SightingsRefused: st.SightingsRefused, ListsIgnored: st.ListsIgnored, WarningsHeld: st.AlarmsHeld},
	}
	c.out.emit(ev, peersTable(ps, st, time.Now()), true)
	return nil
}

// peersTable is /peers for people.
func peersTable(ps []peer.Info, st peer.Stats, now time.Time) string {
	var b strings.Builder
	if len(ps) == 0 {
		b.WriteString("no peers connected\n")
	} else {
		var rows bytes.Buffer
		tw := tabwriter.NewWriter(&rows, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "PEER\tID\tTCP\tUDP\tRTT\tLISTENING ON")
		for _, p := range ps {
			rtt := "-"
			if p.LastRTT > 0 {
				rtt = shortDur(p.LastRTT)
			}
			listen := p.Listen
			if listen == "" {
				listen = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", clip(p.Name, peerNameCols), peer.ShortID(p.ID), p.State, p.UDP, rtt, listen)
		}
		tw.Flush()
		// The details go between the rows, once the columns are set: a
		// line without cells would end tabwriter's column block.
		lines := strings.Split(strings.TrimRight(rows.String(), "\n"), "\n")
		b.WriteString(strings.TrimRight(lines[0], " ") + "\n")
		for i, p := range ps {
			b.WriteString(strings.TrimRight(lines[i+1], " ") + "\n")
			b.WriteString(clip("  "+peerDetails(p, now), peersWidth-1) + "\n")
			if p.UserAway {
				b.WriteString(clip("  AWAY: "+p.AwayText, peersWidth-1) + "\n")
			}
		}
	}
	fmt.Fprintf(&b, "datagrams dropped: %d malformed, %d not authentic, %d replayed,\n", st.BadDatagrams, st.AuthFailures, st.Replays)
	fmt.Fprintf(&b, "  %d from unknown senders, %d stray replies, %d overruns\n", st.UnknownSenders, st.StrayReplies, st.DatagramOverruns)
	fmt.Fprintf(&b, "connections refused: %d handshakes failed, %d over the handshake limit\n", st.HandshakesFailed, st.StrangersRefused)
	fmt.Fprintf(&b, "discovery: %d sightings refused, %d peer lists ignored, %d warnings held back", st.SightingsRefused, st.ListsIgnored, st.AlarmsHeld)
	return b.String()
}

// peerDetails is the line under a peer's row.
func peerDetails(p peer.Info, now time.Time) string {
	var d []string
	if p.Trust != identity.Trusted {
		d = append(d, "trust "+p.Trust.String())
	}
	d = append(d, "via "+p.Via.String())
	since := "connected"
	if p.State == peer.Away {
		since = "lost"
	}
	d = append(d, fmt.Sprintf("%s %s (%v ago)", since, p.Since.Format("15:04:05"), now.Sub(p.Since).Round(time.Second)))
	if p.Pending > 0 {
		d = append(d, fmt.Sprintf("%d undelivered", p.Pending))
	}
	if p.Queued > 0 {
		d = append(d, fmt.Sprintf("%d bytes queued", p.Queued))
	}
	return strings.Join(d, ", ")
}

// shortDur writes a round trip in at most 7 characters.
func shortDur(d time.Duration) string {
	m := ms(d)
	switch {
	case m < 10:
		return fmt.Sprintf("%.3fms", m)
	case m < 100:
		return fmt.Sprintf("%.2fms", m)
	case m < 1000:
		return fmt.Sprintf("%.1fms", m)
	}
	return fmt.Sprintf("%.0fms", m)
}
