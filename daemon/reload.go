package daemon

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/cgwproject/cgw/config"
	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/dataplane/route"
)

// reload re-reads the configuration file and applies only the difference:
// tunnels whose settings did not change keep their SAs, devices and BGP
// sessions. Runs on the daemon loop. A file with errors changes nothing.
func (d *Daemon) reload() (*control.ReloadResult, error) {
	old, next, p, err := d.loadReloadPlan()
	if err != nil {
		return nil, err
	}
	if len(p.res.Changes) == 0 {
		return p.res, nil
	}
	res, restartConn, restartTunnel := p.res, p.restartConn, p.restartTunnel

	d.level.Set(next.Log.Level)
	if next.Routes != old.Routes {
		if err := d.replaceRouter(next.Routes); err != nil {
			res.Warnings = append(res.Warnings, err.Error())
		}
	}

	errs := d.applyConns(next, restartConn, restartTunnel)

	if d.bgp != nil {
		// New tunnels' sessions are dialed from their addresses; the
		// speaker restarts only to stop listening on an address still
		// on the host that is no BGP tunnel's (bgp listenChangeLocked).
		restarted, err := d.bgp.SetListenAddresses(bgpListen(next))
		if err != nil {
			errs = append(errs, err.Error())
		}
		if restarted {
			res.Warnings = append(res.Warnings, "the BGP speaker restarted to stop listening on an address of a removed BGP tunnel that is still on an interface: every BGP session re-established")
		}
	}
	if err := d.syncBGP(); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return res, fmt.Errorf("reload applied with errors: %v", errs)
	}
	return res, nil
}

// The effects of a reload change (control.ReloadChange.Effect).
const (
	effectInPlace  = "in_place"     // applied without renegotiating anything
	effectStart    = "start"        // a new connection or tunnel comes up
	effectStop     = "stop"         // SAs deleted, devices and routes removed
	effectRestart  = "restart"      // SAs renegotiated, the BGP session restarts
	effectRestartD = "restart_cgwd" // only takes effect when cgwd restarts
	effectRoutes   = "routes_moved" // routes and rules move to the new table/mark/metric
)

// reloadPlan is what a reload of next over old does, computed before
// anything is applied: the dry run shows it, reload applies it.
type reloadPlan struct {
	res                        *control.ReloadResult
	restartConn, restartTunnel map[string]bool
}

// planReload checks next against the daemon's limits and lists its
// changes with their effects. An error means the reload would change
// nothing.
func planReload(old, next *config.Config, warns []config.Warning) (*reloadPlan, error) {
	if err := checkDaemonLimits(next); err != nil {
		return nil, err
	}
	p := &reloadPlan{res: &control.ReloadResult{}, restartConn: map[string]bool{}, restartTunnel: map[string]bool{}}
	res := p.res
	for _, w := range warns {
		res.Warnings = append(res.Warnings, w.String())
	}
	changes := config.Diff(old, next)
	if len(changes) == 0 {
		return p, nil
	}
	// Each session carries its connection's ASN (a changed bgp.asn
	// restarts that connection), so only the speaker's presence matters.
	if ob, nb := bgpConfig(old), bgpConfig(next); (ob == nil) != (nb == nil) {
		return nil, fmt.Errorf("reload: BGP was enabled or disabled on every connection; restart cgwd to apply it (nothing was changed)")
	}
	for _, c := range changes {
		res.Changes = append(res.Changes, c.String())
		effect := effectInPlace
		switch c.Kind {
		case config.Added:
			effect = effectStart
		case config.Removed:
			effect = effectStop
		}
		switch c.Section {
		case "log":
			if slices.Contains(c.Fields, "format") {
				res.Warnings = append(res.Warnings, "log.format takes effect when cgwd restarts")
				effect = effectRestartD
			}
		case "control":
			res.Warnings = append(res.Warnings, "control.socket takes effect when cgwd restarts")
			effect = effectRestartD
		case "metrics":
			res.Warnings = append(res.Warnings, "metrics.listen takes effect when cgwd restarts")
			effect = effectRestartD
		case "routes":
			effect = effectRoutes
		case "connection":
			if c.Kind == config.Modified && touchesTunnels(c.Fields) {
				p.restartConn[c.Connection] = true
				effect = effectRestart
			}
		case "tunnel":
			// The inner source check follows on the next route sync;
			// it needs no renegotiation, nor does the record of the AWS
			// side's options (only the config check reads it).
			if c.Kind == config.Modified && slices.ContainsFunc(c.Fields, func(f string) bool {
				return f != "source_check" && f != "extra_sources" && f != "aws_tunnel_options"
			}) {
				p.restartTunnel[c.Tunnel] = true
				effect = effectRestart
			}
		}
		res.Details = append(res.Details, control.ReloadChange{
			Kind: string(c.Kind), Section: c.Section, Connection: c.Connection, Tunnel: c.Tunnel,
			Fields: c.Fields, Effect: effect,
		})
	}
	return p, nil
}

