package sim

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The two-gateway site (NewHA): AWS's recommended layout, two customer
// gateways, each with its own VPN connection, and an on-premises router
// that peers with both over BGP and chooses between them.
//
//	lan 10.1.0.10/24
//	 └─ rtr: lan0 10.1.0.1/24, br0 10.1.100.1/24 (BIRD AS 65100: announces 10.1.0.0/24, 0.0.0.0/0, 169.254.0.0/16)
//	     ├─ cust:  lan0 10.1.100.2/24, wan0 203.0.113.10 (gateway A, connection vpn-a: aws1 + aws2)
//	     └─ cust2: lan0 10.1.100.3/24, wan0 192.0.2.20   (gateway B, connection vpn-b: aws3 + aws4)
//	         └─ inet: cust0 203.0.113.1/24, cust2 192.0.2.1/24, br0 198.51.100.1/24
//	             ├─ aws1 198.51.100.10, aws2 198.51.100.20 (A's tunnels), aws3 198.51.100.30, aws4 198.51.100.40 (B's)
//	                 └─ vpc: BIRD, iBGP to all four endpoints; vpchost 10.0.0.10/16
//
// Each endpoint runs its own charon and BIRD as in the single-gateway
// simulation (MED 100 on tunnel 1, 200 on tunnel 2), with shorter timers
// so a dead gateway is noticed within seconds: DPD 2 s and BGP hold
// HAOptions.AWSHold toward the gateways. The VPC router breaks ties
// between equal paths toward the endpoint with the lowest number, so with
// equal AS paths it prefers gateway A.

// The roles NewHA adds.
const (
	Router Role = "rtr"
	Cust2  Role = "cust2"
	AWS3   Role = "aws3"
	AWS4   Role = "aws4"
)

// HARoles are the namespaces NewHA adds to the standard topology.
var HARoles = []Role{Router, Cust2, AWS3, AWS4}

// Addresses of the two-gateway site.
var (
	RouterLANAddr   = netip.MustParseAddr("10.1.0.1")
	RouterGWAddr    = netip.MustParseAddr("10.1.100.1")
	GatewaySegment  = netip.MustParsePrefix("10.1.100.0/24")
	Cust2PublicAddr = netip.MustParseAddr("192.0.2.20")
	InetCust2Addr   = netip.MustParseAddr("192.0.2.1")
)

// RouterASN is the on-premises router's ASN (eBGP to the gateways).
const RouterASN = 65100

// HAEndpoints are gateway B's two tunnels (endpoints 3 and 4).
var HAEndpoints = [2]Endpoint{
	{
		Index: 3, Role: AWS3,
		Outside:    netip.MustParseAddr("198.51.100.30"),
		Inside:     netip.MustParsePrefix("169.254.21.0/30"),
		AWSInside:  netip.MustParseAddr("169.254.21.1"),
		CustInside: netip.MustParseAddr("169.254.21.2"),
		DefaultPSK: "EXAMPLEpsk3_mnopqrstuv.wxyzABCDE",
	},
	{
		Index: 4, Role: AWS4,
		Outside:    netip.MustParseAddr("198.51.100.40"),
		Inside:     netip.MustParsePrefix("169.254.22.0/30"),
		AWSInside:  netip.MustParseAddr("169.254.22.1"),
		CustInside: netip.MustParseAddr("169.254.22.2"),
		DefaultPSK: "EXAMPLEpsk4_FGHIJKLMNO.PQRSTUVWX",
	},
}

// Gateway is one customer gateway of the two-gateway site.
type Gateway struct {
	Role       Role   // Cust (A) or Cust2 (B)
	Connection string // vpn-a, vpn-b
	Outside    netip.Addr
	LANAddr    netip.Addr // on the gateway segment
	Tunnels    [2]Endpoint
	// MED is the gateway's export.med toward the router: A 0, B 50, so
	// the router prefers A while A's preferred tunnel is up.
	MED uint32
}

// Gateways returns gateway A and B.
func Gateways() [2]Gateway {
	return [2]Gateway{
		{Role: Cust, Connection: "vpn-a", Outside: CustPublicAddr, LANAddr: netip.MustParseAddr("10.1.100.2"), Tunnels: Endpoints, MED: 0},
		{Role: Cust2, Connection: "vpn-b", Outside: Cust2PublicAddr, LANAddr: netip.MustParseAddr("10.1.100.3"), Tunnels: HAEndpoints, MED: 50},
	}
}

