package daemon

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/cgwproject/cgw/bgp"
	"github.com/cgwproject/cgw/config"
	"github.com/cgwproject/cgw/control"
)

// bgp routes: the installed flag and the reason come from the same route
// selection and import policy that program the kernel.
func TestBGPRouteRows(t *testing.T) {
	pfx := netip.MustParsePrefix
	learned := []bgp.Path{
		{Prefix: pfx("0.0.0.0/0"), Neighbor: "t1", ASPath: []uint32{64512}, MED: 100, Best: true},
		{Prefix: pfx("10.0.0.0/16"), Neighbor: "t1", ASPath: []uint32{64512}, MED: 100, Best: true},
		{Prefix: pfx("10.0.0.0/16"), Neighbor: "t2", ASPath: []uint32{64512}, MED: 200},
		{Prefix: pfx("10.99.0.0/16"), Neighbor: "t1", ASPath: []uint32{64512}, MED: 100, Best: true},
		{Prefix: pfx("10.5.0.0/16"), Neighbor: "t3", ASPath: []uint32{64513}, MED: 100, Best: true},
	}
	tunnels := []routeTunnel{{Name: "t1", Dev: "cgw0", Up: true}, {Name: "t2", Dev: "cgw1", Up: true, Rank: 1}}
	down := []routeTunnel{{Name: "t3", Dev: "cgw2", Up: false}}
	rc := []routeConn{
		{Name: "vpn-a", Tunnels: tunnels, Import: importPolicy{Import: config.Import{Deny: []netip.Prefix{pfx("10.99.0.0/16")}}}},
		{Name: "vpn-b", Tunnels: down},
	}
	installed, imports := desiredRoutes(rc, learned, 100)
	conns := []bgpConnView{{Name: "vpn-a", Tunnels: tunnels, Filtered: map[netip.Prefix]string{}}, {Name: "vpn-b", Tunnels: down, Filtered: map[netip.Prefix]string{}}}
	for i, c := range []string{"vpn-a", "vpn-b"} {
		for _, f := range imports[c].Filtered {
			conns[i].Filtered[f.Prefix] = f.Reason
		}
	}
	show := func(rows []control.BGPRoute) string {
		var b strings.Builder
		for _, r := range rows {
			fmt.Fprintf(&b, "%s %s %s %v med=%d best=%v inst=%v %s\n", r.Connection, r.Tunnel, r.Prefix, r.ASPath, r.MED, r.Best, r.Installed, r.Reason)
		}
		return b.String()
	}

	got := show(bgpRouteRows(control.TableReceived, "", conns, learned, nil, installed))
	want := `vpn-a t1 0.0.0.0/0 [64512] med=100 best=true inst=false default_route
vpn-a t1 10.0.0.0/16 [64512] med=100 best=true inst=true 
vpn-a t1 10.99.0.0/16 [64512] med=100 best=true inst=false deny
vpn-a t2 10.0.0.0/16 [64512] med=200 best=false inst=false not_best
vpn-b t3 10.5.0.0/16 [64513] med=100 best=true inst=false tunnel_down
`
	if got != want {
		t.Errorf("received:\n%s\nwant:\n%s", got, want)
	}

	got = show(bgpRouteRows(control.TableReceived, "t2", conns, learned, nil, installed))
	if want := "vpn-a t2 10.0.0.0/16 [64512] med=200 best=false inst=false not_best\n"; got != want {
		t.Errorf("received t2:\n%s\nwant:\n%s", got, want)
	}

	// Before the route sync has run, an accepted path is pending, not
	// "not_best".
	got = show(bgpRouteRows(control.TableReceived, "t1", conns, learned, nil, nil))
	if !strings.Contains(got, "10.0.0.0/16 [64512] med=100 best=true inst=false pending") {
		t.Errorf("received before the route sync:\n%s", got)
	}

	got = show(bgpRouteRows(control.TableInstalled, "", conns, learned, nil, installed))
	if want := "vpn-a t1 10.0.0.0/16 [64512] med=100 best=true inst=true \n"; got != want {
		t.Errorf("installed:\n%s\nwant:\n%s", got, want)
	}

	adv := map[string][]bgp.Path{
		"t1": {{Prefix: pfx("192.168.0.0/16"), Neighbor: "t1", ASPath: []uint32{65000}, Best: true}},
		"t2": {{Prefix: pfx("192.168.0.0/16"), Neighbor: "t2", ASPath: []uint32{65000, 65000}, MED: 50, Best: true}},
	}
	got = show(bgpRouteRows(control.TableAdvertised, "", conns, nil, adv, installed))
	want = `vpn-a t1 192.168.0.0/16 [65000] med=0 best=false inst=false 
vpn-a t2 192.168.0.0/16 [65000 65000] med=50 best=false inst=false 
`
	if got != want {
		t.Errorf("advertised:\n%s\nwant:\n%s", got, want)
	}
}
