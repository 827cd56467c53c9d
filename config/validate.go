package config

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"strconv"
	"time"
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
	c.lan(r.BGP, cfg)
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
	c.connAuth(path, &conn, r.Auth, r.Certificate)

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
	c.connectionFamilies(path, &conn)
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
	b.Password = c.password(path, r.Password, r.PasswordFile)
	return b
}

// password reads the optional TCP MD5 key of a BGP section at path, given
// inline (password) or in a file (password_file).
func (c *checker) password(path string, inline, file *string) Secret {
	switch {
	case inline != nil && file != nil:
		c.errorf(path+".password_file", "keep password or password_file, not both", "both password and password_file are set")
	case inline != nil:
		c.inline = append(c.inline, path+".password")
		return c.md5Password(path+".password", []byte(*inline))
	case file != nil:
		if key, _, ok := c.secretFile(path+".password_file", *file); ok {
			return c.md5Password(path+".password_file", key)
		}
	}
	return nil
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
