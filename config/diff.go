package config

import (
	"reflect"
	"slices"
	"strings"
)

// ChangeKind says what happened to a section, connection or tunnel.
type ChangeKind string

const (
	Added    ChangeKind = "added"
	Removed  ChangeKind = "removed"
	Modified ChangeKind = "changed"
)

// Change is one difference between two configurations, for reloads.
type Change struct {
	Kind ChangeKind
	// Section is "log", "control", "metrics", "routes", "connection" or
	// "tunnel". Global sections are only ever Modified.
	Section string
	// Connection names the connection for "connection" and "tunnel" changes;
	// Tunnel names the tunnel for "tunnel" changes.
	Connection string
	Tunnel     string
	// Fields lists, for Modified, the schema keys that differ relative to
	// the section, connection or tunnel: "level", "bgp.advertise", "psk",
	// "dpd.interval". "tunnel_order" means the same tunnels were reordered
	// (the first is the preferred one). Values are never included. Only
	// effective settings count: moving a key to another psk_file with the
	// same content is no change (a reload must not restart the tunnel).
	Fields []string
}

func (c Change) String() string {
	var b strings.Builder
	switch c.Section {
	case "connection":
		b.WriteString("connection " + c.Connection)
	case "tunnel":
		b.WriteString("tunnel " + c.Tunnel + " of connection " + c.Connection)
	default:
		b.WriteString(c.Section)
	}
	b.WriteString(" " + string(c.Kind))
	if len(c.Fields) > 0 {
		b.WriteString(": " + strings.Join(c.Fields, ", "))
	}
	return b.String()
}

// Diff lists what changed from old to new: global sections first, then
// removed connections (old order), then added and changed connections (new
// order), each changed connection followed by its tunnel changes. An added
// or removed connection is one Change; its tunnels are implied. Connections
// are matched by name, tunnels by name within their connection (a renamed
// tunnel is a removal plus an addition). Either argument may be nil, meaning
// Default() (no connections).
func Diff(old, new *Config) []Change {
	if old == nil {
		old = Default()
	}
	if new == nil {
		new = Default()
	}
	var out []Change
	global := func(section string, fields []string) {
		if len(fields) > 0 {
			out = append(out, Change{Kind: Modified, Section: section, Fields: fields})
		}
	}
	var f fieldDiff
	f.cmp("format", old.Log.Format, new.Log.Format)
	f.cmp("level", old.Log.Level, new.Log.Level)
	global("log", f.take())
	f.cmp("socket", old.Control.Socket, new.Control.Socket)
	global("control", f.take())
	f.cmp("listen", old.Metrics.Listen, new.Metrics.Listen)
	global("metrics", f.take())
	f.cmp("table", old.Routes.Table, new.Routes.Table)
	f.cmp("protocol", old.Routes.Protocol, new.Routes.Protocol)
	f.cmp("metric", old.Routes.Metric, new.Routes.Metric)
	f.cmp("fwmark", old.Routes.FwMark, new.Routes.FwMark)
	f.cmp("rule_priority", old.Routes.RulePriority, new.Routes.RulePriority)
	global("routes", f.take())
	f.cmp("lan_neighbors", old.BGP.LANNeighbors, new.BGP.LANNeighbors)
	global("bgp", f.take())

	for i := range old.Connections {
		if findConn(new, old.Connections[i].Name) == nil {
			out = append(out, Change{Kind: Removed, Section: "connection", Connection: old.Connections[i].Name})
		}
	}
	for i := range new.Connections {
		nc := &new.Connections[i]
		oc := findConn(old, nc.Name)
		if oc == nil {
			out = append(out, Change{Kind: Added, Section: "connection", Connection: nc.Name})
			continue
		}
		if fields := diffConnection(oc, nc); len(fields) > 0 {
			out = append(out, Change{Kind: Modified, Section: "connection", Connection: nc.Name, Fields: fields})
		}
		for j := range oc.Tunnels {
			if findTunnel(nc, oc.Tunnels[j].Name) == nil {
				out = append(out, Change{Kind: Removed, Section: "tunnel", Connection: nc.Name, Tunnel: oc.Tunnels[j].Name})
			}
		}
		for j := range nc.Tunnels {
			nt := &nc.Tunnels[j]
			ot := findTunnel(oc, nt.Name)
			if ot == nil {
				out = append(out, Change{Kind: Added, Section: "tunnel", Connection: nc.Name, Tunnel: nt.Name})
				continue
			}
			if fields := diffTunnel(ot, nt); len(fields) > 0 {
				out = append(out, Change{Kind: Modified, Section: "tunnel", Connection: nc.Name, Tunnel: nt.Name, Fields: fields})
			}
		}
	}
	return out
}

func findConn(c *Config, name string) *Connection {
	for i := range c.Connections {
		if c.Connections[i].Name == name {
			return &c.Connections[i]
		}
	}
	return nil
}

func findTunnel(c *Connection, name string) *Tunnel {
	for i := range c.Tunnels {
		if c.Tunnels[i].Name == name {
			return &c.Tunnels[i]
		}
	}
	return nil
}

// fieldDiff accumulates the names of differing fields.
type fieldDiff struct{ names []string }

func (f *fieldDiff) cmp(name string, a, b any) {
	if !reflect.DeepEqual(a, b) {
		f.names = append(f.names, name)
	}
}

func (f *fieldDiff) take() []string {
	n := f.names
	f.names = nil
	return n
}

