package daemon

import (
	"log/slog"
	"net/netip"
	"slices"
	"sort"

	"github.com/cgwproject/cgw/bgp"
	"github.com/cgwproject/cgw/config"
	"github.com/cgwproject/cgw/dataplane/route"
)

// routerConfig translates the routes section: cgw's own table plus the
// policy rules that keep cgwd's marked sockets out of it.
func routerConfig(rc config.Routes, log *slog.Logger) route.Config {
	return route.Config{Table: rc.Table, Protocol: rc.Protocol, Metric: rc.Metric,
		FwMark: rc.FwMark, RulePriority: rc.RulePriority, Logger: log.With("component", "routes")}
}

// routeTunnel is what route selection needs to know about one tunnel.
type routeTunnel struct {
	Name string // tunnel name; also the BGP neighbor name
	Dev  string // TUN device
	Up   bool   // CHILD SA installed in both directions
	Rank int    // 0 = preferred tunnel of its connection
	// Peer6 is AWS's IPv6 inside address on an IPv6-inside tunnel: the
	// gateway of its IPv6 routes (see desiredRoutes).
	Peer6 netip.Addr
}

// routeConn is what route selection needs to know about one connection.
type routeConn struct {
	Name     string
	Static   bool
	ECMP     bool           // active-active
	Prefixes []netip.Prefix // static mode: remote prefixes
	Tunnels  []routeTunnel
	Import   importPolicy          // BGP mode: what may be installed
	Prev     map[netip.Prefix]bool // BGP mode: prefixes accepted last time
}

// importResult is what a connection's import policy made of the prefixes
// learned over its tunnels.
type importResult struct {
	Accepted []netip.Prefix
	Filtered []filteredPrefix
}

// desiredRoutes computes the kernel routes for every connection.
//
// Static connections route their remote prefixes through the best-ranked
// tunnel that is up (or every tunnel that is up, with ECMP). BGP connections
// route each learned prefix through the tunnels whose neighbors carry the
// path: the best path only for active-passive (AWS's MED and our prepends
// decide), or every path tied with the best on LOCAL_PREF and AS-path length
// for active-active (MED is ignored there: a VGW marks one tunnel preferred
// for its own egress, but accepts traffic on both). In active-active, tied
// paths from the same neighboring AS join one multipath route across
// connections too: several VPN connections to one Transit Gateway with
// ECMP (see multipathPeer). Paths learned over a tunnel that is down are ignored even
// before BGP notices, so failover does not wait for the hold timer.
//
// Learned prefixes pass each connection's import policy and prefix limit
// first; the result per BGP connection is returned by name.
func desiredRoutes(conns []routeConn, learned []bgp.Path, metric int) ([]route.Route, map[string]importResult) {
	byPrefix := map[netip.Prefix][]route.NextHop{}
	// IPv6 routes name the tunnel's peer as gateway: the kernel joins IPv6
	// routes into one multipath route only when their next hops have a
	// gateway (rt6_qualify_for_ecmp), and a device-only second next hop
	// would replace the first. IPv4 routes stay device-only.
	add := func(p netip.Prefix, dev string, gw netip.Addr) {
		for _, nh := range byPrefix[p] {
			if nh.Dev == dev {
				return
			}
		}
		nh := route.NextHop{Dev: dev}
		if p.Addr().Is6() && gw.Is6() && !gw.Is4In6() {
			nh.Gateway = gw
		}
		byPrefix[p] = append(byPrefix[p], nh)
	}
	neighbor := map[string]routeTunnel{}
	connOf := map[string]*routeConn{}
	for i := range conns {
		c := &conns[i]
		if c.Static {
			up := upTunnels(c.Tunnels)
			if len(up) == 0 {
				continue
			}
			if !c.ECMP {
				up = up[:1]
			}
			for _, p := range c.Prefixes {
				for _, t := range up {
					add(p.Masked(), t.Dev, t.Peer6)
				}
			}
			continue
		}
		for _, t := range c.Tunnels {
			neighbor[t.Name] = t
			connOf[t.Name] = c
		}
	}

	// Import policy per connection, over everything its neighbors sent.
	byConn := map[*routeConn][]netip.Prefix{}
	for _, p := range learned {
		if c := connOf[p.Neighbor]; c != nil {
			byConn[c] = append(byConn[c], p.Prefix)
		}
	}
	imports := map[string]importResult{}
	accepted := map[*routeConn]map[netip.Prefix]bool{}
	for i := range conns {
		c := &conns[i]
		if c.Static {
			continue
		}
		acc, filt := c.Import.apply(byConn[c], c.Prev)
		imports[c.Name] = importResult{Accepted: acc, Filtered: filt}
		accepted[c] = map[netip.Prefix]bool{}
		for _, p := range acc {
			accepted[c][p] = true
		}
	}

	// Group usable BGP paths by prefix.
	paths := map[netip.Prefix][]bgp.Path{}
	for _, p := range learned {
		t, ok := neighbor[p.Neighbor]
		if !ok || !t.Up || !accepted[connOf[p.Neighbor]][p.Prefix] {
			continue
		}
		paths[p.Prefix] = append(paths[p.Prefix], p)
	}
	for pfx, ps := range paths {
		sort.SliceStable(ps, func(i, j int) bool { return betterPath(ps[i], ps[j], neighbor) })
		best := ps[0]
		add(pfx, neighbor[best.Neighbor].Dev, best.NextHop)
		if !connOf[best.Neighbor].ECMP {
			continue
		}
		for _, p := range ps[1:] {
			if multipathPeer(connOf[p.Neighbor], connOf[best.Neighbor]) && p.LocalPref == best.LocalPref && len(p.ASPath) == len(best.ASPath) && firstAS(p) == firstAS(best) {
				add(pfx, neighbor[p.Neighbor].Dev, p.NextHop)
			}
		}
	}

	out := make([]route.Route, 0, len(byPrefix))
	for p, nhs := range byPrefix {
		slices.SortFunc(nhs, func(a, b route.NextHop) int {
			switch {
			case a.Dev < b.Dev:
				return -1
			case a.Dev > b.Dev:
				return 1
			}
			return 0
		})
		out = append(out, route.Route{Prefix: p, NextHops: nhs, Metric: metric})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Prefix.String() < out[j].Prefix.String() })
	return out, imports
}

func upTunnels(ts []routeTunnel) []routeTunnel {
	var up []routeTunnel
	for _, t := range ts {
		if t.Up {
			up = append(up, t)
		}
	}
	sort.SliceStable(up, func(i, j int) bool { return up[i].Rank < up[j].Rank })
	return up
}

// betterPath orders paths the way BGP's decision process does for the
// attributes AWS varies: GoBGP's best flag first, then higher LOCAL_PREF,
// shorter AS_PATH, lower MED, then the preferred tunnel.
func betterPath(a, b bgp.Path, nb map[string]routeTunnel) bool {
	if a.Best != b.Best {
		return a.Best
	}
	if a.LocalPref != b.LocalPref {
		return a.LocalPref > b.LocalPref
	}
	if len(a.ASPath) != len(b.ASPath) {
		return len(a.ASPath) < len(b.ASPath)
	}
	if a.MED != b.MED {
		return a.MED < b.MED
	}
	return nb[a.Neighbor].Rank < nb[b.Neighbor].Rank
}
