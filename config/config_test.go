package config

import (
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cgwproject/cgw/ipsec"
)

// base is a minimal valid file. Line numbers matter: the helpers below
// insert lines at fixed places so tests know where a field lives.
const base = `version: 1
connections:
  - name: vpn-1
    routing: bgp
    bgp:
      asn: 65000
      advertise: [10.1.0.0/16]
    tunnels:
      - peer_address: 198.51.100.10
        psk: EXAMPLEpsk1_abcdefghij.klmnopqrs
        inside_cidr: 169.254.15.192/30
      - peer_address: 198.51.100.20
        psk: EXAMPLEpsk2_abcdefghij.klmnopqrs
        inside_cidr: 169.254.13.236/30
`

// insertAfter inserts lines after line n (1-based) of base, indented.
func insertAfter(n int, indent string, lines ...string) string {
	all := strings.Split(strings.TrimSuffix(base, "\n"), "\n")
	var extra []string
	for _, l := range lines {
		extra = append(extra, indent+l)
	}
	out := append(append(append([]string{}, all[:n]...), extra...), all[n:]...)
	return strings.Join(out, "\n") + "\n"
}

// t1 adds keys to the first tunnel: the first added line is line 12.
func t1(lines ...string) string { return insertAfter(11, "        ", lines...) }

// conn adds keys to the connection (after name): first added line is 4.
func conn(lines ...string) string { return insertAfter(3, "    ", lines...) }

// bgpKeys adds keys to the bgp section: first added line is 8.
func bgpKeys(lines ...string) string { return insertAfter(7, "      ", lines...) }

// top appends top-level keys: first added line is 15.
func top(lines ...string) string { return insertAfter(14, "", lines...) }

func replaceLine(n int, with string) string {
	all := strings.Split(strings.TrimSuffix(base, "\n"), "\n")
	all[n-1] = with
	return strings.Join(all, "\n") + "\n"
}

func deleteLines(from, to int) string {
	all := strings.Split(strings.TrimSuffix(base, "\n"), "\n")
	out := append(append([]string{}, all[:from-1]...), all[to:]...)
	return strings.Join(out, "\n") + "\n"
}

func fieldErrors(t *testing.T, err error) []*FieldError {
	t.Helper()
	if err == nil {
		return nil
	}
	var out []*FieldError
	var walk func(error)
	walk = func(e error) {
		if fe, ok := e.(*FieldError); ok {
			out = append(out, fe)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		t.Errorf("error %T is not a *FieldError: %v", e, e)
	}
	walk(err)
	return out
}

func mustParse(t *testing.T, yml string) (*Config, []Warning) {
	t.Helper()
	cfg, warns, err := Parse([]byte(yml), "test.yaml")
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, yml)
	}
	return cfg, warns
}

func TestBaseIsValid(t *testing.T) {
	_, warns := mustParse(t, base)
	if len(warns) != 0 {
		t.Errorf("warnings: %v", warns)
	}
}

func TestExampleIsValid(t *testing.T) {
	cfg, warns := mustParse(t, string(Example()))
	if len(warns) != 0 {
		t.Errorf("example has warnings: %v", warns)
	}
	if len(cfg.Connections) != 1 || len(cfg.Connections[0].Tunnels) != 2 {
		t.Fatalf("example: %+v", cfg)
	}
	// The example states the defaults explicitly: it must equal the
	// defaulted minimal form.
	min, _ := mustParse(t, base)
	ex := cfg.Connections[0].Tunnels[0]
	def := min.Connections[0].Tunnels[0]
	ex.Name, ex.PeerAddress, ex.PeerID, ex.PSK, ex.InsideCIDR = def.Name, def.PeerAddress, def.PeerID, def.PSK, def.InsideCIDR
	if !reflect.DeepEqual(ex, def) {
		t.Errorf("example tunnel differs from the defaults:\n%+v\n%+v", ex, def)
	}
	if !reflect.DeepEqual(cfg.Log, min.Log) || cfg.Control != min.Control || cfg.Routes != min.Routes || cfg.Metrics != min.Metrics {
		t.Errorf("example globals differ from the defaults")
	}
	if b := cfg.Connections[0].BGP; b.HoldTime != 30*time.Second || b.Keepalive != 10*time.Second || b.PeerASN != 64512 {
		t.Errorf("example bgp: %+v", b)
	}
}

