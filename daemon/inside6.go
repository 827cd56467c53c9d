package daemon

import (
	"net/netip"

	"github.com/cgwproject/cgw/config"
)

// IPv6-inside tunnels (AWS TunnelInsideIpVersion=ipv6).
//
// Such a tunnel has an inside /126 from fd00::/8 (AWS the first usable
// address, cgw the second) besides its IPv4 /30, which AWS keeps but which
// carries no traffic: the /30 gives the BGP router ID. The TUN device gets
// both addresses, and the BGP session runs over the IPv6 ones with the
// ipv6 unicast family (one session per tunnel, as AWS does); the traffic
// selectors default to ::/0 (config).

// insideAddrs returns the addresses the tunnel's traffic and BGP session
// use: the IPv6 inside pair for an IPv6-inside tunnel, else the IPv4 one.
func insideAddrs(tc *config.Tunnel) (local, peer netip.Addr) {
	if tc.InsideIPv6CIDR.IsValid() {
		return tc.InsideLocal6(), tc.InsidePeer6()
	}
	return tc.InsideLocal(), tc.InsidePeer()
}

// insideAddr6 is the prefix to add to the TUN device of an IPv6-inside
// tunnel (our address in the /126), or the zero Prefix.
func insideAddr6(tc *config.Tunnel) netip.Prefix {
	if !tc.InsideIPv6CIDR.IsValid() {
		return netip.Prefix{}
	}
	return netip.PrefixFrom(tc.InsideLocal6(), tc.InsideIPv6CIDR.Bits())
}

// insidePeer6 is AWS's IPv6 inside address of an IPv6-inside tunnel, or
// the zero Addr.
func insidePeer6(tc *config.Tunnel) netip.Addr {
	if _, peer := insideAddrs(tc); peer.Is6() {
		return peer
	}
	return netip.Addr{}
}
