package sim

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// IPv6 outside addresses (Options.IPv6Outside), from the documentation
// prefix 2001:db8::/32 (RFC 3849). The IPv4 addresses stay configured as
// well (the internet is dual-stack); in IPv6 mode every tunnel endpoint,
// identity and generated config uses the IPv6 ones, as an AWS connection
// with OutsideIpAddressType=Ipv6 does for both of its tunnels.
var (
	CustPublicAddr6 = netip.MustParseAddr("2001:db8:113::10")
	InetCustAddr6   = netip.MustParseAddr("2001:db8:113::1")
	InetAWSAddr6    = netip.MustParseAddr("2001:db8:100::1")
	// EndpointOutside6 holds the IPv6 outside addresses of tunnel 1 and 2.
	EndpointOutside6 = [2]netip.Addr{
		netip.MustParseAddr("2001:db8:100::10"),
		netip.MustParseAddr("2001:db8:100::20"),
	}
)

// ipv6Roles are the namespaces that take part in the IPv6 outside path.
var ipv6Roles = []Role{Cust, Inet, AWS1, AWS2}

// AWSOutside is AWS's outside address of endpoint i (1 or 2): the IPv6 one
// with Options.IPv6Outside, else Endpoints[i-1].Outside.
func (s *Sim) AWSOutside(i int) netip.Addr {
	if s.opts.IPv6Outside {
		return EndpointOutside6[i-1]
	}
	return Endpoints[i-1].Outside
}

// CustPublic is the customer gateway's public (registered) outside address:
// CustPublicAddr6 with Options.IPv6Outside, else CustPublicAddr.
func (s *Sim) CustPublic() netip.Addr {
	if s.opts.IPv6Outside {
		return CustPublicAddr6
	}
	return CustPublicAddr
}

func (o *Options) checkIPv6() error {
	if o.IPv6Outside && o.NAT {
		return errors.New("sim: IPv6Outside and NAT: AWS's IPv6 outside addresses need no NAT, and the simulator's NAT is IPv4 only")
	}
	return nil
}

// buildIPv6Outside enables IPv6 in the namespaces on the outside path and
// adds the 2001:db8: addresses and default routes next to the IPv4 ones,
// plus an ip6 nftables table whose block1/block2 chains BlockEndpointPorts
// fills in IPv6 mode. Addresses skip duplicate address detection so they
// are usable at once.
func (s *Sim) buildIPv6Outside() error {
	if err := s.enableIPv6(ipv6Roles); err != nil {
		return err
	}
	addrs := []struct {
		r    Role
		dev  string
		addr netip.Addr
	}{
		{Cust, "wan0", CustPublicAddr6},
		{Inet, "cust0", InetCustAddr6},
		{Inet, "br0", InetAWSAddr6},
		{AWS1, "wan0", EndpointOutside6[0]},
		{AWS2, "wan0", EndpointOutside6[1]},
	}
	for _, a := range addrs {
		if err := s.ip(a.r, "-6", "addr", "add", netip.PrefixFrom(a.addr, 64).String(), "dev", a.dev, "nodad"); err != nil {
			return err
		}
	}
	for _, rt := range []struct {
		r  Role
		gw netip.Addr
	}{{Cust, InetCustAddr6}, {AWS1, InetAWSAddr6}, {AWS2, InetAWSAddr6}} {
		if err := s.ip(rt.r, "-6", "route", "add", "default", "via", rt.gw.String()); err != nil {
			return err
		}
	}
	var b strings.Builder
	b.WriteString("table ip6 cgwsim6 {\n  chain block1 {}\n  chain block2 {}\n")
	b.WriteString("  chain sim_forward {\n    type filter hook forward priority filter; policy accept;\n    jump block1\n    jump block2\n  }\n}\n")
	if err := s.nft(b.String()); err != nil {
		return fmt.Errorf("sim: ip6 table: %w", err)
	}
	s.logf("IPv6 outside addresses up (customer %s, AWS %s, %s)", CustPublicAddr6, EndpointOutside6[0], EndpointOutside6[1])
	return nil
}

// blockRules6 is the ip6 counterpart of BlockEndpointPorts' rules.
func blockRules6(chain string, addr netip.Addr, set string) string {
	return fmt.Sprintf("add rule ip6 cgwsim6 %[1]s ip6 daddr %[2]s udp dport %[3]s drop\nadd rule ip6 cgwsim6 %[1]s ip6 saddr %[2]s udp sport %[3]s drop\n", chain, addr, set)
}
