package config

import "net/netip"

// AWS's address-family rules for a connection (aws-vpn-facts §2.8, §2.9;
// docs/ipv6.md):
//   - inside: a connection carries IPv4 or IPv6 inside traffic, never both
//     (TunnelInsideIpVersion is fixed per connection), so both tunnels have
//     the same inner family; an IPv6-inside tunnel has its /126
//     (inside_ipv6_cidr) and IPv6 selectors;
//   - outside: both tunnels of a connection have outside addresses of one
//     family (OutsideIpAddressType PublicIpv4/PrivateIpv4 or Ipv6).
//
// Outer and inner families mix freely: IPv6 inside IPv4 and the reverse.

// dualStackFix explains the layout AWS requires for dual-stack traffic.
const dualStackFix = "an AWS VPN connection carries IPv4 or IPv6 inside traffic, never both: for dual stack create two VPN connections (TunnelInsideIpVersion ipv4 and ipv6) and give each its own connections[] entry, the IPv6 one with inside_ipv6_cidr (the /126 from AWS) on both tunnels"

// tunnelInner6 reports whether the tunnel carries IPv6 inside traffic.
func tunnelInner6(t *Tunnel) bool {
	return t.InsideIPv6CIDR.IsValid() || (len(t.TrafficSelectors.Local) > 0 && t.TrafficSelectors.Local[0].Addr().Is6())
}

// connectionFamilies enforces the rules above on conn's tunnels.
func (c *checker) connectionFamilies(path string, conn *Connection) {
	family := map[bool]string{false: "IPv4", true: "IPv6"}
	for i := range conn.Tunnels {
		t := &conn.Tunnels[i]
		tp := indexPath(path+".tunnels", i)
		sel6 := len(t.TrafficSelectors.Local) > 0 && t.TrafficSelectors.Local[0].Addr().Is6()
		switch {
		case t.InsideIPv6CIDR.IsValid() && len(t.TrafficSelectors.Local) > 0 && !sel6:
			c.errorf(tp+".traffic_selectors", dualStackFix,
				"inside_ipv6_cidr makes this an IPv6-inside tunnel, but its traffic selectors are IPv4 (%v)", t.TrafficSelectors.Local[0])
		case sel6 && !t.InsideIPv6CIDR.IsValid() && conn.BGP != nil:
			c.errorf(tp+".traffic_selectors", "add inside_ipv6_cidr: the tunnel's inside /126 from the AWS configuration (TunnelInsideIpv6Cidr), over which BGP runs",
				"IPv6 traffic selectors on a BGP tunnel without inside_ipv6_cidr")
		}
		if i == 0 {
			continue
		}
		first := &conn.Tunnels[0]
		if a, b := tunnelInner6(first), tunnelInner6(t); a != b {
			at := tp + ".inside_ipv6_cidr"
			if !t.InsideIPv6CIDR.IsValid() {
				at = tp + ".inside_cidr"
			}
			c.errorf(at, dualStackFix, "this tunnel carries %s inside traffic but %s carries %s", family[b], indexPath(path+".tunnels", 0), family[a])
		}
		if first.PeerAddress.IsValid() && t.PeerAddress.IsValid() && is6(first.PeerAddress) != is6(t.PeerAddress) {
			c.errorf(tp+".peer_address", "AWS gives both tunnels of a connection outside addresses of one type (OutsideIpAddressType Ipv6, or PublicIpv4/PrivateIpv4); copy both from the same AWS configuration",
				"%s outside address %v, but %s has %s address %v", family[is6(t.PeerAddress)], t.PeerAddress, indexPath(path+".tunnels", 0), family[is6(first.PeerAddress)], first.PeerAddress)
		}
	}
}

func is6(a netip.Addr) bool { return a.Is6() && !a.Is4In6() }
