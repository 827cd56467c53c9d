package sim

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// buildTopology creates the namespaces, links, addresses, static routes and
// the nftables table in inet (forward filter chains for fault injection and,
// with NAT, the source NAT).
func (s *Sim) buildTopology() error {
	for _, r := range Roles {
		if err := s.addNamespace(r); err != nil {
			return err
		}
	}
	custOut, inetCust := CustPublicAddr, InetCustAddr
	if s.opts.NAT {
		custOut, inetCust = CustNATAddr, InetNATAddr
	}
	type link struct {
		a      Role
		aName  string
		aAddr  string
		b      Role
		bName  string
		bAddr  string
		bridge bool // b side goes into br0 (no address)
	}
	t1a, t1v := s.Transit(1)
	t2a, t2v := s.Transit(2)
	links := []link{
		{LAN, "eth0", LANHostAddr.String() + "/24", Cust, "lan0", CustLANAddr.String() + "/24", false},
		{Cust, "wan0", custOut.String() + "/24", Inet, "cust0", inetCust.String() + "/24", false},
		{AWS1, "wan0", Endpoints[0].Outside.String() + "/24", Inet, "aws1", "", true},
		{AWS2, "wan0", Endpoints[1].Outside.String() + "/24", Inet, "aws2", "", true},
		{AWS1, "vpc0", t1a.String() + "/30", VPC, "aws1", t1v.String() + "/30", false},
		{AWS2, "vpc0", t2a.String() + "/30", VPC, "aws2", t2v.String() + "/30", false},
		{VPCHost, "eth0", VPCHostAddr.String() + "/16", VPC, "host0", VPCRouterAddr.String() + "/16", false},
	}
	if err := s.ip(Inet, "link", "add", "br0", "type", "bridge"); err != nil {
		return err
	}
	if err := s.ip(Inet, "addr", "add", InetAWSAddr.String()+"/24", "dev", "br0"); err != nil {
		return err
	}
	if err := s.ip(Inet, "link", "set", "br0", "up"); err != nil {
		return err
	}
	for _, l := range links {
		if out, err := run("ip", "link", "add", l.aName, "netns", s.NS(l.a), "type", "veth", "peer", "name", l.bName, "netns", s.NS(l.b)); err != nil {
			return fmt.Errorf("sim: veth %s:%s-%s:%s: %v: %s", l.a, l.aName, l.b, l.bName, err, out)
		}
		if err := s.ip(l.a, "addr", "add", l.aAddr, "dev", l.aName); err != nil {
			return err
		}
		if err := s.ip(l.a, "link", "set", l.aName, "up"); err != nil {
			return err
		}
		if l.bridge {
			if err := s.ip(l.b, "link", "set", l.bName, "master", "br0"); err != nil {
				return err
			}
		} else if err := s.ip(l.b, "addr", "add", l.bAddr, "dev", l.bName); err != nil {
			return err
		}
		if err := s.ip(l.b, "link", "set", l.bName, "up"); err != nil {
			return err
		}
	}
	routes := []struct {
		r    Role
		args []string
	}{
		{LAN, []string{"default", "via", CustLANAddr.String()}},
		{Cust, []string{"default", "via", inetCust.String()}},
		{AWS1, []string{"default", "via", InetAWSAddr.String()}},
		{AWS2, []string{"default", "via", InetAWSAddr.String()}},
		{AWS1, []string{s.opts.VPCPrefix.String(), "via", t1v.String()}},
		{AWS2, []string{s.opts.VPCPrefix.String(), "via", t2v.String()}},
		{VPCHost, []string{"default", "via", VPCRouterAddr.String()}},
	}
	for _, rt := range routes {
		if err := s.ip(rt.r, append([]string{"route", "add"}, rt.args...)...); err != nil {
			return err
		}
	}
	if err := s.nft(s.inetRuleset()); err != nil {
		return err
	}
	if s.opts.IPv6Outside {
		if err := s.buildIPv6Outside(); err != nil {
			return err
		}
	}
	if s.opts.IPv6Inside {
		if err := s.buildIPv6Inside(); err != nil {
			return err
		}
	}
	s.logf("topology up (nat=%v)", s.opts.NAT)
	return nil
}

// addNamespace creates role's namespace: a router (forwarding on, no
// reverse-path filter or redirects), IPv4 only, loopback up.
func (s *Sim) addNamespace(r Role) error {
	if out, err := run("ip", "netns", "add", s.NS(r)); err != nil {
		return fmt.Errorf("sim: %v: %s", err, out)
	}
	if _, err := s.Exec(r, "sysctl", "-q", "-w",
		"net.ipv4.ip_forward=1",
		"net.ipv4.conf.all.rp_filter=0",
		"net.ipv4.conf.default.rp_filter=0",
		"net.ipv4.conf.all.send_redirects=0",
		"net.ipv4.conf.default.send_redirects=0",
		"net.ipv6.conf.all.disable_ipv6=1",
		"net.ipv6.conf.default.disable_ipv6=1",
	); err != nil {
		return err
	}
	return s.ip(r, "link", "set", "lo", "up")
}

// inetRuleset is the nftables table of the inet namespace. Chains block1 and
// block2 hold the fault-injection drops for endpoint 1 and 2, chain flood the
// reply counter of IKEFlood and chain loss the random drops of SetUDPLoss.
func (s *Sim) inetRuleset() string {
	var b strings.Builder
	b.WriteString("table ip cgwsim {\n")
	b.WriteString("  chain block1 {}\n  chain block2 {}\n  chain flood {}\n  chain loss {}\n")
	b.WriteString("  chain sim_forward {\n    type filter hook forward priority filter; policy accept;\n    jump block1\n    jump block2\n    jump flood\n    jump loss\n  }\n")
	if s.opts.NAT {
		// New source ports too, so the daemon sees a NAT that rewrites
		// ports (the common case for consumer and carrier NATs).
		priv := netip.PrefixFrom(CustNATAddr, 24).Masked()
		fmt.Fprintf(&b, "  chain sim_postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n")
		fmt.Fprintf(&b, "    ip saddr %s oifname \"br0\" meta l4proto { tcp, udp } snat to %s:40000-49999\n", priv, CustPublicAddr)
		fmt.Fprintf(&b, "    ip saddr %s oifname \"br0\" snat to %s\n  }\n", priv, CustPublicAddr)
	}
	b.WriteString("}\n")
	return b.String()
}

func (s *Sim) nft(ruleset string) error {
	f := s.path("inet.nft")
	if err := os.WriteFile(f, []byte(ruleset), 0o600); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	_, err := s.Exec(Inet, "nft", "-f", f)
	return err
}

func (s *Sim) ip(r Role, args ...string) error {
	_, err := run(append([]string{"ip", "-n", s.NS(r)}, args...)...)
	return err
}
