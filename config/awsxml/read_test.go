package awsxml

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cgwproject/cgw/config"
	"github.com/cgwproject/cgw/ipsec"
)

// readGolden runs Read + GenerateAll on a file under ../testdata and
// compares the output with name + ".golden.yaml" next to it.
func readGolden(t *testing.T, name string, wantFormat Format, opt Options) (*config.Config, []byte, []config.Warning) {
	t.Helper()
	path := filepath.Join("..", "testdata", name)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, conns, err := Read(data)
	if err != nil {
		t.Fatalf("Read(%s): %v", name, err)
	}
	if f != wantFormat {
		t.Errorf("Read(%s) format %q, want %q", name, f, wantFormat)
	}
	out, warns, err := GenerateAll(conns, opt)
	if err != nil {
		t.Fatalf("GenerateAll(%s): %v", name, err)
	}
	cfg := checkGenerated(t, out, path+".golden.yaml")
	return cfg, out, warns
}

func TestReadGenericBGP(t *testing.T) {
	cfg, _, warns := readGolden(t, "aws-samples/generic-bgp.txt", FormatGeneric, Options{Advertise: prefixes("10.1.0.0/16")})
	if len(warns) != 0 {
		t.Errorf("warnings: %v", warns)
	}
	c := cfg.Connections[0]
	if c.Name != "vpn-07bf7ced2b7485f2e" || c.LocalID.String() != "54.242.9.198" || c.BGP.ASN != 65016 || c.BGP.PeerASN != 64512 {
		t.Errorf("connection: %+v %+v", c, c.BGP)
	}
	want := []struct{ peer, psk, inside string }{
		{"13.248.160.57", "65NEA23hAjkwJke8Zc2rKTdRUCIqpU8d", "169.254.36.28/30"},
		{"99.83.246.199", "gujEpMRrztpCKBOG07b2UZmhXCfypZSh", "169.254.232.208/30"},
	}
	for i, w := range want {
		tun := c.Tunnels[i]
		if tun.PeerAddress.String() != w.peer || string(tun.PSK) != w.psk || tun.InsideCIDR.String() != w.inside ||
			tun.DPD.Interval != 10*time.Second || tun.DPD.Retries != 3 || tun.MSSClamp != 1379 {
			t.Errorf("tunnel %d: %+v", i, tun)
		}
	}
}

func TestReadGenericTGWHasNoGatewayID(t *testing.T) {
	data, _ := os.ReadFile(filepath.Join("..", "testdata", "aws-samples", "generic-bgp.txt"))
	v, err := ParseGeneric(data)
	if err != nil {
		t.Fatal(err)
	}
	if !v.IsTransitGateway() || v.IsStatic() || v.CustomerGatewayID != "cgw-0bb934a7441b4e890" {
		t.Errorf("%+v", v)
	}
	if tun := v.Tunnels[0]; tun.IKE.PFS != "group2" || tun.IPsec.PFS != "group2" || tun.IKE.Lifetime != "28800" || tun.IPsec.TCPMSSAdjustment != "1379" ||
		tun.IKE.EncryptionProtocol != "aes-128-cbc" || tun.IPsec.AuthenticationProtocol != "hmac-sha1-96" || tun.AWS.BGP.HoldTime != "30" {
		t.Errorf("tunnel: %+v", tun)
	}
}

func TestReadGenericStatic(t *testing.T) {
	cfg, _, _ := readGolden(t, "aws-samples/generic-static.txt", FormatGeneric, Options{RemotePrefixes: prefixes("10.0.0.0/16")})
	c := cfg.Connections[0]
	if c.Routing != config.RoutingStatic || c.Name != "vpn-08d8a884e441e5e96" || len(c.Tunnels) != 2 || c.Tunnels[1].InsideCIDR.String() != "169.254.118.0/30" {
		t.Errorf("%+v", c)
	}
}

func TestReadGenericVariants(t *testing.T) {
	cfg, _, _ := readGolden(t, "import/generic-older-template.txt", FormatGeneric, Options{RemotePrefixes: prefixes("10.0.0.0/16")})
	if c := cfg.Connections[0]; c.Name != "vpn-08d8a884e441e5e96" || c.Routing != config.RoutingStatic {
		t.Errorf("older template: %+v", c)
	}
	data, _ := os.ReadFile(filepath.Join("..", "testdata", "import", "generic-older-template.txt"))
	v, err := ParseGeneric(data)
	if err != nil || v.VPNGatewayID != "vgw-05271d186d592299a" || v.Tunnels[0].IKE.PFS != "group2" {
		t.Errorf("older template: %v %+v", err, v)
	}
	readGolden(t, "import/generic-ikev2-tgw.txt", FormatGeneric, Options{Advertise: prefixes("10.1.0.0/16")})
}

