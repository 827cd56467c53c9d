package daemon

import (
	"fmt"
	"sort"
	"time"

	"github.com/cgwproject/cgw/bgp"
	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/dataplane"
	"github.com/cgwproject/cgw/ike"
	"github.com/cgwproject/cgw/ipsec"
)

// snapshot assembles the state of every tunnel from IKE, the dataplane and
// BGP. It backs `cgwctl status`, the metrics and diagnose alike.
func (d *Daemon) snapshot() *control.Status {
	peers := map[string]ike.PeerStatus{}
	if d.ikm != nil {
		for _, p := range d.ikm.Status() {
			peers[p.Name] = p
		}
	}
	var ikeDrops map[string]uint64
	if d.ikm != nil {
		ikeDrops = ikeDropMap(d.ikm.Drops())
	}
	neighbors := map[string]bgp.NeighborStatus{}
	if d.bgp != nil {
		for _, n := range d.bgp.Status() {
			neighbors[n.Name] = n
		}
	}

	lan := d.lanStatus()

	d.mu.Lock()
	defer d.mu.Unlock()
	st := &control.Status{Version: d.opts.Version, Started: d.started, ConfigFile: d.cfg.Source, IKEDrops: ikeDrops, LAN: lan}
	for _, c := range d.conns {
		cs := &control.Connection{Name: c.cfg.Name, Routing: string(c.cfg.Routing)}
		if c.cfg.BGP != nil {
			cs.Mode = string(c.cfg.BGP.Mode)
		}
		devs := map[string]string{}
		for _, t := range c.tunnels {
			devs[t.dev] = t.cfg.Name
			cs.Tunnels = append(cs.Tunnels, d.tunnelStatusLocked(t, peers[t.cfg.Name], neighbors))
		}
		for _, r := range d.routes {
			var via []string
			for _, nh := range r.NextHops {
				if n, ok := devs[nh.Dev]; ok {
					via = append(via, n)
				}
			}
			if len(via) == 0 {
				continue
			}
			src := "bgp"
			if c.cfg.Static != nil {
				src = "static"
			}
			cs.Routes = append(cs.Routes, control.Route{Prefix: r.Prefix.String(), Via: via, Source: src, Metric: r.Metric})
		}
		for _, f := range c.imports.Filtered {
			cs.Filtered = append(cs.Filtered, control.FilteredRoute{Prefix: f.Prefix.String(), Reason: f.Reason})
		}
		st.Connections = append(st.Connections, cs)
	}
	return st
}

func (d *Daemon) tunnelStatusLocked(t *tunnelRT, p ike.PeerStatus, neighbors map[string]bgp.NeighborStatus) *control.Tunnel {
	tc := t.cfg
	inLocal, inPeer := insideAddrs(tc)
	ts := &control.Tunnel{
		Name:        tc.Name,
		IKEState:    p.State.String(),
		ChildState:  p.ChildState.String(),
		Since:       t.changed,
		Device:      t.dev,
		InsideLocal: inLocal.String(),
		InsidePeer:  inPeer.String(),
		Remote:      tc.PeerAddress.String(),
		NAT:         p.NATDetected,
		Encap:       p.Encap,
		MTU:         t.mtu,
		DPD:         control.DPD{IntervalSeconds: tc.DPD.Interval.Seconds(), Misses: p.DPDMisses},
		LastError:   p.LastFailure,
		LastErrorAt: p.LastFailureAt,
	}
	if d.ikm == nil {
		ts.IKEState, ts.ChildState = t.ikeState.String(), t.childState.String()
	}
	ts.Auth = authStatus(tc, p.Auth, time.Now())
	if p.Local.IsValid() {
		ts.Local = p.Local.String()
	}
	if p.Remote.IsValid() {
		ts.Remote = p.Remote.String()
	}
	if f := p.Fragments; p.Fragmentation || f != (ike.FragmentStats{}) {
		ts.IKEFragments = &control.IKEFragments{Negotiated: p.Fragmentation, Sent: f.Sent, Received: f.Received, Reassembled: f.Reassembled}
	}
	if p.State == ike.StateEstablished || p.State == ike.StateRekeying {
		ts.IKE = &control.IKESA{
			SPIi:        fmt.Sprintf("%016x", p.SPIi),
			SPIr:        fmt.Sprintf("%016x", p.SPIr),
			Initiator:   p.Initiator,
			Algorithms:  p.IKEAlg.String(),
			Established: p.Established,
			RekeyAt:     p.RekeyAt,
			ExpiresAt:   p.ExpireAt,
		}
	}
	var stats dataplane.TunnelStats
	haveStats := false
	if d.dp != nil {
		if s, err := d.dp.TunnelStats(tc.Name); err == nil {
			stats, haveStats = s, true
		}
	}
	for _, c := range p.Children {
		ts.Children = append(ts.Children, childStatus(c, stats.SAs))
	}
	ts.Traffic.Drops = map[string]uint64{}
	for _, r := range dataplane.DropReasons() {
		ts.Traffic.Drops[r] = 0
	}
	if haveStats {
		ts.Traffic.BytesIn, ts.Traffic.BytesOut = stats.InBytes, stats.OutBytes
		ts.Traffic.PacketsIn, ts.Traffic.PacketsOut = stats.InPackets, stats.OutPackets
		ts.Traffic.LastInbound = stats.LastInbound
		ts.Traffic.Fragmented, ts.Traffic.TooBigSent = stats.Fragmented, stats.TooBigSent
		// The dataplane follows a NAT rebinding of the peer before IKE
		// does: the remote endpoint is where ESP goes.
		for _, sa := range stats.SAs {
			if sa.Dir == ipsec.Outbound && sa.SPI == stats.ActiveOutbound && sa.Remote.IsValid() {
				ts.Remote = sa.Remote.String()
			}
		}
		for k, v := range stats.Drops {
			ts.Traffic.Drops[k] = v
		}
		ts.DPD.LastSeen = stats.LastInbound
	}

	childUp := p.ChildState == ike.StateEstablished || p.ChildState == ike.StateRekeying
	if d.ikm == nil {
		childUp = t.childUp()
	}
	switch {
	case t.conn.cfg.BGP != nil:
		n, ok := neighbors[tc.Name]
		if ok {
			ts.BGP = d.bgpStatus(n)
		}
		switch {
		case ok && n.State == "Established" && childUp:
			ts.State = stateUp
		case childUp || p.State != ike.StateDown:
			ts.State = stateNegotiating
		default:
			ts.State = stateDown
		}
	case childUp:
		ts.State = stateUp
	case p.State != ike.StateDown:
		ts.State = stateNegotiating
	default:
		ts.State = stateDown
	}
	return ts
}

