package daemon

import (
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/cgwproject/cgw/bgp"
	"github.com/cgwproject/cgw/config"
)

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func TestImportPolicy(t *testing.T) {
	learned := prefixes("0.0.0.0/0", "::/0", "10.0.0.0/16", "10.99.1.0/24", "172.16.0.0/12", "10.1.0.0/16", "10.0.0.0/16")
	tests := []struct {
		name     string
		pol      importPolicy
		prev     []netip.Prefix
		accepted string
		filtered string
	}{
		{"default", importPolicy{}, nil,
			"[10.0.0.0/16 10.1.0.0/16 10.99.1.0/24 172.16.0.0/12]",
			"[{0.0.0.0/0 default_route} {::/0 default_route}]"},
		{"accept default", importPolicy{Import: config.Import{AcceptDefault: true}}, nil,
			"[0.0.0.0/0 10.0.0.0/16 10.1.0.0/16 10.99.1.0/24 172.16.0.0/12 ::/0]", "[]"},
		{"allow and deny", importPolicy{Import: config.Import{Allow: prefixes("10.0.0.0/8"), Deny: prefixes("10.99.0.0/16"), AcceptDefault: true}}, nil,
			"[10.0.0.0/16 10.1.0.0/16]",
			"[{0.0.0.0/0 not_allowed} {10.99.1.0/24 deny} {172.16.0.0/12 not_allowed} {::/0 not_allowed}]"},
		{"limit", importPolicy{Limit: 2}, nil,
			"[10.0.0.0/16 10.1.0.0/16]",
			"[{0.0.0.0/0 default_route} {10.99.1.0/24 prefix_limit} {172.16.0.0/12 prefix_limit} {::/0 default_route}]"},
		// Installed prefixes keep their place: a new one does not push them out.
		{"limit keeps installed", importPolicy{Limit: 2}, prefixes("172.16.0.0/12", "10.99.1.0/24"),
			"[10.99.1.0/24 172.16.0.0/12]",
			"[{0.0.0.0/0 default_route} {10.0.0.0/16 prefix_limit} {10.1.0.0/16 prefix_limit} {::/0 default_route}]"},
	}
	for _, tc := range tests {
		acc, filt := tc.pol.apply(learned, prefixSet(tc.prev))
		if got := fmt.Sprint(acc); got != tc.accepted {
			t.Errorf("%s: accepted %s, want %s", tc.name, got, tc.accepted)
		}
		if got := fmt.Sprint(filt); got != tc.filtered && !(len(filt) == 0 && tc.filtered == "[]") {
			t.Errorf("%s: filtered %s, want %s", tc.name, got, tc.filtered)
		}
	}
}

// desiredRoutes installs only what the import policy accepts, and never a
// default route unless accept_default says so.
func TestDesiredRoutesImport(t *testing.T) {
	conns := []routeConn{{
		Name:    "c",
		Tunnels: []routeTunnel{{Name: "t1", Dev: "cgw0", Up: true}, {Name: "t2", Dev: "cgw1", Up: true, Rank: 1}},
		Import:  importPolicy{Import: config.Import{Deny: prefixes("192.168.0.0/16")}, Limit: 3},
	}, {
		Name:     "s",
		Static:   true,
		Prefixes: prefixes("0.0.0.0/0"),
		Tunnels:  []routeTunnel{{Name: "s1", Dev: "cgw2", Up: true}},
	}}
	var learned []bgp.Path
	for _, p := range []string{"0.0.0.0/0", "10.0.0.0/16", "192.168.1.0/24", "10.1.0.0/16", "10.2.0.0/16", "10.3.0.0/16"} {
		learned = append(learned,
			bgp.Path{Prefix: netip.MustParsePrefix(p), Neighbor: "t1", Best: true},
			bgp.Path{Prefix: netip.MustParsePrefix(p), Neighbor: "t2"})
	}
	rs, imp := desiredRoutes(conns, learned, 100)
	var got []string
	for _, r := range rs {
		got = append(got, r.String())
	}
	// The static connection's configured default route is the operator's
	// choice; route safety (cgw's own table and rules) keeps it harmless.
	want := "[0.0.0.0/0 dev cgw2 metric 100 10.0.0.0/16 dev cgw0 metric 100 10.1.0.0/16 dev cgw0 metric 100 10.2.0.0/16 dev cgw0 metric 100]"
	if fmt.Sprint(got) != want {
		t.Errorf("routes:\n got %v\nwant %s", got, want)
	}
	r := imp["c"]
	if fmt.Sprint(r.Filtered) != "[{0.0.0.0/0 default_route} {10.3.0.0/16 prefix_limit} {192.168.1.0/24 deny}]" {
		t.Errorf("filtered: %v", r.Filtered)
	}
	if _, ok := imp["s"]; ok {
		t.Error("static connection has an import result")
	}
}