// ReloadDryRun implements control.Backend: it reads the file and reports
// what Reload would change, applying nothing.
func (d *Daemon) ReloadDryRun(context.Context) (*control.ReloadResult, error) {
	_, _, p, err := d.loadReloadPlan()
	if err != nil {
		return nil, err
	}
	p.res.DryRun = true
	return p.res, nil
}

// loadReloadPlan re-reads the running configuration's file and plans the
// reload over it: the one step Reload and ReloadDryRun share, so the
// preview cannot drift from what a reload does.
func (d *Daemon) loadReloadPlan() (old, next *config.Config, p *reloadPlan, err error) {
	old = d.Config()
	next, warns, err := config.Load(old.Source)
	if err != nil {
		return nil, nil, nil, err
	}
	p, err = planReload(old, next, warns)
	if err != nil {
		return nil, nil, nil, err
	}
	return old, next, p, nil
}

// applyConns brings the running connections in line with next: new and
// renegotiated connections are (re)built, others updated tunnel by tunnel,
// removed ones stopped. It runs on the owner goroutine, so d.mu is taken
// only to publish each change: status keeps answering while devices are
// created and IKE peers stop (see tunnels.go).
func (d *Daemon) applyConns(next *config.Config, restartConn, restartTunnel map[string]bool) []string {
	var errs []string
	var conns []*connRT
	oldConns := map[string]*connRT{}
	for _, c := range d.conns {
		oldConns[c.cfg.Name] = c
	}
	for i := range next.Connections {
		nc := &next.Connections[i]
		oc := oldConns[nc.Name]
		delete(oldConns, nc.Name)
		if oc == nil || restartConn[nc.Name] {
			if oc != nil {
				for _, t := range oc.tunnels {
					d.stopTunnel(t)
				}
			}
			c, err := d.addConn(nc)
			if err != nil {
				errs = append(errs, err.Error())
				continue
			}
			conns = append(conns, c)
			continue
		}
		errs = append(errs, d.updateConn(oc, nc, restartTunnel)...)
		conns = append(conns, oc)
	}
	for _, oc := range oldConns {
		for _, t := range oc.tunnels {
			d.stopTunnel(t)
		}
	}
	d.mu.Lock()
	d.conns = conns
	d.cfg = next
	d.mu.Unlock()

	return errs
}

// updateConn applies a new configuration to a running connection whose
// tunnels keep their identity: unchanged tunnels keep their SAs, changed
// ones restart, removed ones stop. Owner goroutine only; d.mu not held.
func (d *Daemon) updateConn(oc *connRT, nc *config.Connection, restartTunnel map[string]bool) []string {
	var errs []string
	d.mu.Lock()
	oc.cfg = nc
	d.mu.Unlock()
	have := map[string]*tunnelRT{}
	for _, t := range oc.tunnels {
		have[t.cfg.Name] = t
	}
	var ts []*tunnelRT
	for j := range nc.Tunnels {
		tc := &nc.Tunnels[j]
		t := have[tc.Name]
		delete(have, tc.Name)
		if t != nil && !restartTunnel[tc.Name] {
			d.mu.Lock()
			t.cfg, t.rank = tc, j
			d.mu.Unlock()
			ts = append(ts, t)
			continue
		}
		if t != nil {
			d.stopTunnel(t)
		}
		nt := &tunnelRT{conn: oc, cfg: tc, rank: j, changed: time.Now()}
		if err := d.startTunnel(nt); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		ts = append(ts, nt)
	}
	for _, t := range have {
		d.stopTunnel(t)
	}
	d.mu.Lock()
	oc.tunnels = ts
	d.mu.Unlock()
	return errs
}

// touchesTunnels reports whether a connection-level change needs its
// tunnels renegotiated (identity or outside address) rather than only BGP
// or route updates.
func touchesTunnels(fields []string) bool {
	for _, f := range fields {
		switch f {
		case "local_address", "local_id", "routing", "bgp", "static":
			return true
		}
	}
	return false
}

func (d *Daemon) replaceRouter(rc config.Routes) error {
	if d.router != nil {
		if err := d.router.Close(); err != nil {
			d.log.Warn("removing routes from the old table", "err", err)
		}
	}
	// The old rules are gone with the old Router: the sockets may take the
	// new mark before the new rules exist.
	if err := d.dp.SetFwMark(rc.FwMark); err != nil {
		d.log.Warn("setting the firewall mark on cgwd's sockets", "err", err)
	}
	rt, err := route.New(routerConfig(rc, d.log))
	if err != nil {
		d.router = nil
		return fmt.Errorf("routes: %w", err)
	}
	d.router = rt
	d.mu.Lock()
	d.routes = nil
	d.mu.Unlock()
	return nil
}
