package route

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/cgwproject/cgw/internal/netnstest"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The kernel test runs in its own network namespace: the parent creates it
// and re-executes this test binary inside it with `ip netns exec`, so every
// thread of the child (not just a locked one) is in the namespace.

const testNetns = "cgwbgp-r"

func TestKernel(t *testing.T) {
	if netnstest.InChild("CGWBGP_ROUTE_CHILD") {
		kernelChild(t)
		return
	}
	netnstest.Run(t, testNetns, "TestKernel", "CGWBGP_ROUTE_CHILD")
}

func kernelChild(t *testing.T) {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	// A veth pair gives two devices (dummy may not be built in).
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "d0"}, PeerName: "d1"}); err != nil {
		t.Fatalf("add veth d0/d1: %v", err)
	}
	var links []netlink.Link
	for i, name := range []string{"d0", "d1"} {
		l, err := netlink.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := netlink.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
		a, _ := netlink.ParseAddr([]string{"10.255.0.1/24", "10.255.1.1/24"}[i])
		if err := netlink.AddrAdd(l, a); err != nil {
			t.Fatal(err)
		}
		links = append(links, l)
	}
	d0 := links[0].Attrs().Index

	// A route left by a "previous run" and a foreign static route.
	_, stale, _ := net.ParseCIDR("10.9.0.0/16")
	_, foreign, _ := net.ParseCIDR("10.8.0.0/16")
	for _, r := range []*netlink.Route{
		{Dst: stale, LinkIndex: d0, Protocol: DefaultProtocol, Scope: netlink.SCOPE_LINK},
		{Dst: foreign, LinkIndex: d0, Protocol: unix.RTPROT_STATIC, Scope: netlink.SCOPE_LINK},
	} {
		if err := netlink.RouteAdd(r); err != nil {
			t.Fatalf("seed %v: %v", r, err)
		}
	}

	var logBuf bytes.Buffer
	r, err := New(Config{Metric: 100, Logger: slog.New(slog.NewTextHandler(io.MultiWriter(os.Stderr, &logBuf), nil))})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := r.Installed(); err != nil || len(got) != 0 {
		t.Fatalf("after New: %v, %v; want the stale route flushed", got, err)
	}

	want := []Route{
		{Prefix: pfx("10.0.0.0/16"), NextHops: []NextHop{{Dev: "d0", Gateway: addr("10.255.0.2")}}},
		{Prefix: pfx("10.1.0.0/16"), NextHops: []NextHop{{Dev: "d0"}, {Dev: "d1", Weight: 3}}},
		{Prefix: pfx("fd00:1::/64"), NextHops: []NextHop{{Dev: "d1"}}, Metric: 0},
		{Prefix: pfx("fd00:2::/64"), NextHops: []NextHop{{Dev: "d0", Gateway: addr("fe80::1")}, {Dev: "d1", Gateway: addr("fe80::2")}}},
	}
	if err := r.Set(want); err != nil {
		t.Fatal(err)
	}
	exp := []Route{
		{Prefix: pfx("10.0.0.0/16"), NextHops: []NextHop{{Dev: "d0", Gateway: addr("10.255.0.2"), Weight: 1}}, Metric: 100},
		{Prefix: pfx("10.1.0.0/16"), NextHops: []NextHop{{Dev: "d0", Weight: 1}, {Dev: "d1", Weight: 3}}, Metric: 100},
		{Prefix: pfx("fd00:1::/64"), NextHops: []NextHop{{Dev: "d1", Weight: 1}}, Metric: 100},
		{Prefix: pfx("fd00:2::/64"), NextHops: []NextHop{{Dev: "d0", Gateway: addr("fe80::1"), Weight: 1}, {Dev: "d1", Gateway: addr("fe80::2"), Weight: 1}}, Metric: 100},
	}
	got, err := r.Installed()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, exp) {
		t.Fatalf("installed:\n got %v\nwant %v", got, exp)
	}
	out, _ := exec.Command("ip", "route", "show", "proto", "199").CombinedOutput()
	t.Logf("ip route show proto 199:\n%s", out)
	if !strings.Contains(string(out), "10.1.0.0/16") || !strings.Contains(string(out), "weight 3") {
		t.Fatalf("ip route does not show the ECMP route")
	}

	// Idempotent, and a missing device does not block the others.
	installs := strings.Count(logBuf.String(), "route: installed")
	if err := r.Set(want); err != nil {
		t.Fatalf("repeated Set: %v", err)
	}
	if n := strings.Count(logBuf.String(), "route: installed"); n != installs {
		t.Fatalf("repeated Set re-installed %d routes; the kernel state read back differs from the desired one", n-installs)
	}
	err = r.Set(append(want[:1:1], Route{Prefix: pfx("10.2.0.0/16"), NextHops: []NextHop{{Dev: "nosuch0"}}}))
	if err == nil || !strings.Contains(err.Error(), `"nosuch0"`) {
		t.Fatalf("missing device: err = %v", err)
	}
	got, _ = r.Installed()
	if len(got) != 1 || got[0].Prefix != pfx("10.0.0.0/16") {
		t.Fatalf("after Set with a missing device: %v", got)
	}

	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	left, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: DefaultTable}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	var sawForeign bool
	for _, lr := range left {
		if lr.Protocol == DefaultProtocol {
			t.Errorf("route %v survived Close", lr)
		}
		if lr.Dst != nil && lr.Dst.String() == "10.8.0.0/16" {
			sawForeign = true
		}
	}
	if !sawForeign {
		t.Error("Close removed the foreign static route")
	}
	kernelRules(t)
}

