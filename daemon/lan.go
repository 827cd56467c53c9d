package daemon

// The LAN side of the BGP speaker (bgp.lan_neighbors) and drain: the two
// gateways of one site share the LAN's traffic through BGP, and a gateway
// is taken out of service by draining it first.

import (
	"context"
	"fmt"
	"time"

	"github.com/cgwproject/cgw/bgp"
	"github.com/cgwproject/cgw/config"
	"github.com/cgwproject/cgw/control"
)

// Drain defaults and bounds.
const (
	// drainPrepend is added to every tunnel's AS-path prepend toward AWS
	// while drained, so AWS prefers the other gateway's connection.
	drainPrepend = 4
	maxPrepend   = 10

	defaultDrainWait = 30 * time.Second
	defaultDrainIdle = 3 * time.Second
	// defaultIdleRate is the packet rate (in + out, all tunnels) below
	// which a drained gateway counts as idle: BGP keepalives, DPD and the
	// optional ICMP keepalive still cross the tunnels.
	defaultIdleRate = 2.0
	drainSample     = 500 * time.Millisecond
)

// lanRT is the daemon's LAN state. Guarded by Daemon.mu.
type lanRT struct {
	drained bool
}

// drainedPrepend returns the prepend toward AWS for a tunnel whose
// configured prepend is p. Caller must hold d.mu.
func (d *Daemon) drainedPrependLocked(p int) int {
	if !d.lan.drained {
		return p
	}
	return min(p+drainPrepend, maxPrepend)
}

// syncLAN declares the LAN neighbors, which tunnels are backups (their
// paths go to the LAN less preferred) and the drain state.
func (d *Daemon) syncLAN() error {
	if d.bgp == nil {
		return nil
	}
	d.mu.Lock()
	lc := bgp.LANConfig{Drained: d.lan.drained}
	for _, n := range d.cfg.BGP.LANNeighbors {
		lc.Neighbors = append(lc.Neighbors, bgp.LANNeighbor{
			Name: n.Name, PeerAddr: n.Address, LocalAddr: n.LocalAddress, PeerASN: n.ASN,
			HoldTime: n.HoldTime, Keepalive: n.Keepalive, Password: string(n.Password),
			Allow: n.Import.Allow, AcceptDefault: n.Import.AcceptDefault,
			MED: n.Export.MED, LocalPref: n.Export.LocalPref,
		})
	}
	for _, c := range d.conns {
		if c.cfg.BGP == nil || c.cfg.BGP.Mode != config.ActivePassive {
			continue
		}
		for _, t := range c.tunnels {
			if t.rank > 0 {
				lc.Backup = append(lc.Backup, t.cfg.Name)
			}
		}
	}
	d.mu.Unlock()
	return d.bgp.SetLAN(lc)
}

// Drain implements control.Drainer. Drain withdraws the AWS prefixes from
// the LAN neighbors and prepends toward AWS, then waits until the tunnels'
// traffic has stayed below the idle rate for the idle window (bounded by
// the wait): both directions then use the other gateway, and this one can
// be stopped without loss. Undrain reverts both at once.
func (d *Daemon) Drain(ctx context.Context, req control.DrainRequest) (*control.DrainResult, error) {
	if d.bgp == nil {
		return nil, fmt.Errorf("drain: no BGP connection: cgw cannot move traffic away (with keepalived, stop it or fail its health check instead)")
	}
	d.mu.Lock()
	was := d.lan.drained
	d.lan.drained = !req.Undrain
	d.mu.Unlock()
	if was != !req.Undrain {
		d.log.Info("drain state changed by operator", "drained", !req.Undrain)
	}
	if err := d.syncBGP(); err != nil {
		return nil, err
	}
	res := &control.DrainResult{Drained: !req.Undrain}
	if req.Undrain {
		res.Message = "undrained: AWS prefixes announced to the LAN again, no extra prepend toward AWS"
		return res, nil
	}
	wait, idle, rate := secsOr(req.WaitSeconds, defaultDrainWait), secsOr(req.IdleSeconds, defaultDrainIdle), req.IdleRate
	if rate <= 0 {
		rate = defaultIdleRate
	}
	start := time.Now()
	type sample struct {
		at   time.Time
		pkts uint64
	}
	samples := []sample{{start, d.tunnelPackets()}}
	tick := time.NewTicker(drainSample)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case now := <-tick.C:
			samples = append(samples, sample{now, d.tunnelPackets()})
		}
		last := samples[len(samples)-1]
		// The oldest sample at least idle ago gives the rate over the
		// idle window.
		i := len(samples) - 1
		for i > 0 && last.at.Sub(samples[i].at) < idle {
			i--
		}
		first := samples[i]
		el := last.at.Sub(first.at).Seconds()
		if res.RateBefore == 0 && len(samples) == 2 {
			res.RateBefore = float64(last.pkts-first.pkts) / max(el, 1e-3)
		}
		res.WaitedSeconds = last.at.Sub(start).Seconds()
		if last.at.Sub(first.at) >= idle {
			res.Rate = float64(last.pkts-first.pkts) / el
			if res.Rate <= rate {
				res.Moved = true
				res.Message = fmt.Sprintf("drained: traffic moved to the other gateway (%.1f packets/s over the last %v); this gateway can be stopped", res.Rate, idle)
				d.log.Info("drain: traffic moved", "waited", time.Since(start).Round(time.Millisecond), "rate", res.Rate)
				return res, nil
			}
		}
		if time.Since(start) >= wait {
			res.Message = fmt.Sprintf("drained, but the tunnels still carry %.1f packets/s after %v: check that the LAN routers and AWS see the other gateway, then run drain again to wait longer", res.Rate, wait)
			d.log.Warn("drain: traffic did not move within the wait", "wait", wait, "rate", res.Rate)
			return res, nil
		}
	}
}

