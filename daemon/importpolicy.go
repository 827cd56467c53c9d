package daemon

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/cgwproject/cgw/config"
)

// Reasons a prefix learned from AWS is not installed, as shown in status
// and in the cgw_routes_filtered metric.
const (
	filterDefault     = "default_route" // 0.0.0.0/0 or ::/0 without import.accept_default
	filterDeny        = "deny"          // inside import.deny
	filterNotAllowed  = "not_allowed"   // outside every import.allow prefix
	filterPrefixLimit = "prefix_limit"  // above bgp.prefix_limit
)

// filteredPrefix is one learned prefix the import policy kept out.
type filteredPrefix struct {
	Prefix netip.Prefix
	Reason string
}

// importPolicy is a connection's bgp.import plus its prefix_limit.
type importPolicy struct {
	config.Import
	Limit int // 0 = none
}

// reason returns why p is filtered, or "" when it may be installed (before
// the prefix limit, which depends on the whole set).
func (ip importPolicy) reason(p netip.Prefix) string {
	if p.Bits() == 0 && !ip.AcceptDefault {
		return filterDefault
	}
	if slices.ContainsFunc(ip.Deny, func(d netip.Prefix) bool { return covers(d, p) }) {
		return filterDeny
	}
	if len(ip.Allow) > 0 && !slices.ContainsFunc(ip.Allow, func(a netip.Prefix) bool { return covers(a, p) }) {
		return filterNotAllowed
	}
	return ""
}

// apply splits the learned prefixes into accepted and filtered. Under the
// prefix limit, prefixes accepted before (prev) keep their place, so a new
// prefix never pushes out an installed one; the rest are taken in address
// order. Both results are sorted by prefix.
func (ip importPolicy) apply(learned []netip.Prefix, prev map[netip.Prefix]bool) (accepted []netip.Prefix, filtered []filteredPrefix) {
	learned = slices.Clone(learned) // the same prefix comes from both tunnels
	slices.SortFunc(learned, comparePrefix)
	learned = slices.Compact(learned)
	var ok []netip.Prefix
	for _, p := range learned {
		if r := ip.reason(p); r != "" {
			filtered = append(filtered, filteredPrefix{p, r})
			continue
		}
		ok = append(ok, p)
	}
	slices.SortFunc(ok, func(a, b netip.Prefix) int {
		if pa, pb := prev[a], prev[b]; pa != pb {
			if pa {
				return -1
			}
			return 1
		}
		return comparePrefix(a, b)
	})
	if ip.Limit > 0 && len(ok) > ip.Limit {
		for _, p := range ok[ip.Limit:] {
			filtered = append(filtered, filteredPrefix{p, filterPrefixLimit})
		}
		ok = ok[:ip.Limit]
	}
	slices.SortFunc(ok, comparePrefix)
	slices.SortFunc(filtered, func(a, b filteredPrefix) int { return comparePrefix(a.Prefix, b.Prefix) })
	return ok, filtered
}

// covers reports whether p lies inside outer (same family).
func covers(outer, p netip.Prefix) bool {
	return outer.Addr().Is4() == p.Addr().Is4() && outer.Bits() <= p.Bits() && outer.Contains(p.Addr())
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// filterSummary is a one-line account of filtered prefixes for logs.
func filterSummary(fs []filteredPrefix) string {
	parts := make([]string, 0, len(fs))
	for _, f := range fs {
		parts = append(parts, f.Prefix.String()+" ("+f.Reason+")")
	}
	return strings.Join(parts, ", ")
}

func prefixSet(ps []netip.Prefix) map[netip.Prefix]bool {
	m := make(map[netip.Prefix]bool, len(ps))
	for _, p := range ps {
		m[p] = true
	}
	return m
}

// applyImportLocked records a connection's import result, logs each newly
// filtered prefix once (a prefix that comes back after being accepted is
// logged again), and gives the dataplane the sources its tunnels may carry.
// Caller holds d.mu.
func (d *Daemon) applyImportLocked(c *connRT, r importResult) {
	if c.logged == nil {
		c.logged = map[filteredPrefix]bool{}
	}
	now := map[filteredPrefix]bool{}
	var limited []filteredPrefix
	for _, f := range r.Filtered {
		now[f] = true
		if c.logged[f] {
			continue
		}
		switch f.Reason {
		case filterPrefixLimit:
			limited = append(limited, f)
		case filterDefault:
			d.log.Warn("import: AWS sent a default route; not installed (set bgp.import.accept_default: true to install it)",
				"connection", c.cfg.Name, "prefix", f.Prefix.String())
		default:
			d.log.Info("import: prefix from AWS filtered by bgp.import", "connection", c.cfg.Name, "prefix", f.Prefix.String(), "reason", f.Reason)
		}
	}
	if len(limited) > 0 {
		d.log.Warn("import: bgp.prefix_limit reached: not installing further prefixes from AWS (raise prefix_limit or summarise the routes on the AWS side)",
			"connection", c.cfg.Name, "limit", c.cfg.BGP.PrefixLimit, "not_installed", filterSummary(limited))
	}
	c.logged = now
	c.imports = r
	d.setSourcesLocked(c)
}

// setSourcesLocked gives each tunnel of c the inner source prefixes it may
// carry: the connection's accepted (BGP) or configured (static) prefixes,
// the inside CIDRs and the tunnel's extra_sources. Caller holds d.mu.
func (d *Daemon) setSourcesLocked(c *connRT) {
	for _, t := range c.tunnels {
		d.setTunnelSourcesLocked(t)
	}
}

// setTunnelSourcesLocked is setSourcesLocked for one tunnel; it runs when
// the tunnel joins the dataplane too, before it has an SA. Caller holds
// d.mu.
func (d *Daemon) setTunnelSourcesLocked(t *tunnelRT) {
	if t.tun == nil {
		return
	}
	c := t.conn
	allowed := slices.Clone(c.imports.Accepted)
	if c.cfg.Static != nil {
		allowed = slices.Clone(c.cfg.Static.RemotePrefixes)
	}
	allowed = append(allowed, t.cfg.InsideCIDR.Masked())
	if t.cfg.InsideIPv6CIDR.IsValid() {
		allowed = append(allowed, t.cfg.InsideIPv6CIDR.Masked())
	}
	allowed = append(allowed, t.cfg.ExtraSources...)
	strict := t.cfg.SourceCheck != config.SourceOff
	if t.sources != nil && strict == t.srcStrict && slices.Equal(allowed, t.sources) {
		return
	}
	if err := d.dp.SetTunnelSources(t.cfg.Name, strict, allowed); err != nil {
		d.log.Warn("cannot set the tunnel's allowed inner sources", "tunnel", t.cfg.Name, "err", err)
		return
	}
	t.sources, t.srcStrict = allowed, strict
}
