package config

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestReservedInsideCIDRs(t *testing.T) {
	for _, p := range []string{"169.254.0.0/30", "169.254.1.0/30", "169.254.2.0/30", "169.254.3.0/30",
		"169.254.4.0/30", "169.254.5.0/30", "169.254.169.252/30"} {
		_, _, err := Parse([]byte(replaceLine(11, "        inside_cidr: "+p)), "test.yaml")
		if err == nil || !strings.Contains(err.Error(), p+" is reserved by AWS") {
			t.Errorf("%s: %v", p, err)
		}
	}
	for _, p := range []string{"169.254.6.0/30", "169.254.169.248/30", "169.254.255.252/30", "169.254.0.4/30"} {
		if _, _, err := Parse([]byte(replaceLine(11, "        inside_cidr: "+p)), "test.yaml"); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}

func TestPSKCharset(t *testing.T) {
	tests := []struct {
		psk string
		ok  bool
	}{
		{"QMP5tKPP5qk95Y1Eee9c_82.MofNUJQV", true}, // AWS-generated form
		{"abcdefgh", true},
		{"12345678", true},
		{strings.Repeat("Z", 64), true},
		{"a._a._a.", true},
		{"abcdefg", false},
		{strings.Repeat("Z", 65), false},
		{"01234567", false},
		{"abc defgh", false},
		{"abcdefgh!", false},
		{"abcdefgh-", false},
		{"abcdéfgh", false},
		{"abcdefgh\t", false},
	}
	for _, tt := range tests {
		yml := replaceLine(10, "        psk: "+fmt.Sprintf("%q", tt.psk))
		cfg, _, err := Parse([]byte(yml), "test.yaml")
		if (err == nil) != tt.ok {
			t.Errorf("%q: err = %v, want ok=%v", tt.psk, err, tt.ok)
			continue
		}
		if err != nil {
			if strings.Contains(err.Error(), tt.psk) {
				t.Errorf("error contains the PSK: %v", err)
			}
			continue
		}
		if got := string(cfg.Connections[0].Tunnels[0].PSK); got != tt.psk {
			t.Errorf("PSK = %q", got)
		}
	}
}

// TestPSKNeverInErrors feeds broken files that carry a recognisable key and
// checks no message contains it, or a chunk of it.
func TestPSKNeverInErrors(t *testing.T) {
	const secret = "SECRETkeyXYZ_0123456789"
	cases := []string{
		replaceLine(10, "        psk: "+secret+"!"),
		replaceLine(10, "        psk: 0"+secret),
		replaceLine(10, "        psk: "+secret+strings.Repeat("x", 60)),
		replaceLine(10, "        psk: ["+secret+"]"),
		replaceLine(10, "        psk: {"+secret+": 1}"),
		replaceLine(10, "        psk: "+secret+"\n        psk: "+secret),
		replaceLine(10, "        pks: "+secret),
		replaceLine(10, "        psk: \""+secret+" \""),
	}
	for _, yml := range cases {
		_, warns, err := Parse([]byte(yml), "test.yaml")
		if err == nil {
			t.Errorf("no error for\n%s", yml)
			continue
		}
		msgs := err.Error()
		for _, w := range warns {
			msgs += "\n" + w.String()
		}
		if strings.Contains(msgs, secret[:8]) || strings.Contains(msgs, secret[8:]) {
			t.Errorf("PSK leaked:\n%s", msgs)
		}
	}
}

func TestSecretFormatting(t *testing.T) {
	cfg, _ := mustParse(t, base)
	tun := cfg.Connections[0].Tunnels[0]
	for _, s := range []string{
		fmt.Sprint(tun.PSK), fmt.Sprintf("%v %+v %#v %s %x %q", tun.PSK, tun.PSK, tun.PSK, tun.PSK, tun.PSK, tun.PSK),
		fmt.Sprintf("%v %+v", tun, cfg.Connections[0]), fmt.Sprintf("%#v", tun),
	} {
		if strings.Contains(s, "EXAMPLEpsk1") || strings.Contains(s, "4558414d504c45") {
			t.Errorf("PSK printed: %s", s)
		}
	}
	var b []byte = tun.PSK // assignable to []byte for consumers
	if string(b) != "EXAMPLEpsk1_abcdefghij.klmnopqrs" {
		t.Errorf("PSK bytes %q", b)
	}
	txt, _ := tun.PSK.MarshalText()
	if string(txt) != "[redacted]" {
		t.Errorf("MarshalText = %q", txt)
	}
}

func TestAllErrorsCollected(t *testing.T) {
	yml := `version: 1
connections:
  - name: vpn-1
    bgp: {asn: 0}
    tunnels:
      - peer_address: nope
        psk: short
        inside_cidr: 169.254.5.0/30
        replay_window: 1
        colour: blue
      - peer_address: 198.51.100.20
        psk: EXAMPLEpsk2_abcdefghij.klmnopqrs
        inside_cidr: 169.254.13.236/30
        ike_lifetime: 1s
`
	_, _, err := Parse([]byte(yml), "test.yaml")
	fes := fieldErrors(t, err)
	want := map[string]int{
		"connections[0].bgp.asn":                  4,
		"connections[0].tunnels[0].peer_address":  6,
		"connections[0].tunnels[0].psk":           7,
		"connections[0].tunnels[0].inside_cidr":   8,
		"connections[0].tunnels[0].replay_window": 9,
		"connections[0].tunnels[0].colour":        10,
		"connections[0].tunnels[1].ike_lifetime":  14,
	}
	got := map[string]int{}
	for _, fe := range fes {
		got[fe.Path] = fe.Line
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n got %v\nwant %v\n%v", got, want, err)
	}
}

func TestSyntaxErrors(t *testing.T) {
	tests := []struct {
		yml  string
		msg  string
		line int
	}{
		{"", "the file is empty", 0},
		{"version: 1\nconnections: [\n", "invalid YAML", 2},
		{"version: 1\n---\nversion: 1\n", "more than one YAML document", 2},
		{"- a\n- b\n", "top level must be a mapping", 1},
		{"version: 1\n\tlog: {}\n", "invalid YAML", 2},
	}
	for _, tt := range tests {
		_, _, err := Parse([]byte(tt.yml), "x.yaml")
		fes := fieldErrors(t, err)
		if len(fes) != 1 || !strings.Contains(fes[0].Msg, tt.msg) || fes[0].Line != tt.line || fes[0].Fix == "" {
			t.Errorf("%q: %v (line %d)", tt.yml, err, func() int {
				if len(fes) > 0 {
					return fes[0].Line
				}
				return -1
			}())
		}
	}
}

func TestAliasesAndNulls(t *testing.T) {
	yml := `version: 1
x-dpd: &dpd {interval: 5s, retries: 2}
connections:
`
	if _, _, err := Parse([]byte(yml), "t.yaml"); err == nil || !strings.Contains(err.Error(), "x-dpd: unknown key") {
		t.Errorf("unknown anchor holder accepted: %v", err)
	}
	// Null values mean "default".
	cfg, _ := mustParse(t, t1("replay_window: ~", "dpd:"))
	if cfg.Connections[0].Tunnels[0].ReplayWindow != 1024 || cfg.Connections[0].Tunnels[0].DPD.Interval != 10*time.Second {
		t.Errorf("null did not take the default")
	}
	// Aliases inside the schema work.
	yml = strings.Replace(base, "      - peer_address: 198.51.100.10", "      - dpd: &d {interval: 7s}\n        peer_address: 198.51.100.10", 1)
	yml = strings.Replace(yml, "      - peer_address: 198.51.100.20", "      - dpd: *d\n        peer_address: 198.51.100.20", 1)
	cfg, _ = mustParse(t, yml)
	if cfg.Connections[0].Tunnels[1].DPD.Interval != 7*time.Second {
		t.Errorf("alias: %v", cfg.Connections[0].Tunnels[1].DPD)
	}
}

func TestWarnings(t *testing.T) {
	tests := []struct {
		name string
		yml  string
		path string
		line int
		msg  string
	}{
		{"one tunnel", deleteLines(12, 14), "connections[0].tunnels", 8, "only one tunnel"},
		{"no connections", "version: 1\n", "connections", 1, "no connections"},
		{"no advertise", deleteLines(7, 7), "connections[0].bgp.advertise", 5, "nothing to advertise"},
		{"esp no pfs", t1("esp_proposals: [aes256gcm16]"), "connections[0].tunnels[0].esp_proposals[0]", 12, "no DH group (no PFS)"},
		{"ike not AWS", t1("ike_proposals: [chacha20poly1305-prfsha256-curve25519, aes128-sha1-modp1024]"), "connections[0].tunnels[0].ike_proposals[0]", 12, "AWS will never choose it"},
		{"ike group 5", t1("ike_proposals: [aes128-sha1-modp1536]"), "connections[0].tunnels[0].ike_proposals[0]", 12, "AWS will never choose it"},
		{"no ike proposal meets AWS", t1("ike_proposals: [aes128-sha1-modp1536, chacha20poly1305-prfsha256-curve25519]"), "connections[0].tunnels[0].ike_proposals", 12, "the tunnel will never come up"},
		{"no esp proposal meets AWS", t1("esp_proposals: [aes256gcm16-curve25519]"), "connections[0].tunnels[0].esp_proposals", 12, "the tunnel will never come up"},
		{"peer asn", bgpKeys("peer_asn: 65001"), "", 0, ""}, // inside the private range: no warning
		{"peer asn odd", bgpKeys("peer_asn: 100"), "connections[0].bgp.peer_asn", 8, "outside the Amazon-side ranges"},
		{"aws asn", replaceLine(6, "      asn: 7224"), "connections[0].bgp.asn", 6, "Amazon-side ASN"},
		{"advertise family", strings.Replace(t1("inside_ipv6_cidr: fd00::/126"), "inside_cidr: 169.254.13.236/30", "inside_cidr: 169.254.13.236/30\n        inside_ipv6_cidr: fd00:2::/126", 1), "connections[0].bgp.advertise[0]", 7, "10.1.0.0/16 is IPv4 but the tunnels carry IPv6"},
		{"slow dpd", t1("dpd: {interval: 60s, retries: 5}"), "connections[0].tunnels[0].dpd", 12, "about 6m0s"},
		{"short ike lifetime", t1("ike_lifetime: 800s", "child_lifetime: 700s", "rekey_margin: 60s"), "connections[0].tunnels[0].ike_lifetime", 12, "below AWS's minimum Phase 1 lifetime"},
		{"short child lifetime", t1("ike_lifetime: 90s", "child_lifetime: 30s", "rekey_margin: 10s"), "connections[0].tunnels[0].child_lifetime", 13, "below AWS's minimum Phase 2 lifetime"},
		{"short rekey margin", t1("rekey_margin: 59s"), "connections[0].tunnels[0].rekey_margin", 12, "below AWS's minimum rekey margin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, warns := mustParse(t, tt.yml)
			if tt.path == "" {
				if len(warns) != 0 {
					t.Errorf("unexpected warnings: %v", warns)
				}
				return
			}
			for _, w := range warns {
				if w.Path == tt.path && strings.Contains(w.Msg, tt.msg) {
					if w.Line != tt.line {
						t.Errorf("line %d, want %d", w.Line, tt.line)
					}
					if !strings.HasPrefix(w.String(), fmt.Sprintf("warning: test.yaml:%d: %s: ", tt.line, tt.path)) {
						t.Errorf("String() = %q", w.String())
					}
					return
				}
			}
			t.Errorf("no warning at %s containing %q; got %v", tt.path, tt.msg, warns)
		})
	}
}

