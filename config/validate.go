package config

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/cgwproject/cgw/ipsec"
)

// checker turns the raw schema into a Config, applying defaults and
// collecting every error and warning with its line.
type checker struct {
	file  string
	dir   string
	ix    *nodeIndex
	bad   map[string]bool // paths already reported by decode
	errs  []error
	warns []Warning

	inline []string // paths of secrets written in the file itself (psk, bgp password)

	tunnelNames map[string]string // name -> path of first use
	peers       map[netip.Addr]string
	insides     map[netip.Prefix]string
}

// reported tells whether decode already reported path or an ancestor.
func (c *checker) reported(path string) bool {
	for ; path != ""; path = parentPath(path) {
		if c.bad[path] {
			return true
		}
	}
	return false
}

func (c *checker) errorf(path, fix, format string, args ...any) {
	if c.reported(path) {
		return
	}
	c.errs = append(c.errs, &FieldError{File: c.file, Line: c.ix.line(path), Path: path,
		Msg: fmt.Sprintf(format, args...), Fix: fix})
}

func (c *checker) warnf(path, format string, args ...any) {
	if c.reported(path) {
		return
	}
	c.warns = append(c.warns, Warning{File: c.file, Line: c.ix.line(path), Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (c *checker) config(r *rawFile) *Config {
	cfg := Default()
	c.tunnelNames = map[string]string{}
	c.peers = map[netip.Addr]string{}
	c.insides = map[netip.Prefix]string{}

	switch {
	case r.Version == nil:
		c.errorf("version", "add `version: 1` at the top of the file", "missing schema version")
	case *r.Version != Version:
		c.errorf("version", "set `version: 1` and check the file against `cgwctl config default`",
			"unsupported schema version %d; this cgw reads version %d", *r.Version, Version)
	}

	if r.Log != nil {
		cfg.Log.Format = LogFormat(c.enum("log.format", r.Log.Format, string(LogText), "text", "json"))
		lvl := c.enum("log.level", r.Log.Level, "info", "debug", "info", "warn", "error")
		_ = cfg.Log.Level.UnmarshalText([]byte(lvl))
	}
	if r.Control != nil && r.Control.Socket != nil {
		s := *r.Control.Socket
		if !filepath.IsAbs(s) {
			c.errorf("control.socket", "use an absolute path such as "+DefaultSocket, "socket path %q is not absolute", s)
		} else {
			cfg.Control.Socket = filepath.Clean(s)
		}
	}
	if r.Metrics != nil && r.Metrics.Listen != nil && *r.Metrics.Listen != "" {
		l := *r.Metrics.Listen
		host, port, err := net.SplitHostPort(l)
		n, perr := strconv.ParseUint(port, 10, 16)
		switch {
		case err != nil:
			c.errorf("metrics.listen", `write host:port, e.g. "127.0.0.1:9810", or "" to turn metrics off`, "invalid listen address %q: %v", l, err)
		case perr != nil || n == 0:
			c.errorf("metrics.listen", "use a port number between 1 and 65535", "invalid port %q", port)
		case host != "" && !validHost(host):
			c.errorf("metrics.listen", `use an IP address (or "" for all addresses) before the port`, "invalid host %q", host)
		default:
			cfg.Metrics.Listen = l
		}
	}
	if r.Routes != nil {
		cfg.Routes.Table = int(c.intRange("routes.table", r.Routes.Table, DefaultRouteTable, 1, 1<<32-1,
			"use a routing table number of cgw's own between 1 and 4294967295 (default 199)"))
		switch cfg.Routes.Table {
		case 253, 254, 255:
			c.errorf("routes.table", "use a table of cgw's own (default 199): policy rules keep cgwd's own IKE and ESP away from it, so a route from AWS can never capture the tunnels",
				"table %d is the kernel's %s table", cfg.Routes.Table, map[int]string{253: "default", 254: "main", 255: "local"}[cfg.Routes.Table])
		}
		cfg.Routes.Protocol = int(c.intRange("routes.protocol", r.Routes.Protocol, DefaultRouteProtocol, 0, 255,
			"use a protocol number between 5 and 255 that no other routing daemon uses (default 199)"))
		if cfg.Routes.Protocol <= 4 {
			c.errorf("routes.protocol", "use a number between 5 and 255 (default 199) so cgw can tell its routes apart",
				"protocol %d is reserved by the kernel", cfg.Routes.Protocol)
		}
		cfg.Routes.Metric = int(c.intRange("routes.metric", r.Routes.Metric, DefaultRouteMetric, 0, 1<<32-1,
			"use a metric between 0 and 4294967295"))
		cfg.Routes.FwMark = uint32(c.intRange("routes.fwmark", r.Routes.FwMark, DefaultRouteFwMark, 1, 1<<32-1,
			"use a firewall mark between 1 and 0xffffffff that nothing else on the host uses (default 0xc7)"))
		cfg.Routes.RulePriority = int(c.intRange("routes.rule_priority", r.Routes.RulePriority, DefaultRouteRulePriority, 1, 32764,
			"use a priority between 1 and 32764 so both rules come before the main table's rule 32766 (default 32000)"))
	}

	if len(r.Connections) == 0 {
		c.warnf("connections", "no connections: cgwd will run without tunnels")
	}
	names := map[string]string{}
	for i := range r.Connections {
		path := indexPath("connections", i)
		conn := c.connection(path, &r.Connections[i])
		if conn.Name != "" {
			if first, dup := names[conn.Name]; dup {
				c.errorf(path+".name", "give every connection a unique name", "connection name %q is already used by %s", conn.Name, first)
			} else {
				names[conn.Name] = path
			}
		}
		cfg.Connections = append(cfg.Connections, conn)
	}
	return cfg
}

func validHost(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	return h == "localhost"
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

const nameFix = "use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit"

func (c *checker) connection(path string, r *rawConnection) Connection {
	var conn Connection
	switch {
	case r.Name == nil || *r.Name == "":
		c.errorf(path+".name", "add a name, e.g. the AWS VPN connection ID (vpn-0a1b2c3d)", "missing connection name")
	case !nameRE.MatchString(*r.Name):
		c.errorf(path+".name", nameFix, "invalid name %q", *r.Name)
	default:
		conn.Name = *r.Name
	}
	conn.LocalAddress = c.optAddr(path+".local_address", r.LocalAddress,
		"write the IP address of the outside interface, or remove the key to use any")
	conn.LocalID = c.optAddr(path+".local_id", r.LocalID,
		"write the public IP address registered on the AWS customer gateway")
	if !conn.LocalID.IsValid() {
		conn.LocalID = conn.LocalAddress
	}

	routing := string(RoutingBGP)
	if r.Routing == nil && r.Static != nil && r.BGP == nil {
		routing = string(RoutingStatic)
	}
	conn.Routing = Routing(c.enum(path+".routing", r.Routing, routing, "bgp", "static"))
	switch conn.Routing {
	case RoutingBGP:
		if r.Static != nil {
			c.errorf(path+".static", "remove the static section, or set `routing: static`", "static section with BGP routing")
		}
		if r.BGP == nil {
			c.errorf(path+".bgp", "add `bgp: {asn: <your ASN>}` (the customer gateway's ASN), or set `routing: static`", "BGP routing needs a bgp section")
		} else {
			conn.BGP = c.bgp(path+".bgp", r.BGP)
		}
	case RoutingStatic:
		if r.BGP != nil {
			c.errorf(path+".bgp", "remove the bgp section, or set `routing: bgp`", "bgp section with static routing")
		}
		conn.Static = &Static{}
		if r.Static == nil || r.Static.RemotePrefixes == nil {
			c.errorf(path+".static.remote_prefixes", "list the VPC CIDR(s) to route into the tunnels, e.g. `static: {remote_prefixes: [10.0.0.0/16]}`",
				"static routing needs remote_prefixes")
		} else {
			conn.Static.RemotePrefixes = c.prefixList(path+".static.remote_prefixes", r.Static.RemotePrefixes, nil,
				"list the VPC CIDR(s) to route into the tunnels")
		}
	}

	switch {
	case r.Tunnels == nil || len(*r.Tunnels) == 0:
		c.errorf(path+".tunnels", "add both tunnels of the AWS VPN connection (`cgwctl import-aws` writes them)", "no tunnels")
	case len(*r.Tunnels) > 2:
		c.errorf(path+".tunnels", "an AWS VPN connection has exactly two tunnels; put further tunnels in another connection",
			"%d tunnels", len(*r.Tunnels))
	case len(*r.Tunnels) == 1:
		c.warnf(path+".tunnels", "only one tunnel: AWS replaces tunnel endpoints one at a time for maintenance, so configure both to avoid outages")
	}
	if r.Tunnels != nil {
		for i := range *r.Tunnels {
			t := c.tunnel(indexPath(path+".tunnels", i), conn, i, &(*r.Tunnels)[i])
			conn.Tunnels = append(conn.Tunnels, t)
		}
	}
	c.prefixFamilies(path, &conn)
	return conn
}

// prefixFamilies warns about routed prefixes of the other IP family than
// the tunnels' selectors: a connection carries IPv4 or IPv6, not both.
func (c *checker) prefixFamilies(path string, conn *Connection) {
	if len(conn.Tunnels) == 0 || len(conn.Tunnels[0].TrafficSelectors.Local) == 0 {
		return
	}
	v4 := conn.Tunnels[0].TrafficSelectors.Local[0].Addr().Is4()
	family := map[bool]string{true: "IPv4", false: "IPv6"}
	check := func(p string, ps []netip.Prefix) {
		for i, q := range ps {
			if q.Addr().Is4() != v4 {
				c.warnf(indexPath(p, i), "%v is %s but the tunnels carry %s (see traffic_selectors and inside_ipv6_cidr); it cannot be routed through them",
					q, family[q.Addr().Is4()], family[v4])
			}
		}
	}
	if conn.BGP != nil {
		check(path+".bgp.advertise", conn.BGP.Advertise)
	}
	if conn.Static != nil {
		check(path+".static.remote_prefixes", conn.Static.RemotePrefixes)
	}
}

// AWS's BGP ASN rules (aws-vpn-facts section 4).
func (c *checker) bgp(path string, r *rawBGP) *BGP {
	b := &BGP{}
	if r.ASN == nil {
		c.errorf(path+".asn", "add `asn:` with the BGP ASN of your AWS customer gateway (e.g. 65000)", "missing ASN")
	} else {
		b.ASN = c.asn(path+".asn", *r.ASN, "use the BGP ASN of your AWS customer gateway (1-4294967294)")
		switch b.ASN {
		case 7224, 9059, 10124, 17493:
			c.warnf(path+".asn", "ASN %d is an Amazon-side ASN in some Regions; AWS may refuse it for a customer gateway", b.ASN)
		}
	}
	b.PeerASN = DefaultPeerASN
	if r.PeerASN != nil {
		b.PeerASN = c.asn(path+".peer_asn", *r.PeerASN, "use the Amazon-side ASN of the VGW or TGW (default 64512)")
		if !amazonASN(b.PeerASN) {
			c.warnf(path+".peer_asn", "ASN %d is outside the Amazon-side ranges (64512-65534, 4200000000-4294967294, or legacy 7224/9059/10124/17493)", b.PeerASN)
		}
	}
	if b.ASN != 0 && b.ASN == b.PeerASN {
		c.errorf(path+".asn", "AWS peers over eBGP: use a customer gateway ASN different from the Amazon-side ASN",
			"asn equals peer_asn (%d)", b.ASN)
	}
	b.HoldTime = c.duration(path+".hold_time", r.HoldTime, DefaultHoldTime)
	if b.HoldTime != 0 && (b.HoldTime < 3*time.Second || b.HoldTime > 65535*time.Second) || b.HoldTime%time.Second != 0 {
		c.errorf(path+".hold_time", "use whole seconds, 0 or 3s-65535s (RFC 4271, Section 4.2); AWS uses 30s",
			"invalid hold time %v", b.HoldTime)
	}
	b.Keepalive = c.duration(path+".keepalive", r.Keepalive, b.HoldTime/3)
	switch {
	case b.Keepalive%time.Second != 0:
		c.errorf(path+".keepalive", "use whole seconds (AWS uses 10s)", "invalid keepalive %v", b.Keepalive)
	case b.HoldTime == 0 && b.Keepalive != 0:
		c.errorf(path+".keepalive", "remove keepalive or set a hold_time", "keepalive without a hold time")
	case b.HoldTime != 0 && b.Keepalive == 0:
		c.errorf(path+".keepalive", "use a third of hold_time (AWS uses 10s with 30s)", "keepalive 0 with a hold time")
	case b.HoldTime != 0 && b.Keepalive >= b.HoldTime:
		c.errorf(path+".keepalive", "use a third of hold_time (AWS uses 10s with 30s)", "keepalive %v is not shorter than hold_time %v", b.Keepalive, b.HoldTime)
	}
	if r.Advertise != nil {
		b.Advertise = c.prefixList(path+".advertise", r.Advertise, nil, "list the on-premises prefixes to announce to AWS")
	}
	switch n := len(b.Advertise); {
	case n == 0:
		c.warnf(path+".advertise", "nothing to advertise: AWS learns no on-premises routes over BGP")
	case n > 1000:
		c.errorf(path+".advertise", "summarise the routes: AWS accepts at most 100 prefixes (VGW) or 1000 (TGW) and drops the session above that",
			"%d prefixes", n)
	case n > 100:
		c.warnf(path+".advertise", "%d prefixes: a VGW accepts at most 100 and resets the session above that (a TGW accepts 1000)", n)
	}
	b.Mode = BGPMode(c.enum(path+".mode", r.Mode, string(ActivePassive), string(ActivePassive), string(ActiveActive)))
	if b.Mode == ActivePassive {
		b.SecondaryPrepend = int(c.intRange(path+".secondary_prepend", r.SecondaryPrepend, DefaultSecondaryPrepend, 0, 10,
			"use 0-10 AS-path prepends on the second tunnel"))
		if r.SecondaryMED != nil {
			b.SecondaryMED = uint32(c.intRange(path+".secondary_med", r.SecondaryMED, 0, 0, 1<<32-1,
				"use the MED to send on the second tunnel's routes (0 = none)"))
		}
	} else {
		if r.SecondaryPrepend != nil {
			c.errorf(path+".secondary_prepend", "remove it, or set `mode: active-passive`", "secondary_prepend applies to active-passive mode only")
		}
		if r.SecondaryMED != nil {
			c.errorf(path+".secondary_med", "remove it, or set `mode: active-passive`", "secondary_med applies to active-passive mode only")
		}
	}
	b.PrefixLimit = uint32(c.intRange(path+".prefix_limit", r.PrefixLimit, 0, 0, 1<<32-1,
		"use the most prefixes to install from AWS (0 = no limit)"))
	if r.Import != nil {
		p := path + ".import"
		b.Import.Allow = c.prefixList(p+".allow", r.Import.Allow, nil,
			"list the prefixes AWS may send (a learned prefix must lie inside one); [] = all not denied")
		b.Import.Deny = c.prefixList(p+".deny", r.Import.Deny, nil,
			"list the prefixes never to install from AWS (a learned prefix inside one is filtered)")
		if r.Import.AcceptDefault != nil {
			b.Import.AcceptDefault = *r.Import.AcceptDefault
		}
	}
	if r.AdvertiseKernel != nil {
		b.AdvertiseKernel = c.prefixList(path+".advertise_kernel", r.AdvertiseKernel, nil,
			"list prefixes; kernel routes inside them (other than cgw's own) are announced to AWS")
	}
	switch {
	case r.Password != nil && r.PasswordFile != nil:
		c.errorf(path+".password_file", "keep password or password_file, not both", "both password and password_file are set")
	case r.Password != nil:
		c.inline = append(c.inline, path+".password")
		b.Password = c.md5Password(path+".password", []byte(*r.Password))
	case r.PasswordFile != nil:
		if key, _, ok := c.secretFile(path+".password_file", *r.PasswordFile); ok {
			b.Password = c.md5Password(path+".password_file", key)
		}
	}
	return b
}

// md5Password checks a TCP MD5 (RFC 2385) key: Linux accepts 1-80 bytes.
func (c *checker) md5Password(path string, key []byte) Secret {
	if len(key) == 0 || len(key) > 80 {
		c.errorf(path, "use a key of 1-80 characters, the same as on the AWS side (AWS does not document MD5 for VPN BGP: leave it unset unless AWS support enabled it)",
			"the BGP password has %d characters", len(key))
		return nil
	}
	return Secret(key)
}

func (c *checker) asn(path string, v int64, fix string) uint32 {
	switch {
	case v < 1 || v > 4294967294:
		c.errorf(path, fix, "ASN %d out of range", v)
	case v == 23456:
		c.errorf(path, fix, "ASN 23456 is AS_TRANS (RFC 6793), not a real ASN")
	case v == 65535:
		c.errorf(path, fix, "ASN 65535 is reserved (RFC 7300)")
	default:
		return uint32(v)
	}
	return 0
}

func amazonASN(a uint32) bool {
	switch {
	case a >= 64512 && a <= 65534, a >= 4200000000 && a <= 4294967294:
		return true
	case a == 7224, a == 9059, a == 10124, a == 17493:
		return true
	}
	return false
}

func (c *checker) tunnel(path string, conn Connection, i int, r *rawTunnel) Tunnel {
	var t Tunnel
	// Name: unique across the file, since tunnels are keyed by name in IKE,
	// the dataplane and the control API.
	if r.Name == nil {
		if conn.Name != "" {
			t.Name = fmt.Sprintf("%s-t%d", conn.Name, i+1)
		}
	} else if !nameRE.MatchString(*r.Name) {
		c.errorf(path+".name", nameFix, "invalid tunnel name %q", *r.Name)
	} else {
		t.Name = *r.Name
	}
	if t.Name != "" {
		if first, dup := c.tunnelNames[t.Name]; dup {
			c.errorf(path+".name", "give every tunnel a unique name across all connections", "tunnel name %q is already used by %s", t.Name, first)
		} else {
			c.tunnelNames[t.Name] = path
		}
	}

	if r.PeerAddress == nil {
		c.errorf(path+".peer_address", "add the AWS outside IP address of this tunnel", "missing peer_address")
	} else if a := c.addr(path+".peer_address", *r.PeerAddress, "write the AWS outside IP address of this tunnel"); a.IsValid() {
		switch {
		case a.IsUnspecified(), a.IsLoopback(), a.IsMulticast():
			c.errorf(path+".peer_address", "write the AWS outside IP address of this tunnel", "%v is not a unicast peer address", a)
		case conn.LocalAddress.IsValid() && conn.LocalAddress.Is4() != a.Is4():
			c.errorf(path+".peer_address", "use outside addresses of the same IP family on both ends", "address family differs from local_address %v", conn.LocalAddress)
		default:
			t.PeerAddress = a
			if first, dup := c.peers[a]; dup {
				c.errorf(path+".peer_address", "every AWS tunnel has its own outside address; check you copied the right one", "peer address %v is already used by %s", a, first)
			} else {
				c.peers[a] = path
			}
		}
	}
	t.PeerID = c.optAddr(path+".peer_id", r.PeerID, "write the AWS outside IP address (the default), or remove the key")
	if !t.PeerID.IsValid() {
		t.PeerID = t.PeerAddress
	}

	c.psk(path, &t, r)

	if r.InsideCIDR == nil {
		c.errorf(path+".inside_cidr", "add the tunnel's inside /30 from the AWS configuration, e.g. 169.254.15.192/30", "missing inside_cidr")
	} else {
		t.InsideCIDR = c.insideCIDR(path+".inside_cidr", *r.InsideCIDR)
	}
	if r.InsideIPv6CIDR != nil {
		t.InsideIPv6CIDR = c.insideCIDR6(path+".inside_ipv6_cidr", *r.InsideIPv6CIDR)
	}

	t.IKEProposals = c.proposals(path+".ike_proposals", r.IKEProposals, ipsec.DefaultIKEProposals, true)
	t.ESPProposals = c.proposals(path+".esp_proposals", r.ESPProposals, ipsec.DefaultESPProposals, false)

	c.lifetimes(path, &t, r)

	t.DPD.Interval = DefaultDPDInterval
	t.DPD.Retries = DefaultDPDRetries
	t.DPD.Action = DPDRestart
	if r.DPD != nil {
		p := path + ".dpd"
		t.DPD.Interval = c.durationRange(p+".interval", r.DPD.Interval, DefaultDPDInterval, time.Second, 300*time.Second,
			"use 1s-300s; AWS probes after 10s of silence")
		t.DPD.Retries = int(c.intRange(p+".retries", r.DPD.Retries, DefaultDPDRetries, 1, 20, "use 1-20 retries; AWS uses 3"))
		t.DPD.Action = DPDAction(c.enum(p+".action", r.DPD.Action, string(DPDRestart), string(DPDRestart), string(DPDClear), string(DPDNone)))
		if timeout := t.DPD.Interval * time.Duration(t.DPD.Retries+1); timeout > 120*time.Second {
			c.warnf(p, "AWS is declared dead only after about %v (interval x (retries+1)); AWS gives up on us after 30-40s, so failover to the other tunnel will be slow", timeout)
		}
	}
	t.StartupAction = StartupAction(c.enum(path+".startup_action", r.StartupAction, string(StartInitiate), string(StartInitiate), string(StartRespond)))

	c.selectors(path, &t, r)

	if r.ForceEncap != nil {
		t.ForceEncap = *r.ForceEncap
	}
	t.NATKeepalive = c.durationRange(path+".nat_keepalive", r.NATKeepalive, DefaultNATKeepalive, 0, 300*time.Second,
		"use 0 (off) or up to 300s; 20s keeps most NAT mappings alive")
	t.ReplayWindow = int(c.intRange(path+".replay_window", r.ReplayWindow, DefaultReplayWindow, 64, 2048,
		"use 64-2048 packets, as AWS allows (default 1024)"))
	minMTU := int64(576)
	if t.InsideIPv6CIDR.IsValid() || (len(t.TrafficSelectors.Local) > 0 && t.TrafficSelectors.Local[0].Addr().Is6()) {
		minMTU = 1280
	}
	t.MTU = int(c.intRange(path+".mtu", r.MTU, 0, 0, 1446, "use 0 (derive from the algorithms) or at most 1446, the largest MTU AWS supports"))
	if t.MTU != 0 && int64(t.MTU) < minMTU {
		c.errorf(path+".mtu", fmt.Sprintf("use 0 (derive from the algorithms) or %d-1446", minMTU), "MTU %d is too small", t.MTU)
	}
	t.MSSClamp = int(c.intRange(path+".mss_clamp", r.MSSClamp, DefaultMSSClamp, 0, 1406, fmt.Sprintf("use 0 (off) or at most 1406, the largest MSS AWS supports (default %d)", DefaultMSSClamp)))
	if t.MSSClamp != 0 && t.MSSClamp < 536 {
		c.errorf(path+".mss_clamp", fmt.Sprintf("use 0 (off) or 536-1406 (default %d)", DefaultMSSClamp), "MSS %d is too small", t.MSSClamp)
	}
	t.Oversize = Oversize(c.enum(path+".oversize", r.Oversize, string(OversizeFragment), string(OversizeFragment), string(OversizeICMP)))
	t.SourceCheck = SourceCheck(c.enum(path+".source_check", r.SourceCheck, string(SourceStrict), string(SourceStrict), string(SourceOff)))
	t.ExtraSources = c.prefixList(path+".extra_sources", r.ExtraSources, nil,
		"list the extra source prefixes AWS may send from through this tunnel, e.g. [10.9.0.0/16]")
	if t.SourceCheck == SourceOff && len(t.ExtraSources) > 0 {
		c.warnf(path+".extra_sources", "extra_sources has no effect with source_check: off")
	}

	t.Keepalive.Interval = DefaultKeepaliveInterval
	if r.Keepalive != nil {
		p := path + ".keepalive"
		if r.Keepalive.Target != nil && *r.Keepalive.Target != "" {
			t.Keepalive.Target = c.addr(p+".target", *r.Keepalive.Target, `write an IP address reachable through the tunnel (e.g. a VPC host), or "" for off`)
		}
		t.Keepalive.Interval = c.durationRange(p+".interval", r.Keepalive.Interval, DefaultKeepaliveInterval, time.Second, 300*time.Second,
			"use 1s-300s; AWS suggests about 5s")
	}
	return t
}

// pskRE is AWS's PSK rule (aws-vpn-facts 2.5): 8-64 of [0-9A-Za-z._], not
// starting with 0.
var pskRE = regexp.MustCompile(`^[0-9A-Za-z._]+$`)

const pskFix = "use the pre-shared key of this tunnel from the AWS configuration (8-64 characters of 0-9 A-Z a-z . _, not starting with 0)"

func (c *checker) psk(path string, t *Tunnel, r *rawTunnel) {
	var key []byte
	var keyPath string
	switch {
	case r.PSK != nil && r.PSKFile != nil:
		c.errorf(path+".psk_file", "keep psk or psk_file, not both", "both psk and psk_file are set")
		return
	case r.PSK != nil:
		key, keyPath = []byte(*r.PSK), path+".psk"
		c.inline = append(c.inline, keyPath)
	case r.PSKFile != nil:
		keyPath = path + ".psk_file"
		var ok bool
		if key, t.PSKFile, ok = c.secretFile(keyPath, *r.PSKFile); !ok {
			return
		}
	default:
		c.errorf(path+".psk", "add `psk:` or `psk_file:` with this tunnel's pre-shared key", "missing pre-shared key")
		return
	}
	if msg, fix := pskProblem(key); msg != "" {
		c.errorf(keyPath, fix, "%s", msg)
		return
	}
	t.PSK = Secret(key)
}

// secretFile reads a key file named by the field at path (relative names
// resolve from the configuration's directory). It warns when the file is
// readable by group or others, strips one trailing newline, and reports
// problems without ever including the file's content.
func (c *checker) secretFile(path, name string) (key []byte, abs string, ok bool) {
	if name == "" {
		c.errorf(path, "write the path of a file holding the key", "empty %s", path[strings.LastIndex(path, ".")+1:])
		return nil, "", false
	}
	if !filepath.IsAbs(name) {
		name = filepath.Join(c.dir, name)
	}
	fi, err := os.Stat(name)
	if err != nil {
		c.errorf(path, "create the file with the key, readable by cgwd only (chmod 600)", "cannot read the key file: %v", stripPathErr(err))
		return nil, name, false
	}
	if !fi.Mode().IsRegular() {
		c.errorf(path, "point it at a regular file", "%s is not a regular file", name)
		return nil, name, false
	}
	if fi.Mode().Perm()&0o077 != 0 {
		c.warnf(path, "key file %s is accessible by group or others (mode %04o): run chmod 600 %s", name, fi.Mode().Perm(), name)
	}
	key, err = readSmall(name, maxPSKFile)
	if err != nil {
		c.errorf(path, "make the file readable by cgwd", "cannot read the key file: %v", stripPathErr(err))
		return nil, name, false
	}
	if len(key) > maxPSKFile {
		c.errorf(path, "point it at a file holding only the key", "%s is larger than any pre-shared key (%d bytes)", name, maxPSKFile)
		return nil, name, false
	}
	if len(key) > 0 && key[len(key)-1] == '\n' {
		key = key[:len(key)-1]
	}
	return key, name, true
}

// pskProblem describes what is wrong with key, or returns "" if AWS accepts
// it. The description never includes the key or any part of it.
func pskProblem(key []byte) (msg, fix string) {
	switch {
	case len(key) == 0:
		return "the pre-shared key is empty", pskFix
	case len(key) < 8 || len(key) > 64:
		return fmt.Sprintf("the pre-shared key has %d characters; AWS requires 8-64", len(key)), pskFix
	case key[len(key)-1] == '\r':
		return "the pre-shared key ends with a carriage return", "save the file with Unix line endings (dos2unix)"
	case !pskRE.Match(key):
		return "the pre-shared key contains characters AWS does not allow (spaces or characters other than 0-9 A-Z a-z . _)", pskFix
	case key[0] == '0':
		return "the pre-shared key starts with 0, which AWS does not allow", pskFix
	}
	return "", ""
}

// CheckPSK applies AWS's pre-shared key rules (8-64 characters of
// [0-9A-Za-z._], not starting with 0). The error never contains the key.
func CheckPSK(key []byte) error {
	if msg, fix := pskProblem(key); msg != "" {
		return fmt.Errorf("config: %s; %s", msg, fix)
	}
	return nil
}

// CheckInsideCIDR applies AWS's rules for a tunnel inside CIDR: an IPv4 /30
// in 169.254.0.0/16, not one of the reserved /30s, host bits clear.
func CheckInsideCIDR(p netip.Prefix) error {
	if msg := insideProblem(p); msg != "" {
		return fmt.Errorf("config: %s; %s", msg, insideFix)
	}
	return nil
}

const insideFix = "use the tunnel's inside /30 from the AWS configuration: a /30 in 169.254.0.0/16 outside the reserved 169.254.0.0/30-169.254.5.0/30 and 169.254.169.252/30"

func insideProblem(p netip.Prefix) string {
	switch {
	case !p.IsValid():
		return "invalid prefix"
	case p.Masked() != p:
		return fmt.Sprintf("%v has bits set after the prefix length (write %v)", p, p.Masked())
	case !p.Addr().Is4() || p.Bits() != 30:
		return fmt.Sprintf("%v is not an IPv4 /30", p)
	case !linkLocal4.Contains(p.Addr()):
		return fmt.Sprintf("%v is not inside 169.254.0.0/16", p)
	}
	for _, r := range reservedInside {
		if r == p {
			return fmt.Sprintf("%v is reserved by AWS", p)
		}
	}
	return ""
}

// maxPSKFile bounds what is read from a psk_file (a key is at most 64
// characters; the rest is room for a newline).
const maxPSKFile = 1024

// readSmall reads at most limit+1 bytes of a file, so that a wrong path
// (a log, a device that passed the regular-file check) cannot make Load
// read without bound.
func readSmall(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit+1))
}

func stripPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return fmt.Errorf("%s: %w", pe.Path, pe.Err)
	}
	return err
}