// TestReadGenericTabsAndSpaces: the key columns may hold any mix of tabs
// and spaces, and lines may end in blanks or CRLF.
func TestReadGenericTabsAndSpaces(t *testing.T) {
	data, _ := os.ReadFile(filepath.Join("..", "testdata", "aws-samples", "generic-bgp.txt"))
	want, err := ParseGeneric(data)
	if err != nil {
		t.Fatal(err)
	}
	mangled := strings.NewReplacer(" : ", "\t:\t ", "  - ", "\t- ", "Neighbor Hold Time", "Neighbor\tHold  Time").Replace(string(data))
	mangled = strings.ReplaceAll(mangled, "\n", " \t\r\n")
	got, err := ParseGeneric([]byte(mangled))
	if err != nil {
		t.Fatal(err)
	}
	a, _, _ := Generate(want, Options{})
	b, _, _ := Generate(got, Options{})
	if !bytes.Equal(a, b) {
		t.Errorf("whitespace changed the result:\n%s\n---\n%s", a, b)
	}
}

func TestReadDescribeTunnelOptions(t *testing.T) {
	cfg, out, warns := readGolden(t, "aws-samples/describe-batfish-tunneloptions.json", FormatJSON, Options{Advertise: prefixes("10.1.0.0/16")})
	if len(warns) != 0 {
		t.Errorf("warnings: %v", warns)
	}
	// TunnelOptions: tunnel 1 allows AES128/AES128-GCM, SHA1/SHA2-512,
	// DH 2 in phase 1 and DH 15/16 in phase 2.
	t1 := cfg.Connections[0].Tunnels[0]
	ike := proposalStrings(t1.IKEProposals)
	esp := proposalStrings(t1.ESPProposals)
	if ike != "aes128gcm16-prfsha512-prfsha1-modp1024 aes128-sha512-sha1-modp1024" || esp != "aes128gcm16-modp4096-modp3072 aes128-sha512-modp4096-modp3072" {
		t.Errorf("tunnel 1 proposals: %s | %s", ike, esp)
	}
	// Tunnel 2: phase 2 is GCM only, so no CBC ESP proposal.
	t2 := cfg.Connections[0].Tunnels[1]
	if esp := proposalStrings(t2.ESPProposals); esp != "aes128gcm16-modp4096-modp3072-modp2048" {
		t.Errorf("tunnel 2 ESP: %s", esp)
	}
	if !bytes.Contains(out, []byte("# from Options.TunnelOptions: PreSharedKey, TunnelInsideCidr, Phase1EncryptionAlgorithms")) {
		t.Errorf("no provenance comment:\n%s", out)
	}
}

func TestReadDescribeTwoConnections(t *testing.T) {
	cfg, _, warns := readGolden(t, "import/describe-two.json", FormatJSON, Options{
		AdvertiseFor:      map[string][]netip.Prefix{"vpn-0a1b2c3d": prefixes("10.1.0.0/16")},
		RemotePrefixesFor: map[string][]netip.Prefix{"vpn-0c3d4e5f": prefixes("10.0.0.0/16")},
	})
	if len(warns) != 0 {
		t.Errorf("warnings: %v", warns)
	}
	if len(cfg.Connections) != 2 || cfg.Connections[0].Name != "vpn-0a1b2c3d" || cfg.Connections[1].Name != "vpn-0c3d4e5f" {
		t.Fatalf("connections: %+v", cfg.Connections)
	}
	// The narrowed tunnel is the XML's second: TunnelOptions pair by
	// outside address, not by position.
	n := cfg.Connections[0].Tunnels[1]
	if n.PeerAddress.String() != "198.51.100.20" || proposalStrings(n.IKEProposals) != "aes256-sha512-modp4096" || proposalStrings(n.ESPProposals) != "aes256-sha512-modp4096" ||
		n.IKELifetime != 4*time.Hour || n.ChildLifetime != 30*time.Minute || n.RekeyMargin != 540*time.Second || n.RekeyFuzz != 50 ||
		n.ReplayWindow != 2048 || n.DPD != (config.DPD{Interval: 10 * time.Second, Retries: 2, Action: config.DPDClear}) || n.StartupAction != config.StartRespond {
		t.Errorf("narrowed tunnel: %+v", n)
	}
	g := cfg.Connections[0].Tunnels[0]
	if proposalStrings(g.IKEProposals) != "aes256gcm16-aes128gcm16-prfsha384-prfsha256-ecp256-ecp521-ecp384" ||
		proposalStrings(g.ESPProposals) != "aes256gcm16-ecp384-modp1536" || g.StartupAction != config.StartInitiate || g.DPD.Action != config.DPDRestart {
		t.Errorf("GCM tunnel: %s | %s", proposalStrings(g.IKEProposals), proposalStrings(g.ESPProposals))
	}
	s := cfg.Connections[1]
	if s.Routing != config.RoutingStatic || s.Static.RemotePrefixes[0].String() != "10.0.0.0/16" ||
		s.Tunnels[0].TrafficSelectors.Local[0].String() != "10.1.0.0/16" || s.Tunnels[0].TrafficSelectors.Remote[0].String() != "10.0.0.0/16" {
		t.Errorf("static connection: %+v", s)
	}
}

