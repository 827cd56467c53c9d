package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/cgwproject/cgw/internal/human"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/internal/version"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// fixtureNow is the instant the golden files are rendered at.
var fixtureNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// fixtureStatus is a daemon with a healthy BGP tunnel, its sibling failing
// authentication, and a static connection behind NAT in the middle of a
// CHILD SA rekey with drops.
func fixtureStatus() *control.Status {
	now := fixtureNow
	return &control.Status{
		Version: "1.0.0", Started: now.Add(-50*time.Hour - 30*time.Minute), ConfigFile: "/etc/cgw/cgw.yaml",
		IKEDrops: map[string]uint64{"cookie_sent": 6980, "invalid_ke": 3500},
		Connections: []*control.Connection{
			{
				Name: "vpn-0a1b2c3d", Routing: "bgp", Mode: "active-passive",
				Tunnels: []*control.Tunnel{
					{
						Name: "t1", State: "up", IKEState: "Established", ChildState: "Established",
						Since: now.Add(-2 * time.Hour), Device: "cgw0", InsideLocal: "169.254.15.194", InsidePeer: "169.254.15.193",
						Local: "203.0.113.10:500", Remote: "198.51.100.10:500", MTU: 1436,
						IKE: &control.IKESA{SPIi: "8f1c2a3b4c5d6e7f", SPIr: "0123456789abcdef", Initiator: true,
							Algorithms: "aes256gcm16-prfsha384-ecp384", Established: now.Add(-2 * time.Hour),
							RekeyAt: now.Add(5*time.Hour + 40*time.Minute), ExpiresAt: now.Add(6 * time.Hour)},
						Children: []*control.Child{{InSPI: "c1a2b3c4", OutSPI: "d5e6f7a8", Algorithms: "aes256gcm16-ecp384",
							Established: now.Add(-20 * time.Minute), RekeyAt: now.Add(35 * time.Minute), ExpiresAt: now.Add(40 * time.Minute),
							BytesIn: 90000, BytesOut: 120000, PacketsIn: 900, PacketsOut: 1000,
							TSLocal: []string{"0.0.0.0/0"}, TSRemote: []string{"0.0.0.0/0"}}},
						Traffic: control.Traffic{BytesIn: 1_500_000, BytesOut: 2_000_000, PacketsIn: 15000, PacketsOut: 16000,
							Drops: map[string]uint64{"auth": 0, "replay": 0, "no_sa": 0}, LastInbound: now.Add(-200 * time.Millisecond)},
						DPD: control.DPD{IntervalSeconds: 10, LastSeen: now.Add(-200 * time.Millisecond)},
						BGP: &control.BGP{Neighbor: "169.254.15.193", PeerASN: 64512, State: "Established", Since: now.Add(-119 * time.Minute),
							Received: 1, Accepted: 1, Advertised: 1},
					},
					{
						Name: "t2", State: "negotiating", IKEState: "Negotiating", ChildState: "Down",
						Since: now.Add(-2 * time.Minute), Device: "cgw1", InsideLocal: "169.254.13.238", InsidePeer: "169.254.13.237",
						Local: "203.0.113.10:500", Remote: "198.51.100.20:500", MTU: 1399,
						Traffic:   control.Traffic{Drops: map[string]uint64{"no_sa": 4}},
						DPD:       control.DPD{IntervalSeconds: 10},
						BGP:       &control.BGP{Neighbor: "169.254.13.237", PeerASN: 64512, State: "Active", Advertised: 0, LastError: "hold timer expired"},
						LastError: "ike: peer answered AUTHENTICATION_FAILED to our IKE_AUTH", LastErrorAt: now.Add(-15 * time.Second),
					},
				},
				Routes:   []control.Route{{Prefix: "10.0.0.0/16", Via: []string{"t1"}, Source: "bgp", Metric: 100}},
				Filtered: []control.FilteredRoute{{Prefix: "0.0.0.0/0", Reason: "default_route"}, {Prefix: "10.99.0.0/16", Reason: "prefix_limit"}},
			},
			{
				Name: "branch-static", Routing: "static",
				Tunnels: []*control.Tunnel{{
					Name: "t3", State: "up", IKEState: "Established", ChildState: "Rekeying",
					Since: now.Add(-26 * time.Hour), Device: "cgw2", InsideLocal: "169.254.20.2", InsidePeer: "169.254.20.1",
					Local: "192.168.1.10:4500", Remote: "198.51.100.30:4500", NAT: true, Encap: true, MTU: 1422,
					IKE: &control.IKESA{SPIi: "aa00bb11cc22dd33", SPIr: "44ee55ff66007711", Initiator: false,
						Algorithms: "aes128-sha1-modp1024", Established: now.Add(-3 * time.Hour),
						RekeyAt: now.Add(-30 * time.Second), ExpiresAt: now.Add(4*time.Hour + 30*time.Minute)},
					IKEFragments: &control.IKEFragments{Negotiated: true, Sent: 6, Received: 3, Reassembled: 1},
					Children: []*control.Child{
						{InSPI: "01020304", OutSPI: "0a0b0c0d", Algorithms: "aes128-sha1-modp1024",
							Established: now.Add(-57 * time.Minute), RekeyAt: now.Add(-5 * time.Second), ExpiresAt: now.Add(3 * time.Minute),
							BytesIn: 1 << 30, BytesOut: 3 << 20, PacketsIn: 800000, PacketsOut: 1,
							TSLocal: []string{"10.1.0.0/16"}, TSRemote: []string{"10.9.0.0/16"}},
						{InSPI: "11121314", OutSPI: "1a1b1c1d", Algorithms: "aes128-sha1-modp1024",
							Established: now.Add(-1 * time.Second), RekeyAt: now.Add(53 * time.Minute), ExpiresAt: now.Add(59 * time.Minute),
							TSLocal: []string{"10.1.0.0/16"}, TSRemote: []string{"10.9.0.0/16"}},
					},
					Traffic: control.Traffic{BytesIn: 1 << 30, BytesOut: 3 << 20, PacketsIn: 800000, PacketsOut: 1,
						Drops: map[string]uint64{"auth": 3, "replay": 12, "mtu": 0}, LastInbound: now.Add(-2 * time.Second),
						Fragmented: 42, TooBigSent: 7},
					DPD: control.DPD{IntervalSeconds: 10, Misses: 1, LastSeen: now.Add(-2 * time.Second)},
				}},
				Routes: []control.Route{{Prefix: "10.9.0.0/16", Via: []string{"t3"}, Source: "static", Metric: 100}},
			},
		},
	}
}