func TestDefaults(t *testing.T) {
	cfg, _ := mustParse(t, base)
	if cfg.Version != 1 || cfg.Source != "test.yaml" {
		t.Errorf("version/source: %d %q", cfg.Version, cfg.Source)
	}
	if cfg.Log != (Log{Format: LogText, Level: slog.LevelInfo}) {
		t.Errorf("log: %+v", cfg.Log)
	}
	if cfg.Control.Socket != "/run/cgw/cgw.sock" || cfg.Metrics.Listen != "" {
		t.Errorf("control/metrics: %+v %+v", cfg.Control, cfg.Metrics)
	}
	if cfg.Routes != (Routes{Table: 199, Protocol: 199, Metric: 100, FwMark: 0xc7, RulePriority: 32000}) {
		t.Errorf("routes: %+v", cfg.Routes)
	}
	c := cfg.Connections[0]
	if c.Name != "vpn-1" || c.Routing != RoutingBGP || c.Static != nil || c.LocalAddress.IsValid() || c.LocalID.IsValid() {
		t.Errorf("connection: %+v", c)
	}
	wantBGP := &BGP{ASN: 65000, PeerASN: 64512, HoldTime: 30 * time.Second, Keepalive: 10 * time.Second,
		Advertise: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}, Mode: ActivePassive, SecondaryPrepend: 2}
	if !reflect.DeepEqual(c.BGP, wantBGP) {
		t.Errorf("bgp: %+v", c.BGP)
	}
	tun := c.Tunnels[0]
	var ike, esp []ipsec.Proposal
	for _, s := range ipsec.DefaultIKEProposals {
		p, _ := ipsec.ParseProposal(s, true)
		ike = append(ike, p)
	}
	for _, s := range ipsec.DefaultESPProposals {
		p, _ := ipsec.ParseProposal(s, false)
		esp = append(esp, p)
	}
	zero := netip.MustParsePrefix("0.0.0.0/0")
	want := Tunnel{
		Name:          "vpn-1-t1",
		PeerAddress:   netip.MustParseAddr("198.51.100.10"),
		PeerID:        netip.MustParseAddr("198.51.100.10"),
		PSK:           Secret("EXAMPLEpsk1_abcdefghij.klmnopqrs"),
		Auth:          AuthPSK,
		InsideCIDR:    netip.MustParsePrefix("169.254.15.192/30"),
		IKEProposals:  ike,
		ESPProposals:  esp,
		IKELifetime:   28800 * time.Second,
		ChildLifetime: 3600 * time.Second,
		RekeyMargin:   270 * time.Second,
		RekeyFuzz:     100,
		DPD:           DPD{Interval: 10 * time.Second, Retries: 3, Action: DPDRestart},
		StartupAction: StartInitiate, Encapsulation: EncapUDP,
		TrafficSelectors: TrafficSelectors{
			Local: []netip.Prefix{zero}, Remote: []netip.Prefix{zero},
		},
		NATKeepalive: 20 * time.Second,
		ReplayWindow: 1024,
		MSSClamp:     1379,
		Oversize:     OversizeFragment,
		SourceCheck:  SourceStrict,
		Keepalive:    Keepalive{Interval: 5 * time.Second},

		IKEFragmentSize: 1280,
	}
	if !reflect.DeepEqual(tun, want) {
		t.Errorf("tunnel:\n got %+v\nwant %+v", tun, want)
	}
	if c.Tunnels[1].Name != "vpn-1-t2" {
		t.Errorf("second tunnel name %q", c.Tunnels[1].Name)
	}
	if got := tun.InsidePeer(); got != netip.MustParseAddr("169.254.15.193") {
		t.Errorf("InsidePeer = %v", got)
	}
	if got := tun.InsideLocal(); got != netip.MustParseAddr("169.254.15.194") {
		t.Errorf("InsideLocal = %v", got)
	}
	if tun.InsideLocal6().IsValid() || tun.InsidePeer6().IsValid() {
		t.Error("IPv6 inside addresses without a CIDR")
	}
	// The defaults are one AEAD and one CBC proposal per phase that
	// together contain every algorithm AWS accepts (ipsec.AWSProposals).
	for _, tc := range []struct {
		ike   bool
		props []ipsec.Proposal
	}{{true, ike}, {false, tun.ESPProposals}} {
		if len(tc.props) != 2 || !tc.props[0].Encrs[0].ID.IsAEAD() || tc.props[1].Encrs[0].ID.IsAEAD() {
			t.Errorf("ike=%v: defaults are not one AEAD and one CBC proposal: %v", tc.ike, tc.props)
			continue
		}
		for i, aws := range ipsec.AWSProposals(tc.ike) {
			d := tc.props[1-i] // AWSProposals lists CBC first
			if !containsAll(d.Encrs, aws.Encrs) || !containsAll(d.Integs, aws.Integs) || !containsAll(d.PRFs, aws.PRFs) || !containsAll(d.DHGroups, aws.DHGroups) {
				t.Errorf("ike=%v: default %v lacks some of AWS's %v", tc.ike, d, aws)
			}
		}
	}
}

