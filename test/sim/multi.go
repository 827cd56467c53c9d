package sim

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Multi is the simulator's many-connections mode: N AWS VPN connections of
// two tunnels each, served by ONE charon (kernel-libipsec) and ONE BIRD in
// the aws1 namespace of a Sim created with AWS: AWSNone, each tunnel
// endpoint on its own alias address of aws1's wan0. It stands in for a hub
// terminating many connections, or a Transit Gateway with ECMP.
//
// One libipsec instance has one SPD, so tunnels cannot all use 0.0.0.0/0
// selectors (aws-vpn-facts §9.2 item 1): each tunnel's AWS side narrows to
// its inside /30 plus its connection's VPC prefix (local) and the inside
// /30 plus the LAN (remote). cgwd offers 0.0.0.0/0 and accepts the
// narrowing. Return traffic from a connection's own VPC prefix thus leaves
// through that connection; with SharedVPC every connection has the same
// VPC prefix, and AWS's return traffic takes the first matching tunnel
// (cgwd's outbound spread is what an ECMP test measures).
//
// Connection k (1-based) has:
//   - tunnel t (1, 2) with global index j = 2(k-1)+t-1: outside address
//     198.51.100.(30+j), inside /30 169.254.(20+j/64).(4·(j%64))/30;
//   - customer ASN MultiOptions.ASN(k) (default 65000+k), checked by BIRD
//     (the session fails with "Bad peer AS" otherwise);
//   - VPC prefix 10.100.k.0/24 with host 10.100.k.1
//     (or SharedVPCPrefix with host SharedVPCHost), on aws1's loopback
//     (the test kernels have no dummy devices);
//   - an advertise list for cgwd of the LAN plus 10.200.k.0/24, so a test
//     can see on BIRD's side that each connection sends only its own.
type Multi struct {
	s     *Sim
	opts  MultiOptions
	Conns []MultiConn
	// AWS's proposals (strongSwan syntax, lowest first)
	ikeProposals, espProposals []string
}

// MultiOptions configure StartMulti.
type MultiOptions struct {
	Connections int // 1..100
	// ASN is connection k's customer ASN; default 65000+k.
	ASN func(k int) uint32
	// SharedVPC gives every connection the VPC prefix SharedVPCPrefix, as
	// several VPN connections to one Transit Gateway.
	SharedVPC bool
	// ChildLifetime/RekeyMargin/RekeyFuzz as EndpointOptions (AWS
	// defaults 1h/270s/100 %; RekeyFuzz -1 = 0 %).
	ChildLifetime time.Duration
	RekeyMargin   time.Duration
	RekeyFuzz     int
	// DHGroups are every tunnel's Phase1DHGroupNumbers and
	// Phase2DHGroupNumbers (AWS group numbers); default AWS's default, all
	// of them. AWS's side then offers only these, lowest first as AWS
	// picks, and DescribeJSON states them in the tunnels' TunnelOptions.
	DHGroups []int
	// Cookies makes charon demand a COOKIE (RFC 7296, Section 2.6) of
	// nearly every IKE_SA_INIT from the customer gateway, to test cgwd's
	// cookie path; the default is a charon that never does (hubCharonConf).
	Cookies bool
}

// Shared VPC of MultiOptions.SharedVPC.
var (
	SharedVPCPrefix = netip.MustParsePrefix("10.50.0.0/16")
	SharedVPCHost   = netip.MustParseAddr("10.50.0.10")
)

// MultiConn is one simulated VPN connection.
type MultiConn struct {
	Index     int // 1-based
	Name      string
	ID        string // VPN connection ID in DescribeJSON (vpn- and 17 hex digits)
	ASN       uint32
	VPC       netip.Prefix
	VPCHost   netip.Addr
	Marker    netip.Prefix // advertised by this connection only
	Advertise []netip.Prefix
	Tunnels   [2]MultiTunnel
}

// MultiTunnel is one tunnel endpoint of a MultiConn.
type MultiTunnel struct {
	Name       string // cgwd's tunnel name and BIRD's protocol name
	Outside    netip.Addr
	Inside     netip.Prefix
	AWSInside  netip.Addr
	CustInside netip.Addr
	PSK        string
}

const maxMultiConns = 100

// StartMulti starts the many-connections AWS side in aws1. The Sim must
// have been created with AWS: AWSNone and BGP routing.
func (s *Sim) StartMulti(o MultiOptions) (*Multi, error) {
	m, err := s.newMulti(o)
	if err != nil {
		return nil, err
	}
	if err := m.start(); err != nil {
		return nil, err
	}
	return m, nil
}