// kernelRules checks the route-safety design on the real kernel: with AWS's
// default route in cgw's table, unmarked traffic follows it, traffic
// carrying cgw's mark (its own IKE/ESP) and the host's non-default routes
// do not.
func kernelRules(t *testing.T) {
	d1, err := netlink.LinkByName("d1")
	if err != nil {
		t.Fatal(err)
	}
	// The host's own default route, DHCP style (metric 1024).
	if err := netlink.RouteAdd(&netlink.Route{Gw: net.ParseIP("10.255.1.2"), LinkIndex: d1.Attrs().Index, Priority: 1024, Protocol: unix.RTPROT_DHCP}); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Table: 199, FwMark: 0xc7, Metric: 100, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg); err != nil { // a restart: idempotent
		t.Fatal(err)
	}
	rules, _ := exec.Command("ip", "rule", "show").CombinedOutput()
	t.Logf("ip rule show:\n%s", rules)
	for _, want := range []string{"32000:\tfrom all lookup main suppress_prefixlength 0 proto 199", "32001:\tnot from all fwmark 0xc7 lookup 199 proto 199"} {
		if strings.Count(string(rules), want) != 1 {
			t.Errorf("ip rule show: want exactly one %q", want)
		}
	}
	if err := r.Set([]Route{{Prefix: pfx("0.0.0.0/0"), NextHops: []NextHop{{Dev: "d0"}}}, {Prefix: pfx("10.255.1.0/24"), NextHops: []NextHop{{Dev: "d0"}}}}); err != nil {
		t.Fatal(err)
	}
	tbl, _ := exec.Command("ip", "route", "show", "table", "199").CombinedOutput()
	t.Logf("ip route show table 199:\n%s", tbl)
	get := func(args ...string) string {
		out, err := exec.Command("ip", append([]string{"route", "get"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("ip route get %v: %v: %s", args, err, out)
		}
		return string(out)
	}
	if out := get("192.0.2.1"); !strings.Contains(out, "dev d0") {
		t.Errorf("unmarked traffic does not follow cgw's default route: %s", out)
	}
	if out := get("192.0.2.1", "mark", "0xc7"); !strings.Contains(out, "dev d1") {
		t.Errorf("cgw's marked traffic follows cgw's route: %s", out)
	}
	if out := get("10.255.1.9"); !strings.Contains(out, "dev d1") {
		t.Errorf("the host's LAN route lost to cgw's route: %s", out)
	}
	// AWS's outside address stays on main even for unmarked packets (and
	// for the reverse-path check of the ESP it sends).
	if err := r.SetPeers([]netip.Addr{netip.MustParseAddr("192.0.2.77")}); err != nil {
		t.Fatal(err)
	}
	if out := get("192.0.2.77"); !strings.Contains(out, "dev d1") {
		t.Errorf("unmarked traffic to the AWS peer follows cgw's route: %s", out)
	}
	if out := get("192.0.2.1"); !strings.Contains(out, "dev d0") {
		t.Errorf("the peer rule caught other traffic: %s", out)
	}
	rules, _ = exec.Command("ip", "rule", "show").CombinedOutput()
	if !strings.Contains(string(rules), "32000:\tfrom all to 192.0.2.77 lookup main proto 199") {
		t.Errorf("no peer rule:\n%s", rules)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	rules, _ = exec.Command("ip", "rule", "show").CombinedOutput()
	if strings.Contains(string(rules), "proto 199") || strings.Contains(string(rules), "lookup 199") {
		t.Errorf("rules survived Close:\n%s", rules)
	}
	if out := get("192.0.2.1"); !strings.Contains(out, "dev d1") {
		t.Errorf("after Close: %s", out)
	}
}