func containsAll[T comparable](have, want []T) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

func TestDefault(t *testing.T) {
	d := Default()
	cfg, _ := mustParse(t, "version: 1\n")
	cfg.Source = ""
	if !reflect.DeepEqual(d, cfg) {
		t.Errorf("Default() = %+v, parse of an empty file = %+v", d, cfg)
	}
}

func TestExplicitValues(t *testing.T) {
	yml := `version: 1
log: {format: json, level: debug}
control: {socket: /var/run/x.sock}
metrics: {listen: "127.0.0.1:9810"}
routes: {table: 100, protocol: 200, metric: 5, fwmark: 0x10, rule_priority: 100}
connections:
  - name: vpn-static
    local_address: 203.0.113.10
    routing: static
    static: {remote_prefixes: [10.0.0.0/16, 10.2.0.0/16]}
    tunnels:
      - name: a
        peer_address: 198.51.100.10
        peer_id: 198.51.100.99
        psk: EXAMPLEpsk1_abcdefghij.klmnopqrs
        inside_cidr: 169.254.15.192/30
        ike_proposals: [aes256-sha512-modp4096]
        esp_proposals: [aes256gcm16-modp4096-esn-noesn]
        ike_lifetime: 3600
        child_lifetime: 15m
        rekey_margin: 60s
        rekey_fuzz: 0
        dpd: {interval: 5s, retries: 5, action: clear}
        startup_action: respond
        force_encap: true
        nat_keepalive: 0
        replay_window: 64
        mtu: 1400
        mss_clamp: 0
        oversize: icmp
        keepalive: {target: "10.0.0.1", interval: 2s}
      - name: b
        peer_address: 198.51.100.20
        psk: EXAMPLEpsk2_abcdefghij.klmnopqrs
        inside_cidr: 169.254.13.236/30
        traffic_selectors: {local: [192.168.0.0/24], remote: [10.0.0.0/16, 10.2.0.0/16]}
`
	cfg, warns := mustParse(t, yml)
	if len(warns) != 0 {
		t.Errorf("warnings: %v", warns)
	}
	if cfg.Log != (Log{Format: LogJSON, Level: slog.LevelDebug}) || cfg.Control.Socket != "/var/run/x.sock" ||
		cfg.Metrics.Listen != "127.0.0.1:9810" || cfg.Routes != (Routes{100, 200, 5, 0x10, 100}) {
		t.Errorf("globals: %+v", cfg)
	}
	c := cfg.Connections[0]
	if c.Routing != RoutingStatic || c.BGP != nil || len(c.Static.RemotePrefixes) != 2 ||
		c.LocalAddress != netip.MustParseAddr("203.0.113.10") || c.LocalID != c.LocalAddress {
		t.Errorf("connection: %+v", c)
	}
	a := c.Tunnels[0]
	if a.Name != "a" || a.PeerID != netip.MustParseAddr("198.51.100.99") || a.IKELifetime != time.Hour ||
		a.ChildLifetime != 15*time.Minute || a.RekeyMargin != time.Minute || a.RekeyFuzz != 0 ||
		a.DPD != (DPD{5 * time.Second, 5, DPDClear}) || a.StartupAction != StartRespond || !a.ForceEncap ||
		a.NATKeepalive != 0 || a.ReplayWindow != 64 || a.MTU != 1400 || a.MSSClamp != 0 || a.Oversize != OversizeICMP ||
		a.Keepalive != (Keepalive{netip.MustParseAddr("10.0.0.1"), 2 * time.Second}) {
		t.Errorf("tunnel a: %+v", a)
	}
	if len(a.ESPProposals) != 1 || a.ESPProposals[0].String() != "aes256gcm16-modp4096-esn-noesn" {
		t.Errorf("esp: %v", a.ESPProposals)
	}
	b := c.Tunnels[1]
	if len(b.TrafficSelectors.Remote) != 2 || b.TrafficSelectors.Local[0] != netip.MustParsePrefix("192.168.0.0/24") {
		t.Errorf("selectors: %+v", b.TrafficSelectors)
	}
}

