// Package route keeps the kernel routing table in step with the routes cgw
// wants, like Tailscale's router: a Router owns every route tagged with its
// protocol number in its table, and nothing else.
//
// Route safety (wg-quick style). With a table of its own (Config.Table not
// main) and a firewall mark (Config.FwMark), the Router also owns two policy
// rules per address family, tagged with Config.Protocol:
//
//	<RulePriority>:   from all lookup main suppress_prefixlength 0
//	<RulePriority+1>: not from all fwmark <FwMark> lookup <Table>
//
// The first lets every non-default route of the main table win; the second
// sends unmarked traffic to cgw's table. cgwd's own sockets carry FwMark, so
// its IKE, ESP and keepalives never follow a route cgw installed, whatever
// AWS advertises (even 0.0.0.0/0 or a prefix covering AWS's outside
// address): they fall through to the main table's rule (32766).
//
// Contract:
//
//   - Set is declarative and idempotent: after it returns, the routes tagged
//     with Config.Protocol in Config.Table are exactly the given ones (minus
//     those that could not be installed, each reported in the joined error).
//     A route of ours is updated with replace; a new one is added with
//     NLM_F_EXCL, so a route that cgw did not install (another protocol,
//     same prefix and metric in the table) is never replaced: Set reports it
//     and leaves both alone. Unchanged routes are not touched.
//   - In a table of its own, Set logs once per pair a desired prefix that a
//     non-default route of the main table overlaps: the host's route wins
//     for the addresses it covers (Shadowed lists them).
//   - New removes rules tagged with the protocol left by a previous run and
//     installs the current ones; Close removes them.
//   - A route with several next hops becomes one ECMP route (RTA_MULTIPATH);
//     next hop weights map to the kernel's rtnh_hops (weight-1).
//   - Device names are resolved at Set time. A missing device is an error
//     naming it; the other routes (and the route's other next hops) are
//     still applied.
//   - New removes routes tagged with the protocol left by a previous run;
//     Close removes all of ours. Routes of other protocols are never
//     deleted, though a desired route replaces a foreign route with the
//     same prefix and metric in the table.
//   - NewFake returns a Router backed by an in-memory table for tests.
//
// A Router is safe for concurrent use.
package route

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
)

// NextHop is one way out for a Route: a device, a gateway, or both.
type NextHop struct {
	Dev     string     // interface name, e.g. the tunnel's TUN device
	Gateway netip.Addr // optional; same family as the prefix
	Weight  int        // ECMP weight 1..256; 0 means 1
}

// Route is one destination prefix.
type Route struct {
	Prefix   netip.Prefix
	NextHops []NextHop
	Metric   int // 0 = Config.Metric
}

func (r Route) String() string {
	var b strings.Builder
	b.WriteString(r.Prefix.String())
	for _, h := range r.NextHops {
		if len(r.NextHops) > 1 {
			b.WriteString(" nexthop")
		}
		if h.Gateway.IsValid() {
			b.WriteString(" via " + h.Gateway.String())
		}
		if h.Dev != "" {
			b.WriteString(" dev " + h.Dev)
		}
		if h.Weight > 1 {
			fmt.Fprintf(&b, " weight %d", h.Weight)
		}
	}
	if r.Metric != 0 {
		fmt.Fprintf(&b, " metric %d", r.Metric)
	}
	return b.String()
}

// Config selects which routes the Router owns.
type Config struct {
	Table    int // routing table; 0 = 254 (main)
	Protocol int // rtm_protocol tag marking our routes and rules, 5..255; 0 = 199
	Metric   int // default metric (priority) for routes with Metric 0
	// FwMark is the mark on cgwd's own sockets (SO_MARK). With a Table
	// other than main it is required, and the Router installs the policy
	// rules of the package doc; with main it must be 0 (no rules).
	FwMark uint32
	// RulePriority is the priority of the first rule; the second gets
	// RulePriority+1. 0 = DefaultRulePriority.
	RulePriority int
	Logger       *slog.Logger // nil = slog.Default()
}

const (
	DefaultTable        = 254 // RT_TABLE_MAIN
	DefaultProtocol     = 199
	DefaultRulePriority = 32000 // just before the main table's rule (32766)
	mainRulePriority    = 32766
	maxWeight           = 256
	ipv6DefaultPrio     = 1024 // the kernel's metric for IPv6 routes given metric 0
)