// HAOptions configure NewHA.
type HAOptions struct {
	ID      string
	Dir     string
	KeepDir bool
	Logf    func(format string, args ...any)
	Timeout time.Duration
	// AWSHold is the AWS endpoints' BGP hold time toward the gateways
	// (default 6 s, keepalive a third): how long AWS keeps sending to a
	// gateway that died.
	AWSHold time.Duration
	// RouterHold is the LAN router's hold time (default 3 s, keepalive
	// 1 s): how long the LAN keeps sending to a gateway that died.
	RouterHold time.Duration
}

// HA is a running two-gateway simulation. The embedded Sim serves the
// common operations (Exec, Birdc, Ping, StartCgwd, Close).
type HA struct {
	*Sim
	ha HAOptions
}

// NewHA builds the two-gateway site and starts the AWS side (four
// endpoints, the VPC router) and the LAN router; the gateways run
// nothing: start cgwd in Cust and Cust2 with GatewayConfig.
func NewHA(o HAOptions) (*HA, error) {
	if o.AWSHold == 0 {
		o.AWSHold = 6 * time.Second
	}
	if o.RouterHold == 0 {
		o.RouterHold = 3 * time.Second
	}
	if o.AWSHold < 3*time.Second || o.RouterHold < 3*time.Second {
		return nil, fmt.Errorf("sim: hold times %v/%v: BIRD needs at least 3s", o.AWSHold, o.RouterHold)
	}
	s, err := New(Options{ID: o.ID, Dir: o.Dir, KeepDir: o.KeepDir, Logf: o.Logf, Timeout: o.Timeout, AWS: AWSNone})
	if err != nil {
		return nil, err
	}
	h := &HA{Sim: s, ha: o}
	if err := h.build(); err != nil {
		s.Close()
		return nil, err
	}
	return h, nil
}

// haTransit is endpoint idx's (1-4) link to the vpc router.
func (h *HA) haTransit(idx int) (aws, vpc netip.Addr) {
	if idx <= 2 {
		return h.Transit(idx)
	}
	// Endpoints 3 and 4 take the /29 below the one of 1 and 2.
	a, v := h.Transit(idx - 2)
	for range 8 {
		a, v = a.Prev(), v.Prev()
	}
	return a, v
}

