package config

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cgwproject/cgw/ipsec"
)

func TestDiffNoChange(t *testing.T) {
	a, _ := mustParse(t, base)
	b, _ := mustParse(t, base)
	if d := Diff(a, b); len(d) != 0 {
		t.Errorf("Diff of equal configs: %v", d)
	}
	// Explicit defaults equal implicit ones.
	c, _ := mustParse(t, t1("replay_window: 1024", "dpd: {interval: 10s}"))
	if d := Diff(a, c); len(d) != 0 {
		t.Errorf("Diff with explicit defaults: %v", d)
	}
}

func TestDiff(t *testing.T) {
	old, _ := mustParse(t, base)
	second := `  - name: vpn-2
    routing: static
    static: {remote_prefixes: [10.9.0.0/16]}
    tunnels:
      - peer_address: 198.51.100.30
        psk: EXAMPLEpsk3_abcdefghij.klmnopqrs
        inside_cidr: 169.254.12.0/30
`
	withSecond, _ := mustParse(t, base+second)

	tests := []struct {
		name     string
		old, new *Config
		want     []string
	}{
		{"add connection", old, withSecond, []string{"connection vpn-2 added"}},
		{"remove connection", withSecond, old, []string{"connection vpn-2 removed"}},
		{"from nil", nil, old, []string{"connection vpn-1 added"}},
		{"to nil", old, nil, []string{"connection vpn-1 removed"}},
		{"globals", old, parse(t, top("log: {level: debug, format: json}", "metrics: {listen: ':9810'}", "routes: {table: 10}", "control: {socket: /x.sock}")),
			[]string{"log changed: format, level", "control changed: socket", "metrics changed: listen", "routes changed: table"}},
		{"bgp fields", old, parse(t, bgpKeys("hold_time: 90s", "mode: active-active")),
			[]string{"connection vpn-1 changed: bgp.hold_time, bgp.keepalive, bgp.mode, bgp.secondary_prepend"}},
		{"routing", old, parse(t, strings.Replace(deleteLines(4, 7), "    tunnels:", "    static: {remote_prefixes: [10.0.0.0/16]}\n    tunnels:", 1)),
			[]string{"connection vpn-1 changed: routing, bgp, static"}},
		{"tunnel fields", old, parse(t, strings.Replace(t1("dpd: {retries: 5}", "esp_proposals: [aes256-sha256-modp2048]"), "EXAMPLEpsk1", "EXAMPLEpskX", 1)),
			[]string{"tunnel vpn-1-t1 of connection vpn-1 changed: psk, esp_proposals, dpd.retries"}},
		{"tunnel renamed", old, parse(t, t1("name: primary")),
			[]string{"tunnel vpn-1-t1 of connection vpn-1 removed", "tunnel primary of connection vpn-1 added"}},
		{"tunnel removed", old, parse(t, deleteLines(12, 14)),
			[]string{"tunnel vpn-1-t2 of connection vpn-1 removed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, c := range Diff(tt.old, tt.new) {
				got = append(got, c.String())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Diff:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestDiffTunnelOrder(t *testing.T) {
	yml := `version: 1
connections:
  - name: c
    bgp: {asn: 65000, advertise: [10.1.0.0/16]}
    tunnels:
      - name: a
        peer_address: 198.51.100.10
        psk: EXAMPLEpsk1_abcdefghij.klmnopqrs
        inside_cidr: 169.254.15.192/30
      - name: b
        peer_address: 198.51.100.20
        psk: EXAMPLEpsk2_abcdefghij.klmnopqrs
        inside_cidr: 169.254.13.236/30
`
	swapped := strings.Replace(strings.Replace(strings.Replace(yml, "name: a", "name: X", 1), "name: b", "name: a", 1), "name: X", "name: b", 1)
	a, b := parse(t, yml), parse(t, swapped)
	d := Diff(a, b)
	if len(d) == 0 || d[0].Section != "connection" || !contains(d[0].Fields, "tunnel_order") {
		t.Fatalf("Diff: %v", d)
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func parse(t *testing.T, yml string) *Config {
	t.Helper()
	cfg, _ := mustParse(t, yml)
	return cfg
}

// TestDiffCoversEveryField changes each field of Tunnel, Connection, BGP
// and the global sections in turn (by reflection) and checks that Diff
// reports it, so a field added later cannot be forgotten by Diff.
func TestDiffCoversEveryField(t *testing.T) {
	orig := parse(t, base)
	mutate := func(v reflect.Value) {
		switch x := v.Addr().Interface().(type) {
		case *netip.Addr:
			*x = netip.MustParseAddr("192.0.2.99")
		case *netip.Prefix:
			*x = netip.MustParsePrefix("192.0.2.0/24")
		case *[]netip.Prefix:
			*x = append(*x, netip.MustParsePrefix("192.0.2.0/24"))
		case *[]LANNeighbor:
			*x = append(*x, LANNeighbor{Name: "lan-extra"})
		case *[]ipsec.Proposal:
			*x = (*x)[1:]
		case *Secret:
			*x = Secret("changedPSK1")
		case *[]byte:
			*x = append(*x, 1)
		case *time.Duration:
			*x += time.Second
		case **AWSTunnelOptions:
			*x = &AWSTunnelOptions{StartupAction: "start"}
		default:
			switch v.Kind() {
			case reflect.String:
				v.SetString(v.String() + "x")
			case reflect.Int, reflect.Int64:
				v.SetInt(v.Int() + 1)
			case reflect.Uint32:
				v.SetUint(v.Uint() + 1)
			case reflect.Bool:
				v.SetBool(!v.Bool())
			default:
				t.Fatalf("no mutation for %s", v.Type())
			}
		}
	}
	// leaves lists every settable leaf field under v with its Go path.
	var leaves func(v reflect.Value, path string, out *[]string)
	leaves = func(v reflect.Value, path string, out *[]string) {
		if v.Kind() == reflect.Pointer {
			v = v.Elem()
		}
		if v.Kind() != reflect.Struct || v.Type().PkgPath() != reflect.TypeFor[Config]().PkgPath() {
			*out = append(*out, path)
			return
		}
		for i := range v.NumField() {
			leaves(v.Field(i), path+"."+v.Type().Field(i).Name, out)
		}
	}
	fieldAt := func(root reflect.Value, path string) reflect.Value {
		v := root
		for _, name := range strings.Split(strings.TrimPrefix(path, "."), ".") {
			if v.Kind() == reflect.Pointer {
				v = v.Elem()
			}
			v = v.FieldByName(name)
		}
		return v
	}
	check := func(what string, getRoot func(*Config) reflect.Value, skip map[string]bool) {
		var paths []string
		leaves(getRoot(orig), "", &paths)
		for _, p := range paths {
			if skip[p] {
				continue
			}
			cp := parse(t, base)
			mutate(fieldAt(getRoot(cp), p))
			if d := Diff(orig, cp); len(d) == 0 {
				t.Errorf("%s%s: change not reported by Diff", what, p)
			}
		}
	}
	check("Config", func(c *Config) reflect.Value { return reflect.ValueOf(c).Elem() },
		map[string]bool{".Connections": true, ".Version": true, ".Source": true})
	check("Connection", func(c *Config) reflect.Value { return reflect.ValueOf(&c.Connections[0]).Elem() },
		map[string]bool{".Name": true, ".Tunnels": true, ".Static": true, ".Cert": true}) // Cert: TestCertificateReload
	check("Tunnel", func(c *Config) reflect.Value { return reflect.ValueOf(&c.Connections[0].Tunnels[0]).Elem() },
		map[string]bool{".Name": true, ".PSKFile": true, ".Cert": true}) // PSKFile: provenance, not a setting; Cert: TestCertificateReload
	// Static routing fields.
	st := `version: 1
connections:
  - name: s
    static: {remote_prefixes: [10.0.0.0/16]}
    tunnels:
      - peer_address: 198.51.100.10
        psk: EXAMPLEpsk1_abcdefghij.klmnopqrs
        inside_cidr: 169.254.15.192/30
`
	a, b := parse(t, st), parse(t, st)
	b.Connections[0].Static.RemotePrefixes[0] = netip.MustParsePrefix("10.1.0.0/16")
	if d := Diff(a, b); len(d) != 1 || d[0].Fields[0] != "static.remote_prefixes" {
		t.Errorf("static: %v", d)
	}
}