var (
	linkLocal4 = netip.MustParsePrefix("169.254.0.0/16")
	ula6       = netip.MustParsePrefix("fd00::/8")
	// AWS rejects these inside CIDRs (aws-vpn-facts 2.8).
	reservedInside = []netip.Prefix{
		netip.MustParsePrefix("169.254.0.0/30"),
		netip.MustParsePrefix("169.254.1.0/30"),
		netip.MustParsePrefix("169.254.2.0/30"),
		netip.MustParsePrefix("169.254.3.0/30"),
		netip.MustParsePrefix("169.254.4.0/30"),
		netip.MustParsePrefix("169.254.5.0/30"),
		netip.MustParsePrefix("169.254.169.252/30"),
	}
)

func (c *checker) insideCIDR(path, s string) netip.Prefix {
	p, ok := c.prefix(path, s, insideFix)
	if !ok {
		return netip.Prefix{}
	}
	if msg := insideProblem(p); msg != "" {
		c.errorf(path, insideFix, "%s", msg)
		return netip.Prefix{}
	}
	if first, dup := c.insides[p]; dup {
		c.errorf(path, "give every tunnel its own inside CIDR", "inside CIDR %v is already used by %s", p, first)
		return netip.Prefix{}
	}
	c.insides[p] = path
	return p
}

