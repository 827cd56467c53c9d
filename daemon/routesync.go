package daemon

import (
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/cgwproject/cgw/bgp"
	"github.com/cgwproject/cgw/config"
	"github.com/cgwproject/cgw/dataplane/route"
)

// syncRoutes recomputes the desired kernel routes and applies them.
func (d *Daemon) syncRoutes() {
	if d.router == nil {
		return
	}
	d.mu.Lock()
	now := time.Now()
	var conns []routeConn
	var peers []netip.Addr // AWS outside addresses: always via main
	for _, c := range d.conns {
		rc := routeConn{Name: c.cfg.Name, Static: c.cfg.Routing == config.RoutingStatic}
		if c.cfg.Static != nil {
			rc.Prefixes = c.cfg.Static.RemotePrefixes
		}
		if c.cfg.BGP != nil {
			rc.ECMP = c.cfg.BGP.Mode == config.ActiveActive
			rc.Import = importPolicy{Import: c.cfg.BGP.Import, Limit: int(c.cfg.BGP.PrefixLimit)}
			rc.Prev = prefixSet(c.imports.Accepted)
		}
		for _, t := range c.tunnels {
			rc.Tunnels = append(rc.Tunnels, routeTunnel{Name: t.cfg.Name, Dev: t.dev, Up: t.childUp() || t.inReconnectGrace(now), Rank: t.rank, Peer6: insidePeer6(t.cfg)})
			peers = append(peers, t.cfg.PeerAddress)
		}
		conns = append(conns, rc)
	}
	metric := d.cfg.Routes.Metric
	d.mu.Unlock()

	var learned []bgp.Path
	if d.bgp != nil {
		learned = d.bgp.Learned()
	}
	want, imports := desiredRoutes(conns, learned, metric)
	// Widen the tunnels' allowed inner sources before the routes that
	// draw the return traffic appear.
	d.mu.Lock()
	for _, c := range d.conns {
		d.applyImportLocked(c, imports[c.cfg.Name])
	}
	d.mu.Unlock()
	if err := d.router.SetPeers(peers); err != nil {
		d.log.Error("installing the policy rules for AWS's outside addresses", "err", err)
	}
	for _, r := range want {
		if len(r.NextHops) > 1 {
			d.hashOnce.Do(d.multipathHashPolicy)
			break
		}
	}
	err := d.router.Set(want)

	d.mu.Lock()
	changed := !sameRoutes(d.routes, want)
	old := d.routes
	d.routes = want
	devs := map[string]string{}
	for name, t := range d.tunnels {
		devs[t.dev] = name
	}
	d.mu.Unlock()
	if changed {
		d.routeEvents(old, want, devs)
	}
	if err != nil {
		d.log.Error("installing routes", "err", err)
	}
	if changed {
		d.log.Info("routes updated", "routes", formatRoutes(want))
	}
}

func sameRoutes(a, b []route.Route) bool {
	return formatRoutes(a) == formatRoutes(b)
}

func formatRoutes(rs []route.Route) string {
	var parts []string
	for _, r := range rs {
		var devs []string
		for _, nh := range r.NextHops {
			devs = append(devs, nh.Dev)
		}
		parts = append(parts, r.Prefix.String()+" via "+strings.Join(devs, "+"))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// listenHint says what most likely keeps cgwd from opening its IKE/ESP
// sockets: a missing capability (binding below 1024 needs
// CAP_NET_BIND_SERVICE, the firewall mark CAP_NET_ADMIN) or another IKE
// daemon holding the ports.
