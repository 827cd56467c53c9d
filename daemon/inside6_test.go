package daemon

import (
	"net/netip"
	"testing"

	"github.com/cgwproject/cgw/config"
)

// TestInsideAddrsPerFamily: an IPv6-inside tunnel's traffic, BGP session
// and device use the /126 (AWS the first usable address, cgw the second);
// an IPv4 one its /30. The metrics label of an IPv6 peer drops the port.
func TestInsideAddrsPerFamily(t *testing.T) {
	v4 := &config.Tunnel{InsideCIDR: netip.MustParsePrefix("169.254.15.192/30")}
	if l, p := insideAddrs(v4); l.String() != "169.254.15.194" || p.String() != "169.254.15.193" || insideAddr6(v4).IsValid() {
		t.Errorf("IPv4 inside: %v -> %v, %v", l, p, insideAddr6(v4))
	}
	v6 := &config.Tunnel{InsideCIDR: v4.InsideCIDR, InsideIPv6CIDR: netip.MustParsePrefix("fd00:15::/126")}
	if l, p := insideAddrs(v6); l.String() != "fd00:15::2" || p.String() != "fd00:15::1" {
		t.Errorf("IPv6 inside: %v -> %v, want fd00:15::2 -> fd00:15::1", l, p)
	}
	if a := insideAddr6(v6); a.String() != "fd00:15::2/126" {
		t.Errorf("device address %v, want fd00:15::2/126", a)
	}
	if got := peerLabel("[2001:db8:100::10]:4500"); got != "2001:db8:100::10" {
		t.Errorf("peer label %q, want 2001:db8:100::10", got)
	}
}