func (c *checker) insideCIDR6(path, s string) netip.Prefix {
	const fix = "use the tunnel's inside IPv6 /126 from the AWS configuration (within fd00::/8), or remove the key"
	p, ok := c.prefix(path, s, fix)
	if !ok {
		return netip.Prefix{}
	}
	switch {
	case !p.Addr().Is6() || p.Bits() != 126:
		c.errorf(path, fix, "%v is not an IPv6 /126", p)
	case !ula6.Contains(p.Addr()):
		c.errorf(path, fix, "%v is not inside fd00::/8", p)
	default:
		if first, dup := c.insides[p]; dup {
			c.errorf(path, "give every tunnel its own inside CIDR", "inside CIDR %v is already used by %s", p, first)
			return netip.Prefix{}
		}
		c.insides[p] = path
		return p
	}
	return netip.Prefix{}
}

func (c *checker) proposals(path string, r *[]string, def []string, ike bool) []ipsec.Proposal {
	list := def
	if r != nil {
		list = *r
		if len(list) == 0 {
			c.errorf(path, "list at least one proposal, or remove the key for the defaults", "empty proposal list")
			return nil
		}
	}
	aws := ipsec.AWSProposals(ike)
	var out []ipsec.Proposal
	anyUsable := false
	for i, s := range list {
		p := indexPath(path, i)
		prop, err := ipsec.ParseProposal(s, ike)
		if err != nil {
			c.errorf(p, "fix the proposal; see the keywords listed", "%s", strings.TrimPrefix(err.Error(), "ipsec: "))
			continue
		}
		out = append(out, prop)
		if r == nil {
			continue // the defaults are known good
		}
		check := prop
		if !ike && len(prop.DHGroups) == 0 {
			c.warnf(p, "ESP proposal %q has no DH group (no PFS): AWS's CHILD SA rekeys carry one and will fail with NO_PROPOSAL_CHOSEN; add e.g. modp2048", s)
			check.DHGroups = []ipsec.DHGroup{ipsec.DHMODP2048}
		}
		usable := false
		for _, a := range aws {
			if ipsec.Overlaps(check, a) {
				usable = true
			}
		}
		if !usable {
			c.warnf(p, "proposal %q has no algorithm combination AWS accepts (AWS: AES-CBC/GCM 128/256, SHA1/SHA2, DH 2, 14-24%s, no ESN); AWS will never choose it", s, map[bool]string{true: "", false: ", 5"}[ike])
		}
		anyUsable = anyUsable || usable
	}
	if r != nil && len(out) == len(list) && !anyUsable {
		c.warnf(path, "no proposal of this list can meet an AWS tunnel: the tunnel will never come up; remove the key to offer every algorithm AWS accepts, or list the ones the AWS tunnel options allow")
	}
	return out
}

