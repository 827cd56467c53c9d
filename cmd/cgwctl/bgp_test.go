package main

import (
	"strings"
	"testing"

	"github.com/cgwproject/cgw/control"
)

// fixtureBGPRoutes is what a daemon with an active/passive connection (t1
// preferred by AWS's MED, t2 the backup) shows in each table.
func fixtureBGPRoutes(table string) *control.BGPRoutes {
	vgw := []uint32{64512}
	switch table {
	case control.TableAdvertised:
		return &control.BGPRoutes{Table: table, Routes: []control.BGPRoute{
			{Connection: "vpn-0a1b2c3d", Tunnel: "t1", Prefix: "192.168.0.0/16", NextHop: "169.254.10.2", ASPath: []uint32{65000}},
			{Connection: "vpn-0a1b2c3d", Tunnel: "t2", Prefix: "192.168.0.0/16", NextHop: "169.254.11.2", ASPath: []uint32{65000, 65000, 65000}, MED: 200},
		}}
	case control.TableInstalled:
		return &control.BGPRoutes{Table: table, Routes: []control.BGPRoute{
			{Connection: "vpn-0a1b2c3d", Tunnel: "t1", Prefix: "10.0.0.0/16", NextHop: "169.254.10.1", ASPath: vgw, MED: 100, Best: true, Installed: true},
		}}
	}
	return &control.BGPRoutes{Table: table, Routes: []control.BGPRoute{
		{Connection: "vpn-0a1b2c3d", Tunnel: "t1", Prefix: "0.0.0.0/0", NextHop: "169.254.10.1", ASPath: vgw, MED: 100, Best: true, Reason: "default_route"},
		{Connection: "vpn-0a1b2c3d", Tunnel: "t1", Prefix: "10.0.0.0/16", NextHop: "169.254.10.1", ASPath: vgw, MED: 100, Best: true, Installed: true},
		{Connection: "vpn-0a1b2c3d", Tunnel: "t1", Prefix: "10.99.0.0/16", NextHop: "169.254.10.1", ASPath: vgw, MED: 100, Best: true, Reason: "deny"},
		{Connection: "vpn-0a1b2c3d", Tunnel: "t2", Prefix: "10.0.0.0/16", NextHop: "169.254.11.1", ASPath: vgw, MED: 200, Reason: "not_best"},
	}}
}

func TestRenderBGPRoutesGolden(t *testing.T) {
	for _, table := range control.RouteTables {
		golden(t, "bgp-routes-"+table+".golden", renderBGPRoutes(fixtureBGPRoutes(table)))
	}
	if got := string(renderBGPRoutes(&control.BGPRoutes{Table: "received"})); got != "no received routes\n" {
		t.Errorf("empty table: %q", got)
	}
}

// The JSON is the control API's document, golden too: scripts parse it.
func TestBGPRoutesJSONGolden(t *testing.T) {
	sock, _ := startServer(t)
	for _, table := range control.RouteTables {
		r := cgwctl(t, "", "--socket", sock, "bgp", "routes", table, "--json")
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		golden(t, "bgp-routes-"+table+".json.golden", []byte(r.stdout))
	}
}

func TestBGPRoutesVerb(t *testing.T) {
	sock, fb := startServer(t)
	tests := []struct {
		args   []string
		code   int
		stdout string
		stderr string
		call   string
	}{
		{[]string{"bgp", "routes"}, 0, "10.0.0.0/16   169.254.11.1  64512    200  no    no (not_best)", "", "bgp routes received "},
		{[]string{"bgp", "routes", "t2"}, 0, "t2      10.0.0.0/16", "", "bgp routes received t2"},
		{[]string{"bgp", "routes", "advertised", "t2", "--json"}, 0, `"as_path": [`, "", "bgp routes advertised t2"},
		{[]string{"bgp", "routes", "--json", "installed"}, 0, `"installed": true`, "", "bgp routes installed "},
		{[]string{"bgp", "routes", "installed", "t9"}, 1, "", `tunnel "t9": not found`, "bgp routes installed t9"},
		{[]string{"bgp", "routes", "received", "t1", "t2"}, 2, "", `unexpected argument "t2"`, ""},
		{[]string{"bgp"}, 2, "", "usage: cgwctl bgp <command>", ""},
		{[]string{"bgp", "routes", "-h"}, 0, "why not: default_route", "", ""},
	}
	for _, tt := range tests {
		before := fb.lastCall()
		r := cgwctl(t, "", append([]string{"--socket", sock}, tt.args...)...)
		if r.code != tt.code || !strings.Contains(r.stdout, tt.stdout) || !strings.Contains(r.stderr, tt.stderr) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", tt.args, r.code, r.stdout, r.stderr)
		}
		call := fb.lastCall()
		if call == before && tt.call == "" {
			continue
		}
		if call != tt.call {
			t.Errorf("%q: backend call %q, want %q", tt.args, call, tt.call)
		}
	}
}
