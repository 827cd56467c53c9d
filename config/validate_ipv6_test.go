package config

import (
	"strings"
	"testing"
)

// both6 gives both tunnels of base an inside /126 (an IPv6-inside
// connection) and advertises an IPv6 prefix.
func both6(yml string) string {
	yml = strings.Replace(yml, "10.1.0.0/16", "fd01:1::/64", 1)
	yml = strings.Replace(yml, "inside_cidr: 169.254.15.192/30", "inside_cidr: 169.254.15.192/30\n        inside_ipv6_cidr: fd00:1::/126", 1)
	return strings.Replace(yml, "inside_cidr: 169.254.13.236/30", "inside_cidr: 169.254.13.236/30\n        inside_ipv6_cidr: fd00:2::/126", 1)
}

// TestAddressFamilies checks AWS's per-connection family rules: one inner
// family for both tunnels (dual stack takes two connections), IPv6 inner
// tunnels with their /126 and IPv6 selectors, one outer family for both
// tunnels; and that outer and inner families mix freely.
func TestAddressFamilies(t *testing.T) {
	ok := []struct{ name, yml string }{
		{"IPv6 inside over IPv4", both6(base)},
		{"IPv6 inside over IPv6", strings.NewReplacer("198.51.100.10", "2001:db8:100::10", "198.51.100.20", "2001:db8:100::20").Replace(both6(base))},
		{"IPv4 inside over IPv6", strings.NewReplacer("198.51.100.10", "2001:db8:100::10", "198.51.100.20", "2001:db8:100::20").Replace(base)},
	}
	for _, tc := range ok {
		if _, _, err := Parse([]byte(tc.yml), "test.yaml"); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	bad := []struct {
		name, yml, path, msg, fix string
	}{
		{"inner families differ", t1("inside_ipv6_cidr: fd00::/126"), "connections[0].tunnels[1].inside_cidr",
			"carries IPv4 inside traffic but connections[0].tunnels[0] carries IPv6", "two VPN connections"},
		{"IPv4 selectors with a /126", strings.Replace(both6(base), "inside_ipv6_cidr: fd00:1::/126", "inside_ipv6_cidr: fd00:1::/126\n        traffic_selectors: {local: [10.1.0.0/16], remote: [10.0.0.0/16]}", 1),
			"connections[0].tunnels[0].traffic_selectors", "traffic selectors are IPv4", "never both"},
		{"IPv6 selectors without a /126", t1("traffic_selectors: {local: ['::/0'], remote: ['::/0']}"), "connections[0].tunnels[0].traffic_selectors",
			"without inside_ipv6_cidr", "add inside_ipv6_cidr"},
		{"outer families differ", strings.Replace(base, "198.51.100.20", "2001:db8:100::20", 1), "connections[0].tunnels[1].peer_address",
			"IPv6 outside address 2001:db8:100::20, but connections[0].tunnels[0] has IPv4", "OutsideIpAddressType"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Parse([]byte(tc.yml), "test.yaml")
			var found *FieldError
			for _, fe := range fieldErrors(t, err) {
				if fe.Path == tc.path && strings.Contains(fe.Error(), tc.msg) {
					found = fe
				}
			}
			if found == nil {
				t.Fatalf("no error at %s containing %q; got: %v", tc.path, tc.msg, err)
			}
			if !strings.Contains(found.Fix, tc.fix) || found.Line == 0 {
				t.Errorf("error %v: fix %q should mention %q, line %d", found, found.Fix, tc.fix, found.Line)
			}
		})
	}
}