// Lifetime bounds. AWS accepts phase 1 900s-28800s, phase 2 900s-3600s and
// a rekey margin of 60s up to half of phase 2 (aws-vpn-facts 2.2). cgw
// enforces the upper bounds but only warns below AWS's minimums, down to
// minLifetime and minRekeyMargin: rekey soak tests against a simulated AWS
// side need lifetimes of seconds, and such values are otherwise harmless
// (AWS rekeys on its own schedule whatever cgw's lifetimes are).
const (
	minLifetime       = 10 * time.Second
	minRekeyMargin    = time.Second
	awsMinIKELifetime = 900 * time.Second
	awsMinChildLife   = 900 * time.Second
	awsMinRekeyMargin = 60 * time.Second
)

// lifetimes applies AWS's rules (see the bounds above): child_lifetime
// shorter than ike_lifetime, fuzz 0..100 percent, and each lifetime longer
// than margin*(1+fuzz/100) so the earliest rekey moment is in the future
// (the IKE engine refuses anything else).
func (c *checker) lifetimes(path string, t *Tunnel, r *rawTunnel) {
	t.IKELifetime = c.durationRange(path+".ike_lifetime", r.IKELifetime, DefaultIKELifetime, minLifetime, 28800*time.Second,
		"use 900s-28800s (15m-8h) and match the AWS Phase 1 lifetime (default 8h)")
	if r.IKELifetime != nil && t.IKELifetime >= minLifetime && t.IKELifetime < awsMinIKELifetime {
		c.warnf(path+".ike_lifetime", "%v is below AWS's minimum Phase 1 lifetime (900s): AWS cannot be set to match, so only tests against a simulated AWS side should use it", t.IKELifetime)
	}
	t.ChildLifetime = c.durationRange(path+".child_lifetime", r.ChildLifetime, DefaultChildLifetime, minLifetime, 3600*time.Second,
		"use 900s-3600s (15m-1h) and match the AWS Phase 2 lifetime (default 1h)")
	if r.ChildLifetime != nil && t.ChildLifetime >= minLifetime && t.ChildLifetime < awsMinChildLife {
		c.warnf(path+".child_lifetime", "%v is below AWS's minimum Phase 2 lifetime (900s): AWS cannot be set to match, so only tests against a simulated AWS side should use it", t.ChildLifetime)
	}
	if t.IKELifetime != 0 && t.ChildLifetime != 0 && t.ChildLifetime >= t.IKELifetime {
		at := path + ".child_lifetime"
		if r.ChildLifetime == nil {
			at = path + ".ike_lifetime" // point at the key the operator wrote
		}
		c.errorf(at, "make child_lifetime shorter than ike_lifetime, as AWS requires",
			"child_lifetime %v is not shorter than ike_lifetime %v", t.ChildLifetime, t.IKELifetime)
	}
	maxMargin := t.ChildLifetime / 2
	t.RekeyMargin = c.durationRange(path+".rekey_margin", r.RekeyMargin, DefaultRekeyMargin, minRekeyMargin, maxMargin,
		fmt.Sprintf("use 60s up to half of child_lifetime (%v); AWS's default is 270s", maxMargin))
	if r.RekeyMargin != nil && t.RekeyMargin >= minRekeyMargin && t.RekeyMargin < awsMinRekeyMargin {
		c.warnf(path+".rekey_margin", "%v is below AWS's minimum rekey margin (60s): AWS cannot be set to match, so only tests against a simulated AWS side should use it", t.RekeyMargin)
	}
	t.RekeyFuzz = int(c.intRange(path+".rekey_fuzz", r.RekeyFuzz, DefaultRekeyFuzz, 0, 100, "use a percentage of rekey_margin, 0-100 (default 100)"))
	// The earliest rekey is lifetime - margin - margin*fuzz/100.
	window := t.RekeyMargin + t.RekeyMargin*time.Duration(t.RekeyFuzz)/100
	if t.ChildLifetime != 0 && t.ChildLifetime <= window {
		at := path + ".rekey_margin"
		if r.RekeyMargin == nil {
			at = path + ".child_lifetime"
		}
		c.errorf(at, "lower rekey_margin or rekey_fuzz, or raise child_lifetime",
			"child_lifetime %v does not exceed rekey_margin %v plus %d%% fuzz (%v): the rekey would be due before the SA exists", t.ChildLifetime, t.RekeyMargin, t.RekeyFuzz, window)
	}
}