func (h *HA) build() error {
	for _, r := range HARoles {
		if err := h.addNamespace(r); err != nil {
			return err
		}
	}
	type link struct {
		a            Role
		aName, aAddr string
		b            Role
		bName, bAddr string // bAddr "br0": enslave to br0
	}
	if err := h.ip(Router, "link", "add", "br0", "type", "bridge"); err != nil {
		return err
	}
	if err := h.ip(Router, "addr", "add", netip.PrefixFrom(RouterGWAddr, 24).String(), "dev", "br0"); err != nil {
		return err
	}
	if err := h.ip(Router, "link", "set", "br0", "up"); err != nil {
		return err
	}
	// The LAN host's link moves from the gateway to the router, which
	// takes the gateway's address: the LAN host's default route stays.
	if err := h.ip(Cust, "link", "set", "lan0", "netns", h.NS(Router)); err != nil {
		return err
	}
	if err := h.ip(Router, "addr", "add", netip.PrefixFrom(RouterLANAddr, 24).String(), "dev", "lan0"); err != nil {
		return err
	}
	if err := h.ip(Router, "link", "set", "lan0", "up"); err != nil {
		return err
	}
	gws := Gateways()
	t3a, t3v := h.haTransit(3)
	t4a, t4v := h.haTransit(4)
	links := []link{
		{Cust, "lan0", netip.PrefixFrom(gws[0].LANAddr, 24).String(), Router, "gwa", "br0"},
		{Cust2, "lan0", netip.PrefixFrom(gws[1].LANAddr, 24).String(), Router, "gwb", "br0"},
		{Cust2, "wan0", netip.PrefixFrom(Cust2PublicAddr, 24).String(), Inet, "cust2", netip.PrefixFrom(InetCust2Addr, 24).String()},
		{AWS3, "wan0", netip.PrefixFrom(HAEndpoints[0].Outside, 24).String(), Inet, "aws3", "br0"},
		{AWS4, "wan0", netip.PrefixFrom(HAEndpoints[1].Outside, 24).String(), Inet, "aws4", "br0"},
		{AWS3, "vpc0", netip.PrefixFrom(t3a, 30).String(), VPC, "aws3", netip.PrefixFrom(t3v, 30).String()},
		{AWS4, "vpc0", netip.PrefixFrom(t4a, 30).String(), VPC, "aws4", netip.PrefixFrom(t4v, 30).String()},
	}
	for _, l := range links {
		if out, err := run("ip", "link", "add", l.aName, "netns", h.NS(l.a), "type", "veth", "peer", "name", l.bName, "netns", h.NS(l.b)); err != nil {
			return fmt.Errorf("sim: veth %s:%s-%s:%s: %v: %s", l.a, l.aName, l.b, l.bName, err, out)
		}
		steps := [][]string{{"addr", "add", l.aAddr, "dev", l.aName}, {"link", "set", l.aName, "up"}}
		for _, st := range steps {
			if err := h.ip(l.a, st...); err != nil {
				return err
			}
		}
		bStep := []string{"addr", "add", l.bAddr, "dev", l.bName}
		if l.bAddr == "br0" {
			bStep = []string{"link", "set", l.bName, "master", "br0"}
		}
		for _, st := range [][]string{bStep, {"link", "set", l.bName, "up"}} {
			if err := h.ip(l.b, st...); err != nil {
				return err
			}
		}
	}
	lan := h.opts.LANPrefix.String()
	routes := []struct {
		r    Role
		args []string
	}{
		// The gateways reach the on-premises prefixes through the router.
		{Cust, []string{lan, "via", RouterGWAddr.String()}},
		{Cust2, []string{lan, "via", RouterGWAddr.String()}},
		{Cust2, []string{"default", "via", InetCust2Addr.String()}},
		{AWS3, []string{"default", "via", InetAWSAddr.String()}},
		{AWS4, []string{"default", "via", InetAWSAddr.String()}},
		{AWS3, []string{h.opts.VPCPrefix.String(), "via", t3v.String()}},
		{AWS4, []string{h.opts.VPCPrefix.String(), "via", t4v.String()}},
	}
	for _, rt := range routes {
		if err := h.ip(rt.r, append([]string{"route", "add"}, rt.args...)...); err != nil {
			return err
		}
	}
	h.logf("two-gateway topology up")

	for _, g := range gws {
		for ti, e := range g.Tunnels {
			if err := h.startHAEndpoint(g, e, ti); err != nil {
				return fmt.Errorf("%w (endpoint %s)", err, e.Outside)
			}
		}
	}
	if err := h.startBird(VPC, h.haVPCBird()); err != nil {
		return err
	}
	if err := h.startBird(Router, h.routerBird()); err != nil {
		return err
	}
	h.logf("two-gateway AWS side and LAN router up")
	return nil
}

// startHAEndpoint starts charon and BIRD of gateway g's tunnel ti.
func (h *HA) startHAEndpoint(g Gateway, e Endpoint, ti int) error {
	dir := h.path(string(e.Role))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "swanctl.conf"), []byte(haSwanctlConf(g, e)), 0o600); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	if _, err := h.startCharon(e.Role, dir, true); err != nil {
		return err
	}
	if err := h.ip(e.Role, "addr", "replace", netip.PrefixFrom(e.AWSInside, 30).String(), "dev", "ipsec0"); err != nil {
		return err
	}
	if err := h.ip(e.Role, "route", "replace", h.opts.LANPrefix.String(), "dev", "ipsec0"); err != nil {
		return err
	}
	if err := h.loadSwanctl(e.Role); err != nil {
		return err
	}
	return h.startBird(e.Role, h.haEndpointBird(e, ti))
}