// newMulti checks o and lays out the connections, starting nothing.
func (s *Sim) newMulti(o MultiOptions) (*Multi, error) {
	if s.opts.AWS != AWSNone || s.opts.Routing != RoutingBGP {
		return nil, fmt.Errorf("sim: StartMulti needs a Sim with AWS: AWSNone and BGP routing")
	}
	if o.Connections < 1 || o.Connections > maxMultiConns {
		return nil, fmt.Errorf("sim: StartMulti: %d connections, want 1..%d", o.Connections, maxMultiConns)
	}
	if o.ASN == nil {
		o.ASN = func(k int) uint32 { return 65000 + uint32(k) }
	}
	if o.ChildLifetime == 0 {
		o.ChildLifetime = time.Hour
	}
	if o.RekeyMargin == 0 {
		o.RekeyMargin = 270 * time.Second
	}
	if o.RekeyFuzz == 0 {
		o.RekeyFuzz = 100
	} else if o.RekeyFuzz < 0 {
		o.RekeyFuzz = 0
	}
	if o.RekeyMargin >= o.ChildLifetime {
		return nil, fmt.Errorf("sim: StartMulti: RekeyMargin %v must be below ChildLifetime %v", o.RekeyMargin, o.ChildLifetime)
	}
	m := &Multi{s: s, opts: o, ikeProposals: DefaultIKEProposals, espProposals: DefaultESPProposals}
	if len(o.DHGroups) > 0 {
		var err error
		if m.ikeProposals, m.espProposals, err = awsGroupProposals(o.DHGroups); err != nil {
			return nil, err
		}
	}
	for k := 1; k <= o.Connections; k++ {
		c := MultiConn{
			Index:   k,
			Name:    fmt.Sprintf("vpn-m%03d", k),
			ID:      s.multiConnectionID(k),
			ASN:     o.ASN(k),
			VPC:     netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 100, byte(k), 0}), 24),
			VPCHost: netip.AddrFrom4([4]byte{10, 100, byte(k), 1}),
			Marker:  netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 200, byte(k), 0}), 24),
		}
		if c.ASN == 0 || c.ASN == s.opts.AWSASN {
			return nil, fmt.Errorf("sim: StartMulti: connection %d: ASN %d must be non-zero and differ from AWS's %d", k, c.ASN, s.opts.AWSASN)
		}
		if o.SharedVPC {
			c.VPC, c.VPCHost = SharedVPCPrefix, SharedVPCHost
		}
		c.Advertise = []netip.Prefix{s.opts.LANPrefix, c.Marker}
		for t := range 2 {
			j := 2*(k-1) + t
			base := netip.AddrFrom4([4]byte{169, 254, byte(20 + j/64), byte(4 * (j % 64))})
			c.Tunnels[t] = MultiTunnel{
				Name:       fmt.Sprintf("%s-t%d", c.Name, t+1),
				Outside:    netip.AddrFrom4([4]byte{198, 51, 100, byte(30 + j)}),
				Inside:     netip.PrefixFrom(base, 30),
				AWSInside:  base.Next(),
				CustInside: base.Next().Next(),
				PSK:        fmt.Sprintf("Mpsk%03dt%d_abcdefgh.ijkl", k, t+1),
			}
		}
		m.Conns = append(m.Conns, c)
	}
	return m, nil
}

