package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	"github.com/cgwproject/cgw/bgp"
	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/dataplane/route"
)

// Reasons a received path is not installed besides the import policy's.
const (
	notInstalledDown    = "tunnel_down" // the tunnel has no CHILD SA: its paths are ignored
	notInstalledNotBest = "not_best"    // another path for the prefix was preferred
	notInstalledPending = "pending"     // accepted, but the route sync has not installed the prefix yet
)

// bgpConnView is what `bgp routes` needs about one BGP connection, copied
// under d.mu.
type bgpConnView struct {
	Name     string
	Tunnels  []routeTunnel
	Filtered map[netip.Prefix]string // import policy: prefix → reason
}

// BGPRoutes implements control.Backend.
func (d *Daemon) BGPRoutes(_ context.Context, table, tunnel string) (*control.BGPRoutes, error) {
	if tunnel != "" && !d.isLANNeighbor(tunnel) {
		t, err := d.tunnelByName(tunnel)
		if err != nil {
			return nil, err
		}
		if t.conn.cfg.BGP == nil {
			return nil, fmt.Errorf("tunnel %q belongs to connection %s, which uses static routing: it has no BGP routes", tunnel, t.conn.cfg.Name)
		}
	}
	d.mu.Lock()
	var conns []bgpConnView
	for _, c := range d.conns {
		if c.cfg.BGP == nil {
			continue
		}
		v := bgpConnView{Name: c.cfg.Name, Filtered: map[netip.Prefix]string{}}
		for _, t := range c.tunnels {
			v.Tunnels = append(v.Tunnels, routeTunnel{Name: t.cfg.Name, Dev: t.dev, Up: t.childUp(), Rank: t.rank})
		}
		for _, f := range c.imports.Filtered {
			v.Filtered[f.Prefix] = f.Reason
		}
		conns = append(conns, v)
	}
	installed := slices.Clone(d.routes)
	d.mu.Unlock()

	var learned []bgp.Path
	advertised := map[string][]bgp.Path{}
	if d.bgp != nil {
		if table == control.TableAdvertised {
			for _, c := range conns {
				for _, t := range c.Tunnels {
					advertised[t.Name] = d.bgp.Advertised(t.Name)
				}
			}
		} else {
			learned = d.bgp.Learned()
		}
	}
	rows := append(bgpRouteRows(table, tunnel, conns, learned, advertised, installed), d.lanRouteRows(table, tunnel, learned)...)
	if rows == nil {
		rows = []control.BGPRoute{} // "routes": [] rather than null
	}
	return &control.BGPRoutes{Table: table, Routes: rows}, nil
}

// bgpRouteRows builds one table of `bgp routes` (for every tunnel of conns,
// or only the named one): received paths with whether a kernel route uses
// them and why not; advertised paths; or the installed kernel routes with
// the path behind each next hop. Rows follow the order of conns and their
// tunnels, then prefix.
func bgpRouteRows(table, only string, conns []bgpConnView, learned []bgp.Path, advertised map[string][]bgp.Path, installed []route.Route) []control.BGPRoute {
	// via[prefix][dev]: a kernel route for prefix goes through dev.
	via := map[netip.Prefix]map[string]bool{}
	for _, r := range installed {
		via[r.Prefix] = map[string]bool{}
		for _, nh := range r.NextHops {
			via[r.Prefix][nh.Dev] = true
		}
	}
	byNeighbor := map[string][]bgp.Path{}
	for _, p := range learned {
		byNeighbor[p.Neighbor] = append(byNeighbor[p.Neighbor], p)
	}
	var out []control.BGPRoute
	for _, c := range conns {
		for _, t := range c.Tunnels {
			if only != "" && t.Name != only {
				continue
			}
			switch table {
			case control.TableAdvertised:
				for _, p := range advertised[t.Name] {
					r := routeRow(c.Name, p)
					r.Best = false // every advertised path is ours; "best" does not apply
					out = append(out, r)
				}
			case control.TableInstalled:
				for _, p := range byNeighbor[t.Name] {
					if via[p.Prefix][t.Dev] {
						r := routeRow(c.Name, p)
						r.Installed = true
						out = append(out, r)
					}
				}
			default:
				for _, p := range byNeighbor[t.Name] {
					r := routeRow(c.Name, p)
					r.Installed = via[p.Prefix][t.Dev]
					if !r.Installed {
						switch {
						case c.Filtered[p.Prefix] != "":
							r.Reason = c.Filtered[p.Prefix]
						case !t.Up:
							r.Reason = notInstalledDown
						case len(via[p.Prefix]) == 0:
							r.Reason = notInstalledPending
						default:
							r.Reason = notInstalledNotBest
						}
					}
					out = append(out, r)
				}
			}
		}
	}
	return out
}

func routeRow(conn string, p bgp.Path) control.BGPRoute {
	r := control.BGPRoute{
		Connection: conn,
		Tunnel:     p.Neighbor,
		Prefix:     p.Prefix.String(),
		ASPath:     slices.Clone(p.ASPath),
		MED:        p.MED,
		LocalPref:  p.LocalPref,
		Best:       p.Best,
	}
	if r.ASPath == nil {
		r.ASPath = []uint32{}
	}
	if p.NextHop.IsValid() {
		r.NextHop = p.NextHop.String()
	}
	return r
}