// childStatus reports one CHILD SA with the traffic counters of its two
// SAs in the dataplane.
func childStatus(c ike.ChildStatus, sas []dataplane.SAInfo) *control.Child {
	ch := &control.Child{
		InSPI:       c.InSPI.String(),
		OutSPI:      c.OutSPI.String(),
		Algorithms:  c.Alg.String(),
		Established: c.Established,
		RekeyAt:     c.RekeyAt,
		ExpiresAt:   c.ExpireAt,
	}
	for _, s := range c.TSLocal {
		ch.TSLocal = append(ch.TSLocal, s.String())
	}
	for _, s := range c.TSRemote {
		ch.TSRemote = append(ch.TSRemote, s.String())
	}
	for _, sa := range sas {
		switch {
		case sa.Dir == ipsec.Inbound && sa.SPI == c.InSPI:
			ch.BytesIn, ch.PacketsIn = sa.Bytes, sa.Packets
		case sa.Dir == ipsec.Outbound && sa.SPI == c.OutSPI:
			ch.BytesOut, ch.PacketsOut = sa.Bytes, sa.Packets
			ch.Encap = "none"
			if sa.Encap {
				ch.Encap = "udp"
			}
		}
	}
	return ch
}

// bgpStatus reports a tunnel's BGP neighbor; a prefix-limit warning shows
// as the last error when there is none.
func (d *Daemon) bgpStatus(n bgp.NeighborStatus) *control.BGP {
	b := &control.BGP{
		Neighbor:   n.PeerAddr.String(),
		PeerASN:    n.PeerASN,
		State:      n.State,
		Received:   n.Received,
		Accepted:   n.Accepted,
		Advertised: n.Advertised,
		LastError:  n.LastError,
	}
	if n.Uptime > 0 {
		b.Since = d.now().Add(-n.Uptime)
	}
	if n.Warning != "" && b.LastError == "" {
		b.LastError = n.Warning
	}
	return b
}

// eventCounters returns a copy of every tunnel's event counters.
func (d *Daemon) eventCounters() map[string]eventCounts {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]eventCounts, len(d.tunnels))
	for n, t := range d.tunnels {
		c := t.counts
		c.failures = make(map[string]uint64, len(t.counts.failures))
		for k, v := range t.counts.failures {
			c.failures[k] = v
		}
		out[n] = c
	}
	return out
}

// dropReasons returns the keys of a drops map in a stable order.
func dropReasons(m map[string]uint64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (d *Daemon) now() time.Time { return time.Now() }

// ikeDropMap names IKE's manager-level drop counters as the status API and
// the cgw_ike_dropped_total metric do, leaving out those still at zero.
func ikeDropMap(dr ike.Drops) map[string]uint64 {
	m := map[string]uint64{}
	for _, kv := range []struct {
		name string
		n    uint64
	}{
		{"malformed", dr.Malformed}, {"unknown_spi", dr.UnknownSPI}, {"overflow", dr.Overflow},
		{"resend_limited", dr.ResendLimited}, {"cookie_sent", dr.CookieSent},
		{"invalid_ke", dr.InvalidKE}, {"init_failed", dr.InitFailed},
	} {
		if kv.n > 0 {
			m[kv.name] = kv.n
		}
	}
	for r, n := range dr.Fragments {
		m[r] = n
	}
	if len(m) == 0 {
		return nil
	}
	return m
}
