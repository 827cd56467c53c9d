package awsxml

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cgwproject/cgw/config"
)

// v6Outside turns the IPv4 outside addresses of a sample into IPv6 ones,
// as AWS's OutsideIpAddressType=Ipv6 connections have.
var v6Outside = strings.NewReplacer(
	"203.0.113.77", "2001:db8:113::77",
	"192.0.2.200", "2001:db8:100::200",
	"192.0.2.201", "2001:db8:100::201",
	`"TunnelInsideIpVersion"`, `"OutsideIpAddressType": "Ipv6", "TunnelInsideIpVersion"`,
)

// TestReadIPv6Outside: the describe JSON (with its XML) and the XML alone
// of an IPv6-inside connection on IPv6 outside addresses import into a
// valid config with IPv6 peers, local_id and the /126s; the Generic text
// rendered from the same connection too. No public AWS sample carries IPv6
// outside addresses (docs/ipv6.md), so these are built from the IPv4 one.
func TestReadIPv6Outside(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "import", "describe-tgw-ipv6.json"))
	if err != nil {
		t.Fatal(err)
	}
	js := v6Outside.Replace(string(raw))
	check := func(name string, data []byte, opt Options) *config.Config {
		t.Helper()
		_, conns, err := Read(data)
		if err != nil {
			t.Fatalf("%s: Read: %v", name, err)
		}
		out, _, err := GenerateAll(conns, opt)
		if err != nil {
			t.Fatalf("%s: GenerateAll: %v", name, err)
		}
		cfg, _, err := config.Parse(out, name+".yaml")
		if err != nil {
			t.Fatalf("%s: generated config does not validate: %v\n%s", name, err, out)
		}
		c := cfg.Connections[0]
		for i, want := range []string{"2001:db8:100::200", "2001:db8:100::201"} {
			tun := c.Tunnels[i]
			if tun.PeerAddress != netip.MustParseAddr(want) {
				t.Errorf("%s: tunnel %d peer %v, want %s", name, i+1, tun.PeerAddress, want)
			}
			if !tun.InsideIPv6CIDR.IsValid() || tun.TrafficSelectors.Local[0].String() != "::/0" {
				t.Errorf("%s: tunnel %d inside %v selectors %v, want a /126 and ::/0", name, i+1, tun.InsideIPv6CIDR, tun.TrafficSelectors.Local)
			}
		}
		if !strings.Contains(string(out), "2001:db8:113::77") {
			t.Errorf("%s: the customer gateway's IPv6 address is not in the config:\n%s", name, out)
		}
		return cfg
	}
	opt := Options{Advertise: prefixes("2001:db8:1::/48")}
	check("describe", []byte(js), opt)

	// The XML alone (CustomerGatewayConfiguration).
	var d struct {
		VpnConnections []struct{ CustomerGatewayConfiguration string }
	}
	if err := json.Unmarshal([]byte(js), &d); err != nil || len(d.VpnConnections) == 0 {
		t.Fatalf("describe JSON: %v", err)
	}
	check("xml", []byte(d.VpnConnections[0].CustomerGatewayConfiguration), opt)

	// The Generic text of an IPv4-inside connection on IPv6 outside
	// addresses: IPv4 /30s, IPv6 peers.
	gen, err := os.ReadFile(filepath.Join("..", "testdata", "import", "generic-ikev2-tgw.txt"))
	if err != nil {
		t.Fatal(err)
	}
	g := strings.NewReplacer("54.242.9.198", "2001:db8:113::77", "13.248.160.57", "2001:db8:100::200", "99.83.246.199", "2001:db8:100::201").Replace(string(gen))
	_, conns, err := Read([]byte(g))
	if err != nil {
		t.Fatalf("generic: Read: %v", err)
	}
	out, _, err := GenerateAll(conns, Options{})
	if err != nil {
		t.Fatalf("generic: GenerateAll: %v", err)
	}
	cfg, _, err := config.Parse(out, "generic.yaml")
	if err != nil {
		t.Fatalf("generic: generated config does not validate: %v\n%s", err, out)
	}
	for i, want := range []string{"2001:db8:100::200", "2001:db8:100::201"} {
		tun := cfg.Connections[0].Tunnels[i]
		if tun.PeerAddress != netip.MustParseAddr(want) || tun.InsideIPv6CIDR.IsValid() || !tun.InsideCIDR.IsValid() {
			t.Errorf("generic: tunnel %d peer %v inside %v/%v, want %s with an IPv4 /30 only", i+1, tun.PeerAddress, tun.InsideCIDR, tun.InsideIPv6CIDR, want)
		}
	}
	if id := cfg.Connections[0].LocalID; !strings.Contains(string(out), "2001:db8:113::77") {
		t.Errorf("generic: local_id %v, the customer gateway's IPv6 address is not in the config:\n%s", id, out)
	}
}