func TestReadDescribeIPv6Inside(t *testing.T) {
	cfg, _, _ := readGolden(t, "import/describe-tgw-ipv6.json", FormatJSON, Options{Advertise: prefixes("2001:db8:100::/48")})
	tun := cfg.Connections[0].Tunnels[0]
	if !tun.InsideIPv6CIDR.IsValid() || tun.TrafficSelectors.Local[0].String() != "::/0" {
		t.Errorf("%+v", tun)
	}
	// No algorithm lists in the TunnelOptions: AWS's default, all of them.
	if len(tun.IKEProposals) != 2 || tun.IKEProposals[0].String() != ipsec.DefaultIKEProposals[0] {
		t.Errorf("proposals: %v", tun.IKEProposals)
	}
}

func TestSelectConnections(t *testing.T) {
	data, _ := os.ReadFile(filepath.Join("..", "testdata", "import", "describe-two.json"))
	_, conns, err := Read(data)
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := GenerateAll(conns, Options{Select: []string{"vpn-0c3d4e5f"}, RemotePrefixes: prefixes("10.0.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err := config.Parse(out, "x")
	if err != nil || len(cfg.Connections) != 1 || cfg.Connections[0].Name != "vpn-0c3d4e5f" {
		t.Fatalf("%v %s", err, out)
	}
	for _, tt := range []struct {
		name string
		opt  Options
		want string
	}{
		{"unknown", Options{Select: []string{"vpn-nope"}}, "no such connection (it has vpn-0a1b2c3d, vpn-0c3d4e5f)"},
		{"name with two", Options{Name: "x", RemotePrefixes: prefixes("10.0.0.0/16")}, "--name applies to one connection"},
		{"static without prefix", Options{Advertise: prefixes("10.1.0.0/16")}, "vpn-0c3d4e5f uses static routing: pass the VPC CIDR"},
		{"prefix for unselected", Options{Select: []string{"vpn-0a1b2c3d"}, RemotePrefixesFor: map[string][]netip.Prefix{"vpn-0c3d4e5f": prefixes("10.0.0.0/16")}}, "not selected"},
		{"advertise on static", Options{AdvertiseFor: map[string][]netip.Prefix{"vpn-0c3d4e5f": prefixes("10.1.0.0/16")}, RemotePrefixes: prefixes("10.0.0.0/16")}, "drop --advertise"},
	} {
		_, _, err := GenerateAll(conns, tt.opt)
		if !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an options error with %q", tt.name, err, tt.want)
		}
	}
}

// TestReadWrongInputs: every wrong input says what it is and what to pass.
func TestReadWrongInputs(t *testing.T) {
	generic, _ := os.ReadFile(filepath.Join("..", "testdata", "aws-samples", "generic-bgp.txt"))
	xmlDoc, _ := os.ReadFile(filepath.Join("..", "testdata", "vgw-bgp.xml"))
	two, _ := os.ReadFile(filepath.Join("..", "testdata", "import", "describe-two.json"))
	for _, tt := range []struct {
		name, in, want string
	}{
		{"empty", "", "the input is empty"},
		{"blank", " \n\t\n", "the input is empty"},
		{"cisco", "! Amazon Web Services\ncrypto isakmp policy 200\n  encryption aes 128\n", "a Cisco configuration"},
		{"cisco ikev2", "crypto ikev2 proposal PROPOSAL1\n", "a Cisco configuration"},
		{"juniper", "# Amazon Web Services\nset security ike proposal ike-prop-vpn-1 authentication-method pre-shared-keys\n", "a Juniper configuration"},
		{"fortinet", "config vpn ipsec phase1-interface\n edit vpn-1-0\n", "a Fortinet FortiGate configuration"},
		{"vyatta", "set vpn ipsec ike-group AWS lifetime '28800'\n", "a Vyatta/VyOS configuration"},
		{"strongswan", "conn Tunnel1\n\tauto=start\n\tleftid=1.2.3.4\n", "a strongSwan"},
		{"palo alto", "set network ike crypto-profiles ike-crypto-profiles ike-crypto-vpn-1\n", "a Palo Alto configuration"},
		{"cli table", "-------------------------\n|DescribeVpnConnections|\n+-----------------------+\n", "--output table"},
		{"cli text", "VPNCONNECTIONS\tVPN\t<?xml version=...\tcgw-1\n", "--output text"},
		{"cli yaml", "VpnConnections:\n- Category: VPN\n", "--output yaml"},
		{"pem", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", "certificate"},
		{"prose", "hello world\n", "none of the formats AWS hands out"},
		{"truncated xml", string(xmlDoc[:len(xmlDoc)/2]), "invalid XML"},
		{"truncated json", string(two[:len(two)/2]), "truncated"},
		{"truncated generic", string(generic[:len(generic)*2/3]), "IPSec Tunnel #2 lacks"},
		{"generic head only", string(generic[:600]), "none of the formats"},
		{"json without connections", `{"VpnConnections": []}`, "lists no VPN connections"},
		{"json of another command", `{"Vpcs": [{"VpcId": "vpc-1"}]}`, "no VpnConnections member"},
		{"json array", `[1, 2]`, "wrong type"},
		{"json placeholder", `{"VpnConnections": [{"VpnConnectionId": "vpn-1", "CustomerGatewayConfiguration": "...configuration information..."}]}`, "placeholder"},
		{"json pending", `{"VpnConnections": [{"VpnConnectionId": "vpn-1", "State": "pending"}]}`, "has no CustomerGatewayConfiguration"},
		{"other xml", `<?xml version="1.0"?><pfsense><ipsec/></pfsense>`, "pfSense"},
		{"other xml root", `<?xml version="1.0"?><config/>`, "vpn_connection"},
	} {
		_, conns, err := Read([]byte(tt.in))
		if err == nil {
			_, _, err = GenerateAll(conns, Options{})
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one containing %q", tt.name, err, tt.want)
		}
		if err != nil && (strings.Contains(err.Error(), "65NEA23hAjkwJke8Zc2rKTdRUCIqpU8d") || strings.Contains(err.Error(), "EXAMPLEpsk1")) {
			t.Errorf("%s: the error shows a pre-shared key: %v", tt.name, err)
		}
	}
}

func TestTunnelOptionsErrors(t *testing.T) {
	data, _ := os.ReadFile(filepath.Join("..", "testdata", "import", "describe-two.json"))
	for _, tt := range []struct{ from, to, want string }{
		{`"Phase1LifetimeSeconds": 14400`, `"Phase1LifetimeSeconds": 100`, "Phase1LifetimeSeconds: 100 is outside AWS's range"},
		{`"Value": "ikev2"`, `"Value": "ikev1"`, "cgw speaks IKEv2"},
		{`"StartupAction": "start"`, `"StartupAction": "later"`, "unknown value"},
		{`"Value": 16`, `"Value": 1`, "DH group 1 is not one AWS accepts"},
		{`"LocalIpv4NetworkCidr": "10.1.0.0/16"`, `"LocalIpv4NetworkCidr": "10.1.0.0"`, "not an IPv4 prefix"},
	} {
		in := strings.Replace(string(data), tt.from, tt.to, 1)
		if in == string(data) {
			t.Fatalf("%q not found in describe-two.json", tt.from)
		}
		_, conns, err := Read([]byte(in))
		if err == nil {
			_, _, err = GenerateAll(conns, Options{RemotePrefixes: prefixes("10.0.0.0/16")})
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) || errors.Is(err, ErrOptions) {
			t.Errorf("%s: %v, want a document error with %q", tt.to, err, tt.want)
		}
	}
}

func proposalStrings(ps []ipsec.Proposal) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.String())
	}
	return strings.Join(s, " ")
}
