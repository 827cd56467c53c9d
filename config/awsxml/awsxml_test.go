package awsxml

import (
	"bytes"
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cgwproject/cgw/config"
	"github.com/cgwproject/cgw/ipsec"
)

var update = flag.Bool("update", false, "rewrite the golden .yaml files in ../testdata")

func load(t *testing.T, name string) *VPNConnection {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	v, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse(%s): %v", name, err)
	}
	return v
}

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// importFile runs the whole import and parses the result like cgwd would.
// golden names the expected output in ../testdata ("" = no comparison).
func importFile(t *testing.T, name, golden string, opt Options) (*config.Config, []byte, []config.Warning) {
	t.Helper()
	out, warns, err := Generate(load(t, name), opt)
	if err != nil {
		t.Fatalf("Generate(%s): %v", name, err)
	}
	if golden != "" {
		golden = filepath.Join("..", "testdata", golden)
	}
	return checkGenerated(t, out, golden), out, warns
}

// checkGenerated parses a generated configuration like cgwd would (no
// warnings allowed) and compares it with the golden file (unless "";
// -update rewrites it).
func checkGenerated(t *testing.T, out []byte, golden string) *config.Config {
	t.Helper()
	cfg, cwarns, err := config.Parse(out, "imported.yaml")
	if err != nil {
		t.Fatalf("generated config does not parse: %v\n%s", err, out)
	}
	if len(cwarns) != 0 {
		t.Errorf("generated config has warnings: %v", cwarns)
	}
	if golden == "" {
		return cfg
	}
	if *update {
		if err := os.WriteFile(golden, out, 0o644); err != nil {
			t.Fatal(err)
		}
	} else if want, err := os.ReadFile(golden); err != nil || !bytes.Equal(out, want) {
		t.Errorf("output differs from %s (run go test -update to accept):\n%s", golden, out)
	}
	return cfg
}

func TestParseFields(t *testing.T) {
	v := load(t, "vgw-bgp.xml")
	if v.ID != "vpn-0a1b2c3d" || v.CustomerGatewayID != "cgw-0a1b2c3d" || v.VPNGatewayID != "vgw-0a1b2c3d" ||
		v.Type != "ipsec.1" || v.IsStatic() || v.IsTransitGateway() || len(v.Tunnels) != 2 {
		t.Fatalf("%+v", v)
	}
	tun := v.Tunnels[0]
	if tun.Customer.OutsideAddress != "203.0.113.10" || tun.AWS.InsideAddress != "169.254.15.193" ||
		tun.Customer.InsideCIDR != "30" || tun.Customer.BGP.ASN != "65301" || tun.AWS.BGP.HoldTime != "30" ||
		tun.IKE.PreSharedKey != "EXAMPLEpsk1_abcdefghij.klmnopqrs" || tun.IPsec.TCPMSSAdjustment != "1379" ||
		tun.IPsec.DPDInterval != "10" || tun.IPsec.DPDRetries != "3" || tun.IKE.PFS != "group2" {
		t.Errorf("%+v", tun)
	}
}