func (m *Multi) start() error {
	s := m.s
	dir := s.path(string(AWS1))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	hosts := map[netip.Prefix]bool{}
	for _, c := range m.Conns {
		if !hosts[c.VPC] {
			hosts[c.VPC] = true
			if err := s.ip(AWS1, "addr", "add", netip.PrefixFrom(c.VPCHost, c.VPC.Bits()).String(), "dev", "lo"); err != nil {
				return err
			}
		}
		for _, t := range c.Tunnels {
			if err := s.ip(AWS1, "addr", "add", t.Outside.String()+"/32", "dev", "wan0"); err != nil {
				return err
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "swanctl.conf"), []byte(m.swanctlConf()), 0o600); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	conf := hubCharonConf
	if m.opts.Cookies {
		conf += hubCookieConf
	}
	if _, err := s.startCharon(AWS1, dir, true, conf); err != nil {
		return err
	}
	for _, c := range m.Conns {
		for _, t := range c.Tunnels {
			if err := s.ip(AWS1, "addr", "add", netip.PrefixFrom(t.AWSInside, 30).String(), "dev", "ipsec0"); err != nil {
				return err
			}
		}
	}
	if err := s.ip(AWS1, "route", "replace", s.opts.LANPrefix.String(), "dev", "ipsec0"); err != nil {
		return err
	}
	if err := s.loadSwanctl(AWS1); err != nil {
		return err
	}
	if err := s.startBird(AWS1, m.birdConf()); err != nil {
		return err
	}
	s.logf("multi: %d connections (%d tunnels) served from aws1", len(m.Conns), 2*len(m.Conns))
	return nil
}

// hubCharonConf tunes the one charon that serves every connection, so that
// the simulated AWS side is not what limits a start of many tunnels.
// strongSwan's defaults suit a gateway facing many peers, not one peer with
// hundreds of tunnels: every cgwd tunnel starts from the same address, so
// with dos_protection (charon.cookie_threshold_ip = 3, block_threshold = 5)
// charon demands a COOKIE after the third half-open IKE SA from that
// address and silently drops IKE_SA_INITs after the fifth, and the start of
// 200 tunnels became a sequence of cookie round trips and 4 s
// retransmissions (13 to 32 s). AWS's endpoints are separate per tunnel and
// do not do that to one customer gateway. The IKE SA table (default one
// bucket, one lock) gets a bucket per expected SA, and more workers keep
// the DH and AUTH jobs of a burst from queueing behind libipsec's.
const hubCharonConf = `charon {
  dos_protection = no
  threads = 32
  ikesa_table_size = 256
  ikesa_table_segments = 16
}
`

// hubCookieConf turns strongSwan's DoS protection back on with a COOKIE
// demanded once one IKE SA from the address is half-open (and for 10 s
// after), but nothing dropped: every tunnel still comes up, through the
// cookie exchange.
const hubCookieConf = `charon {
  dos_protection = yes
  cookie_threshold = 1
  cookie_threshold_ip = 1
  block_threshold = 1000
}
`

// swanctlConf renders one connection per tunnel, AWS as local, as
// awsSwanctlConf does for a single endpoint.
func (m *Multi) swanctlConf() string {
	o := m.opts
	rand := o.RekeyMargin * time.Duration(o.RekeyFuzz) / 100
	var b, sec strings.Builder
	b.WriteString("connections {\n")
	for _, c := range m.Conns {
		for _, t := range c.Tunnels {
			fmt.Fprintf(&b, "  %s {\n    version = 2\n", t.Name)
			fmt.Fprintf(&b, "    local_addrs = %s\n    remote_addrs = %s\n", t.Outside, CustPublicAddr)
			fmt.Fprintf(&b, "    proposals = %s\n", strings.Join(m.ikeProposals, ","))
			b.WriteString("    rekey_time = 0s\n    reauth_time = 0s\n    dpd_delay = 10s\n    dpd_timeout = 30s\n")
			b.WriteString("    encap = yes\n    mobike = no\n    fragmentation = yes\n")
			fmt.Fprintf(&b, "    local {\n      auth = psk\n      id = %s\n    }\n", t.Outside)
			fmt.Fprintf(&b, "    remote {\n      auth = psk\n      id = %s\n    }\n", CustPublicAddr)
			fmt.Fprintf(&b, "    children {\n      %s {\n        mode = tunnel\n", t.Name)
			fmt.Fprintf(&b, "        local_ts = %s,%s\n        remote_ts = %s,%s\n", t.Inside, c.VPC, t.Inside, m.s.opts.LANPrefix)
			fmt.Fprintf(&b, "        esp_proposals = %s\n", strings.Join(m.espProposals, ","))
			fmt.Fprintf(&b, "        life_time = %s\n        rekey_time = %s\n        rand_time = %s\n",
				secs(o.ChildLifetime), secs(o.ChildLifetime-o.RekeyMargin), secs(rand))
			b.WriteString("        replay_window = 1024\n        dpd_action = clear\n        start_action = none\n        close_action = none\n")
			b.WriteString("      }\n    }\n  }\n")
			fmt.Fprintf(&sec, "  ike-%s {\n    id-1 = %s\n    id-2 = %s\n    secret = \"%s\"\n  }\n", t.Name, t.Outside, CustPublicAddr, t.PSK)
		}
	}
	b.WriteString("}\nsecrets {\n")
	b.WriteString(sec.String())
	b.WriteString("}\n")
	return b.String()
}

// birdConf renders one BIRD with a session per tunnel. Each connection's
// sessions expect its own customer ASN and send only its VPC prefix (MED
// 100 on both tunnels, so every tunnel's path is equally good).
func (m *Multi) birdConf() string {
	asn := m.s.opts.AWSASN
	var b strings.Builder
	b.WriteString("log stderr all;\nrouter id 10.255.255.1;\n")
	b.WriteString("protocol device {\n  scan time 10;\n}\n")
	seen := map[netip.Prefix]string{}
	for _, c := range m.Conns {
		if _, ok := seen[c.VPC]; ok {
			continue
		}
		name := fmt.Sprintf("vpc_%d", len(seen))
		seen[c.VPC] = name
		fmt.Fprintf(&b, "protocol static %s {\n  ipv4;\n  route %s unreachable;\n}\n", name, c.VPC)
	}
	for _, c := range m.Conns {
		for _, t := range c.Tunnels {
			proto := birdName(t.Name)
			fmt.Fprintf(&b, "protocol bgp %s {\n  local %s as %d;\n  neighbor %s as %d;\n%s", proto, t.AWSInside, asn, t.CustInside, c.ASN, birdTimers)
			fmt.Fprintf(&b, "  ipv4 {\n    import limit 100 action disable;\n    import filter {\n      if bgp_path ~ [= * %d * =] then reject;\n      if bgp_next_hop != %s then reject;\n      accept;\n    };\n", asn, t.CustInside)
			fmt.Fprintf(&b, "    export filter {\n      if proto = \"%s\" then {\n        bgp_med = 100;\n        accept;\n      }\n      reject;\n    };\n  };\n}\n", seen[c.VPC])
		}
	}
	return b.String()
}

// birdName is BIRD's protocol name for a tunnel (letters, digits, _).
func birdName(tunnel string) string { return strings.ReplaceAll(tunnel, "-", "_") }

// BGP returns BIRD's view of the session of tunnel t (0, 1) of connection
// k (1-based).
func (m *Multi) BGP(k, t int) (BGPStatus, error) {
	return m.s.BGPProtocol(AWS1, birdName(m.Conns[k-1].Tunnels[t].Name))
}

// Received lists the prefixes BIRD received on that session, and the AS
// path of each ("65001" for a path of one AS).
func (m *Multi) Received(k, t int) (map[netip.Prefix]string, error) {
	out, err := m.s.Birdc(AWS1, "show", "route", "protocol", birdName(m.Conns[k-1].Tunnels[t].Name), "all")
	if err != nil {
		return nil, err
	}
	got := map[netip.Prefix]string{}
	var cur netip.Prefix
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if p, err := netip.ParsePrefix(f[0]); err == nil {
			cur = p
			got[p] = ""
			continue
		}
		if f[0] == "BGP.as_path:" && cur.IsValid() {
			got[cur] = strings.Join(f[1:], " ")
		}
	}
	return got, nil
}