func diffConnection(a, b *Connection) []string {
	var f fieldDiff
	f.cmp("local_address", a.LocalAddress, b.LocalAddress)
	f.cmp("local_id", a.LocalID, b.LocalID)
	f.cmp("auth", a.Auth, b.Auth)
	f.cmp("certificate", a.Cert.Fingerprint(), b.Cert.Fingerprint())
	f.cmp("routing", a.Routing, b.Routing)
	switch {
	case a.BGP != nil && b.BGP != nil:
		f.cmp("bgp.asn", a.BGP.ASN, b.BGP.ASN)
		f.cmp("bgp.peer_asn", a.BGP.PeerASN, b.BGP.PeerASN)
		f.cmp("bgp.hold_time", a.BGP.HoldTime, b.BGP.HoldTime)
		f.cmp("bgp.keepalive", a.BGP.Keepalive, b.BGP.Keepalive)
		f.cmp("bgp.advertise", a.BGP.Advertise, b.BGP.Advertise)
		f.cmp("bgp.mode", a.BGP.Mode, b.BGP.Mode)
		f.cmp("bgp.secondary_prepend", a.BGP.SecondaryPrepend, b.BGP.SecondaryPrepend)
		f.cmp("bgp.secondary_med", a.BGP.SecondaryMED, b.BGP.SecondaryMED)
		f.cmp("bgp.prefix_limit", a.BGP.PrefixLimit, b.BGP.PrefixLimit)
		f.cmp("bgp.advertise_kernel", a.BGP.AdvertiseKernel, b.BGP.AdvertiseKernel)
		f.cmp("bgp.password", []byte(a.BGP.Password), []byte(b.BGP.Password))
		f.cmp("bgp.import.allow", a.BGP.Import.Allow, b.BGP.Import.Allow)
		f.cmp("bgp.import.deny", a.BGP.Import.Deny, b.BGP.Import.Deny)
		f.cmp("bgp.import.accept_default", a.BGP.Import.AcceptDefault, b.BGP.Import.AcceptDefault)
	case (a.BGP == nil) != (b.BGP == nil):
		f.names = append(f.names, "bgp")
	}
	switch {
	case a.Static != nil && b.Static != nil:
		f.cmp("static.remote_prefixes", a.Static.RemotePrefixes, b.Static.RemotePrefixes)
	case (a.Static == nil) != (b.Static == nil):
		f.names = append(f.names, "static")
	}
	// Order of the tunnels both configurations have: the first is preferred.
	var ao, bo []string
	for _, t := range a.Tunnels {
		if findTunnel(b, t.Name) != nil {
			ao = append(ao, t.Name)
		}
	}
	for _, t := range b.Tunnels {
		if findTunnel(a, t.Name) != nil {
			bo = append(bo, t.Name)
		}
	}
	if !slices.Equal(ao, bo) {
		f.names = append(f.names, "tunnel_order")
	}
	return f.names
}

func diffTunnel(a, b *Tunnel) []string {
	var f fieldDiff
	f.cmp("peer_address", a.PeerAddress, b.PeerAddress)
	f.cmp("peer_id", a.PeerID, b.PeerID)
	f.cmp("psk", []byte(a.PSK), []byte(b.PSK))
	f.cmp("auth", a.Auth, b.Auth)
	f.cmp("peer_id_dn", a.PeerDN, b.PeerDN)
	f.cmp("certificate", a.Cert.Fingerprint(), b.Cert.Fingerprint())
	f.cmp("inside_cidr", a.InsideCIDR, b.InsideCIDR)
	f.cmp("inside_ipv6_cidr", a.InsideIPv6CIDR, b.InsideIPv6CIDR)
	f.cmp("ike_proposals", a.IKEProposals, b.IKEProposals)
	f.cmp("esp_proposals", a.ESPProposals, b.ESPProposals)
	f.cmp("ike_lifetime", a.IKELifetime, b.IKELifetime)
	f.cmp("child_lifetime", a.ChildLifetime, b.ChildLifetime)
	f.cmp("rekey_margin", a.RekeyMargin, b.RekeyMargin)
	f.cmp("rekey_fuzz", a.RekeyFuzz, b.RekeyFuzz)
	f.cmp("dpd.interval", a.DPD.Interval, b.DPD.Interval)
	f.cmp("dpd.retries", a.DPD.Retries, b.DPD.Retries)
	f.cmp("dpd.action", a.DPD.Action, b.DPD.Action)
	f.cmp("startup_action", a.StartupAction, b.StartupAction)
	f.cmp("traffic_selectors.local", a.TrafficSelectors.Local, b.TrafficSelectors.Local)
	f.cmp("traffic_selectors.remote", a.TrafficSelectors.Remote, b.TrafficSelectors.Remote)
	f.cmp("force_encap", a.ForceEncap, b.ForceEncap)
	f.cmp("encapsulation", a.Encapsulation, b.Encapsulation)
	f.cmp("nat_keepalive", a.NATKeepalive, b.NATKeepalive)
	f.cmp("replay_window", a.ReplayWindow, b.ReplayWindow)
	f.cmp("ike_fragment_size", a.IKEFragmentSize, b.IKEFragmentSize)
	f.cmp("mtu", a.MTU, b.MTU)
	f.cmp("mss_clamp", a.MSSClamp, b.MSSClamp)
	f.cmp("oversize", a.Oversize, b.Oversize)
	f.cmp("keepalive.target", a.Keepalive.Target, b.Keepalive.Target)
	f.cmp("keepalive.interval", a.Keepalive.Interval, b.Keepalive.Interval)
	f.cmp("source_check", a.SourceCheck, b.SourceCheck)
	f.cmp("extra_sources", a.ExtraSources, b.ExtraSources)
	f.cmp("aws_tunnel_options", a.AWS, b.AWS)
	return f.names
}