// fixtureDiagnosis has every severity, long text that wraps, and three
// tunnels.
func fixtureDiagnosis() *control.Diagnosis {
	return &control.Diagnosis{Findings: []control.Finding{
		{Tunnel: "t1", Check: "tunnel", Severity: control.SeverityOK, Summary: "The IKE SA and the CHILD (IPsec) SA are established.",
			Evidence: []string{"IKE SA 8f1c2a3b4c5d6e7f_i 0123456789abcdef_r aes256gcm16-prfsha384-ecp384, established 2h ago, rekey in 5h40m, expires in 6h"}},
		{Tunnel: "t1", Check: "ike-ports", Severity: control.SeverityOK, Summary: "AWS answers IKE on UDP 500/4500.",
			Evidence: []string{"IKE messages sent to 198.51.100.10: 14, received from it: 31"}},
		{Tunnel: "t1", Check: "mtu", Severity: control.SeverityOK, Summary: "Packets up to 1436 bytes cross the tunnel with DF set."},
		{Tunnel: "t2", Check: "tunnel", Severity: control.SeverityWarn, Summary: "IKE is negotiating; no SA is established yet.",
			Fix: "If this lasts more than a minute, the findings below say what fails."},
		{Tunnel: "t2", Check: "ike-failure", Severity: control.SeverityError,
			Summary: "AWS rejected our authentication (AUTHENTICATION_FAILED): the pre-shared key or our identity does not match what AWS has for this tunnel.",
			Evidence: []string{
				"last failure (15s ago): ike: peer answered AUTHENTICATION_FAILED to our IKE_AUTH",
				"this is tunnel 2 of 2 of connection vpn-0a1b2c3d, AWS outside IP 198.51.100.20",
				"our identity (IDi): 203.0.113.10, from local_id",
			},
			Fix: "Copy the pre-shared key of the tunnel whose outside IP is 198.51.100.20 (AWS console > VPN connection > Modify VPN tunnel options, or the downloaded configuration): tunnel 1 and tunnel 2 have different keys and are easily swapped, and stray spaces or quotes break it."},
		{Tunnel: "t2", Check: "direction", Severity: control.SeverityInfo, Summary: "No CHILD SA, so no traffic can cross the tunnel; direction analysis skipped."},
		{Tunnel: "t3", Check: "nat", Severity: control.SeverityInfo, Summary: "A NAT is between cgw and AWS; IKE and ESP use UDP 4500.",
			Evidence: []string{"local endpoint 192.168.1.10:4500, AWS endpoint 198.51.100.30:4500"}},
		{Tunnel: "t3", Check: "drops", Severity: control.SeverityWarn, Summary: "10 packets dropped in 3s (replay): packets arrived twice, or so late that the anti-replay window had moved past them.",
			Evidence: []string{"replay drops: 2 before, 12 after 3s"},
			Fix:      "The path reorders or duplicates packets; raise replay_window (up to 2048, AWS's maximum) if reordering is heavy."},
	}}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test -update rewrites it):\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func TestRenderStatusGolden(t *testing.T) {
	golden(t, "status.golden", renderStatus(fixtureStatus(), fixtureNow))
}

