package main

import (
	"context"

	"github.com/cgwproject/cgw/test/sim"
)

// setupCgwdCgwd6 is cgwd-cgwd over IPv6 outside addresses (issue 16): the
// same inner IPv4 path, ESP in UDP over IPv6 between 2001:db8:113::10 and
// 2001:db8:100::10, so its row against cgwd-cgwd's shows the cost of the
// IPv6 outer header (20 more bytes per packet, tunnel MTU 1418 instead of
// 1438 with AES-GCM).
func setupCgwdCgwd6(ctx context.Context) (*setup, error) {
	return setupCgwdPair(sim.Options{AWS: sim.AWSNone, Tunnels: 1, Routing: sim.RoutingStatic, IPv6Outside: true})
}

// setupCgwdCgwd6Raw is cgwd-cgwd-ipv6 with encapsulation: auto on both
// sides: no NAT in the path, so ESP travels raw (IP protocol 50, 8 octets
// less per packet, tunnel MTU 1426) through the dataplane's raw sockets,
// without UDP GSO/GRO batching.
func setupCgwdCgwd6Raw(ctx context.Context) (*setup, error) {
	return setupCgwdPairEncap(sim.Options{AWS: sim.AWSNone, Tunnels: 1, Routing: sim.RoutingStatic, IPv6Outside: true}, true)
}