func (c *checker) selectors(path string, t *Tunnel, r *rawTunnel) {
	def := []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}
	if t.InsideIPv6CIDR.IsValid() {
		def = []netip.Prefix{netip.MustParsePrefix("::/0")}
	}
	const fix = "list prefixes, or remove the key for AWS's default 0.0.0.0/0 (::/0 for IPv6 connections)"
	t.TrafficSelectors.Local, t.TrafficSelectors.Remote = def, def
	if r.TrafficSelectors == nil {
		return
	}
	p := path + ".traffic_selectors"
	for _, side := range []struct {
		name string
		raw  *[]string
		out  *[]netip.Prefix
	}{{"local", r.TrafficSelectors.Local, &t.TrafficSelectors.Local}, {"remote", r.TrafficSelectors.Remote, &t.TrafficSelectors.Remote}} {
		if side.raw == nil {
			continue
		}
		if len(*side.raw) == 0 {
			c.errorf(p+"."+side.name, fix, "empty selector list")
			continue
		}
		*side.out = c.prefixList(p+"."+side.name, side.raw, def, fix)
	}
	all := append(append([]netip.Prefix(nil), t.TrafficSelectors.Local...), t.TrafficSelectors.Remote...)
	for _, q := range all[1:] {
		if q.Addr().Is4() != all[0].Addr().Is4() {
			c.errorf(p, "an AWS connection carries IPv4 or IPv6 inside traffic, not both: use one family in all selectors", "mixed IPv4 and IPv6 selectors")
			break
		}
	}
}