// Router programs routes. Create it with New or NewFake.
type Router struct {
	cfg Config
	log *slog.Logger
	k   kernel

	mu       sync.Mutex
	peers    []netip.Addr // SetPeers, sorted
	desired  []Route      // last Set argument
	closed   bool
	shadowed map[Shadow]bool // reported overlaps with the main table
	links    map[string]int  // device indexes of the last Set; see Set
}

// Shadow is a desired prefix and a main-table route (not cgw's, not a
// default route) that overlaps it: policy routing consults main first, so
// the host's route wins for the addresses it covers.
type Shadow struct {
	Prefix netip.Prefix // cgw's route
	By     netip.Prefix // the host's route in the main table
}

// kernel is the OS boundary: the netlink implementation or the fake.
type kernel interface {
	linkIndex(name string) (int, error) // errNoDevice when missing
	linkName(index int) string
	list(table, proto int) ([]kroute, error) // proto < 0: any protocol
	add(r kroute) error                      // fails when the table holds the key
	replace(r kroute) error
	del(r kroute) error
	listRules(proto int) ([]krule, error) // rules tagged proto, both families
	addRule(r krule) error
	delRule(r krule) error
}

// errFamily reports an address family the kernel does not support (IPv6
// disabled); the Router then works on IPv4 alone.
var errFamily = errors.New("address family not supported")

var errNoDevice = errors.New("no such device")

// kroute is a route as the kernel sees it. Hops are sorted.
type kroute struct {
	dst    netip.Prefix
	table  int
	proto  int
	metric int
	hops   []khop
}

type khop struct {
	link   int
	gw     netip.Addr
	weight int // 1..256
}

type routeKey struct {
	dst    netip.Prefix
	metric int
}

func (r kroute) key() routeKey { return routeKey{r.dst, r.metric} }

func (r kroute) equal(o kroute) bool {
	return r.dst == o.dst && r.table == o.table && r.proto == o.proto && r.metric == o.metric && slices.Equal(r.hops, o.hops)
}

func compareHop(a, b khop) int {
	if c := cmp.Compare(a.link, b.link); c != 0 {
		return c
	}
	return a.gw.Compare(b.gw)
}

// New creates a Router on the kernel's routing table and removes the routes
// a previous run left with our protocol tag.
func New(cfg Config) (*Router, error) {
	return newRouter(cfg, netlinkKernel{})
}

// NewFake creates a Router on an in-memory table that accepts any device
// name, for tests of code that uses a Router. Installed shows its content.
func NewFake() *Router {
	l := slog.New(slog.DiscardHandler)
	return &Router{
		cfg: Config{Table: DefaultTable, Protocol: DefaultProtocol, Logger: l},
		log: l,
		k:   newFakeKernel(nil),
	}
}