func TestImportBGP(t *testing.T) {
	cfg, out, warns := importFile(t, "vgw-bgp.xml", "vgw-bgp.yaml", Options{Advertise: prefixes("10.1.0.0/16", "10.2.0.0/16")})
	if len(warns) != 0 {
		t.Errorf("warnings: %v", warns)
	}
	if !bytes.Contains(out, []byte("# configuration of vpn-0a1b2c3d (customer gateway cgw-0a1b2c3d, virtual private gateway vgw-0a1b2c3d).")) {
		t.Errorf("header comment missing:\n%s", out)
	}
	c := cfg.Connections[0]
	if c.Name != "vpn-0a1b2c3d" || c.LocalID != netip.MustParseAddr("203.0.113.10") || c.LocalAddress.IsValid() || c.Routing != config.RoutingBGP {
		t.Errorf("connection: %+v", c)
	}
	b := c.BGP
	if b.ASN != 65301 || b.PeerASN != 65401 || b.HoldTime != 30*time.Second || b.Keepalive != 10*time.Second ||
		len(b.Advertise) != 2 || b.Mode != config.ActivePassive {
		t.Errorf("bgp: %+v", b)
	}
	want := []struct {
		name, peer, psk, inside string
	}{
		{"vpn-0a1b2c3d-t1", "198.51.100.10", "EXAMPLEpsk1_abcdefghij.klmnopqrs", "169.254.15.192/30"},
		{"vpn-0a1b2c3d-t2", "198.51.100.20", "QMP5tKPP5qk95Y1Eee9c_82.MofNUJQV", "169.254.13.236/30"},
	}
	if len(c.Tunnels) != 2 {
		t.Fatalf("%d tunnels", len(c.Tunnels))
	}
	for i, w := range want {
		tun := c.Tunnels[i]
		if tun.Name != w.name || tun.PeerAddress.String() != w.peer || string(tun.PSK) != w.psk || tun.InsideCIDR.String() != w.inside {
			t.Errorf("tunnel %d: %s %v %v", i, tun.Name, tun.PeerAddress, tun.InsideCIDR)
		}
		if tun.IKELifetime != 8*time.Hour || tun.ChildLifetime != time.Hour || tun.DPD != (config.DPD{Interval: 10 * time.Second, Retries: 3, Action: config.DPDRestart}) ||
			tun.MSSClamp != 1379 || tun.RekeyMargin != 270*time.Second {
			t.Errorf("tunnel %d timers: %+v", i, tun)
		}
		// Every AWS algorithm, strongest first; AWS's minimum (from the
		// XML) is inside the CBC proposal, not appended.
		if got := tun.IKEProposals[0].String(); got != ipsec.DefaultIKEProposals[0] {
			t.Errorf("first IKE proposal %s", got)
		}
		if !coveredBy(t, tun.IKEProposals, "aes128-sha1-modp1024", true) || !coveredBy(t, tun.ESPProposals, "aes128-sha1-modp1024", false) {
			t.Errorf("AWS minimum missing: %v %v", tun.IKEProposals, tun.ESPProposals)
		}
		if len(tun.IKEProposals) != len(ipsec.DefaultIKEProposals) {
			t.Errorf("XML proposal duplicated: %v", tun.IKEProposals)
		}
	}
	if got := c.Tunnels[0].InsideLocal(); got != netip.MustParseAddr("169.254.15.194") {
		t.Errorf("cgw inside address %v", got)
	}
}

// coveredBy reports whether one of ps offers every transform of s.
func coveredBy(t *testing.T, ps []ipsec.Proposal, s string, ike bool) bool {
	t.Helper()
	want, err := ipsec.ParseProposal(s, ike)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if covers(p, want) {
			return true
		}
	}
	return false
}

func hasProposal[T interface{ String() string }](ps []T, s string) bool {
	for _, p := range ps {
		if p.String() == s {
			return true
		}
	}
	return false
}

func TestImportStatic(t *testing.T) {
	_, _, err := Generate(load(t, "static.xml"), Options{})
	if !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), "--remote-prefix") {
		t.Errorf("static without remote prefixes: %v", err)
	}
	_, _, err = Generate(load(t, "static.xml"), Options{RemotePrefixes: prefixes("10.0.0.0/16"), Advertise: prefixes("10.1.0.0/16")})
	if !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), "--advertise") {
		t.Errorf("static with advertise: %v", err)
	}
	cfg, _, warns := importFile(t, "static.xml", "static.yaml", Options{
		RemotePrefixes: prefixes("10.0.0.0/16"),
		LocalAddress:   netip.MustParseAddr("192.168.1.10"),
		Name:           "branch-1",
	})
	if len(warns) != 0 {
		t.Errorf("warnings: %v", warns)
	}
	c := cfg.Connections[0]
	if c.Name != "branch-1" || c.Routing != config.RoutingStatic || c.BGP != nil ||
		len(c.Static.RemotePrefixes) != 1 || c.LocalAddress != netip.MustParseAddr("192.168.1.10") ||
		c.LocalID != netip.MustParseAddr("203.0.113.10") {
		t.Errorf("connection: %+v", c)
	}
	if c.Tunnels[0].Name != "branch-1-t1" || c.Tunnels[0].InsideCIDR != netip.MustParsePrefix("169.254.44.12/30") ||
		c.Tunnels[1].InsideCIDR != netip.MustParsePrefix("169.254.45.16/30") || string(c.Tunnels[1].PSK) != "Stat1c_tunnel.two_key" {
		t.Errorf("tunnels: %+v", c.Tunnels)
	}
}