func TestRenderStatusEmpty(t *testing.T) {
	got := string(renderStatus(&control.Status{Version: "1.0.0"}, fixtureNow))
	if got != "cgwd 1.0.0\nno connections configured\n" {
		t.Errorf("%q", got)
	}
}

func TestRenderDiagnosisGolden(t *testing.T) {
	out := renderDiagnosis(fixtureDiagnosis())
	golden(t, "diagnose.golden", out)
	for _, line := range strings.Split(string(out), "\n") {
		// Only a single unbreakable word may exceed the wrap width.
		if len(line) > wrapWidth && strings.Contains(strings.TrimSpace(line[:wrapWidth]), " ") && strings.Count(line[wrapWidth:], " ") > 0 {
			t.Errorf("line not wrapped: %q", line)
		}
	}
}

func TestRenderDiagnosisEmpty(t *testing.T) {
	if got := string(renderDiagnosis(&control.Diagnosis{})); !strings.Contains(got, "no findings") {
		t.Errorf("%q", got)
	}
}

func TestHuman(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0ms", 250 * time.Millisecond: "250ms", 3200 * time.Millisecond: "3.2s", 42 * time.Second: "42s",
		270 * time.Second: "4m30s", 8 * time.Hour: "8h", time.Hour + 5*time.Second: "1h", 50*time.Hour + 30*time.Minute: "2d2h",
		-90 * time.Second: "1m30s",
	} {
		if got := human.Duration(d); got != want {
			t.Errorf("human.Duration(%v) = %q, want %q", d, got, want)
		}
	}
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 1 << 30: "1.0 GiB"} {
		if got := human.Bytes(n); got != want {
			t.Errorf("human.Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// fakeBackend is a control.Backend with canned answers that records calls.
type fakeBackend struct {
	mu    sync.Mutex
	calls []string
}

func (b *fakeBackend) record(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, s)
}

func (b *fakeBackend) lastCall() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.calls) == 0 {
		return ""
	}
	return b.calls[len(b.calls)-1]
}

func (b *fakeBackend) Status(context.Context) (*control.Status, error) {
	b.record("status")
	return fixtureStatus(), nil
}

func (b *fakeBackend) tunnel(name string) error {
	switch name {
	case "t1", "t2", "t3":
		return nil
	case "broken":
		return errors.New("ike: not running")
	}
	return fmt.Errorf("tunnel %q: %w (configured tunnels: [t1 t2 t3])", name, control.ErrNotFound)
}

func (b *fakeBackend) TunnelUp(_ context.Context, name string) error {
	b.record("up " + name)
	return b.tunnel(name)
}