func newRouter(cfg Config, k kernel) (*Router, error) {
	if cfg.Table == 0 {
		cfg.Table = DefaultTable
	}
	if cfg.Protocol == 0 {
		cfg.Protocol = DefaultProtocol
	}
	if cfg.Table < 0 || cfg.Table == 255 {
		return nil, fmt.Errorf("route: Config.Table %d is invalid (use 254 for main or a custom table; 255 is the local table)", cfg.Table)
	}
	// 0-4 are unspec/redirect/kernel/boot/static: never ours to delete.
	if cfg.Protocol < 5 || cfg.Protocol > 255 {
		return nil, fmt.Errorf("route: Config.Protocol %d must be between 5 and 255 (a tag for cgw's routes, default 199)", cfg.Protocol)
	}
	if cfg.Metric < 0 {
		return nil, fmt.Errorf("route: Config.Metric %d must not be negative", cfg.Metric)
	}
	if cfg.RulePriority == 0 {
		cfg.RulePriority = DefaultRulePriority
	}
	if cfg.RulePriority < 1 || cfg.RulePriority+1 >= mainRulePriority {
		return nil, fmt.Errorf("route: Config.RulePriority %d must be between 1 and %d (before the main table's rule %d)", cfg.RulePriority, mainRulePriority-2, mainRulePriority)
	}
	if cfg.Table == DefaultTable && cfg.FwMark != 0 {
		return nil, fmt.Errorf("route: Config.FwMark needs a table of cgw's own (Config.Table is main)")
	}
	if cfg.Table != DefaultTable && cfg.FwMark == 0 {
		return nil, fmt.Errorf("route: Config.Table %d needs a Config.FwMark so cgw's own traffic can bypass it", cfg.Table)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &Router{cfg: cfg, log: cfg.Logger, k: k}
	n, err := r.flush()
	if err != nil {
		return nil, fmt.Errorf("route: remove stale routes (table %d, protocol %d): %w", cfg.Table, cfg.Protocol, err)
	}
	if n > 0 {
		r.log.Info("route: removed stale routes from a previous run", "count", n, "table", cfg.Table, "protocol", cfg.Protocol)
	}
	if err := r.syncRules(); err != nil {
		return nil, err
	}
	return r, nil
}

// flush deletes every route of ours and returns how many it deleted.
func (r *Router) flush() (int, error) {
	cur, err := r.k.list(r.cfg.Table, r.cfg.Protocol)
	if err != nil {
		return 0, err
	}
	var errs []error
	n := 0
	for _, kr := range cur {
		if err := r.k.del(kr); err != nil {
			errs = append(errs, fmt.Errorf("delete %v: %w", kr.dst, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// Set makes our routes exactly routes; see the package doc. It returns
// every problem joined; routes without problems are applied regardless.
func (r *Router) Set(routes []Route) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errors.New("route: Set on a closed Router")
	}
	r.desired = slices.Clone(routes)

	// Device indexes come from the previous Set where it had them: the
	// daemon calls Set every few seconds with a route per prefix and a
	// hop per tunnel, and a netlink lookup for each was most of its
	// cost. A cached index is only trusted for a route the kernel already
	// has exactly so; every route that needs a change is resolved afresh
	// first. A deleted device takes its routes with it, so a route over a
	// recreated device (new index) is always among those.
	links := make(map[string]int)
	lookup := func(fresh bool) func(string) (int, error) {
		return func(dev string) (int, error) {
			if i, ok := links[dev]; ok && !fresh {
				return i, nil
			}
			if i, ok := r.links[dev]; ok && !fresh {
				links[dev] = i
				return i, nil
			}
			i, err := r.k.linkIndex(dev)
			if err == nil {
				links[dev] = i
			}
			return i, err
		}
	}
	defer func() { r.links = links }()

	var errs []error
	want := make(map[routeKey]kroute, len(routes))
	src := make(map[routeKey]Route, len(routes))
	failed := make(map[routeKey]bool)
	var order []routeKey
	for _, rt := range routes {
		kr, err := r.resolve(rt, lookup(false))
		if err != nil {
			errs = append(errs, err)
		}
		if len(kr.hops) == 0 {
			continue
		}
		if _, dup := want[kr.key()]; dup {
			errs = append(errs, fmt.Errorf("route: %v listed twice with metric %d; keeping the first", kr.dst, kr.metric))
			continue
		}
		want[kr.key()] = kr
		src[kr.key()] = rt
		failed[kr.key()] = err != nil
		order = append(order, kr.key())
	}

	cur, err := r.k.list(r.cfg.Table, -1)
	if err != nil {
		// Without the current state we can still add the desired
		// routes; stale ones go on the next Set.
		errs = append(errs, fmt.Errorf("route: list routes (table %d): %w", r.cfg.Table, err))
	}
	have := make(map[routeKey]kroute, len(cur))
	foreign := make(map[routeKey]kroute)
	for _, kr := range cur {
		if kr.proto == r.cfg.Protocol {
			have[kr.key()] = kr
		} else {
			foreign[kr.key()] = kr
		}
	}

	for _, k := range order {
		kr := want[k]
		h, ours := have[k]
		if ours && h.equal(kr) {
			continue
		}
		fresh, err := r.resolve(src[k], lookup(true))
		if err != nil && !failed[k] {
			errs = append(errs, err)
		}
		if len(fresh.hops) == 0 {
			delete(want, k) // its devices are gone; remove ours below
			continue
		}
		kr = fresh
		want[k] = kr
		if ours && h.equal(kr) {
			continue
		}
		if f, ok := foreign[k]; ok && !ours {
			errs = append(errs, fmt.Errorf("route: not installing %s: table %d already has a route for %v with metric %d that cgw did not install (protocol %d); cgw never replaces it (remove it, or set routes.metric to add cgw's route alongside)",
				r.describe(kr), r.cfg.Table, f.dst, f.metric, f.proto))
			continue
		}
		op := r.k.add
		if ours {
			op = r.k.replace
		}
		if err := op(kr); err != nil {
			errs = append(errs, fmt.Errorf("route: install %s: %w", r.describe(kr), err))
			continue
		}
		r.log.Info("route: installed", "route", r.describe(kr))
	}
	r.reportShadowed(order)
	for k, kr := range have {
		if _, ok := want[k]; ok {
			continue
		}
		if err := r.k.del(kr); err != nil {
			errs = append(errs, fmt.Errorf("route: remove %s: %w", r.describe(kr), err))
			continue
		}
		r.log.Info("route: removed", "route", r.describe(kr))
	}
	return errors.Join(errs...)
}

// resolve turns a Route into its kernel form. It returns the next hops it
// could resolve even when it also returns an error.
func (r *Router) resolve(rt Route, linkIndex func(string) (int, error)) (kroute, error) {
	kr := kroute{table: r.cfg.Table, proto: r.cfg.Protocol, metric: rt.Metric}
	if !rt.Prefix.IsValid() {
		return kr, fmt.Errorf("route: invalid prefix %v", rt.Prefix)
	}
	kr.dst = rt.Prefix.Masked()
	if kr.metric == 0 {
		kr.metric = r.cfg.Metric
	}
	if kr.metric < 0 {
		return kroute{}, fmt.Errorf("route: %v: negative metric %d", kr.dst, kr.metric)
	}
	if kr.metric == 0 && kr.dst.Addr().Is6() {
		kr.metric = ipv6DefaultPrio // what the kernel stores; keeps Set idempotent
	}
	if len(rt.NextHops) == 0 {
		return kr, fmt.Errorf("route: %v has no next hop", kr.dst)
	}
	var errs []error
	for _, h := range rt.NextHops {
		kh := khop{gw: h.Gateway, weight: h.Weight}
		if kh.weight == 0 {
			kh.weight = 1
		}
		if kh.weight < 1 || kh.weight > maxWeight {
			errs = append(errs, fmt.Errorf("route: %v: next hop weight %d must be between 1 and %d", kr.dst, h.Weight, maxWeight))
			continue
		}
		if h.Gateway.IsValid() {
			kh.gw = h.Gateway.Unmap()
			if kh.gw.Is4() != kr.dst.Addr().Is4() {
				errs = append(errs, fmt.Errorf("route: %v: gateway %v is of the other address family", kr.dst, h.Gateway))
				continue
			}
		}
		if h.Dev == "" {
			if !kh.gw.IsValid() {
				errs = append(errs, fmt.Errorf("route: %v: next hop needs a Dev or a Gateway", kr.dst))
				continue
			}
		} else {
			idx, err := linkIndex(h.Dev)
			if err != nil {
				errs = append(errs, fmt.Errorf("route: %v: device %q: %w", kr.dst, h.Dev, err))
				continue
			}
			kh.link = idx
		}
		kr.hops = append(kr.hops, kh)
	}
	slices.SortFunc(kr.hops, compareHop)
	kr.hops = slices.CompactFunc(kr.hops, func(a, b khop) bool { return compareHop(a, b) == 0 })
	if len(kr.hops) == 1 {
		kr.hops[0].weight = 1 // meaningless without ECMP; the kernel reports 1
	}
	return kr, errors.Join(errs...)
}

func (r *Router) describe(kr kroute) string {
	return r.toRoute(kr).String()
}

func (r *Router) toRoute(kr kroute) Route {
	rt := Route{Prefix: kr.dst, Metric: kr.metric}
	for _, h := range kr.hops {
		nh := NextHop{Gateway: h.gw, Weight: h.weight}
		if h.link != 0 {
			nh.Dev = r.k.linkName(h.link)
		}
		rt.NextHops = append(rt.NextHops, nh)
	}
	slices.SortFunc(rt.NextHops, func(a, b NextHop) int {
		if c := cmp.Compare(a.Dev, b.Dev); c != 0 {
			return c
		}
		return a.Gateway.Compare(b.Gateway)
	})
	return rt
}

// Routes returns the routes last passed to Set.
func (r *Router) Routes() []Route {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.desired)
}

// Installed reads our routes back from the kernel (or the fake), sorted by
// prefix, next hops by device name. Metrics are as stored (IPv6 metric 0 reads back as 1024).
func (r *Router) Installed() ([]Route, error) {
	cur, err := r.k.list(r.cfg.Table, r.cfg.Protocol)
	if err != nil {
		return nil, fmt.Errorf("route: list routes (table %d, protocol %d): %w", r.cfg.Table, r.cfg.Protocol, err)
	}
	out := make([]Route, 0, len(cur))
	for _, kr := range cur {
		out = append(out, r.toRoute(kr))
	}
	slices.SortFunc(out, func(a, b Route) int {
		if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits()); c != 0 {
			return c
		}
		return cmp.Compare(a.Metric, b.Metric)
	})
	return out, nil
}

// Close removes all of our routes. Later Sets fail; Close is idempotent.
func (r *Router) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	r.desired = nil
	n, err := r.flush()
	r.log.Info("route: removed our routes", "count", n, "table", r.cfg.Table, "protocol", r.cfg.Protocol)
	err = errors.Join(err, r.removeRules())
	if err != nil {
		return fmt.Errorf("route: close: %w", err)
	}
	return nil
}

// reportShadowed logs, once per pair, each desired prefix (other than a
// default route, which is below main by design) that a route of the main
// table (not cgw's, not a default route) overlaps, and remembers
// the current set for Shadowed. Only with a table of our own: in main the
// kernel's longest-prefix match already decides. Caller holds r.mu.
func (r *Router) reportShadowed(order []routeKey) {
	if r.cfg.Table == DefaultTable {
		return
	}
	mainRoutes, err := r.k.list(DefaultTable, -1)
	if err != nil {
		r.log.Warn("route: cannot read the main table to find overlaps with cgw's routes", "err", err)
		return
	}
	now := map[Shadow]bool{}
	for _, k := range order {
		for _, m := range mainRoutes {
			if k.dst.Bits() == 0 || m.proto == r.cfg.Protocol || m.dst.Bits() == 0 || !k.dst.Overlaps(m.dst) {
				continue
			}
			s := Shadow{Prefix: k.dst, By: m.dst}
			now[s] = true
			if !r.shadowed[s] {
				r.log.Warn("route: the host's main table also routes part of this prefix; policy routing consults main first, so the host's route wins for the addresses it covers",
					"prefix", s.Prefix.String(), "host_route", s.By.String())
			}
		}
	}
	r.shadowed = now
}

// Shadowed returns the overlaps found by the last Set, sorted.
func (r *Router) Shadowed() []Shadow {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Shadow, 0, len(r.shadowed))
	for s := range r.shadowed {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Shadow) int {
		if c := strings.Compare(a.Prefix.String(), b.Prefix.String()); c != 0 {
			return c
		}
		return strings.Compare(a.By.String(), b.By.String())
	})
	return out
}