// Scalar helpers. Each reports its own error and returns the zero value (or
// the default) on failure so validation can go on.

func (c *checker) enum(path string, r *string, def string, allowed ...string) string {
	if r == nil {
		return def
	}
	v := *r
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	if v == "warning" && path == "log.level" {
		return "warn"
	}
	c.errorf(path, "use one of: "+strings.Join(allowed, ", "), "invalid value %q", v)
	return def
}

func (c *checker) intRange(path string, r *int64, def, lo, hi int64, fix string) int64 {
	if r == nil {
		return def
	}
	if *r < lo || *r > hi {
		c.errorf(path, fix, "%d is out of range", *r)
		return def
	}
	return *r
}

// duration parses "30s", "1h30m" or a bare number of seconds ("28800").
func (c *checker) duration(path string, r *string, def time.Duration) time.Duration {
	if r == nil {
		return def
	}
	s := strings.TrimSpace(*r)
	var d time.Duration
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		d = time.Duration(n) * time.Second
	} else if d, err = time.ParseDuration(s); err != nil {
		c.errorf(path, `write a duration such as "30s", "15m" or "8h", or a number of seconds`, "invalid duration %q", s)
		return def
	}
	if d < 0 {
		c.errorf(path, "use a positive duration", "negative duration %v", d)
		return def
	}
	return d
}

