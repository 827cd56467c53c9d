package daemon

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/cgwproject/cgw/config"
	"github.com/cgwproject/cgw/control"
)

const (
	docPSK1     = "SECRETpsk1_abcdefghij.klmnopqrs"
	docPSK2     = "SECRETpsk2_zyxwvutsrq.ponmlkjih"
	docPassword = "md5-Secret-Password"
)

const docConfig = `version: 1
log: {level: debug}
connections:
  - name: vpn-bgp
    local_address: 192.0.2.1
    routing: bgp
    bgp:
      asn: 65000
      advertise: [192.168.0.0/16]
      password: ` + docPassword + `
      prefix_limit: 50
      import: {deny: [10.99.0.0/16], accept_default: true}
    tunnels:
      - name: t1
        peer_address: 198.51.100.1
        psk: ` + docPSK1 + `
        inside_cidr: 169.254.10.0/30
        keepalive: {target: 10.0.0.1, interval: 5s}
        ike_lifetime: 90m
        aws_tunnel_options:
          phase1: {encryption: [AES256-GCM-16], integrity: [SHA2-384], dh_groups: [20], lifetime: 4h}
          phase2: {dh_groups: [20, 5]}
          dpd_timeout: 40s
          startup_action: add
      - name: t2
        peer_address: 198.51.100.2
        psk: ` + docPSK2 + `
        inside_cidr: 169.254.11.0/30
        extra_sources: [10.200.0.0/16]
  - name: vpn-static
    routing: static
    static: {remote_prefixes: [10.9.0.0/16]}
    tunnels:
      - name: t3
        peer_address: 198.51.100.3
        psk_file: PSKFILE
        inside_cidr: 169.254.12.0/30
bgp:
  lan_neighbors:
    - address: 10.1.0.254
      asn: 65100
      import: {allow: [10.1.0.0/16]}
      export: {med: 50}
    - name: core
      address: 10.1.0.253
      asn: 65000
      password: ` + docPassword + `
      export: {local_pref: 300}
`

// config show: no secret leaves the daemon, and the YAML is the file's
// schema: with the secrets put back it parses to the same configuration.
func TestConfigDocRedactsAndRoundTrips(t *testing.T) {
	dir := t.TempDir()
	pskFile := filepath.Join(dir, "t3.psk")
	if err := os.WriteFile(pskFile, []byte("SECRETpsk3_fromfile.abcdefghij\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := strings.Replace(docConfig, "PSKFILE", pskFile, 1)
	cfg, _, err := config.Parse([]byte(src), "cgw.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc := configDoc(cfg)
	js, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	ym, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{string(js), string(ym)} {
		for _, secret := range []string{docPSK1, docPSK2, docPassword, "SECRETpsk3", "SECRET"} {
			if strings.Contains(out, secret) {
				t.Fatalf("secret %q in config show output:\n%s", secret, out)
			}
		}
	}
	if n := strings.Count(string(ym), control.Redacted); n != 4 {
		t.Errorf("%d redacted secrets in the YAML, want 4 (two PSKs, two passwords):\n%s", n, ym)
	}
	for _, want := range []string{`"ike_lifetime":5400`, `"hold_time":30`, `"psk_file":"` + pskFile + `"`,
		`"aws_tunnel_options":{"phase1":{"encryption":["AES256-GCM-16"],"integrity":["SHA2-384"],"dh_groups":[20],"lifetime":14400},"phase2":{"dh_groups":[20,5]},"dpd_timeout":40,"startup_action":"add"}`} {
		if !strings.Contains(string(js), want) {
			t.Errorf("JSON lacks %s (durations are seconds):\n%s", want, js)
		}
	}
	if !strings.Contains(string(ym), "ike_lifetime: 1h30m\n") {
		t.Errorf("YAML durations are not in the file's form:\n%s", ym)
	}

	back := string(ym)
	back = strings.ReplaceAll(back, "password: "+control.Redacted, "password: "+docPassword)
	back = strings.Replace(back, "psk: "+control.Redacted, "psk: "+docPSK1, 1)
	back = strings.Replace(back, "psk: "+control.Redacted, "psk: "+docPSK2, 1)
	again, _, err := config.Parse([]byte(back), "cgw.yaml")
	if err != nil {
		t.Fatalf("config show output does not parse back: %v\n%s", err, back)
	}
	if d := config.Diff(cfg, again); len(d) != 0 {
		t.Errorf("config show output parses to a different configuration: %v\n%s", d, back)
	}
}

// reload --dry-run lists the changes and their effects and applies nothing.
func TestReloadDryRun(t *testing.T) {
	d, path, head := reloadDaemon(t)
	before := d.Config()
	res, err := d.ReloadDryRun(context.Background())
	if err != nil || len(res.Changes) != 0 || !res.DryRun {
		t.Fatalf("dry run of the same file: %+v, %v; want dry_run and no changes", res, err)
	}

	next := strings.Replace(reloadConn("1"), "EXAMPLEpsk2_zyxwvutsrq.ponmlkjih", "NEWSECRETpsk_zyxwvutsrq.ponmlkji", 1)
	next = strings.Replace(next, "10.1.0.0/16", "10.1.0.0/16, 10.77.0.0/16", 1)
	// The record of the AWS side renegotiates nothing.
	next = strings.Replace(next, "startup_action: respond", "startup_action: respond\n        aws_tunnel_options: {startup_action: start}", 1)
	if err := os.WriteFile(path, []byte(head+next+reloadConn("2")), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err = d.ReloadDryRun(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range res.Details {
		got = append(got, c.Section+" "+c.Connection+" "+c.Tunnel+" "+c.Kind+" "+strings.Join(c.Fields, ",")+" -> "+c.Effect)
	}
	want := []string{
		"connection vpn-1  changed static.remote_prefixes -> in_place",
		"tunnel vpn-1 vpn-1-t1 changed aws_tunnel_options -> in_place",
		"tunnel vpn-1 vpn-1-t2 changed psk -> restart",
		"connection vpn-2  added  -> start",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("dry run details:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(res.Warnings) != 0 {
		t.Errorf("static connections only: warnings %q, want none", res.Warnings)
	}
	if len(res.Changes) != len(res.Details) {
		t.Errorf("%d changes, %d details", len(res.Changes), len(res.Details))
	}
	js, _ := json.Marshal(res)
	if strings.Contains(string(js), "NEWSECRET") || strings.Contains(string(js), "EXAMPLEpsk2") {
		t.Errorf("dry run result carries a PSK: %s", js)
	}
	if d.Config() != before {
		t.Error("the dry run replaced the running configuration")
	}

	if err := os.WriteFile(path, []byte(head+"\n  - name: [broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ReloadDryRun(context.Background()); err == nil {
		t.Error("dry run of a broken file: no error")
	}
}