func secsOr(s float64, def time.Duration) time.Duration {
	if s <= 0 {
		return def
	}
	return time.Duration(s * float64(time.Second))
}

// tunnelPackets sums every tunnel's inner packets, both directions.
func (d *Daemon) tunnelPackets() uint64 {
	d.mu.Lock()
	names := make([]string, 0, len(d.tunnels))
	for n := range d.tunnels {
		names = append(names, n)
	}
	d.mu.Unlock()
	var sum uint64
	for _, n := range names {
		if s, err := d.dp.TunnelStats(n); err == nil {
			sum += s.InPackets + s.OutPackets
		}
	}
	return sum
}

// lanStatus is Status's LAN section; nil without LAN neighbors.
func (d *Daemon) lanStatus() *control.LAN {
	d.mu.Lock()
	drained, asn := d.lan.drained, uint32(0)
	if bc := bgpConfig(d.cfg); bc != nil {
		asn = bc.ASN
	}
	d.mu.Unlock()
	if d.bgp == nil || (len(d.Config().BGP.LANNeighbors) == 0 && !drained) {
		return nil
	}
	out := &control.LAN{Drained: drained, Neighbors: []control.LANNeighbor{}}
	for _, n := range d.bgp.LANStatus() {
		typ := "ebgp"
		if n.PeerASN == asn {
			typ = "ibgp"
		}
		out.Neighbors = append(out.Neighbors, control.LANNeighbor{
			Name: n.Name, Address: n.PeerAddr.String(), ASN: n.PeerASN, Type: typ, State: n.State,
			UptimeSeconds: n.Uptime.Seconds(), Received: n.Received, Accepted: n.Accepted, Advertised: n.Advertised,
			LastError: n.LastError,
		})
	}
	return out
}

// lanConfigDoc is config show's top-level bgp section; nil without LAN
// neighbors. The password is redacted; local_pref is written for iBGP
// neighbors only (it is refused for eBGP ones).
func lanConfigDoc(c *config.Config) *control.ConfigGlobalBGP {
	if len(c.BGP.LANNeighbors) == 0 {
		return nil
	}
	var asn uint32
	if bc := bgpConfig(c); bc != nil {
		asn = bc.ASN
	}
	out := &control.ConfigGlobalBGP{}
	for _, n := range c.BGP.LANNeighbors {
		d := control.ConfigLANNeighbor{
			Name: n.Name, Address: n.Address.String(), ASN: n.ASN, LocalAddress: addrString(n.LocalAddress),
			HoldTime: control.SecondsOf(n.HoldTime), Keepalive: control.SecondsOf(n.Keepalive),
			Import: control.ConfigLANImport{AcceptDefault: n.Import.AcceptDefault},
			Export: control.ConfigLANExport{MED: n.Export.MED},
		}
		if len(n.Import.Allow) > 0 {
			d.Import.Allow = prefixStrings(n.Import.Allow)
		}
		if n.IBGP(asn) {
			d.Export.LocalPref = n.Export.LocalPref
		}
		if len(n.Password) > 0 {
			d.Password = control.Redacted
		}
		out.LANNeighbors = append(out.LANNeighbors, d)
	}
	return out
}

// lanRouteSide is the Connection of `bgp routes` rows of LAN neighbors;
// their Tunnel is the neighbor's name.
const (
	lanRouteSide = "lan"
	// notInstalledLAN: cgw installs no route learned from the LAN (the
	// host reaches the on-premises prefixes through its own routes); it
	// announces them to AWS.
	notInstalledLAN = "from_lan"
)

func (d *Daemon) isLANNeighbor(name string) bool {
	for _, n := range d.Config().BGP.LANNeighbors {
		if n.Name == name {
			return true
		}
	}
	return false
}

// lanRouteRows is the LAN neighbors' part of `bgp routes`: what each sent
// (received) or was sent (advertised), or only the named neighbor's.
func (d *Daemon) lanRouteRows(table, only string, learned []bgp.Path) []control.BGPRoute {
	if d.bgp == nil || table == control.TableInstalled {
		return nil
	}
	var out []control.BGPRoute
	for _, n := range d.Config().BGP.LANNeighbors {
		if only != "" && n.Name != only {
			continue
		}
		if table == control.TableAdvertised {
			for _, p := range d.bgp.Advertised(n.Name) {
				r := routeRow(lanRouteSide, p)
				r.Best = false
				out = append(out, r)
			}
			continue
		}
		for _, p := range learned {
			if p.Neighbor == n.Name {
				r := routeRow(lanRouteSide, p)
				r.Reason = notInstalledLAN
				out = append(out, r)
			}
		}
	}
	return out
}

// lanSessions are the LAN neighbors' sessions for `cgwctl events`, named
// lan:NAME as in `cgwctl bgp routes`.
func lanSessions(s *bgp.Server) []bgp.NeighborStatus {
	ns := s.LANSessions()
	for i := range ns {
		ns[i].Name = lanRouteSide + ":" + ns[i].Name
	}
	return ns
}
