package route

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func newTestRouter(t *testing.T, links ...string) (*Router, *fakeKernel) {
	t.Helper()
	k := newFakeKernel(links)
	r, err := newRouter(Config{Metric: 100, Logger: slog.New(slog.DiscardHandler)}, k)
	if err != nil {
		t.Fatal(err)
	}
	return r, k
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }

func installed(t *testing.T, r *Router) []Route {
	t.Helper()
	rs, err := r.Installed()
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func TestSetDiff(t *testing.T) {
	r, k := newTestRouter(t, "tun1", "tun2")
	want := []Route{
		{Prefix: pfx("10.0.0.0/16"), NextHops: []NextHop{{Dev: "tun1"}}},
		{Prefix: pfx("10.1.0.0/16"), NextHops: []NextHop{{Dev: "tun2", Weight: 1}, {Dev: "tun1", Weight: 2}}},
		{Prefix: pfx("fd00::/64"), NextHops: []NextHop{{Dev: "tun1", Gateway: addr("fd00::1")}}, Metric: 50},
	}
	if err := r.Set(want); err != nil {
		t.Fatal(err)
	}
	if k.replaces != 3 || k.dels != 0 {
		t.Fatalf("first Set: %d replaces, %d deletes; want 3, 0", k.replaces, k.dels)
	}
	got := installed(t, r)
	exp := []Route{
		{Prefix: pfx("10.0.0.0/16"), NextHops: []NextHop{{Dev: "tun1", Weight: 1}}, Metric: 100},
		{Prefix: pfx("10.1.0.0/16"), NextHops: []NextHop{{Dev: "tun1", Weight: 2}, {Dev: "tun2", Weight: 1}}, Metric: 100},
		{Prefix: pfx("fd00::/64"), NextHops: []NextHop{{Dev: "tun1", Gateway: addr("fd00::1"), Weight: 1}}, Metric: 50},
	}
	if !reflect.DeepEqual(got, exp) {
		t.Fatalf("installed:\n got %v\nwant %v", got, exp)
	}

	// Idempotent: the same desired state touches nothing.
	if err := r.Set(want); err != nil {
		t.Fatal(err)
	}
	if k.replaces != 3 || k.dels != 0 {
		t.Fatalf("repeated Set changed the table: %d replaces, %d deletes", k.replaces, k.dels)
	}

	// Change one route, drop one, keep one.
	want2 := []Route{
		{Prefix: pfx("10.0.0.0/16"), NextHops: []NextHop{{Dev: "tun2"}}},
		{Prefix: pfx("fd00::/64"), NextHops: []NextHop{{Dev: "tun1", Gateway: addr("fd00::1")}}, Metric: 50},
	}
	if err := r.Set(want2); err != nil {
		t.Fatal(err)
	}
	if k.replaces != 4 || k.dels != 1 {
		t.Fatalf("second Set: %d replaces, %d deletes; want 4, 1", k.replaces, k.dels)
	}
	got = installed(t, r)
	if len(got) != 2 || got[0].NextHops[0].Dev != "tun2" || got[1].Prefix != pfx("fd00::/64") {
		t.Fatalf("after second Set: %v", got)
	}
	if !reflect.DeepEqual(r.Routes(), want2) {
		t.Fatalf("Routes() = %v, want %v", r.Routes(), want2)
	}

	if err := r.Set(nil); err != nil {
		t.Fatal(err)
	}
	if got := installed(t, r); len(got) != 0 {
		t.Fatalf("Set(nil) left %v", got)
	}
}

func TestMissingDevice(t *testing.T) {
	r, _ := newTestRouter(t, "tun1")
	err := r.Set([]Route{
		{Prefix: pfx("10.0.0.0/16"), NextHops: []NextHop{{Dev: "tun1"}}},
		{Prefix: pfx("10.2.0.0/16"), NextHops: []NextHop{{Dev: "gone0"}}},
		{Prefix: pfx("10.3.0.0/16"), NextHops: []NextHop{{Dev: "tun1"}, {Dev: "gone1"}}},
	})
	if err == nil || !strings.Contains(err.Error(), `"gone0"`) || !strings.Contains(err.Error(), `"gone1"`) || !strings.HasPrefix(err.Error(), "route: ") {
		t.Fatalf("error %v does not name both missing devices", err)
	}
	if !errors.Is(err, errNoDevice) {
		t.Fatalf("error %v does not wrap errNoDevice", err)
	}
	got := installed(t, r)
	exp := []Route{
		{Prefix: pfx("10.0.0.0/16"), NextHops: []NextHop{{Dev: "tun1", Weight: 1}}, Metric: 100},
		{Prefix: pfx("10.3.0.0/16"), NextHops: []NextHop{{Dev: "tun1", Weight: 1}}, Metric: 100},
	}
	if !reflect.DeepEqual(got, exp) {
		t.Fatalf("installed:\n got %v\nwant %v", got, exp)
	}
}

func TestInvalidRoutes(t *testing.T) {
	r, _ := newTestRouter(t, "tun1")
	for name, rt := range map[string]Route{
		"no next hop":   {Prefix: pfx("10.0.0.0/8")},
		"invalid":       {NextHops: []NextHop{{Dev: "tun1"}}},
		"family":        {Prefix: pfx("10.0.0.0/8"), NextHops: []NextHop{{Dev: "tun1", Gateway: addr("fd00::1")}}},
		"weight":        {Prefix: pfx("10.0.0.0/8"), NextHops: []NextHop{{Dev: "tun1", Weight: 257}}},
		"empty hop":     {Prefix: pfx("10.0.0.0/8"), NextHops: []NextHop{{}}},
		"negative prio": {Prefix: pfx("10.0.0.0/8"), NextHops: []NextHop{{Dev: "tun1"}}, Metric: -1},
	} {
		if err := r.Set([]Route{rt}); err == nil {
			t.Errorf("%s: Set(%v) succeeded", name, rt)
		}
		if got := installed(t, r); len(got) != 0 {
			t.Errorf("%s: installed %v", name, got)
		}
	}
	err := r.Set([]Route{
		{Prefix: pfx("10.0.0.0/8"), NextHops: []NextHop{{Dev: "tun1"}}},
		{Prefix: pfx("10.0.0.1/8"), NextHops: []NextHop{{Gateway: addr("10.9.9.9")}}},
	})
	if err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("duplicate prefix: err = %v", err)
	}
	if got := installed(t, r); len(got) != 1 || got[0].NextHops[0].Dev != "tun1" {
		t.Fatalf("duplicate prefix: installed %v, want the first", got)
	}
}