func TestIPv6Inside(t *testing.T) {
	yml := strings.Replace(base, "10.1.0.0/16", "2001:db8:1::/48", 1)
	yml = strings.Replace(yml, "inside_cidr: 169.254.15.192/30", "inside_cidr: 169.254.15.192/30\n        inside_ipv6_cidr: fd00:1::/126", 1)
	yml = strings.Replace(yml, "inside_cidr: 169.254.13.236/30", "inside_cidr: 169.254.13.236/30\n        inside_ipv6_cidr: fd00:2::/126", 1)
	cfg, warns := mustParse(t, yml)
	if len(warns) != 0 {
		t.Errorf("warnings: %v", warns)
	}
	a := cfg.Connections[0].Tunnels[0]
	if a.InsidePeer6() != netip.MustParseAddr("fd00:1::1") || a.InsideLocal6() != netip.MustParseAddr("fd00:1::2") {
		t.Errorf("IPv6 inside: %v %v", a.InsidePeer6(), a.InsideLocal6())
	}
	// IPv6-inside tunnels default to ::/0 selectors.
	if got := a.TrafficSelectors.Local; len(got) != 1 || got[0] != netip.MustParsePrefix("::/0") {
		t.Errorf("IPv6 default selectors: %v", got)
	}
	// The IPv4 inside /30 stays mandatory (AWS assigns one to every tunnel).
	if a.InsideCIDR != netip.MustParsePrefix("169.254.15.192/30") {
		t.Errorf("inside: %v", a.InsideCIDR)
	}
}

func TestStaticInferredFromSection(t *testing.T) {
	yml := strings.Replace(deleteLines(4, 7), "    tunnels:", "    static: {remote_prefixes: [10.0.0.0/16]}\n    tunnels:", 1)
	cfg, _ := mustParse(t, yml)
	if cfg.Connections[0].Routing != RoutingStatic {
		t.Errorf("routing = %q", cfg.Connections[0].Routing)
	}
}

