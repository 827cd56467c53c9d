package main

import (
	"strings"
	"testing"
	"time"

	"github.com/cgwproject/cgw/control"
)

// fixtureConfigDoc is a running BGP connection as cgwd reports it: secrets
// already redacted by the daemon.
func fixtureConfigDoc() *control.ConfigDoc {
	tun := func(name, peer, inside string) control.ConfigTunnel {
		return control.ConfigTunnel{
			Name: name, PeerAddress: peer, PeerID: peer, PSK: control.Redacted, InsideCIDR: inside,
			IKEProposals: []string{"aes256gcm16-prfsha384-ecp384"}, ESPProposals: []string{"aes256gcm16-ecp384"},
			IKELifetime: control.SecondsOf(8 * time.Hour), ChildLifetime: control.SecondsOf(time.Hour),
			RekeyMargin: control.SecondsOf(540 * time.Second), RekeyFuzz: 100,
			DPD:           control.ConfigDPD{Interval: 10, Retries: 3, Action: "restart"},
			StartupAction: "initiate", TrafficSelectors: control.ConfigTS{Local: []string{"0.0.0.0/0"}, Remote: []string{"0.0.0.0/0"}},
			NATKeepalive: 20, ReplayWindow: 1024, IKEFragmentSize: 1280, MSSClamp: 1379, Oversize: "fragment", SourceCheck: "strict",
		}
	}
	return &control.ConfigDoc{
		File: "/etc/cgw/cgw.yaml", Version: 1,
		Log:     control.ConfigLog{Format: "text", Level: "info"},
		Control: control.ConfigCtl{Socket: "/run/cgw/cgw.sock"},
		Routes:  control.ConfigRoutes{Table: 199, Protocol: 199, Metric: 100, FwMark: 0xc0de, RulePriority: 1999},
		Connections: []control.ConfigConn{{
			Name: "vpn-0a1b2c3d", LocalID: "203.0.113.10", Routing: "bgp",
			BGP: &control.ConfigBGP{ASN: 65000, PeerASN: 64512, HoldTime: 30, Keepalive: 10, Advertise: []string{"192.168.0.0/16"},
				Mode: "active-passive", SecondaryPrepend: 2, Password: control.Redacted,
				Import: control.ConfigImport{Allow: []string{}, Deny: []string{"10.99.0.0/16"}}},
			Tunnels: []control.ConfigTunnel{tun("t1", "198.51.100.10", "169.254.10.0/30"), tun("t2", "198.51.100.20", "169.254.11.0/30")},
		}},
	}
}

func fixtureDryRun() *control.ReloadResult {
	return &control.ReloadResult{
		DryRun:   true,
		Changes:  []string{"routes changed: metric", "connection vpn-0a1b2c3d changed: bgp.advertise", "tunnel t2 of connection vpn-0a1b2c3d changed: psk", "connection vpn-9 added"},
		Warnings: []string{"warning: cgw.yaml:30: connections[1].tunnels: only one tunnel"},
		Details: []control.ReloadChange{
			{Kind: "changed", Section: "routes", Fields: []string{"metric"}, Effect: "routes_moved"},
			{Kind: "changed", Section: "connection", Connection: "vpn-0a1b2c3d", Fields: []string{"bgp.advertise"}, Effect: "in_place"},
			{Kind: "changed", Section: "tunnel", Connection: "vpn-0a1b2c3d", Tunnel: "t2", Fields: []string{"psk"}, Effect: "restart"},
			{Kind: "added", Section: "connection", Connection: "vpn-9", Effect: "start"},
		},
	}
}

func TestConfigShowGolden(t *testing.T) {
	sock, fb := startServer(t)
	for _, tc := range []struct{ args, golden string }{
		{"config show", "config-show.golden"},
		{"config show --json", "config-show.json.golden"},
		{"reload --dry-run", "reload-dry-run.golden"},
		{"reload --dry-run --json", "reload-dry-run.json.golden"},
	} {
		r := cgwctl(t, "", append([]string{"--socket", sock}, strings.Fields(tc.args)...)...)
		if r.code != 0 {
			t.Fatalf("%s: exit %d: %s", tc.args, r.code, r.stderr)
		}
		golden(t, tc.golden, []byte(r.stdout))
		for _, secret := range []string{"EXAMPLEpsk", "psk: E", "password: m"} {
			if strings.Contains(r.stdout, secret) {
				t.Errorf("%s prints a secret (%q)", tc.args, secret)
			}
		}
		if strings.HasPrefix(tc.args, "reload") {
			if fb.lastCall() != "reload dry-run" {
				t.Errorf("%s called %q: a dry run must not reload", tc.args, fb.lastCall())
			}
			// Text: warnings on stderr; JSON: in the document.
			if !strings.Contains(r.stderr+r.stdout, "only one tunnel") {
				t.Errorf("%s: warnings lost: stderr %q", tc.args, r.stderr)
			}
		}
	}
	for _, tc := range []struct {
		args   string
		code   int
		stderr string
	}{
		{"config show extra", 2, `unexpected argument "extra"`},
		{"reload --dry-run now", 2, `unexpected argument "now"`},
		{"reload --dry", 2, "flag provided but not defined: -dry"},
	} {
		r := cgwctl(t, "", append([]string{"--socket", sock}, strings.Fields(tc.args)...)...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.stderr) {
			t.Errorf("%s: exit %d, stderr %q", tc.args, r.code, r.stderr)
		}
	}
}