func TestImportTGW(t *testing.T) {
	v := load(t, "tgw-ipv6.xml")
	if !v.IsTransitGateway() {
		t.Fatal("not recognised as a transit gateway")
	}
	_, _, err := Generate(v, Options{RemotePrefixes: prefixes("10.0.0.0/16")})
	if !errors.Is(err, ErrOptions) {
		t.Errorf("BGP with remote prefixes: %v", err)
	}
	cfg, out, _ := importFile(t, "tgw-ipv6.xml", "tgw-ipv6.yaml", Options{Advertise: prefixes("2001:db8:100::/48")})
	if !bytes.Contains(out, []byte("a transit gateway")) || !bytes.Contains(out, []byte("1000 prefixes (transit gateway)")) {
		t.Errorf("transit gateway not described:\n%s", out)
	}
	c := cfg.Connections[0]
	if c.BGP.ASN != 4200000001 || c.BGP.PeerASN != 64513 {
		t.Errorf("bgp: %+v", c.BGP)
	}
	tun := c.Tunnels[0]
	if tun.InsideIPv6CIDR != netip.MustParsePrefix("fd00:ab:cd:1::/126") || tun.InsidePeer6() != netip.MustParseAddr("fd00:ab:cd:1::1") ||
		c.Tunnels[1].InsideIPv6CIDR != netip.MustParsePrefix("fd00:ab:cd:2::/126") {
		t.Errorf("IPv6 inside: %v %v", tun.InsideIPv6CIDR, c.Tunnels[1].InsideIPv6CIDR)
	}
	if tun.InsideCIDR != netip.MustParsePrefix("169.254.100.4/30") {
		t.Errorf("inside: %v", tun.InsideCIDR)
	}
	// GovCloud-style minimum (SHA2-256, group 14) is covered by the
	// defaults: nothing appended.
	if len(tun.IKEProposals) != 2 || len(tun.ESPProposals) != 2 ||
		!coveredBy(t, tun.IKEProposals, "aes128-sha256-modp2048", true) || !coveredBy(t, tun.ESPProposals, "aes128-sha256-modp2048", false) {
		t.Errorf("proposals: %v %v", tun.IKEProposals, tun.ESPProposals)
	}
}

// TestImportSwappedOrder: XML order decides t1/t2, and every tunnel keeps
// its own PSK, inside CIDR and peer (the tunnel 1/2 mix-up is a classic
// cause of PSK mismatches).
func TestImportSwappedOrder(t *testing.T) {
	opt := Options{Advertise: prefixes("10.1.0.0/16")}
	a, _, _ := importFile(t, "vgw-bgp.xml", "", opt)
	b, _, _ := importFile(t, "vgw-bgp-swapped.xml", "vgw-bgp-swapped.yaml", opt)
	ta, tb := a.Connections[0].Tunnels, b.Connections[0].Tunnels
	if tb[0].PeerAddress != ta[1].PeerAddress || tb[1].PeerAddress != ta[0].PeerAddress {
		t.Fatalf("order not kept: %v %v", tb[0].PeerAddress, tb[1].PeerAddress)
	}
	if tb[0].Name != "vpn-0a1b2c3d-t1" {
		t.Errorf("first tunnel named %q", tb[0].Name)
	}
	for _, x := range ta {
		var y *config.Tunnel
		for i := range tb {
			if tb[i].PeerAddress == x.PeerAddress {
				y = &tb[i]
			}
		}
		if y == nil || string(y.PSK) != string(x.PSK) || y.InsideCIDR != x.InsideCIDR {
			t.Errorf("tunnel to %v lost its PSK or inside CIDR", x.PeerAddress)
		}
	}
}

