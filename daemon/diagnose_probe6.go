package daemon

import (
	"net/netip"
	"syscall"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// probeFamily holds what the MTU probe needs per IP family: ICMP echo over
// IPv4 to AWS's /30 address, or ICMPv6 echo over IPv6 to its /126 address
// for IPv6-inside tunnels (whose /30 carries no traffic).
type probeFamily struct {
	network           string // net.ListenIP network
	level, opt, probe int    // setsockopt: send without fragmenting and ignoring the path MTU cache
	proto             int    // icmp.ParseMessage protocol number
	echo, reply       icmp.Type
	headers           int // IP + ICMP header octets in a probe
	min               int // smallest size tried: 576 (IPv4), 1280 (IPv6 minimum link MTU)
}

var (
	probeIPv4 = probeFamily{"ip4:icmp", syscall.IPPROTO_IP, syscall.IP_MTU_DISCOVER, syscall.IP_PMTUDISC_PROBE, 1, ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply, 20 + 8, 576}
	// The kernel fills in the ICMPv6 checksum of raw ICMPv6 sockets.
	probeIPv6 = probeFamily{"ip6:ipv6-icmp", syscall.IPPROTO_IPV6, syscall.IPV6_MTU_DISCOVER, ipv6PMTUDiscProbe, 58, ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply, 40 + 8, 1280}
)

// ipv6PMTUDiscProbe is IPV6_PMTUDISC_PROBE (linux/in6.h), which package
// syscall does not define.
const ipv6PMTUDiscProbe = 3

func probeFamilyOf(dst netip.Addr) probeFamily {
	if dst.Is6() && !dst.Is4In6() {
		return probeIPv6
	}
	return probeIPv4
}
