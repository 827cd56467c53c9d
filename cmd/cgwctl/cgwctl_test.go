package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cgwproject/cgw/config"
	"github.com/cgwproject/cgw/internal/version"
)

const testdata = "../../config/testdata"

type result struct {
	code           int
	stdout, stderr string
}

func cgwctl(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errb)
	return result{code, out.String(), errb.String()}
}

func TestImportAWS(t *testing.T) {
	r := cgwctl(t, "", "import-aws", "--xml", filepath.Join(testdata, "vgw-bgp.xml"), "--advertise", "10.1.0.0/16")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	want, err := os.ReadFile(filepath.Join(testdata, "vgw-bgp.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// The golden file was generated with two --advertise prefixes.
	want = bytes.Replace(want, []byte("[10.1.0.0/16, 10.2.0.0/16]"), []byte("[10.1.0.0/16]"), 1)
	if r.stdout != string(want) {
		t.Errorf("stdout differs from the golden file:\n%s", r.stdout)
	}
	if _, _, err := config.Parse([]byte(r.stdout), "stdout"); err != nil {
		t.Errorf("output does not validate: %v", err)
	}
}

func TestImportAWSOptions(t *testing.T) {
	r := cgwctl(t, "", "import-aws", "--xml", filepath.Join(testdata, "static.xml"),
		"--remote-prefix", "10.0.0.0/16", "--remote-prefix", "10.2.0.0/16", "--local-address", "192.168.1.10", "--name", "branch-1")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	cfg, _, err := config.Parse([]byte(r.stdout), "stdout")
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Connections[0]
	if c.Name != "branch-1" || len(c.Static.RemotePrefixes) != 2 || c.LocalAddress.String() != "192.168.1.10" {
		t.Errorf("%+v", c)
	}
}

func TestImportAWSStdin(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(testdata, "tgw-ipv6.xml"))
	if err != nil {
		t.Fatal(err)
	}
	r := cgwctl(t, string(data), "import-aws", "--advertise", "2001:db8:100::/48", "--xml", "-")
	if r.code != 0 || !strings.Contains(r.stdout, "inside_ipv6_cidr: fd00:ab:cd:1::/126") {
		t.Errorf("exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
}

func TestImportAWSWarnings(t *testing.T) {
	// No --advertise: valid output, a warning on stderr.
	r := cgwctl(t, "", "import-aws", "--xml", filepath.Join(testdata, "vgw-bgp.xml"))
	if r.code != 0 || !strings.Contains(r.stderr, "warning: generated:") || !strings.Contains(r.stderr, "nothing to advertise") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestImportAWSFailures(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.xml")
	data, _ := os.ReadFile(filepath.Join(testdata, "vgw-bgp.xml"))
	if err := os.WriteFile(bad, bytes.Replace(data, []byte("EXAMPLEpsk1_"), []byte("0XAMPLEpsk1_"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	xml := filepath.Join(testdata, "vgw-bgp.xml")
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no input", []string{"import-aws"}, 2, "name the input"},
		{"stray argument", []string{"import-aws", "--xml", xml, "extra"}, 2, `unexpected argument "extra"`},
		{"two inputs", []string{"import-aws", xml, "extra"}, 2, `unexpected argument "extra"`},
		{"bad advertise", []string{"import-aws", "--xml", xml, "--advertise", "10.0.0.1/8"}, 2, "write 10.0.0.0/8"},
		{"bad prefix", []string{"import-aws", "--xml", xml, "--advertise", "ten"}, 2, "not a prefix"},
		{"bad local address", []string{"import-aws", "--xml", xml, "--local-address", "x"}, 2, "not an IP address"},
		{"unknown flag", []string{"import-aws", "--xml", xml, "--psk", "x"}, 2, "flag provided but not defined: -psk"},
		{"static needs remote prefix", []string{"import-aws", "--xml", filepath.Join(testdata, "static.xml")}, 2, "--remote-prefix"},
		{"bgp rejects remote prefix", []string{"import-aws", "--xml", xml, "--remote-prefix", "10.0.0.0/16"}, 2, "drop --remote-prefix"},
		{"missing file", []string{"import-aws", "--xml", filepath.Join(dir, "none.xml")}, 1, "no such file"},
		{"not xml", []string{"import-aws", "--xml", filepath.Join(testdata, "vgw-bgp.yaml")}, 1, "awsxml:"},
		{"bad psk", []string{"import-aws", "--xml", bad}, 1, "starts with 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := cgwctl(t, "", tt.args...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d (want %d), stderr %q (want %q)", r.code, tt.code, r.stderr, tt.want)
			}
			if r.stdout != "" {
				t.Errorf("stdout on failure: %q", r.stdout)
			}
			if strings.Contains(r.stderr, "XAMPLEpsk1") {
				t.Errorf("PSK on stderr: %s", r.stderr)
			}
			if tt.code == 2 && !strings.Contains(r.stderr, "usage: cgwctl import-aws") {
				t.Errorf("usage error without usage line: %s", r.stderr)
			}
		})
	}
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, config.Example(), 0o600); err != nil {
		t.Fatal(err)
	}
	r := cgwctl(t, "", "config", "check", good)
	if r.code != 0 || !strings.Contains(r.stdout, "good.yaml: valid (1 connection(s), 2 tunnel(s), 0 warning(s))") || r.stderr != "" {
		t.Errorf("valid file: %+v", r)
	}
	// Flags after the file work too.
	if r := cgwctl(t, "", "config", "check", good, "-q"); r.code != 0 || r.stdout != "" {
		t.Errorf("-q: %+v", r)
	}

	bad := filepath.Join(dir, "bad.yaml")
	content := strings.Replace(string(config.Example()), "replay_window: 1024", "replay_window: 4096", 1)
	content = strings.Replace(content, "rekey_fuzz: 100", "rekey_fuzzz: 100", 1)
	if err := os.WriteFile(bad, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	r = cgwctl(t, "", "config", "check", bad)
	if r.code != 1 || r.stdout != "" {
		t.Errorf("invalid file: %+v", r)
	}
	for _, want := range []string{"bad.yaml:", "connections[0].tunnels[0].replay_window", "connections[0].tunnels[0].rekey_fuzzz: unknown key", "is not valid"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	// Errors are one per line.
	if n := strings.Count(r.stderr, "\n"); n != 3 {
		t.Errorf("%d lines on stderr:\n%s", n, r.stderr)
	}

	warn := filepath.Join(dir, "warn.yaml")
	content = strings.Replace(string(config.Example()), "advertise: [10.1.0.0/16]", "advertise: []", 1)
	if err := os.WriteFile(warn, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	r = cgwctl(t, "", "config", "check", warn)
	if r.code != 0 || !strings.Contains(r.stderr, "warning: "+warn) || !strings.Contains(r.stdout, "1 warning(s)") {
		t.Errorf("warnings: %+v", r)
	}

	// The example holds inline PSKs: readable by others, it is flagged.
	open := filepath.Join(dir, "open.yaml")
	if err := os.WriteFile(open, config.Example(), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(open, 0o644)
	r = cgwctl(t, "", "config", "check", open)
	if r.code != 0 || !strings.Contains(r.stderr, "accessible by group or others (mode 0644): run chmod 600 "+open) || !strings.Contains(r.stdout, "1 warning(s)") {
		t.Errorf("world-readable secrets: %+v", r)
	}

	if r := cgwctl(t, "", "config", "check", good, bad); r.code != 2 {
		t.Errorf("two files: %+v", r)
	}
	if r := cgwctl(t, "", "config", "check", filepath.Join(dir, "missing.yaml")); r.code != 1 || !strings.Contains(r.stderr, "cannot read") {
		t.Errorf("missing file: %+v", r)
	}
}

func TestConfigDefault(t *testing.T) {
	r := cgwctl(t, "", "config", "default")
	if r.code != 0 || r.stdout != string(config.Example()) {
		t.Errorf("%+v", r)
	}
	if r := cgwctl(t, "", "config", "default", "x"); r.code != 2 {
		t.Errorf("extra argument: %+v", r)
	}
}

func TestVersion(t *testing.T) {
	t.Setenv(socketEnv, filepath.Join(t.TempDir(), "absent.sock"))
	want := "cgwctl " + version.Full() + "\n"
	if r := cgwctl(t, "", "--version"); r.code != 0 || r.stdout != want {
		t.Errorf("--version: %+v, want stdout %q", r, want)
	}
	if r := cgwctl(t, "", "version", "--client"); r.code != 0 || r.stdout != want {
		t.Errorf("version --client: %+v, want stdout %q", r, want)
	}
	// No daemon: the client line, then exit 1 naming the daemon.
	if r := cgwctl(t, "", "version"); r.code != 1 || r.stdout != want || !strings.Contains(r.stderr, "cgwctl version: cgwd: ") {
		t.Errorf("version without a daemon: %+v", r)
	}
}

func TestDispatch(t *testing.T) {
	tests := []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{nil, 2, "", "usage: cgwctl <command>"},
		{[]string{"help"}, 0, "import-aws [--from] FILE", ""},
		{[]string{"-h"}, 0, "global flags", ""},
		{[]string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{[]string{"config"}, 2, "", "usage: cgwctl config <command>"},
		{[]string{"config", "nope"}, 2, "", `unknown command "config nope"`},
		{[]string{"config", "-h"}, 0, "config check [-q] [--json] [FILE]", ""},
		{[]string{"config", "check", "-h"}, 0, "usage: cgwctl config check [-q] [--json] [FILE]", ""},
		{[]string{"config", "check", "--json", "../../config/testdata/static.yaml"}, 0, `"valid": true`, ""},
		{[]string{"config", "check", "--json", "/nonexistent/cgw.yaml"}, 1, `"valid": false`, ""},
		{[]string{"config", "check", "--json", "a.yaml", "b.yaml"}, 2, "", "one file at a time"},
		{[]string{"import-aws", "--help"}, 0, "Tunnels keep the order of the document", ""},
		{[]string{"--socket", "/tmp/x.sock", "version", "--client"}, 0, "cgwctl ", ""},
		{[]string{"--bogus", "version"}, 2, "", "flag provided but not defined"},
	}
	for _, tt := range tests {
		r := cgwctl(t, "", tt.args...)
		if r.code != tt.code || !strings.Contains(r.stdout, tt.stdout) || !strings.Contains(r.stderr, tt.stderr) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", tt.args, r.code, r.stdout, r.stderr)
		}
	}
}

func TestParseArgsTerminator(t *testing.T) {
	f := newFlags(&command{name: "x"}, "x")
	q := f.Bool("q", false, "")
	e := &env{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	pos, err := f.parse(e, []string{"a", "-q", "--", "-b", "c"})
	if err != nil || !*q || strings.Join(pos, ",") != "a,-b,c" {
		t.Errorf("pos %q, q %v, err %v", pos, *q, err)
	}
}

// TestImportAWSEveryInput: the console download, the CLI JSON and the XML,
// as a file argument, with --from and on stdin.
func TestImportAWSEveryInput(t *testing.T) {
	generic := filepath.Join(testdata, "aws-samples", "generic-bgp.txt")
	two := filepath.Join(testdata, "import", "describe-two.json")
	for _, tt := range []struct {
		name  string
		stdin string
		args  []string
		want  []string
	}{
		{"generic argument", "", []string{generic, "--advertise", "10.1.0.0/16"}, []string{"name: vpn-07bf7ced2b7485f2e", "peer_address: 13.248.160.57"}},
		{"generic --from", "", []string{"--from", generic, "--advertise", "10.1.0.0/16"}, []string{"name: vpn-07bf7ced2b7485f2e"}},
		{"xml argument", "", []string{filepath.Join(testdata, "vgw-bgp.xml"), "--advertise", "10.1.0.0/16"}, []string{"name: vpn-0a1b2c3d"}},
		{"json, per-connection prefixes", "", []string{two, "--advertise", "vpn-0a1b2c3d=10.1.0.0/16", "--remote-prefix", "vpn-0c3d4e5f=10.0.0.0/16"},
			[]string{"name: vpn-0a1b2c3d", "name: vpn-0c3d4e5f", "advertise: [10.1.0.0/16]", "remote_prefixes: [10.0.0.0/16]", "- aes256-sha512-modp4096"}},
		{"json, plain prefixes", "", []string{two, "--advertise", "10.1.0.0/16", "--remote-prefix", "10.0.0.0/16"}, []string{"advertise: [10.1.0.0/16]", "remote_prefixes: [10.0.0.0/16]"}},
		{"json, one connection", "", []string{two, "--connection", "vpn-0c3d4e5f", "--remote-prefix", "10.0.0.0/16"}, []string{"name: vpn-0c3d4e5f"}},
	} {
		r := cgwctl(t, tt.stdin, append([]string{"import-aws"}, tt.args...)...)
		if r.code != 0 {
			t.Errorf("%s: exit %d: %s", tt.name, r.code, r.stderr)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("%s: output lacks %q:\n%s", tt.name, w, r.stdout)
			}
		}
		if _, _, err := config.Parse([]byte(r.stdout), "stdout"); err != nil {
			t.Errorf("%s: output does not validate: %v", tt.name, err)
		}
	}
	data, _ := os.ReadFile(generic)
	r := cgwctl(t, string(data), "import-aws", "-", "--advertise", "10.1.0.0/16")
	if r.code != 0 || !strings.Contains(r.stdout, "vpn-07bf7ced2b7485f2e") {
		t.Errorf("stdin: exit %d: %s", r.code, r.stderr)
	}
	if strings.Contains(r.stdout, "vpn-0c3d4e5f") {
		t.Error("stdin mixed up")
	}
}

// TestImportAWSOutputFile: -o writes the file with mode 0600 from the
// start and replaces an existing file atomically; a failed import leaves
// the old file alone.
func TestImportAWSOutputFile(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "cgw.yaml")
	if err := os.WriteFile(out, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := cgwctl(t, "", "import-aws", filepath.Join(testdata, "vgw-bgp.xml"), "--advertise", "10.1.0.0/16", "-o", out)
	if r.code != 0 || r.stdout != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	st, err := os.Stat(out)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", st.Mode(), err)
	}
	if _, _, err := config.Load(out); err != nil {
		t.Errorf("written file does not load: %v", err)
	}
	r = cgwctl(t, "crypto isakmp policy 1\n", "import-aws", "-", "-o", out)
	if r.code != 1 {
		t.Errorf("bad input: exit %d", r.code)
	}
	if _, _, err := config.Load(out); err != nil {
		t.Errorf("a failed import damaged the file: %v", err)
	}
	if files, _ := os.ReadDir(dir); len(files) != 1 {
		t.Errorf("temporary files left: %v", files)
	}
	r = cgwctl(t, "", "import-aws", filepath.Join(testdata, "vgw-bgp.xml"), "-o", filepath.Join(dir, "missing", "cgw.yaml"))
	if r.code != 1 || !strings.Contains(r.stderr, "no such file or directory") {
		t.Errorf("missing directory: exit %d, %s", r.code, r.stderr)
	}
}

// TestImportAWSExitCodes: 1 for a bad document, 2 for a bad command line.
func TestImportAWSExitCodes(t *testing.T) {
	two := filepath.Join(testdata, "import", "describe-two.json")
	for _, tt := range []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"juniper", "set security ike gateway gw-vpn-1 address 1.2.3.4\n", []string{"-"}, 1, "a Juniper configuration"},
		{"empty", "", []string{"-"}, 1, "the input is empty"},
		{"table", "|  DescribeVpnConnections |\n", []string{"-"}, 1, "--output table"},
		{"no connections", `{"VpnConnections": []}`, []string{"-"}, 1, "lists no VPN connections"},
		{"placeholder", "", []string{filepath.Join(testdata, "aws-samples", "describe.json")}, 1, "placeholder"},
		{"unknown connection", "", []string{two, "--connection", "vpn-99"}, 2, "no such connection"},
		{"bad connection flag", "", []string{two, "--connection", "99"}, 2, "not a VPN connection ID"},
		{"bad scoped prefix", "", []string{two, "--advertise", "x=10.0.0.0/8"}, 2, "is not a VPN connection ID"},
		{"name with two", "", []string{two, "--name", "x", "--remote-prefix", "10.0.0.0/16"}, 2, "--name applies to one connection"},
		{"two inputs", "", []string{"--from", two, two}, 2, "unexpected argument"},
		{"missing file", "", []string{filepath.Join(testdata, "nope.json")}, 1, "no such file"},
	} {
		r := cgwctl(t, tt.stdin, append([]string{"import-aws"}, tt.args...)...)
		if r.code != tt.code || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("%s: exit %d (want %d), stderr %q (want %q)", tt.name, r.code, tt.code, r.stderr, tt.want)
		}
	}
}