func (b *fakeBackend) TunnelDown(_ context.Context, name string) error {
	b.record("down " + name)
	return b.tunnel(name)
}

func (b *fakeBackend) Rekey(_ context.Context, name string, ike bool) error {
	b.record(fmt.Sprintf("rekey %s ike=%v", name, ike))
	return b.tunnel(name)
}

func (b *fakeBackend) Reload(context.Context) (*control.ReloadResult, error) {
	b.record("reload")
	return &control.ReloadResult{
		Changes:  []string{"connection vpn-0a1b2c3d tunnel t2: psk changed (tunnel restarted)", "routes: metric 100 -> 50"},
		Warnings: []string{"tunnel t2: ike_lifetime 4h differs from AWS's default 8h", "warning: cgw.yaml:9: connections[0].tunnels: only one tunnel"},
	}, nil
}

func (b *fakeBackend) Diagnose(_ context.Context, tunnel string) (*control.Diagnosis, error) {
	b.record("diagnose " + tunnel)
	d := fixtureDiagnosis()
	if tunnel == "" {
		return d, nil
	}
	if err := b.tunnel(tunnel); err != nil {
		return nil, err
	}
	var out control.Diagnosis
	for _, f := range d.Findings {
		if f.Tunnel == tunnel {
			out.Findings = append(out.Findings, f)
		}
	}
	return &out, nil
}

// startServer serves a fakeBackend on a unix socket in a fresh directory
// (short, so the path fits sun_path).
func startServer(t *testing.T) (string, *fakeBackend) {
	t.Helper()
	dir, err := os.MkdirTemp("", "cgwctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "cgw.sock")
	fb := &fakeBackend{}
	srv, err := control.Listen(path, fb, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return path, fb
}

func TestVerbsAgainstServer(t *testing.T) {
	sock, fb := startServer(t)
	t.Setenv(socketEnv, "")
	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   []string
		stderr   string
		lastCall string
	}{
		{"status", []string{"--socket", sock, "status"}, 0,
			[]string{"cgwd 1.0.0, up ", "TUNNEL", "t1  ", "vpn-0a1b2c3d", "8f1c2a3b4c5d6e7f_i* 0123456789abcdef_r", "drops    auth 3, replay 12", "10.9.0.0/16 via t3 (static, metric 100)"}, "", "status"},
		{"version", []string{"--socket", sock, "version"}, 0, []string{"cgwctl " + version.Full() + "\ncgwd   1.0.0\n"}, "", "status"},
		{"version json", []string{"version", "--json", "--socket", sock}, 0, []string{`"client": "` + version.Full() + `"`, `"daemon": "1.0.0"`}, "", "status"},
		{"status, verb socket flag", []string{"status", "--socket", sock}, 0, []string{"TUNNEL"}, "", "status"},
		{"tunnel up", []string{"--socket", sock, "tunnel", "up", "t2"}, 0, []string{"t2: initiating"}, "", "up t2"},
		{"tunnel down", []string{"tunnel", "down", "--socket", sock, "t2"}, 0, []string{"t2: SAs deleted; it stays down until cgwctl tunnel up t2"}, "", "down t2"},
		{"rekey child", []string{"--socket", sock, "tunnel", "rekey", "t1"}, 0, []string{"t1: CHILD SA rekey started"}, "", "rekey t1 ike=false"},
		{"rekey ike, flag after name", []string{"--socket", sock, "tunnel", "rekey", "t1", "--ike"}, 0, []string{"t1: IKE SA rekey started"}, "", "rekey t1 ike=true"},
		{"rekey ike json", []string{"--socket", sock, "tunnel", "rekey", "--json", "--ike", "t1"}, 0, []string{`"action": "rekey-ike"`, `"tunnel": "t1"`}, "", "rekey t1 ike=true"},
		{"tunnel down json", []string{"--socket", sock, "tunnel", "down", "t2", "--json"}, 0, []string{`"action": "down"`, `"message": "SAs deleted; it stays down until cgwctl tunnel up t2"`}, "", "down t2"},
		{"help verb", []string{"--socket", sock, "help", "tunnel", "rekey"}, 0, []string{"usage: cgwctl tunnel rekey [--ike] [--json]", "flags:"}, "", "down t2"},
		{"unknown tunnel", []string{"--socket", sock, "tunnel", "up", "t9"}, 1, nil, `cgwctl tunnel up: tunnel "t9": not found (configured tunnels: [t1 t2 t3])`, "up t9"},
		{"daemon error", []string{"--socket", sock, "tunnel", "down", "broken"}, 1, nil, "cgwctl tunnel down: ike: not running", "down broken"},
		{"reload", []string{"--socket", sock, "reload"}, 0,
			[]string{"configuration reloaded:\n  connection vpn-0a1b2c3d tunnel t2: psk changed (tunnel restarted)\n  routes: metric 100 -> 50\n"},
			"warning: tunnel t2: ike_lifetime 4h differs from AWS's default 8h\nwarning: cgw.yaml:9:", "reload"},
		{"diagnose all, errors found", []string{"--socket", sock, "diagnose"}, 3, []string{"t1: 3 ok", "t2: 1 error, 1 warning, 1 info", "[FAIL] ike-failure:"}, "", "diagnose "},
		{"diagnose healthy tunnel", []string{"--socket", sock, "diagnose", "t1"}, 0, []string{"t1: 3 ok"}, "", "diagnose t1"},
		{"diagnose warnings only", []string{"--socket", sock, "diagnose", "t3"}, 0, []string{"[WARN] drops:"}, "", "diagnose t3"},
		{"diagnose unknown tunnel", []string{"--socket", sock, "diagnose", "t9"}, 1, nil, "not found", "diagnose t9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := cgwctl(t, "", tt.args...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d; stdout %q, stderr %q", r.code, tt.code, r.stdout, r.stderr)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(r.stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, r.stdout)
				}
			}
			if tt.stderr == "" && r.stderr != "" || !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("stderr %q, want %q", r.stderr, tt.stderr)
			}
			if got := fb.lastCall(); got != tt.lastCall {
				t.Errorf("backend call %q, want %q", got, tt.lastCall)
			}
		})
	}
}