// Foreign lists the destinations of the routes in the main table that cgw did
// not install (another protocol) and that lie inside one of within, leaving
// out routes through any of skipDevs (cgw's own tunnel devices) and the
// default route. The daemon announces them to AWS (bgp.advertise_kernel).
func (r *Router) Foreign(within []netip.Prefix, skipDevs []string) ([]netip.Prefix, error) {
	if len(within) == 0 {
		return nil, nil
	}
	skip := map[int]bool{}
	for _, d := range skipDevs {
		if i, err := r.k.linkIndex(d); err == nil {
			skip[i] = true
		}
	}
	rs, err := r.k.list(DefaultTable, -1)
	if err != nil {
		return nil, fmt.Errorf("route: list table %d: %w", DefaultTable, err)
	}
	seen := map[netip.Prefix]bool{}
	var out []netip.Prefix
next:
	for _, kr := range rs {
		if kr.proto == r.cfg.Protocol || kr.dst.Bits() == 0 || seen[kr.dst] {
			continue
		}
		for _, h := range kr.hops {
			if skip[h.link] {
				continue next
			}
		}
		for _, w := range within {
			if w.Addr().Is4() == kr.dst.Addr().Is4() && w.Bits() <= kr.dst.Bits() && w.Contains(kr.dst.Addr()) {
				seen[kr.dst] = true
				out = append(out, kr.dst)
				break
			}
		}
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int { return strings.Compare(a.String(), b.String()) })
	return out, nil
}