// haSwanctlConf is the AWS side of gateway g's tunnel e: AWS's defaults
// (aws-vpn-facts §9.4) but DPD every 2 s, and a new IKE SA from the
// gateway replaces the old one (a restarted gateway).
func haSwanctlConf(g Gateway, e Endpoint) string {
	name := fmt.Sprintf("aws-t%d", e.Index)
	var b strings.Builder
	fmt.Fprintf(&b, "connections {\n  %s {\n    version = 2\n", name)
	fmt.Fprintf(&b, "    local_addrs = %s\n    remote_addrs = %s\n", e.Outside, g.Outside)
	fmt.Fprintf(&b, "    proposals = %s\n", strings.Join(DefaultIKEProposals, ","))
	b.WriteString("    reauth_time = 0s\n    dpd_delay = 2s\n    encap = yes\n    mobike = no\n    unique = replace\n")
	fmt.Fprintf(&b, "    local {\n      auth = psk\n      id = %s\n    }\n", e.Outside)
	fmt.Fprintf(&b, "    remote {\n      auth = psk\n      id = %s\n    }\n", g.Outside)
	fmt.Fprintf(&b, "    children {\n      %s {\n        mode = tunnel\n        local_ts = 0.0.0.0/0\n        remote_ts = 0.0.0.0/0\n", name)
	fmt.Fprintf(&b, "        esp_proposals = %s\n", strings.Join(DefaultESPProposals, ","))
	b.WriteString("        dpd_action = clear\n        start_action = none\n        close_action = none\n      }\n    }\n  }\n}\n")
	fmt.Fprintf(&b, "secrets {\n  ike-%s {\n    id-1 = %s\n    id-2 = %s\n    secret = \"%s\"\n  }\n}\n", name, e.Outside, g.Outside, e.DefaultPSK)
	return b.String()
}

// haTimers are BIRD timers with hold time hold.
func haTimers(hold time.Duration) string {
	return fmt.Sprintf("    hold time %d;\n    keepalive time %d;\n    connect retry time 1;\n    connect delay time 1;\n    error wait time 1, 3;\n",
		int(hold/time.Second), max(1, int(hold/time.Second)/3))
}

// haEndpointBird is endpoint e's BIRD: eBGP to its gateway (AWS's
// refusals as in awsBirdConf), iBGP to the vpc router.
func (h *HA) haEndpointBird(e Endpoint, ti int) string {
	asn := h.opts.AWSASN
	var b strings.Builder
	fmt.Fprintf(&b, "log stderr all;\nrouter id %s;\nprotocol device {\n  scan time 10;\n}\n", e.AWSInside)
	fmt.Fprintf(&b, "protocol static vpc_cidrs {\n  ipv4;\n  route %s unreachable;\n}\n", h.opts.VPCPrefix)
	fmt.Fprintf(&b, "filter from_cgw {\n  if net.type != NET_IP4 then reject;\n  if bgp_path ~ [= * %d * =] then reject;\n  if bgp_next_hop != %s then reject;\n  accept;\n}\n", asn, e.CustInside)
	fmt.Fprintf(&b, "filter to_cgw {\n  if proto = \"vpc_cidrs\" then {\n    bgp_med = %d;\n    accept;\n  }\n  reject;\n}\n", 100*(ti+1))
	fmt.Fprintf(&b, "protocol bgp cgw {\n  local %s as %d;\n  neighbor %s as %d;\n%s", e.AWSInside, asn, e.CustInside, h.opts.CustomerASN, haTimers(h.ha.AWSHold))
	b.WriteString("  ipv4 {\n    import limit 100 action disable;\n    import filter from_cgw;\n    export filter to_cgw;\n  };\n}\n")
	b.WriteString("protocol kernel {\n  ipv4 {\n    import none;\n    export where proto = \"cgw\";\n  };\n}\n")
	ta, tv := h.haTransit(e.Index)
	fmt.Fprintf(&b, "protocol bgp vpc {\n  router id 10.255.0.%d;\n  local %s as %d;\n  neighbor %s as %d;\n  direct;\n%s", e.Index, ta, asn, tv, asn, birdTimers)
	b.WriteString("  ipv4 {\n    import none;\n    export where proto = \"cgw\";\n    next hop self;\n  };\n}\n")
	return b.String()
}