func TestDeterministic(t *testing.T) {
	opt := Options{Advertise: prefixes("10.1.0.0/16")}
	x, _, _ := Generate(load(t, "vgw-bgp.xml"), opt)
	y, _, _ := Generate(load(t, "vgw-bgp.xml"), opt)
	if !bytes.Equal(x, y) {
		t.Error("output differs between runs")
	}
}

// TestRoundTrip: import -> Parse equals import -> write file -> Load.
func TestRoundTrip(t *testing.T) {
	opt := Options{Advertise: prefixes("10.1.0.0/16")}
	out, _, err := Generate(load(t, "vgw-bgp.xml"), opt)
	if err != nil {
		t.Fatal(err)
	}
	cfg1, _, err := config.Parse(out, "a.yaml")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cgw.yaml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg2, warns, err := config.Load(path)
	if err != nil || len(warns) != 0 {
		t.Fatalf("Load: %v %v", err, warns)
	}
	if d := config.Diff(cfg1, cfg2); len(d) != 0 {
		t.Errorf("Diff after round trip: %v", d)
	}
}

func TestNoAdvertiseWarns(t *testing.T) {
	out, warns, err := Generate(load(t, "vgw-bgp.xml"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 1 || warns[0].Path != "connections[0].bgp.advertise" || warns[0].File != GeneratedFile {
		t.Errorf("warnings: %v", warns)
	}
	if !bytes.Contains(out, []byte("advertise: []  # add the on-premises prefixes")) {
		t.Errorf("no hint in output:\n%s", out)
	}
}

func TestErrors(t *testing.T) {
	base, err := os.ReadFile(filepath.Join("..", "testdata", "vgw-bgp.xml"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(base)
	opt := Options{Advertise: prefixes("10.1.0.0/16")}
	tests := []struct {
		name string
		xml  string
		opt  Options
		want string
	}{
		{"not xml", "hello", opt, "CustomerGatewayConfiguration"},
		{"truncated", doc[:300], opt, "invalid XML at line"},
		{"wrong root", "<foo/>", opt, "vpn_connection"},
		{"no tunnels", `<vpn_connection id="vpn-1"></vpn_connection>`, opt, "no ipsec_tunnel"},
		{"three tunnels", strings.Replace(doc, "</vpn_connection>", doc[strings.Index(doc, "  <ipsec_tunnel>"):strings.Index(doc, "  </ipsec_tunnel>")]+"  </ipsec_tunnel>\n</vpn_connection>", 1), opt, "3 ipsec_tunnel"},
		{"type", strings.Replace(doc, "ipsec.1", "ipsec.2", 1), opt, `"ipsec.2"`},
		{"bad outside", strings.Replace(doc, "198.51.100.10", "198.51.100.300", 1), opt, "ipsec_tunnel[0]/vpn_gateway/tunnel_outside_address/ip_address: invalid IP address"},
		{"inside layout", strings.NewReplacer("169.254.15.194", "169.254.15.193", "<ip_address>169.254.15.193</ip_address>\n        <network_mask>255.255.255.252</network_mask>\n        <network_cidr>30</network_cidr>\n      </tunnel_inside_address>\n      <bgp>\n        <asn>65401", "<ip_address>169.254.15.194</ip_address>\n        <network_mask>255.255.255.252</network_mask>\n        <network_cidr>30</network_cidr>\n      </tunnel_inside_address>\n      <bgp>\n        <asn>65401").Replace(doc), opt, "not the first and second addresses"},
		{"inside /29", strings.Replace(doc, "<network_cidr>30</network_cidr>", "<network_cidr>29</network_cidr>", 1), opt, "not an IPv4 /30"},
		{"inside reserved", strings.NewReplacer("169.254.15.194", "169.254.5.2", "169.254.15.193", "169.254.5.1").Replace(doc), opt, "reserved by AWS"},
		{"psk leading 0", strings.Replace(doc, "EXAMPLEpsk1_abcdefghij.klmnopqrs", "0XAMPLEpsk1_abcdefghij.klmnopqrs", 1), opt, "ipsec_tunnel[0]/ike/pre_shared_key: the pre-shared key starts with 0"},
		{"psk charset", strings.Replace(doc, "EXAMPLEpsk1_abcdefghij.klmnopqrs", "EXAMPLEpsk1-abcdefghij.klmnopqrs", 1), opt, "characters AWS does not allow"},
		{"missing asn", strings.Replace(doc, "<asn>65401</asn>", "", 1), opt, "ipsec_tunnel[0]/vpn_gateway/bgp/asn: missing"},
		{"asn mismatch", strings.Replace(doc, "<asn>65301</asn>", "<asn>65302</asn>", 1), opt, "BGP settings differ"},
		{"cgw mismatch", strings.Replace(doc, "203.0.113.10", "203.0.113.11", 1), opt, "different customer gateway addresses"},
		{"lifetime", strings.Replace(doc, "<lifetime>3600</lifetime>", "<lifetime>7200</lifetime>", 1), opt, "ipsec_tunnel[0]/ipsec/lifetime"},
		{"no id", strings.Replace(doc, `id="vpn-0a1b2c3d"`, "", 1), opt, "--name"},
		{"bad name", doc, Options{Name: "bad name", Advertise: opt.Advertise}, "does not validate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := Parse([]byte(tt.xml))
			if err == nil {
				_, _, err = Generate(v, tt.opt)
			}
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "awsxml: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			for _, psk := range []string{"XAMPLEpsk1", "QMP5tKPP5qk95"} {
				if strings.Contains(err.Error(), psk) {
					t.Errorf("error contains a PSK: %v", err)
				}
			}
		})
	}
}

func TestUnknownSampleAlgorithmWarns(t *testing.T) {
	data, _ := os.ReadFile(filepath.Join("..", "testdata", "vgw-bgp.xml"))
	doc := strings.Replace(string(data), "<encryption_protocol>aes-128-cbc</encryption_protocol>\n      <lifetime>28800", "<encryption_protocol>3des-cbc</encryption_protocol>\n      <lifetime>28800", 1)
	v, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	_, warns, err := Generate(v, Options{Advertise: prefixes("10.1.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 1 || warns[0].Path != "ipsec_tunnel[0]/ike" || !strings.Contains(warns[0].Msg, `"3des-cbc"`) {
		t.Errorf("warnings: %v", warns)
	}
}

func TestSampleProposal(t *testing.T) {
	tests := []struct {
		encr, integ, pfs string
		ike              bool
		want             string
	}{
		{"aes-128-cbc", "sha1", "group2", true, "aes128-sha1-modp1024"},
		{"aes-256-cbc", "sha2-256", "group14", true, "aes256-sha256-modp2048"},
		{"aes-128-gcm-16", "sha2-256", "group19", true, "aes128gcm16-prfsha256-ecp256"},
		{"aes-128-cbc", "hmac-sha1-96", "group2", false, "aes128-sha1-modp1024"},
		{"AES256", "hmac-sha2-512-256", "group24", false, "aes256-sha512-modp2048s256"},
		{"aes-256-gcm-16", "hmac-sha256-128", "group20", false, "aes256gcm16-ecp384"},
		{"aes-128-cbc", "hmac-sha1-96", "", false, "aes128-sha1"},
	}
	for _, tt := range tests {
		p, err := sampleProposal(tt.encr, tt.integ, tt.pfs, tt.ike)
		if err != nil || p.String() != tt.want {
			t.Errorf("%s/%s/%s: %v %v, want %s", tt.encr, tt.integ, tt.pfs, p, err, tt.want)
		}
	}
	for _, bad := range [][3]string{{"3des-cbc", "sha1", "group2"}, {"aes-128-cbc", "md5", "group2"}, {"aes-128-cbc", "sha1", "group99"}, {"aes-128-cbc", "sha1", "groupx"}} {
		if _, err := sampleProposal(bad[0], bad[1], bad[2], true); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestOversized(t *testing.T) {
	if _, err := Parse(make([]byte, maxDocument+1)); err == nil {
		t.Error("oversized document accepted")
	}
}
