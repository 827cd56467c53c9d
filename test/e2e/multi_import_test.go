//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

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
