package sim

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// IPv6 inside (Options.IPv6Inside): AWS's TunnelInsideIpVersion=ipv6. Each
// tunnel has a /126 from fd00::/8 (AWS the first usable address, the
// customer the second) next to its IPv4 /30, which carries no traffic;
// selectors are ::/0 and BGP runs over the /126 with the ipv6 unicast
// family only. The LAN and VPC get IPv6 prefixes from fd01::/16 and the
// endpoints reach the vpc router (iBGP, ipv6) over IPv6 transit links.
var (
	LANPrefix6     = netip.MustParsePrefix("fd01:1::/64")
	LANHostAddr6   = netip.MustParseAddr("fd01:1::10")
	CustLANAddr6   = netip.MustParseAddr("fd01:1::1")
	VPCPrefix6     = netip.MustParsePrefix("fd01:100::/56")
	VPCHostAddr6   = netip.MustParseAddr("fd01:100::10")
	VPCRouterAddr6 = netip.MustParseAddr("fd01:100::1")
	// EndpointInside6 holds the inside /126 of tunnel 1 and 2.
	EndpointInside6 = [2]netip.Prefix{
		netip.MustParsePrefix("fd00:15::/126"),
		netip.MustParsePrefix("fd00:13::/126"),
	}
)

// AWSInside6 and CustInside6 are the first and second usable addresses of
// endpoint i's (1 or 2) inside /126.
func AWSInside6(i int) netip.Addr { return EndpointInside6[i-1].Addr().Next() }

// CustInside6 is the customer's inside address of endpoint i (see AWSInside6).
func CustInside6(i int) netip.Addr { return AWSInside6(i).Next() }

// transit6 returns the IPv6 addresses of endpoint i's link to the vpc router.
func transit6(i int) (aws, vpc netip.Addr) {
	p := netip.MustParseAddr(fmt.Sprintf("fd01:ff:%d::1", i))
	return p, p.Next()
}

func (o *Options) checkIPv6Inside() error {
	if !o.IPv6Inside {
		return nil
	}
	if o.Customer == CustomerStrongSwan || o.Routing == RoutingStatic {
		return errors.New("sim: IPv6Inside is simulated for a BGP connection with cgwd (or nothing) as the customer")
	}
	return nil
}

// enableIPv6 turns IPv6 on (and forwarding, without duplicate address
// detection) in the namespaces of roles, also on their existing links.
func (s *Sim) enableIPv6(roles []Role) error {
	for _, r := range roles {
		if _, err := s.Exec(r, "sysctl", "-q", "-w",
			"net.ipv6.conf.all.disable_ipv6=0",
			"net.ipv6.conf.default.disable_ipv6=0",
			"net.ipv6.conf.all.forwarding=1",
			"net.ipv6.conf.all.accept_dad=0",
			"net.ipv6.conf.default.accept_dad=0",
		); err != nil {
			return err
		}
		out, err := s.Exec(r, "ls", "/sys/class/net")
		if err != nil {
			return err
		}
		for _, dev := range strings.Fields(out) {
			if _, err := s.Exec(r, "sysctl", "-q", "-w", "net.ipv6.conf."+dev+".disable_ipv6=0"); err != nil {
				return err
			}
		}
	}
	return nil
}

// buildIPv6Inside adds the IPv6 LAN, VPC and transit addresses and routes.
func (s *Sim) buildIPv6Inside() error {
	if err := s.enableIPv6(Roles); err != nil {
		return err
	}
	t1a, t1v := transit6(1)
	t2a, t2v := transit6(2)
	for _, a := range []struct {
		r    Role
		dev  string
		addr netip.Prefix
	}{
		{LAN, "eth0", netip.PrefixFrom(LANHostAddr6, 64)},
		{Cust, "lan0", netip.PrefixFrom(CustLANAddr6, 64)},
		{AWS1, "vpc0", netip.PrefixFrom(t1a, 64)},
		{VPC, "aws1", netip.PrefixFrom(t1v, 64)},
		{AWS2, "vpc0", netip.PrefixFrom(t2a, 64)},
		{VPC, "aws2", netip.PrefixFrom(t2v, 64)},
		{VPCHost, "eth0", netip.PrefixFrom(VPCHostAddr6, 64)},
		{VPC, "host0", netip.PrefixFrom(VPCRouterAddr6, 64)},
	} {
		if err := s.ip(a.r, "-6", "addr", "add", a.addr.String(), "dev", a.dev, "nodad"); err != nil {
			return err
		}
	}
	for _, rt := range []struct {
		r    Role
		args []string
	}{
		{LAN, []string{"default", "via", CustLANAddr6.String()}},
		{VPCHost, []string{"default", "via", VPCRouterAddr6.String()}},
		{AWS1, []string{VPCPrefix6.String(), "via", t1v.String()}},
		{AWS2, []string{VPCPrefix6.String(), "via", t2v.String()}},
	} {
		if err := s.ip(rt.r, append([]string{"-6", "route", "add"}, rt.args...)...); err != nil {
			return err
		}
	}
	s.logf("IPv6 inside: LAN %s, VPC %s, tunnels %s, %s", LANPrefix6, VPCPrefix6, EndpointInside6[0], EndpointInside6[1])
	return nil
}