// TestValidation checks every rule: the error names the field path, the
// line and says what to do.
func TestValidation(t *testing.T) {
	tests := []struct {
		name string
		yml  string
		path string
		line int
		msg  string // substring of the error
	}{
		// Global sections.
		{"missing version", deleteLines(1, 1), "version", 1, "missing schema version"},
		{"version 2", replaceLine(1, "version: 2"), "version", 1, "unsupported schema version 2"},
		{"log format", top("log: {format: xml}"), "log.format", 15, `invalid value "xml"`},
		{"log level", top("log: {level: verbose}"), "log.level", 15, "use one of: debug, info, warn, error"},
		{"socket relative", top("control: {socket: cgw.sock}"), "control.socket", 15, "not absolute"},
		{"metrics no port", top("metrics: {listen: localhost}"), "metrics.listen", 15, "host:port"},
		{"metrics port 0", top("metrics: {listen: '127.0.0.1:0'}"), "metrics.listen", 15, "invalid port"},
		{"metrics host", top("metrics: {listen: 'my host:80'}"), "metrics.listen", 15, "invalid host"},
		{"routes table local", top("routes:", "  table: 255"), "routes.table", 16, "local table"},
		{"routes table 0", top("routes:", "  table: 0"), "routes.table", 16, "out of range"},
		{"routes table main", top("routes:", "  table: 254"), "routes.table", 16, "main table"},
		{"routes fwmark 0", top("routes:", "  fwmark: 0"), "routes.fwmark", 16, "out of range"},
		{"routes rule_priority", top("routes:", "  rule_priority: 32765"), "routes.rule_priority", 16, "out of range"},
		{"routes protocol", top("routes:", "  protocol: 4"), "routes.protocol", 16, "reserved by the kernel"},
		{"routes protocol range", top("routes:", "  protocol: 256"), "routes.protocol", 16, "out of range"},
		{"routes metric", top("routes:", "  metric: -1"), "routes.metric", 16, "out of range"},

		// Connection.
		{"missing name", replaceLine(3, "  - local_id: 203.0.113.10"), "connections[0].name", 3, "missing connection name"},
		{"bad name", replaceLine(3, `  - name: "vpn 1"`), "connections[0].name", 3, "invalid name"},
		{"local_address", conn("local_address: 203.0.113"), "connections[0].local_address", 4, "invalid IP address"},
		{"local_id", conn("local_id: host.example"), "connections[0].local_id", 4, "invalid IP address"},
		{"routing", replaceLine(4, "    routing: ospf"), "connections[0].routing", 4, "use one of: bgp, static"},
		{"bgp missing", deleteLines(5, 7), "connections[0].bgp", 3, "needs a bgp section"},
		{"static with bgp section", replaceLine(4, "    routing: static"), "connections[0].bgp", 5, "bgp section with static routing"},
		{"static without prefixes", replaceLine(4, "    routing: static"), "connections[0].static.remote_prefixes", 3, "needs remote_prefixes"},
		{"bgp with static section", conn("static: {remote_prefixes: [10.0.0.0/16]}"), "connections[0].static", 4, "static section with BGP routing"},
		{"static bad prefix", strings.Replace(deleteLines(4, 7), "    tunnels:", "    static: {remote_prefixes: [10.0.0.0/33]}\n    tunnels:", 1), "connections[0].static.remote_prefixes[0]", 4, "invalid prefix"},

		// BGP.
		{"asn missing", replaceLine(6, "      hold_time: 30s"), "connections[0].bgp.asn", 5, "missing ASN"},
		{"asn 0", replaceLine(6, "      asn: 0"), "connections[0].bgp.asn", 6, "out of range"},
		{"asn too big", replaceLine(6, "      asn: 4294967295"), "connections[0].bgp.asn", 6, "out of range"},
		{"asn trans", replaceLine(6, "      asn: 23456"), "connections[0].bgp.asn", 6, "AS_TRANS"},
		{"asn 65535", replaceLine(6, "      asn: 65535"), "connections[0].bgp.asn", 6, "reserved"},
		{"asn equals peer", bgpKeys("peer_asn: 65000"), "connections[0].bgp.asn", 6, "eBGP"},
		{"peer asn 0", bgpKeys("peer_asn: 0"), "connections[0].bgp.peer_asn", 8, "out of range"},
		{"secondary_med active-active", bgpKeys("mode: active-active", "secondary_med: 50"), "connections[0].bgp.secondary_med", 9, "active-passive mode only"},
		{"advertise_kernel", bgpKeys("advertise_kernel: [10.0.0.0/33]"), "connections[0].bgp.advertise_kernel[0]", 8, "invalid prefix"},
		{"import allow", bgpKeys("import: {allow: [10.0.0.0/33]}"), "connections[0].bgp.import.allow[0]", 8, "invalid prefix"},
		{"import deny", bgpKeys("import: {deny: [bogus]}"), "connections[0].bgp.import.deny[0]", 8, "invalid prefix"},
		{"import key", bgpKeys("import: {accept_defaults: true}"), "connections[0].bgp.import.accept_defaults", 8, "unknown"},
		{"source_check", t1("source_check: loose"), "connections[0].tunnels[0].source_check", 12, `invalid value "loose"`},
		{"extra_sources", t1("extra_sources: [10.0.0.1/40]"), "connections[0].tunnels[0].extra_sources[0]", 12, "invalid prefix"},
		{"password too long", bgpKeys("password: " + strings.Repeat("k", 81)), "connections[0].bgp.password", 8, "81 characters"},
		{"password twice", bgpKeys("password: secret1", "password_file: /nonexistent"), "connections[0].bgp.password_file", 9, "not both"},
		{"hold time 2s", bgpKeys("hold_time: 2s"), "connections[0].bgp.hold_time", 8, "RFC 4271"},
		{"hold time fraction", bgpKeys("hold_time: 30.5s"), "connections[0].bgp.hold_time", 8, "whole seconds"},
		{"keepalive >= hold", bgpKeys("keepalive: 30s"), "connections[0].bgp.keepalive", 8, "not shorter than hold_time"},
		{"keepalive 0", bgpKeys("keepalive: 0s"), "connections[0].bgp.keepalive", 8, "keepalive 0"},
		{"keepalive without hold", bgpKeys("hold_time: 0", "keepalive: 10s"), "connections[0].bgp.keepalive", 9, "without a hold time"},
		{"advertise host bits", replaceLine(7, "      advertise: [10.1.0.1/16]"), "connections[0].bgp.advertise[0]", 7, "write 10.1.0.0/16"},
		{"advertise not prefix", replaceLine(7, "      advertise: [10.1.0.0]"), "connections[0].bgp.advertise[0]", 7, "invalid prefix"},
		{"advertise duplicate", replaceLine(7, "      advertise: [10.1.0.0/16, 10.1.0.0/16]"), "connections[0].bgp.advertise[1]", 7, "listed twice"},
		{"mode", bgpKeys("mode: ecmp"), "connections[0].bgp.mode", 8, "active-passive, active-active"},
		{"prepend range", bgpKeys("secondary_prepend: 11"), "connections[0].bgp.secondary_prepend", 8, "out of range"},
		{"prepend active-active", bgpKeys("mode: active-active", "secondary_prepend: 2"), "connections[0].bgp.secondary_prepend", 9, "active-passive mode only"},
		{"prefix limit", bgpKeys("prefix_limit: -1"), "connections[0].bgp.prefix_limit", 8, "out of range"},

		// Tunnel count.
		{"no tunnels", strings.Join(strings.Split(base, "\n")[:7], "\n") + "\n    tunnels: []\n", "connections[0].tunnels", 8, "no tunnels"},
		{"three tunnels", insertAfter(14, "      ", "- peer_address: 198.51.100.30", "  psk: EXAMPLEpsk3_abcdefghij.klmnopqrs", "  inside_cidr: 169.254.12.0/30"),
			"connections[0].tunnels", 8, "exactly two tunnels"},

		// Tunnel fields.
		{"tunnel name", t1("name: -t"), "connections[0].tunnels[0].name", 12, "invalid tunnel name"},
		{"tunnel name dup", t1("name: vpn-1-t2"), "connections[0].tunnels[1].name", 13, "already used by connections[0].tunnels[0]"},
		{"peer missing", replaceLine(9, "      - peer_id: 198.51.100.10"), "connections[0].tunnels[0].peer_address", 9, "missing peer_address"},
		{"peer invalid", replaceLine(9, "      - peer_address: 198.51.100.300"), "connections[0].tunnels[0].peer_address", 9, "invalid IP address"},
		{"peer unspecified", replaceLine(9, "      - peer_address: 0.0.0.0"), "connections[0].tunnels[0].peer_address", 9, "not a unicast"},
		{"peer duplicate", replaceLine(12, "      - peer_address: 198.51.100.10"), "connections[0].tunnels[1].peer_address", 12, "already used"},
		{"peer family", conn("local_address: 2001:db8::1"), "connections[0].tunnels[0].peer_address", 10, "address family"},
		{"peer id", t1("peer_id: aws"), "connections[0].tunnels[0].peer_id", 12, "invalid IP address"},
		{"psk missing", replaceLine(10, "        peer_id: 198.51.100.10"), "connections[0].tunnels[0].psk", 9, "missing pre-shared key"},
		{"psk and file", t1("psk_file: /etc/cgw/t1.psk"), "connections[0].tunnels[0].psk_file", 12, "both psk and psk_file"},
		{"psk short", replaceLine(10, "        psk: Abc.123"), "connections[0].tunnels[0].psk", 10, "has 7 characters"},
		{"psk long", replaceLine(10, "        psk: "+strings.Repeat("a", 65)), "connections[0].tunnels[0].psk", 10, "has 65 characters"},
		{"psk charset", replaceLine(10, `        psk: "abcdefgh-1"`), "connections[0].tunnels[0].psk", 10, "characters AWS does not allow"},
		{"psk leading 0", replaceLine(10, "        psk: 0abcdefgh"), "connections[0].tunnels[0].psk", 10, "starts with 0"},
		{"psk empty", replaceLine(10, `        psk: ""`), "connections[0].tunnels[0].psk", 10, "empty"},
		{"inside missing", replaceLine(11, "        peer_id: 198.51.100.10"), "connections[0].tunnels[0].inside_cidr", 9, "missing inside_cidr"},
		{"inside /29", replaceLine(11, "        inside_cidr: 169.254.15.192/29"), "connections[0].tunnels[0].inside_cidr", 11, "not an IPv4 /30"},
		{"inside not link-local", replaceLine(11, "        inside_cidr: 10.0.0.0/30"), "connections[0].tunnels[0].inside_cidr", 11, "not inside 169.254.0.0/16"},
		{"inside host bits", replaceLine(11, "        inside_cidr: 169.254.15.193/30"), "connections[0].tunnels[0].inside_cidr", 11, "write 169.254.15.192/30"},
		{"inside duplicate", replaceLine(14, "        inside_cidr: 169.254.15.192/30"), "connections[0].tunnels[1].inside_cidr", 14, "already used by connections[0].tunnels[0].inside_cidr"},
		{"inside v6 length", t1("inside_ipv6_cidr: fd00::/64"), "connections[0].tunnels[0].inside_ipv6_cidr", 12, "not an IPv6 /126"},
		{"inside v6 range", t1("inside_ipv6_cidr: 2001:db8::/126"), "connections[0].tunnels[0].inside_ipv6_cidr", 12, "not inside fd00::/8"},
		{"ike proposals empty", t1("ike_proposals: []"), "connections[0].tunnels[0].ike_proposals", 12, "empty proposal list"},
		{"ike proposal 3des", t1("ike_proposals:", "  - aes256-sha256-modp2048", "  - 3des-sha1-modp1024"), "connections[0].tunnels[0].ike_proposals[1]", 14, `unsupported keyword "3des"`},
		{"esp proposal aead+integ", t1("esp_proposals: [aes256gcm16-sha256-modp2048]"), "connections[0].tunnels[0].esp_proposals[0]", 12, "AEAD"},
		{"esp proposal prf", t1("esp_proposals: [aes256-sha256-prfsha256]"), "connections[0].tunnels[0].esp_proposals[0]", 12, "PRF keyword"},
		{"ike lifetime low", t1("ike_lifetime: 9s"), "connections[0].tunnels[0].ike_lifetime", 12, "900s-28800s"},
		{"child lifetime low", t1("child_lifetime: 5s"), "connections[0].tunnels[0].child_lifetime", 12, "900s-3600s"},
		{"ike lifetime high", t1("ike_lifetime: 9h"), "connections[0].tunnels[0].ike_lifetime", 12, "900s-28800s"},
		{"child lifetime high", t1("child_lifetime: 2h"), "connections[0].tunnels[0].child_lifetime", 12, "900s-3600s"},
		{"child >= ike", t1("ike_lifetime: 3600"), "connections[0].tunnels[0].ike_lifetime", 12, "not shorter than ike_lifetime"},
		{"child >= ike explicit", t1("ike_lifetime: 1800", "child_lifetime: 1800"), "connections[0].tunnels[0].child_lifetime", 13, "not shorter than ike_lifetime"},
		{"margin low", t1("rekey_margin: 0s"), "connections[0].tunnels[0].rekey_margin", 12, "60s up to half"},
		{"margin+fuzz vs child", t1("child_lifetime: 900s", "rekey_margin: 450s"), "connections[0].tunnels[0].rekey_margin", 13, "does not exceed rekey_margin 7m30s plus 100% fuzz"},
		{"default margin+fuzz vs child", t1("child_lifetime: 540s"), "connections[0].tunnels[0].child_lifetime", 12, "does not exceed rekey_margin 4m30s"},
		{"margin high", t1("rekey_margin: 31m"), "connections[0].tunnels[0].rekey_margin", 12, "half of child_lifetime (30m0s)"},
		{"margin vs short child", t1("child_lifetime: 900s", "rekey_margin: 451s"), "connections[0].tunnels[0].rekey_margin", 13, "out of range"},
		{"fuzz", t1("rekey_fuzz: 101"), "connections[0].tunnels[0].rekey_fuzz", 12, "0-100"},
		{"dpd interval 0", t1("dpd: {interval: 0s}"), "connections[0].tunnels[0].dpd.interval", 12, "1s-300s"},
		{"dpd interval sub-second", t1("dpd:", "  interval: 500ms"), "connections[0].tunnels[0].dpd.interval", 13, "1s-300s"},
		{"dpd retries", t1("dpd:", "  retries: 0"), "connections[0].tunnels[0].dpd.retries", 13, "1-20"},
		{"dpd action", t1("dpd:", "  action: hold"), "connections[0].tunnels[0].dpd.action", 13, "restart, clear, none"},
		{"startup action", t1("startup_action: add"), "connections[0].tunnels[0].startup_action", 12, "initiate, respond"},
		{"encapsulation", t1("encapsulation: raw"), "connections[0].tunnels[0].encapsulation", 12, "udp, auto"},
		{"ts empty", t1("traffic_selectors:", "  local: []"), "connections[0].tunnels[0].traffic_selectors.local", 13, "empty selector list"},
		{"ts invalid", t1("traffic_selectors:", "  remote: [10.0.0.0/8, 10.0.0.0.0/8]"), "connections[0].tunnels[0].traffic_selectors.remote[1]", 13, "invalid prefix"},
		{"ts mixed", t1("traffic_selectors:", "  remote: ['::/0']"), "connections[0].tunnels[0].traffic_selectors", 12, "mixed IPv4 and IPv6"},
		{"nat keepalive", t1("nat_keepalive: 301s"), "connections[0].tunnels[0].nat_keepalive", 12, "300s"},
		{"replay low", t1("replay_window: 32"), "connections[0].tunnels[0].replay_window", 12, "64-2048"},
		{"replay high", t1("replay_window: 4096"), "connections[0].tunnels[0].replay_window", 12, "64-2048"},
		{"ike fragment size low", t1("ike_fragment_size: 500"), "connections[0].tunnels[0].ike_fragment_size", 12, "at least 576 octets"},
		{"ike fragment size high", t1("ike_fragment_size: 65535"), "connections[0].tunnels[0].ike_fragment_size", 12, "576-9000 octets"},
		{"mtu low", t1("mtu: 500"), "connections[0].tunnels[0].mtu", 12, "too small"},
		{"mtu low v6", t1("inside_ipv6_cidr: fd00::/126", "mtu: 1000"), "connections[0].tunnels[0].mtu", 13, "1280-1446"},
		{"mtu high", t1("mtu: 1500"), "connections[0].tunnels[0].mtu", 12, "1446"},
		{"mss low", t1("mss_clamp: 100"), "connections[0].tunnels[0].mss_clamp", 12, "too small"},
		{"mss high", t1("mss_clamp: 1460"), "connections[0].tunnels[0].mss_clamp", 12, "1406"},
		{"oversize", t1("oversize: drop"), "connections[0].tunnels[0].oversize", 12, "fragment, icmp"},
		{"oversize case", t1("oversize: ICMP"), "connections[0].tunnels[0].oversize", 12, "invalid value \"ICMP\""},
		{"keepalive target", t1("keepalive: {target: vpc-host}"), "connections[0].tunnels[0].keepalive.target", 12, "invalid IP address"},
		{"keepalive interval", t1("keepalive:", "  interval: 0s"), "connections[0].tunnels[0].keepalive.interval", 13, "1s-300s"},
		{"duration syntax", t1("ike_lifetime: 8 hours"), "connections[0].tunnels[0].ike_lifetime", 12, "invalid duration"},
		{"duration negative", t1("nat_keepalive: -5s"), "connections[0].tunnels[0].nat_keepalive", 12, "negative duration"},

		// Schema: unknown keys, duplicates, wrong types.
		{"unknown key", t1("pks: foo"), "connections[0].tunnels[0].pks", 12, `unknown key; did you mean "psk"?`},
		{"unknown top key", top("logging: {level: info}"), "logging", 15, "unknown key"},
		{"unknown underscore", t1("replaywindow: 64"), "connections[0].tunnels[0].replaywindow", 12, `did you mean "replay_window"`},
		{"duplicate key", t1("replay_window: 64", "replay_window: 128"), "connections[0].tunnels[0].replay_window", 13, "duplicate key (first at line 12)"},
		{"wrong type int", t1("replay_window: large"), "connections[0].tunnels[0].replay_window", 12, `wrong type: got "large"`},
		{"wrong type bool", t1("force_encap: maybe"), "connections[0].tunnels[0].force_encap", 12, "true or false"},
		{"wrong type list", replaceLine(7, "      advertise: 10.1.0.0/16"), "connections[0].bgp.advertise", 7, "a list"},
		{"wrong type map", strings.Replace(deleteLines(6, 7), "    bgp:", "    bgp: 65000", 1), "connections[0].bgp", 5, "a mapping"},
		{"wrong type scalar", replaceLine(9, "      - peer_address: [198.51.100.10]"), "connections[0].tunnels[0].peer_address", 9, "a single value"},
		{"connections not a list", "version: 1\nconnections: {name: x}\n", "connections", 2, "a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Parse([]byte(tt.yml), "test.yaml")
			if err == nil {
				t.Fatalf("no error for\n%s", tt.yml)
			}
			fes := fieldErrors(t, err)
			var found *FieldError
			for _, fe := range fes {
				if fe.Path == tt.path && strings.Contains(fe.Error(), tt.msg) {
					found = fe
				}
				if fe.Fix == "" {
					t.Errorf("error without a fix: %v", fe)
				}
				if fe.File != "test.yaml" {
					t.Errorf("error without the file name: %v", fe)
				}
			}
			if found == nil {
				t.Fatalf("no error at %s containing %q; got:\n%v", tt.path, tt.msg, err)
			}
			if found.Line != tt.line {
				t.Errorf("line = %d, want %d: %v", found.Line, tt.line, found)
			}
			want := fmt.Sprintf("config: test.yaml:%d: %s: ", tt.line, tt.path)
			if !strings.HasPrefix(found.Error(), want) {
				t.Errorf("error %q does not start with %q", found.Error(), want)
			}
		})
	}
}