// haVPCBird: iBGP from all four endpoints, best routes into the kernel.
func (h *HA) haVPCBird() string {
	var b strings.Builder
	fmt.Fprintf(&b, "log stderr all;\nrouter id %s;\nprotocol device {\n  scan time 10;\n}\n", VPCRouterAddr)
	b.WriteString("protocol kernel {\n  ipv4 {\n    import none;\n    export all;\n  };\n}\n")
	for _, e := range append(Endpoints[:], HAEndpoints[:]...) {
		ta, tv := h.haTransit(e.Index)
		fmt.Fprintf(&b, "protocol bgp %s {\n  local %s as %d;\n  neighbor %s as %d;\n  direct;\n%s", e.Role, tv, h.opts.AWSASN, ta, h.opts.AWSASN, birdTimers)
		b.WriteString("  ipv4 {\n    import all;\n    export none;\n  };\n}\n")
	}
	return b.String()
}

// routerBird is the on-premises router: eBGP to both gateways, the LAN
// prefix plus a default route and 169.254.0.0/16 offered to them (which
// the gateways must not pass to AWS), the best path to the VPC into the
// kernel.
func (h *HA) routerBird() string {
	var b strings.Builder
	fmt.Fprintf(&b, "log stderr all;\nrouter id %s;\nprotocol device {\n  scan time 10;\n}\n", RouterGWAddr)
	fmt.Fprintf(&b, "protocol static onprem {\n  ipv4;\n  route %s unreachable;\n  route 0.0.0.0/0 unreachable;\n  route 169.254.0.0/16 unreachable;\n}\n", h.opts.LANPrefix)
	b.WriteString("protocol kernel {\n  ipv4 {\n    import none;\n    export where source = RTS_BGP;\n  };\n}\n")
	for i, g := range Gateways() {
		fmt.Fprintf(&b, "protocol bgp gw_%c {\n  local %s as %d;\n  neighbor %s as %d;\n%s", 'a'+i, RouterGWAddr, RouterASN, g.LANAddr, h.opts.CustomerASN, haTimers(h.ha.RouterHold))
		b.WriteString("  ipv4 {\n    import all;\n    export where proto = \"onprem\";\n  };\n}\n")
	}
	return b.String()
}

// GatewayConfig renders cgwd's configuration for gateway i (0 = A, 1 = B):
// its connection (BGP, hold time as the AWS side's, DPD 2 s), nothing in
// bgp.advertise (the on-premises prefixes come from the router), and the
// router as LAN neighbor with the gateway's MED. extraLAN is appended to
// the LAN neighbor (YAML, 6-space indented keys).
func (h *HA) GatewayConfig(i int, extraLAN string) string {
	g := Gateways()[i]
	hold := int(h.ha.AWSHold / time.Second)
	var b strings.Builder
	b.WriteString("version: 1\nlog: {format: text, level: info}\n")
	fmt.Fprintf(&b, "control: {socket: %s}\n", h.CgwdSocket(g.Role))
	b.WriteString("connections:\n")
	fmt.Fprintf(&b, "  - name: %s\n    local_address: %s\n    local_id: %s\n    routing: bgp\n", g.Connection, g.Outside, g.Outside)
	fmt.Fprintf(&b, "    bgp: {asn: %d, peer_asn: %d, hold_time: %ds, keepalive: %ds}\n", h.opts.CustomerASN, h.opts.AWSASN, hold, max(1, hold/3))
	b.WriteString("    tunnels:\n")
	for _, e := range g.Tunnels {
		fmt.Fprintf(&b, "      - name: %s-t%d\n        peer_address: %s\n        psk: %q\n        inside_cidr: %s\n", g.Connection, e.Index, e.Outside, e.DefaultPSK, e.Inside)
		b.WriteString("        dpd: {interval: 2s, retries: 3, action: restart}\n")
	}
	fmt.Fprintf(&b, "bgp:\n  lan_neighbors:\n    - name: router\n      address: %s\n      asn: %d\n      local_address: %s\n", RouterGWAddr, RouterASN, g.LANAddr)
	fmt.Fprintf(&b, "      hold_time: %ds\n      export: {med: %d}\n", int(h.ha.RouterHold/time.Second), g.MED)
	if extraLAN != "" {
		b.WriteString(strings.TrimRight(extraLAN, "\n") + "\n")
	}
	return b.String()
}