func TestJSONAgainstServer(t *testing.T) {
	sock, _ := startServer(t)
	r := cgwctl(t, "", "--socket", sock, "status", "--json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var st control.Status
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(fixtureStatus())
	got, _ := json.Marshal(&st)
	if !bytes.Equal(got, want) {
		t.Errorf("status --json does not round-trip:\n%s\nwant\n%s", got, want)
	}
	golden(t, "status.json.golden", []byte(r.stdout))

	r = cgwctl(t, "", "--socket", sock, "diagnose", "--json", "t2")
	if r.code != exitFindings {
		t.Errorf("diagnose --json with an error finding: exit %d, want %d", r.code, exitFindings)
	}
	var d control.Diagnosis
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil || len(d.Findings) != 3 || d.Findings[1].Check != "ike-failure" {
		t.Errorf("diagnose --json: %v %+v", err, d)
	}
	golden(t, "diagnose.json.golden", []byte(r.stdout))
}

func TestSocketFromEnvironment(t *testing.T) {
	sock, fb := startServer(t)
	t.Setenv(socketEnv, sock)
	if r := cgwctl(t, "", "tunnel", "up", "t1"); r.code != 0 || fb.lastCall() != "up t1" {
		t.Errorf("$%s: exit %d, stderr %q, call %q", socketEnv, r.code, r.stderr, fb.lastCall())
	}
	// Flags win over the environment.
	t.Setenv(socketEnv, filepath.Join(t.TempDir(), "absent.sock"))
	if r := cgwctl(t, "", "--socket", sock, "status"); r.code != 0 {
		t.Errorf("global --socket over $%s: exit %d, stderr %q", socketEnv, r.code, r.stderr)
	}
	if r := cgwctl(t, "", "status", "--socket", sock); r.code != 0 {
		t.Errorf("verb --socket over $%s: exit %d, stderr %q", socketEnv, r.code, r.stderr)
	}
	if r := cgwctl(t, "", "status"); r.code != 1 || !strings.Contains(r.stderr, "absent.sock") {
		t.Errorf("$%s pointing nowhere: exit %d, stderr %q", socketEnv, r.code, r.stderr)
	}
}

func TestDaemonUnreachable(t *testing.T) {
	absent := filepath.Join(t.TempDir(), "absent.sock")
	for _, args := range [][]string{{"status"}, {"tunnel", "up", "t1"}, {"reload"}, {"diagnose"}} {
		r := cgwctl(t, "", append([]string{"--socket", absent}, args...)...)
		if r.code != 1 || !strings.Contains(r.stderr, "cannot reach cgwd at "+absent) || !strings.Contains(r.stderr, "is cgwd running") {
			t.Errorf("%q: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
}

func TestDaemonVerbUsage(t *testing.T) {
	// The socket points nowhere: a usage error must be reported before any
	// connection attempt (which would exit 1).
	absent := filepath.Join(t.TempDir(), "absent.sock")
	tests := []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"status", "extra"}, 2, "", `cgwctl status: unexpected argument "extra"`},
		{[]string{"status", "--bogus"}, 2, "", "flag provided but not defined: -bogus"},
		{[]string{"status", "--json=maybe"}, 2, "", "invalid boolean value"},
		{[]string{"status", "--socket"}, 2, "", "flag needs an argument"},
		{[]string{"tunnel"}, 2, "", "usage: cgwctl tunnel <command>"},
		{[]string{"tunnel", "restart", "t1"}, 2, "", `unknown command "tunnel restart"`},
		{[]string{"tunnel", "up"}, 2, "", "name the tunnel"},
		{[]string{"tunnel", "down", "t1", "t2"}, 2, "", "one tunnel at a time; got 2 names"},
		{[]string{"tunnel", "up", "--ike", "t1"}, 2, "", "flag provided but not defined: -ike"},
		{[]string{"tunnel", "rekey"}, 2, "", "usage: cgwctl tunnel rekey [--ike] [--json] [--socket PATH] NAME"},
		{[]string{"help", "nope"}, 2, "", `unknown command "nope"`},
		{[]string{"help", "bgp"}, 0, "bgp routes [received|advertised|installed]", ""},
		{[]string{"reload", "now"}, 2, "", `unexpected argument "now"`},
		{[]string{"diagnose", "t1", "t2"}, 2, "", "one tunnel at a time, or none for all"},
		{[]string{"diagnose", "-h"}, 0, "Exit status: 0 no error found", ""},
		{[]string{"status", "-h"}, 0, "swanctl --list-sas", ""},
		{[]string{"help"}, 0, "tunnel rekey [--ike] [--json] [--socket PATH] NAME", ""},
		{[]string{"-h"}, 0, "3 diagnose found an error", ""},
	}
	for _, tt := range tests {
		r := cgwctl(t, "", append([]string{"--socket", absent}, tt.args...)...)
		if r.code != tt.code || !strings.Contains(r.stdout, tt.stdout) || !strings.Contains(r.stderr, tt.stderr) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", tt.args, r.code, r.stdout, r.stderr)
		}
	}
}

func (b *fakeBackend) BGPRoutes(_ context.Context, table, tunnel string) (*control.BGPRoutes, error) {
	b.record("bgp routes " + table + " " + tunnel)
	if tunnel != "" {
		if err := b.tunnel(tunnel); err != nil {
			return nil, err
		}
	}
	all := fixtureBGPRoutes(table)
	out := &control.BGPRoutes{Table: table, Routes: []control.BGPRoute{}}
	for _, r := range all.Routes {
		if tunnel == "" || r.Tunnel == tunnel {
			out.Routes = append(out.Routes, r)
		}
	}
	return out, nil
}

func (b *fakeBackend) ReloadDryRun(context.Context) (*control.ReloadResult, error) {
	b.record("reload dry-run")
	return fixtureDryRun(), nil
}

func (b *fakeBackend) EffectiveConfig(context.Context) (*control.ConfigDoc, error) {
	b.record("config")
	return fixtureConfigDoc(), nil
}

// Events sends fixtureEvents and then holds the stream open until the
// client leaves.
func (b *fakeBackend) Events(ctx context.Context, send func(control.Event) error) error {
	b.record("events")
	for _, ev := range fixtureEvents() {
		if err := send(ev); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return nil
}
