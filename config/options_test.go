package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPSKFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("t1.psk", "EXAMPLEpsk9_abcdefghij.klmnopqrs\n", 0o600)
	write("rel.psk", "EXAMPLEpsk8_abcdefghij.klmnopqrs", 0o400)
	open := write("open.psk", "EXAMPLEpsk7_abcdefghij.klmnopqrs\n", 0o644)
	twoNL := write("twonl.psk", "EXAMPLEpsk6_abcdefghij.klmnopqrs\n\n", 0o600)
	crlf := write("crlf.psk", "EXAMPLEpsk5_abcdefghij.klmnopqrs\r\n", 0o600)
	bad := write("bad.psk", "0EXAMPLEpsk5_abcdefghij.klmnopqrs\n", 0o600)
	big := write("big.psk", strings.Repeat("EXAMPLEpsk4_abcdefghij.klmnopqrs\n", 100), 0o600)
	cfgPath := filepath.Join(dir, "cgw.yaml")

	load := func(pskLine string) (*Config, []Warning, error) {
		t.Helper()
		if err := os.WriteFile(cfgPath, []byte(replaceLine(10, "        "+pskLine)), 0o600); err != nil {
			t.Fatal(err)
		}
		return Load(cfgPath)
	}

	cfg, warns, err := load("psk_file: " + good)
	if err != nil || len(warns) != 0 {
		t.Fatalf("good file: %v %v", err, warns)
	}
	tun := cfg.Connections[0].Tunnels[0]
	if string(tun.PSK) != "EXAMPLEpsk9_abcdefghij.klmnopqrs" || tun.PSKFile != good {
		t.Errorf("PSK %q from %q", tun.PSK, tun.PSKFile)
	}

	cfg, _, err = load("psk_file: rel.psk")
	if err != nil || string(cfg.Connections[0].Tunnels[0].PSK) != "EXAMPLEpsk8_abcdefghij.klmnopqrs" {
		t.Errorf("relative path: %v", err)
	}

	_, warns, err = load("psk_file: " + open)
	if err != nil || len(warns) != 1 || !strings.Contains(warns[0].String(), "mode 0644") ||
		warns[0].Path != "connections[0].tunnels[0].psk_file" || warns[0].Line != 10 {
		t.Errorf("open file: %v %v", err, warns)
	}

	for _, tt := range []struct{ file, msg string }{
		{twoNL, "characters AWS does not allow"},
		{crlf, "carriage return"},
		{bad, "starts with 0"},
		{big, "larger than any pre-shared key"},
		{filepath.Join(dir, "missing.psk"), "no such file"},
		{dir, "not a regular file"},
	} {
		_, _, err := load("psk_file: " + tt.file)
		if err == nil || !strings.Contains(err.Error(), tt.msg) || !strings.Contains(err.Error(), "cgw.yaml:10: connections[0].tunnels[0].psk_file") {
			t.Errorf("%s: %v", tt.file, err)
		}
		if err != nil && strings.Contains(err.Error(), "EXAMPLEpsk") {
			t.Errorf("PSK leaked: %v", err)
		}
	}
	if _, _, err := load(`psk_file: ""`); err == nil || !strings.Contains(err.Error(), "empty psk_file") {
		t.Errorf("empty psk_file: %v", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, _, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	var fe *FieldError
	if !errors.As(err, &fe) || !strings.Contains(fe.Error(), "nope.yaml") || !strings.Contains(fe.Error(), "no such file") {
		t.Errorf("err = %v", err)
	}
}

func TestCheckHelpers(t *testing.T) {
	if err := CheckPSK([]byte("EXAMPLEpsk1_abcdefghij.klmnopqrs")); err != nil {
		t.Errorf("CheckPSK(valid) = %v", err)
	}
	if err := CheckPSK([]byte("0secretKEY")); err == nil || strings.Contains(err.Error(), "secretKEY") || !strings.HasPrefix(err.Error(), "config: ") {
		t.Errorf("CheckPSK(leading 0) = %v", err)
	}
	if err := CheckInsideCIDR(netip.MustParsePrefix("169.254.15.192/30")); err != nil {
		t.Errorf("CheckInsideCIDR(valid) = %v", err)
	}
	for _, p := range []string{"169.254.169.252/30", "169.254.15.193/30", "10.0.0.0/30", "169.254.15.192/29"} {
		if err := CheckInsideCIDR(netip.MustParsePrefix(p)); err == nil {
			t.Errorf("CheckInsideCIDR(%s) accepted", p)
		}
	}
}

// TestAliasBomb: nested aliases that expand exponentially ("billion
// laughs") are checked in linear time.
func TestAliasBomb(t *testing.T) {
	lines := []string{"version: 1", "x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"}
	for i := 1; i < 12; i++ {
		refs := strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*a%d, ", i-1), 9), ", ")
		lines = append(lines, fmt.Sprintf("x%d: &a%d [%s]", i, i, refs))
	}
	lines = append(lines, "connections: [*a11]")
	start := time.Now()
	_, _, err := Parse([]byte(strings.Join(lines, "\n")+"\n"), "bomb.yaml")
	if err == nil {
		t.Fatal("accepted")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestSecondaryMED(t *testing.T) {
	cfg, _ := mustParse(t, bgpKeys("secondary_med: 200", "secondary_prepend: 0"))
	if b := cfg.Connections[0].BGP; b.SecondaryMED != 200 || b.SecondaryPrepend != 0 {
		t.Errorf("secondary_med %d prepend %d", b.SecondaryMED, b.SecondaryPrepend)
	}
}

func TestBGPPasswordAndKernelRoutes(t *testing.T) {
	cfg, _ := mustParse(t, bgpKeys("password: s3cret-md5", "advertise_kernel: [10.0.0.0/8, 192.168.0.0/16]"))
	b := cfg.Connections[0].BGP
	if string(b.Password) != "s3cret-md5" || fmt.Sprint(b.Password) != "[redacted]" {
		t.Errorf("password %q prints as %v", []byte(b.Password), b.Password)
	}
	if fmt.Sprint(b.AdvertiseKernel) != "[10.0.0.0/8 192.168.0.0/16]" {
		t.Errorf("advertise_kernel = %v", b.AdvertiseKernel)
	}
	dir := t.TempDir()
	key := filepath.Join(dir, "bgp.key")
	if err := os.WriteFile(key, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg2, _ := mustParse(t, bgpKeys("password_file: "+key))
	if string(cfg2.Connections[0].BGP.Password) != "from-file" {
		t.Errorf("password_file: %q", []byte(cfg2.Connections[0].BGP.Password))
	}
	ch := Diff(cfg, cfg2)
	if len(ch) != 1 || fmt.Sprint(ch[0].Fields) != "[bgp.advertise_kernel bgp.password]" || strings.Contains(ch[0].String(), "s3cret") {
		t.Errorf("diff = %v", ch)
	}
}

func TestImportPolicyAndSourceCheck(t *testing.T) {
	yml := bgpKeys("import:", "  allow: [10.0.0.0/8]", "  deny: [10.99.0.0/16]", "  accept_default: true")
	yml = strings.Replace(yml, "inside_cidr: 169.254.15.192/30", "inside_cidr: 169.254.15.192/30\n        source_check: off", 1)
	yml = strings.Replace(yml, "inside_cidr: 169.254.13.236/30", "inside_cidr: 169.254.13.236/30\n        extra_sources: [192.0.2.0/24]", 1)
	cfg, warns := mustParse(t, yml)
	if len(warns) != 0 {
		t.Errorf("warnings: %v", warns)
	}
	im := cfg.Connections[0].BGP.Import
	if fmt.Sprint(im.Allow, im.Deny, im.AcceptDefault) != "[10.0.0.0/8] [10.99.0.0/16] true" {
		t.Errorf("import = %+v", im)
	}
	t1, t2 := cfg.Connections[0].Tunnels[0], cfg.Connections[0].Tunnels[1]
	if t1.SourceCheck != SourceOff || t2.SourceCheck != SourceStrict || fmt.Sprint(t2.ExtraSources) != "[192.0.2.0/24]" {
		t.Errorf("source check: %v %v %v", t1.SourceCheck, t2.SourceCheck, t2.ExtraSources)
	}
	old, _ := mustParse(t, base)
	if d := old.Connections[0].BGP.Import; d.AcceptDefault || d.Allow != nil || d.Deny != nil {
		t.Errorf("default import = %+v", d)
	}
	ch := Diff(old, cfg)
	got := fmt.Sprint(ch)
	for _, want := range []string{"bgp.import.allow", "bgp.import.deny", "bgp.import.accept_default", "source_check", "extra_sources"} {
		if !strings.Contains(got, want) {
			t.Errorf("Diff lacks %s: %s", want, got)
		}
	}
}

// A file holding inline secrets and readable by group or others is
// flagged by Load (cgwd and `cgwctl config check`); without inline secrets
// or with mode 0600 it is not.
func TestInlineSecretsFileMode(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	modeWarn := func(ws []Warning) string {
		for _, w := range ws {
			if strings.Contains(w.Msg, "accessible by group or others") {
				return w.String()
			}
		}
		return ""
	}
	_, ws, err := Load(write("open.yaml", bgpKeys("password: s3cret-md5-key"), 0o644))
	if err != nil {
		t.Fatal(err)
	}
	w := modeWarn(ws)
	if !strings.Contains(w, "connections[0].tunnels[0].psk") || !strings.Contains(w, "connections[0].bgp.password") || !strings.Contains(w, "chmod 600") {
		t.Errorf("warning = %q", w)
	}
	if strings.Contains(w, "s3cret") || strings.Contains(w, "EXAMPLEpsk") {
		t.Errorf("warning leaks a secret: %q", w)
	}
	if _, ws, _ := Load(write("closed.yaml", base, 0o600)); modeWarn(ws) != "" {
		t.Errorf("mode 0600 flagged: %v", ws)
	}
	write("t1.psk", "EXAMPLEpsk1_abcdefghij.klmnopqrs", 0o600)
	write("t2.psk", "EXAMPLEpsk2_abcdefghij.klmnopqrs", 0o600)
	noInline := strings.Replace(strings.Replace(base, "psk: EXAMPLEpsk1_abcdefghij.klmnopqrs", "psk_file: t1.psk", 1),
		"psk: EXAMPLEpsk2_abcdefghij.klmnopqrs", "psk_file: t2.psk", 1)
	if _, ws, err := Load(write("files.yaml", noInline, 0o644)); err != nil || modeWarn(ws) != "" {
		t.Errorf("config without inline secrets flagged: %v %v", ws, err)
	}
}