// A route left by a previous run with our protocol is flushed by New; a
// foreign protocol's route is left alone, by New, Set and Close.
func TestFlushAndClose(t *testing.T) {
	k := newFakeKernel([]string{"tun1"})
	k.routes[fakeKey{DefaultTable, routeKey{pfx("10.9.0.0/16"), 0}}] = kroute{dst: pfx("10.9.0.0/16"), table: DefaultTable, proto: DefaultProtocol, hops: []khop{{link: 1, weight: 1}}}
	k.routes[fakeKey{DefaultTable, routeKey{pfx("10.8.0.0/16"), 0}}] = kroute{dst: pfx("10.8.0.0/16"), table: DefaultTable, proto: 4, hops: []khop{{link: 1, weight: 1}}}
	r, err := newRouter(Config{Logger: slog.New(slog.DiscardHandler)}, k)
	if err != nil {
		t.Fatal(err)
	}
	if got := installed(t, r); len(got) != 0 {
		t.Fatalf("stale route survived New: %v", got)
	}
	if err := r.Set([]Route{{Prefix: pfx("10.0.0.0/16"), NextHops: []NextHop{{Dev: "tun1"}}}}); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if len(k.routes) != 1 || k.routes[fakeKey{DefaultTable, routeKey{pfx("10.8.0.0/16"), 0}}].proto != 4 {
		t.Fatalf("after Close the table is %v; want only the foreign route", k.routes)
	}
	if err := r.Set(nil); err == nil {
		t.Fatal("Set after Close succeeded")
	}
}

