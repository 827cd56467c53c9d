//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cgwproject/cgw/test/sim"
)

// importMulti builds cgwd's side of a Multi as a user would: the
// describe-vpn-connections JSON of the simulated connections, imported with
// `cgwctl import-aws` (the LAN advertised by every connection, each
// connection's marker prefix by that connection only, --connection for a
// subset). Only where the harness expects the control socket and the
// metrics listener are changed in the result.
func importMulti(t testing.TB, s *sim.Sim, m *sim.Multi, conns []int, metrics string) string {
	t.Helper()
	path := filepath.Join(s.Dir(), "describe-vpn-connections.json")
	if err := os.WriteFile(path, m.DescribeJSON(), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"import-aws", path, "--local-address", s.CustOutsideAddr().String(),
		"--advertise", s.Options().LANPrefix.String()}
	sel := map[int]bool{}
	for _, k := range conns {
		sel[k] = true
	}
	for _, c := range m.Conns {
		switch {
		case len(conns) == 0:
			args = append(args, "--advertise", c.ID+"="+c.Marker.String())
		case sel[c.Index]:
			// --advertise ID=CIDR must name a selected connection.
			args = append(args, "--connection", c.ID, "--advertise", c.ID+"="+c.Marker.String())
		}
	}
	cmd := exec.Command(filepath.Join(Binaries(t), "cgwctl"), args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("cgwctl import-aws %s: %v: %s", path, err, stderr.String())
	}
	var doc map[string]any
	if err := yaml.Unmarshal(out, &doc); err != nil {
		t.Fatalf("import-aws output is not YAML: %v", err)
	}
	doc["control"] = map[string]any{"socket": s.CgwdSocket(sim.Cust)}
	doc["metrics"] = map[string]any{"listen": metrics}
	b, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestMultiImportCookies: cgwd's side of 6 simulated connections (12
// tunnels) is imported from their describe-vpn-connections JSON with
// `cgwctl import-aws`, and the AWS side's charon demands a COOKIE (RFC
// 7296, Section 2.6) of nearly every IKE_SA_INIT, as a responder under
// load does. Every tunnel must still come up, with BGP, through the cookie
// exchange, and each imported tunnel must have negotiated an ECP group
// (the JSON's TunnelOptions allow groups 19-21 only).
func TestMultiImportCookies(t *testing.T) {
	const n = 6
	s := NewSim(t, sim.Options{AWS: sim.AWSNone})
	m, err := s.StartMulti(sim.MultiOptions{Connections: n, DHGroups: []int{19, 20, 21}, Cookies: true})
	if err != nil {
		t.Fatal(err)
	}
	d := StartCgwdYAML(t, s, sim.Cust, importMulti(t, s, m, nil, ""))
	start := time.Now()
	st := d.waitStatus(t, 90*time.Second, tunnelsUp)
	cookies := countLog(t, d.Proc, `msg="peer demands a COOKIE`)
	t.Logf("e2e: %d imported tunnels up (CHILD SA and BGP) %.1fs after start, %d IKE_SA_INITs retried with a COOKIE",
		2*n, time.Since(start).Seconds(), cookies)
	if got := countTunnels(st); got != 2*n {
		t.Fatalf("status lists %d tunnels, want %d", got, 2*n)
	}
	if cookies == 0 {
		t.Fatalf("charon demanded no COOKIE: the cookie path was not exercised (log %s)", d.Proc.Log)
	}
	names := map[string]bool{}
	for _, c := range m.Conns {
		for i := range c.Tunnels {
			names[fmt.Sprintf("%s-t%d", c.ID, i+1)] = true
		}
	}
	for _, c := range st.Connections {
		for _, tn := range c.Tunnels {
			if !names[tn.Name] {
				t.Errorf("tunnel %s is not one of the imported connections' tunnels", tn.Name)
			}
			if tn.IKE == nil || !strings.Contains(tn.IKE.Algorithms, "ecp") {
				t.Errorf("tunnel %s: IKE SA %+v, want an ECP group (the tunnel options allow 19-21 only)", tn.Name, tn.IKE)
			}
		}
	}
}