func (c *checker) durationRange(path string, r *string, def, lo, hi time.Duration, fix string) time.Duration {
	if r == nil {
		return def
	}
	d := c.duration(path, r, def)
	if d < lo || d > hi {
		c.errorf(path, fix, "%v is out of range", d)
		return def
	}
	return d
}

func (c *checker) addr(path, s, fix string) netip.Addr {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil || a.Zone() != "" {
		c.errorf(path, fix, "invalid IP address %q", s)
		return netip.Addr{}
	}
	return a.Unmap()
}

func (c *checker) optAddr(path string, r *string, fix string) netip.Addr {
	if r == nil || *r == "" {
		return netip.Addr{}
	}
	return c.addr(path, *r, fix)
}

func (c *checker) prefix(path, s, fix string) (netip.Prefix, bool) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		c.errorf(path, fix, "invalid prefix %q (want address/length, e.g. 10.1.0.0/16)", s)
		return netip.Prefix{}, false
	}
	if p.Masked() != p {
		c.errorf(path, fmt.Sprintf("write %v", p.Masked()), "%v has bits set after the prefix length", p)
		return netip.Prefix{}, false
	}
	return p, true
}

func (c *checker) prefixList(path string, r *[]string, def []netip.Prefix, fix string) []netip.Prefix {
	if r == nil {
		return def
	}
	var out []netip.Prefix
	seen := map[netip.Prefix]bool{}
	for i, s := range *r {
		p, ok := c.prefix(indexPath(path, i), s, fix)
		if !ok {
			continue
		}
		if seen[p] {
			c.errorf(indexPath(path, i), "remove the duplicate", "%v is listed twice", p)
			continue
		}
		seen[p] = true
		out = append(out, p)
	}
	return out
}