// MultiCgwdOptions describe cgwd's side of a Multi.
type MultiCgwdOptions struct {
	Conns    []int  // 1-based connections to configure; default all
	BGPMode  string // active-passive (default) or active-active
	LogLevel string // default info
	Metrics  string // metrics.listen; default off
	Extra    string // appended to every tunnel (8-space indented YAML)
}

// CgwdConfig renders cgwd's configuration for some of the connections:
// each with its own ASN and its own advertise list.
func (m *Multi) CgwdConfig(o MultiCgwdOptions) string {
	s := m.s
	if len(o.Conns) == 0 {
		for _, c := range m.Conns {
			o.Conns = append(o.Conns, c.Index)
		}
	}
	if o.BGPMode == "" {
		o.BGPMode = "active-passive"
	}
	if o.LogLevel == "" {
		o.LogLevel = "info"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\nlog: {format: text, level: %s}\n", o.LogLevel)
	fmt.Fprintf(&b, "control: {socket: %s}\nmetrics: {listen: \"%s\"}\n", s.CgwdSocket(Cust), o.Metrics)
	b.WriteString("routes: {table: 199, protocol: 199, metric: 100, fwmark: 0xc7}\nconnections:\n")
	for _, k := range o.Conns {
		c := m.Conns[k-1]
		var adv []string
		for _, p := range c.Advertise {
			adv = append(adv, p.String())
		}
		fmt.Fprintf(&b, "  - name: %s\n    local_address: %s\n    local_id: %s\n    routing: bgp\n", c.Name, s.CustOutsideAddr(), CustPublicAddr)
		fmt.Fprintf(&b, "    bgp:\n      asn: %d\n      peer_asn: %d\n      advertise: [%s]\n      mode: %s\n", c.ASN, s.opts.AWSASN, strings.Join(adv, ", "), o.BGPMode)
		b.WriteString("    tunnels:\n")
		for _, t := range c.Tunnels {
			fmt.Fprintf(&b, "      - name: %s\n        peer_address: %s\n        peer_id: %s\n", t.Name, t.Outside, t.Outside)
			fmt.Fprintf(&b, "        psk: \"%s\"\n        inside_cidr: %s\n", t.PSK, t.Inside)
			if o.Extra != "" {
				b.WriteString(strings.TrimRight(o.Extra, "\n") + "\n")
			}
		}
	}
	return b.String()
}
