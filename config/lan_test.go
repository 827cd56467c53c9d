package config

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestLANNeighbors(t *testing.T) {
	cfg, warns := mustParse(t, top(
		"bgp:",
		"  lan_neighbors:",
		"    - address: 10.1.0.254",
		"      asn: 65100",
		"      import: {allow: [10.1.0.0/16]}",
		"      export: {med: 50}",
		"    - name: core",
		"      address: 10.1.0.253",
		"      asn: 65000",
		"      hold_time: 30s",
		"      export: {local_pref: 300}",
	))
	ns := cfg.BGP.LANNeighbors
	if len(ns) != 2 {
		t.Fatalf("got %d LAN neighbors, want 2", len(ns))
	}
	a, b := ns[0], ns[1]
	if a.Name != "lan-10.1.0.254" || a.ASN != 65100 || a.HoldTime != DefaultLANHoldTime || a.Keepalive != 3*time.Second ||
		a.Export.MED != 50 || a.Export.LocalPref != DefaultLANLocalPref || a.IBGP(65000) ||
		len(a.Import.Allow) != 1 || a.Import.Allow[0] != netip.MustParsePrefix("10.1.0.0/16") {
		t.Errorf("first neighbor = %+v", a)
	}
	if b.Name != "core" || !b.IBGP(65000) || b.HoldTime != 30*time.Second || b.Keepalive != 10*time.Second || b.Export.LocalPref != 300 {
		t.Errorf("second neighbor = %+v", b)
	}
	// No allow-list on the second: a warning says everything goes to AWS.
	found := false
	for _, w := range warns {
		found = found || w.Path == "bgp.lan_neighbors[1].import.allow"
	}
	if !found {
		t.Errorf("no warning for the missing allow-list: %v", warns)
	}
}

func TestLANNeighborErrors(t *testing.T) {
	nb := func(lines ...string) string {
		return top(append([]string{"bgp:", "  lan_neighbors:"}, lines...)...)
	}
	tests := []struct {
		name, yml, path, msg string
	}{
		{"missing address", nb("    - asn: 65100"), "bgp.lan_neighbors[0].address", "missing address"},
		{"bad address", nb("    - {address: 10.1.0, asn: 65100}"), "bgp.lan_neighbors[0].address", "invalid IP address"},
		{"inside address", nb("    - {address: 169.254.15.193, asn: 65100}"), "bgp.lan_neighbors[0].address", "inside (link-local)"},
		{"missing asn", nb("    - address: 10.1.0.254"), "bgp.lan_neighbors[0].asn", "missing ASN"},
		{"aws asn", nb("    - {address: 10.1.0.254, asn: 64512}"), "bgp.lan_neighbors[0].asn", "Amazon-side ASN"},
		{"hold", nb("    - {address: 10.1.0.254, asn: 65100, hold_time: 2s}"), "bgp.lan_neighbors[0].hold_time", "invalid hold time"},
		{"keepalive", nb("    - {address: 10.1.0.254, asn: 65100, hold_time: 9s, keepalive: 9s}"), "bgp.lan_neighbors[0].keepalive", "invalid keepalive"},
		{"both passwords", nb("    - {address: 10.1.0.254, asn: 65100, password: a, password_file: b}"), "bgp.lan_neighbors[0].password_file", "both password"},
		{"allow link-local", nb("    - {address: 10.1.0.254, asn: 65100, import: {allow: [169.254.0.0/16]}}"), "bgp.lan_neighbors[0].import.allow[0]", "link-local"},
		{"local_pref on ebgp", nb("    - {address: 10.1.0.254, asn: 65100, export: {local_pref: 150}}"), "bgp.lan_neighbors[0].export.local_pref", "iBGP neighbors only"},
		{"local_pref too low", nb("    - {address: 10.1.0.254, asn: 65000, export: {local_pref: 100}}"), "bgp.lan_neighbors[0].export.local_pref", "out of range"},
		{"duplicate", nb("    - {address: 10.1.0.254, asn: 65100}", "    - {address: 10.1.0.254, asn: 65200, name: b}"), "bgp.lan_neighbors[1].address", "already used"},
		{"unknown key", nb("    - {address: 10.1.0.254, asn: 65100, bfd: true}"), "bgp.lan_neighbors[0].bfd", ""},
		{"no bgp connection", strings.Replace(nb("    - {address: 10.1.0.254, asn: 65100}"),
			"    routing: bgp\n    bgp:\n      asn: 65000\n      advertise: [10.1.0.0/16]\n", "    routing: static\n    static: {remote_prefixes: [10.0.0.0/16]}\n", 1),
			"bgp.lan_neighbors", "need a BGP connection"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Parse([]byte(tt.yml), "test.yaml")
			if err == nil {
				t.Fatalf("no error for\n%s", tt.yml)
			}
			for _, fe := range fieldErrors(t, err) {
				if fe.Path == tt.path && strings.Contains(fe.Error(), tt.msg) {
					if fe.Fix == "" && tt.msg != "" {
						t.Errorf("%s: no fix", fe.Path)
					}
					return
				}
			}
			t.Errorf("want %s: %q; got %v", tt.path, tt.msg, err)
		})
	}
}

func TestLANDiff(t *testing.T) {
	a := parse(t, top("bgp:", "  lan_neighbors:", "    - {address: 10.1.0.254, asn: 65100}"))
	b := parse(t, top("bgp:", "  lan_neighbors:", "    - {address: 10.1.0.254, asn: 65100, export: {med: 10}}"))
	ch := Diff(a, b)
	if len(ch) != 1 || ch[0].Section != "bgp" || ch[0].Fields[0] != "lan_neighbors" {
		t.Errorf("Diff = %v", ch)
	}
}
