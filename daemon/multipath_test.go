package daemon

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/cgwproject/cgw/bgp"
)

// Several active-active connections to one Transit Gateway: one
// multipath route over every tunnel with an equally good path, across
// connections; a longer AS path, another neighboring AS, an active-passive
// connection or a tunnel that is down stay out.
func TestDesiredRoutesMultipathAcrossConnections(t *testing.T) {
	conn := func(name string, ecmp bool, up ...bool) routeConn {
		c := routeConn{Name: name, ECMP: ecmp}
		for i, u := range up {
			n := name + "-t" + string(rune('1'+i))
			c.Tunnels = append(c.Tunnels, routeTunnel{Name: n, Dev: "dev-" + n, Up: u, Rank: i})
		}
		return c
	}
	conns := []routeConn{
		conn("a", true, true, true),
		conn("b", true, true, false), // b-t2 down
		conn("c", true, true, true),  // c-t2 sends a longer path
		conn("d", true, true, true),  // d's paths come from another AS
		conn("e", false, true, true), // active-passive
	}
	vpc := netip.MustParsePrefix("10.50.0.0/16")
	path := func(nb string, best bool, as ...uint32) bgp.Path {
		return bgp.Path{Prefix: vpc, Neighbor: nb, Best: best, ASPath: as}
	}
	learned := []bgp.Path{
		path("a-t1", true, 64512), path("a-t2", false, 64512),
		path("b-t1", false, 64512), path("b-t2", false, 64512),
		path("c-t1", false, 64512), path("c-t2", false, 64512, 64512),
		path("d-t1", false, 64513), path("d-t2", false, 64513),
		path("e-t1", false, 64512), path("e-t2", false, 64512),
	}
	rs, _ := desiredRoutes(conns, learned, 100)
	if len(rs) != 1 {
		t.Fatalf("routes = %v, want one", rs)
	}
	var devs []string
	for _, nh := range rs[0].NextHops {
		devs = append(devs, nh.Dev)
	}
	if got, want := strings.Join(devs, ","), "dev-a-t1,dev-a-t2,dev-b-t1,dev-c-t1"; got != want {
		t.Errorf("multipath next hops %s, want %s", got, want)
	}
	// Active-passive everywhere: only the best path.
	for i := range conns {
		conns[i].ECMP = false
	}
	rs, _ = desiredRoutes(conns, learned, 100)
	if len(rs) != 1 || len(rs[0].NextHops) != 1 || rs[0].NextHops[0].Dev != "dev-a-t1" {
		t.Errorf("active-passive: %v, want one next hop via dev-a-t1", rs)
	}
}

func TestSysctlName(t *testing.T) {
	if got := sysctlName("/proc/sys/net/ipv4/fib_multipath_hash_policy"); got != "net.ipv4.fib_multipath_hash_policy" {
		t.Errorf("sysctlName = %q", got)
	}
}