// TestShortTestLifetimes: the short lifetimes of the rekey soak tests
// (against a simulated AWS side) parse, with one warning per key below AWS's
// minimums.
func TestShortTestLifetimes(t *testing.T) {
	cfg, warns := mustParse(t, t1("ike_lifetime: 90s", "child_lifetime: 30s", "rekey_margin: 10s", "rekey_fuzz: 100"))
	tun := cfg.Connections[0].Tunnels[0]
	if tun.IKELifetime != 90*time.Second || tun.ChildLifetime != 30*time.Second || tun.RekeyMargin != 10*time.Second || tun.RekeyFuzz != 100 {
		t.Errorf("lifetimes %v/%v margin %v fuzz %d", tun.IKELifetime, tun.ChildLifetime, tun.RekeyMargin, tun.RekeyFuzz)
	}
	paths := map[string]bool{}
	for _, w := range warns {
		paths[w.Path] = true
	}
	for _, k := range []string{"ike_lifetime", "child_lifetime", "rekey_margin"} {
		if !paths["connections[0].tunnels[0]."+k] {
			t.Errorf("no warning for %s; got %v", k, warns)
		}
	}
	if len(warns) != 3 {
		t.Errorf("want 3 warnings, got %v", warns)
	}
	if other := cfg.Connections[0].Tunnels[1]; other.ChildLifetime != DefaultChildLifetime || other.RekeyMargin != DefaultRekeyMargin {
		t.Errorf("tunnel 2 lost its defaults: %v/%v", other.ChildLifetime, other.RekeyMargin)
	}
}