// Filtered prefixes are logged once, not on every route sync; a prefix that
// is filtered again after being accepted is logged again.
func TestImportLoggedOnce(t *testing.T) {
	var buf strings.Builder
	d := &Daemon{log: slog.New(slog.NewTextHandler(&buf, nil))}
	c := &connRT{cfg: &config.Connection{Name: "c", BGP: &config.BGP{PrefixLimit: 1}}}
	pol := importPolicy{Limit: 1}
	learned := prefixes("0.0.0.0/0", "10.0.0.0/16", "10.1.0.0/16")
	for range 3 {
		acc, filt := pol.apply(learned, prefixSet(c.imports.Accepted))
		d.applyImportLocked(c, importResult{acc, filt})
	}
	log := buf.String()
	if n := strings.Count(log, "AWS sent a default route"); n != 1 {
		t.Errorf("default route logged %d times:\n%s", n, log)
	}
	if n := strings.Count(log, "prefix_limit reached"); n != 1 || !strings.Contains(log, "10.1.0.0/16 (prefix_limit)") {
		t.Errorf("prefix limit logged %d times:\n%s", n, log)
	}
	// The default route goes away and comes back: logged again.
	acc, filt := pol.apply(learned[1:], prefixSet(c.imports.Accepted))
	d.applyImportLocked(c, importResult{acc, filt})
	acc, filt = pol.apply(learned, prefixSet(c.imports.Accepted))
	d.applyImportLocked(c, importResult{acc, filt})
	if n := strings.Count(buf.String(), "AWS sent a default route"); n != 2 {
		t.Errorf("default route logged %d times after it came back, want 2", n)
	}
}

// IPv6 routes carry the tunnel's peer as gateway, so that the kernel joins
// an active-active pair into one multipath route (it refuses IPv6 ECMP
// over device-only next hops); IPv4 routes stay device-only.
func TestDesiredRoutesIPv6Gateways(t *testing.T) {
	peer1, peer2 := netip.MustParseAddr("fd00:15::1"), netip.MustParseAddr("fd00:13::1")
	conns := []routeConn{{
		Name: "c6",
		ECMP: true,
		Tunnels: []routeTunnel{{Name: "t1", Dev: "cgw0", Up: true, Peer6: peer1},
			{Name: "t2", Dev: "cgw1", Up: true, Rank: 1, Peer6: peer2}},
	}, {
		Name:     "s6",
		Static:   true,
		ECMP:     true,
		Prefixes: prefixes("fd02::/48", "10.9.0.0/16"),
		Tunnels: []routeTunnel{{Name: "s1", Dev: "cgw2", Up: true, Peer6: netip.MustParseAddr("fd00:20::1")},
			{Name: "s2", Dev: "cgw3", Up: true, Rank: 1, Peer6: netip.MustParseAddr("fd00:21::1")}},
	}}
	vpc := netip.MustParsePrefix("fd01:100::/56")
	learned := []bgp.Path{
		{Prefix: vpc, Neighbor: "t1", NextHop: peer1, ASPath: []uint32{64512}, MED: 100, Best: true},
		{Prefix: vpc, Neighbor: "t2", NextHop: peer2, ASPath: []uint32{64512}, MED: 200},
	}
	rs, _ := desiredRoutes(conns, learned, 100)
	var got []string
	for _, r := range rs {
		got = append(got, r.String())
	}
	want := "[10.9.0.0/16 nexthop dev cgw2 nexthop dev cgw3 metric 100 fd01:100::/56 nexthop via fd00:15::1 dev cgw0 nexthop via fd00:13::1 dev cgw1 metric 100 fd02::/48 nexthop via fd00:20::1 dev cgw2 nexthop via fd00:21::1 dev cgw3 metric 100]"
	if fmt.Sprint(got) != want {
		t.Errorf("routes:\n got %v\nwant %s", got, want)
	}
}