// ipsec0IPv6Inside puts AWS's /126 address on endpoint i's (0-based)
// ipsec0 and routes the customer's IPv6 LAN into it.
func (s *Sim) ipsec0IPv6Inside(i int) error {
	if err := s.ip(Endpoints[i].Role, "-6", "addr", "replace", netip.PrefixFrom(AWSInside6(i+1), 126).String(), "dev", "ipsec0", "nodad"); err != nil {
		return err
	}
	return s.ip(Endpoints[i].Role, "-6", "route", "replace", LANPrefix6.String(), "dev", "ipsec0")
}

// awsBirdConf6 is awsBirdConf for an IPv6-inside connection: one eBGP
// session over the /126 with the ipv6 channel only, AWS's next-hop and
// AS-path refusals, and iBGP (ipv6) to the vpc router.
func (s *Sim) awsBirdConf6(i int) string {
	e, o := Endpoints[i], s.opts.Endpoint[i]
	asn := s.opts.AWSASN
	var b strings.Builder
	fmt.Fprintf(&b, "log stderr all;\nrouter id %s;\n", e.AWSInside)
	b.WriteString("protocol device {\n  scan time 10;\n}\n")
	fmt.Fprintf(&b, "protocol static vpc_cidrs {\n  ipv6;\n  route %s unreachable;\n}\n", VPCPrefix6)
	fmt.Fprintf(&b, "filter from_cgw {\n  if net.type != NET_IP6 then reject;\n  if bgp_path ~ [= * %d * =] then reject;\n  if bgp_next_hop != %s then reject;\n  accept;\n}\n", asn, CustInside6(i+1))
	fmt.Fprintf(&b, "filter to_cgw {\n  if proto = \"vpc_cidrs\" then {\n    bgp_med = %d;\n    accept;\n  }\n  reject;\n}\n", o.MED)
	fmt.Fprintf(&b, "protocol bgp cgw {\n  local %s as %d;\n  neighbor %s as %d;\n%s", AWSInside6(i+1), asn, CustInside6(i+1), o.CustomerASN, birdTimers)
	fmt.Fprintf(&b, "  ipv6 {\n    import limit %d action disable;\n    import filter from_cgw;\n    export filter to_cgw;\n  };\n}\n", o.ImportLimit)
	b.WriteString("protocol kernel {\n  ipv6 {\n    import none;\n    export where proto = \"cgw\";\n  };\n}\n")
	ta, tv := transit6(i + 1)
	fmt.Fprintf(&b, "protocol bgp vpc {\n  router id 10.255.0.%d;\n  local %s as %d;\n  neighbor %s as %d;\n  direct;\n%s", i+1, ta, asn, tv, asn, birdTimers)
	b.WriteString("  ipv6 {\n    import none;\n    export where proto = \"cgw\";\n    next hop self;\n  };\n}\n")
	return b.String()
}

// vpcBirdConf6: iBGP (ipv6) from both endpoints, best routes into the kernel.
func (s *Sim) vpcBirdConf6() string {
	var b strings.Builder
	fmt.Fprintf(&b, "log stderr all;\nrouter id %s;\n", VPCRouterAddr)
	b.WriteString("protocol device {\n  scan time 10;\n}\n")
	b.WriteString("protocol kernel {\n  ipv6 {\n    import none;\n    export all;\n  };\n}\n")
	for i, e := range Endpoints {
		if s.opts.Endpoint[i].Disabled {
			continue
		}
		ta, tv := transit6(i + 1)
		fmt.Fprintf(&b, "protocol bgp %s {\n  local %s as %d;\n  neighbor %s as %d;\n  direct;\n%s", e.Role, tv, s.opts.AWSASN, ta, s.opts.AWSASN, birdTimers)
		b.WriteString("  ipv6 {\n    import all;\n    export none;\n  };\n}\n")
	}
	return b.String()
}