func TestManyAdvertised(t *testing.T) {
	var ps []string
	for i := range 101 {
		ps = append(ps, fmt.Sprintf("10.%d.%d.0/24", i/256, i%256))
	}
	_, warns := mustParse(t, replaceLine(7, "      advertise: ["+strings.Join(ps, ", ")+"]"))
	if len(warns) != 1 || !strings.Contains(warns[0].Msg, "101 prefixes") {
		t.Errorf("warnings: %v", warns)
	}
	for i := 101; i < 1001; i++ {
		ps = append(ps, fmt.Sprintf("10.%d.%d.0/24", i/256, i%256))
	}
	_, _, err := Parse([]byte(replaceLine(7, "      advertise: ["+strings.Join(ps, ", ")+"]")), "t.yaml")
	if err == nil || !strings.Contains(err.Error(), "1001 prefixes") {
		t.Errorf("err = %v", err)
	}
}

func TestDuplicateConnectionsAndTunnelNamesAcrossConnections(t *testing.T) {
	c2 := `  - name: vpn-1
    routing: static
    static: {remote_prefixes: [10.9.0.0/16]}
    tunnels:
      - name: vpn-1-t1
        peer_address: 198.51.100.30
        psk: EXAMPLEpsk3_abcdefghij.klmnopqrs
        inside_cidr: 169.254.12.0/30
`
	_, _, err := Parse([]byte(base+c2), "t.yaml")
	fes := fieldErrors(t, err)
	paths := map[string]int{}
	for _, fe := range fes {
		paths[fe.Path] = fe.Line
	}
	if paths["connections[1].name"] != 15 || paths["connections[1].tunnels[0].name"] != 19 {
		t.Errorf("errors: %v", err)
	}
}