// A device that vanishes takes its routes with it (kernel behaviour); the
// next Set reports it and keeps the rest consistent.
func TestDeviceVanishes(t *testing.T) {
	r, k := newTestRouter(t, "tun1", "tun2")
	want := []Route{
		{Prefix: pfx("10.0.0.0/16"), NextHops: []NextHop{{Dev: "tun1"}, {Dev: "tun2"}}},
	}
	if err := r.Set(want); err != nil {
		t.Fatal(err)
	}
	k.removeLink("tun2")
	if err := r.Set(want); err == nil || !strings.Contains(err.Error(), `"tun2"`) {
		t.Fatalf("err = %v, want one naming tun2", err)
	}
	got := installed(t, r)
	if len(got) != 1 || len(got[0].NextHops) != 1 || got[0].NextHops[0].Dev != "tun1" {
		t.Fatalf("installed %v, want 10.0.0.0/16 via tun1 only", got)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, c := range []Config{{Table: 255}, {Table: -1}, {Protocol: 2}, {Protocol: 256}, {Metric: -5}} {
		if _, err := newRouter(c, newFakeKernel(nil)); err == nil {
			t.Errorf("newRouter(%+v) succeeded", c)
		}
	}
}

func TestNewFake(t *testing.T) {
	r := NewFake()
	want := []Route{{Prefix: pfx("10.0.0.0/16"), NextHops: []NextHop{{Dev: "anything0"}}}}
	if err := r.Set(want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.Routes(), want) {
		t.Fatalf("Routes() = %v", r.Routes())
	}
	got := installed(t, r)
	if len(got) != 1 || got[0].NextHops[0].Dev != "anything0" {
		t.Fatalf("Installed() = %v", got)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if got := installed(t, r); len(got) != 0 {
		t.Fatalf("after Close: %v", got)
	}
}

func TestRouteString(t *testing.T) {
	rt := Route{Prefix: pfx("10.0.0.0/16"), NextHops: []NextHop{{Dev: "tun1", Gateway: addr("169.254.15.193"), Weight: 2}}, Metric: 7}
	if s, want := rt.String(), "10.0.0.0/16 via 169.254.15.193 dev tun1 weight 2 metric 7"; s != want {
		t.Fatalf("String() = %q, want %q", s, want)
	}
	rt.NextHops = append(rt.NextHops, NextHop{Dev: "tun2"})
	if s, want := rt.String(), "10.0.0.0/16 nexthop via 169.254.15.193 dev tun1 weight 2 nexthop dev tun2 metric 7"; s != want {
		t.Fatalf("String() = %q, want %q", s, want)
	}
}

func TestForeign(t *testing.T) {
	k := newFakeKernel([]string{"eth0", "cgw0"})
	r, err := newRouter(Config{Protocol: 199}, k)
	if err != nil {
		t.Fatal(err)
	}
	eth, _ := k.linkIndex("eth0")
	tun, _ := k.linkIndex("cgw0")
	for _, kr := range []kroute{
		{dst: pfx("10.1.0.0/24"), table: 254, proto: 2, hops: []khop{{link: eth, weight: 1}}},   // kernel connected LAN
		{dst: pfx("10.2.0.0/16"), table: 254, proto: 11, hops: []khop{{link: eth, weight: 1}}},  // OSPF
		{dst: pfx("172.16.0.0/12"), table: 254, proto: 4, hops: []khop{{link: eth, weight: 1}}}, // outside the filter
		{dst: pfx("10.0.0.0/16"), table: 254, proto: 199, hops: []khop{{link: tun, weight: 1}}}, // ours
		{dst: pfx("10.9.0.0/16"), table: 254, proto: 4, hops: []khop{{link: tun, weight: 1}}},   // via a tunnel
		{dst: pfx("0.0.0.0/0"), table: 254, proto: 4, hops: []khop{{link: eth, weight: 1}}},     // default
		{dst: pfx("10.3.0.0/16"), table: 100, proto: 4, hops: []khop{{link: eth, weight: 1}}},   // another table
		{dst: pfx("10.0.0.0/8"), table: 254, proto: 4, hops: []khop{{link: eth, weight: 1}}},    // the filter itself
		{dst: pfx("fd00:1::/64"), table: 254, proto: 4, hops: []khop{{link: eth, weight: 1}}},   // other family
	} {
		if err := k.replace(kr); err != nil {
			t.Fatal(err)
		}
	}
	got, err := r.Foreign([]netip.Prefix{pfx("10.0.0.0/8")}, []string{"cgw0", "cgw9"})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[10.0.0.0/8 10.1.0.0/24 10.2.0.0/16]" {
		t.Fatalf("Foreign = %v", got)
	}
	if got, _ := r.Foreign(nil, nil); got != nil {
		t.Fatalf("Foreign(nil) = %v", got)
	}
}

func TestPolicyRules(t *testing.T) {
	k := newFakeKernel([]string{"cgw0"})
	// A rule left by a previous run with another priority, and a rule of
	// another protocol that is not ours.
	stale := krule{priority: 100, table: 199, mark: 0x1, invert: true, proto: 199}
	other := krule{priority: 200, table: 7, proto: 4}
	k.rules = []krule{stale, other}
	cfg := Config{Table: 199, FwMark: 0xc7, Logger: slog.New(slog.DiscardHandler)}
	r, err := newRouter(cfg, k)
	if err != nil {
		t.Fatal(err)
	}
	want := []krule{other,
		{priority: 32000, table: 254, suppress: true, proto: 199},
		{priority: 32001, table: 199, mark: 0xc7, invert: true, proto: 199},
		{v6: true, priority: 32000, table: 254, suppress: true, proto: 199},
		{v6: true, priority: 32001, table: 199, mark: 0xc7, invert: true, proto: 199},
	}
	if !reflect.DeepEqual(k.rules, want) {
		t.Fatalf("rules after New:\n got %v\nwant %v", k.rules, want)
	}
	if got := want[2].String(); got != "ip -4 rule 32001: not from all fwmark 0xc7 lookup 199" {
		t.Errorf("String = %q", got)
	}
	// A second Router (a restart) keeps them: idempotent.
	r2, err := newRouter(cfg, k)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(k.rules, want) {
		t.Fatalf("rules after a second New: %v", k.rules)
	}
	_ = r2
	// Peer rules follow SetPeers; the base rules stay.
	peer := krule{priority: 32000, table: 254, to: pfx("198.51.100.10/32"), proto: 199}
	if err := r.SetPeers([]netip.Addr{addr("198.51.100.10"), addr("198.51.100.10"), {}}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(k.rules, append(slices.Clone(want), peer)) {
		t.Fatalf("rules after SetPeers: %v", k.rules)
	}
	if err := r.SetPeers([]netip.Addr{addr("2001:db8::1")}); err != nil {
		t.Fatal(err)
	}
	peer6 := krule{v6: true, priority: 32000, table: 254, to: pfx("2001:db8::1/128"), proto: 199}
	if !reflect.DeepEqual(k.rules, append(slices.Clone(want), peer6)) {
		t.Fatalf("rules after the peer changed: %v", k.rules)
	}
	if got := peer6.String(); got != "ip -6 rule 32000: from all to 2001:db8::1/128 lookup 254" {
		t.Errorf("String = %q", got)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(k.rules, []krule{other}) {
		t.Fatalf("rules after Close: %v, want only the foreign one", k.rules)
	}
}

func TestPolicyRulesConfig(t *testing.T) {
	for _, c := range []Config{
		{Table: 199},            // own table without a mark
		{Table: 254, FwMark: 1}, // a mark without a table
		{Table: 199, FwMark: 1, RulePriority: 32765}, // second rule would pass main's
	} {
		if _, err := newRouter(c, newFakeKernel(nil)); err == nil {
			t.Errorf("newRouter(%+v) succeeded", c)
		}
	}
}

// A route cgw did not install is never replaced, deleted or taken over.
func TestNeverReplaceForeign(t *testing.T) {
	k := newFakeKernel([]string{"eth0", "cgw0"})
	r, err := newRouter(Config{Table: 199, FwMark: 0xc7, Metric: 100, Logger: slog.New(slog.DiscardHandler)}, k)
	if err != nil {
		t.Fatal(err)
	}
	eth, _ := k.linkIndex("eth0")
	foreign := kroute{dst: pfx("10.0.0.0/16"), table: 199, proto: 4, metric: 100, hops: []khop{{link: eth, weight: 1}}}
	if err := k.replace(foreign); err != nil {
		t.Fatal(err)
	}
	err = r.Set([]Route{
		{Prefix: pfx("10.0.0.0/16"), NextHops: []NextHop{{Dev: "cgw0"}}},
		{Prefix: pfx("10.1.0.0/16"), NextHops: []NextHop{{Dev: "cgw0"}}},
	})
	if err == nil || !strings.Contains(err.Error(), "cgw did not install") {
		t.Fatalf("Set over a foreign route: err = %v", err)
	}
	if got := installed(t, r); len(got) != 1 || got[0].Prefix != pfx("10.1.0.0/16") {
		t.Fatalf("installed = %v", got)
	}
	cur, _ := k.list(199, 4)
	if len(cur) != 1 || !cur[0].equal(foreign) {
		t.Fatalf("foreign route changed: %v", cur)
	}
	// With another metric, cgw's route goes alongside.
	if err := r.Set([]Route{{Prefix: pfx("10.0.0.0/16"), NextHops: []NextHop{{Dev: "cgw0"}}, Metric: 50}}); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if cur, _ := k.list(199, -1); len(cur) != 1 || !cur[0].equal(foreign) {
		t.Fatalf("after Close: %v, want the foreign route alone", cur)
	}
}

func TestShadowed(t *testing.T) {
	k := newFakeKernel([]string{"eth0", "cgw0"})
	var logBuf strings.Builder
	r, err := newRouter(Config{Table: 199, FwMark: 0xc7, Logger: slog.New(slog.NewTextHandler(&logBuf, nil))}, k)
	if err != nil {
		t.Fatal(err)
	}
	eth, _ := k.linkIndex("eth0")
	for _, kr := range []kroute{
		{dst: pfx("10.0.0.0/8"), table: 254, proto: 4, hops: []khop{{link: eth, weight: 1}}},
		{dst: pfx("0.0.0.0/0"), table: 254, proto: 16, hops: []khop{{link: eth, weight: 1}}},
		{dst: pfx("192.168.0.0/24"), table: 254, proto: 2, hops: []khop{{link: eth, weight: 1}}},
	} {
		if err := k.replace(kr); err != nil {
			t.Fatal(err)
		}
	}
	rs := []Route{
		{Prefix: pfx("10.50.0.0/16"), NextHops: []NextHop{{Dev: "cgw0"}}},
		{Prefix: pfx("172.16.0.0/12"), NextHops: []NextHop{{Dev: "cgw0"}}},
		{Prefix: pfx("0.0.0.0/0"), NextHops: []NextHop{{Dev: "cgw0"}}},
	}
	for range 2 {
		if err := r.Set(rs); err != nil {
			t.Fatal(err)
		}
	}
	if got := fmt.Sprint(r.Shadowed()); got != "[{10.50.0.0/16 10.0.0.0/8}]" {
		t.Fatalf("Shadowed = %s", got)
	}
	if n := strings.Count(logBuf.String(), "host's route wins"); n != 1 {
		t.Fatalf("logged the overlap %d times, want once:\n%s", n, logBuf.String())
	}
}

// TestSetCachesLinks: a Set that changes nothing looks up no device, and a
// device that is deleted and created again (a tunnel restart: a new index,
// its routes gone with the old device) gets its route back on the next Set.
func TestSetCachesLinks(t *testing.T) {
	r, k := newTestRouter(t, "tun1", "tun2")
	want := []Route{
		{Prefix: pfx("10.0.0.0/16"), NextHops: []NextHop{{Dev: "tun1"}, {Dev: "tun2"}}},
		{Prefix: pfx("10.1.0.0/16"), NextHops: []NextHop{{Dev: "tun1"}, {Dev: "tun2"}}},
		{Prefix: pfx("10.2.0.0/16"), NextHops: []NextHop{{Dev: "tun2"}}},
	}
	if err := r.Set(want); err != nil {
		t.Fatal(err)
	}
	before := k.lookups
	if err := r.Set(want); err != nil {
		t.Fatal(err)
	}
	if n := k.lookups - before; n != 0 {
		t.Errorf("an unchanged Set looked up %d devices, want 0", n)
	}
	k.removeLink("tun2")
	k.mu.Lock()
	k.addLink("tun2")
	k.mu.Unlock()
	if err := r.Set(want); err != nil {
		t.Fatal(err)
	}
	got := installed(t, r)
	if len(got) != 3 {
		t.Fatalf("installed %v, want 3 routes", got)
	}
	for _, rt := range got {
		if !slices.ContainsFunc(rt.NextHops, func(h NextHop) bool { return h.Dev == "tun2" }) {
			t.Errorf("%v: no next hop via the recreated tun2", rt)
		}
	}
	// A device that is gone for good is reported, as without the cache.
	k.removeLink("tun2")
	if err := r.Set(want); err == nil || !strings.Contains(err.Error(), `"tun2"`) {
		t.Fatalf("err = %v, want one naming tun2", err)
	}
	if got := installed(t, r); len(got) != 2 {
		t.Errorf("installed %v, want 10.0 and 10.1 via tun1", got)
	}
}
