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

	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/test/sim"
)

// importedYAML turns the simulator's AWS XML into a cgw configuration with
// `cgwctl import-aws`, as a user would, points the control socket where the
// harness expects it and lets edit change the decoded document.
func importedYAML(t testing.TB, s *sim.Sim, edit func(doc map[string]any)) string {
	t.Helper()
	xmlPath := filepath.Join(s.Dir(), "aws.xml")
	if err := os.WriteFile(xmlPath, s.AWSXML(), 0o600); err != nil {
		t.Fatal(err)
	}
	adv := sim.DefaultLAN
	if s.Options().IPv6Inside {
		adv = sim.LANPrefix6
	}
	cmd := exec.Command(filepath.Join(Binaries(t), "cgwctl"), "import-aws", "--xml", xmlPath,
		"--advertise", adv.String(), "--local-address", s.CustPublic().String())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("cgwctl import-aws: %v: %s", err, stderr.String())
	}
	var doc map[string]any
	if err := yaml.Unmarshal(out, &doc); err != nil {
		t.Fatalf("import-aws output is not YAML: %v\n%s", err, out)
	}
	doc["control"] = map[string]any{"socket": s.CgwdSocket(sim.Cust)}
	if edit != nil {
		edit(doc)
	}
	b, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// status returns cgwd's status over its control socket.
func (c *Cgwd) status() (*control.Status, error) {
	var st control.Status
	err := c.CtlJSON(&st, "status")
	return &st, err
}

// waitStatus polls the status until cond returns nil.
func (c *Cgwd) waitStatus(t testing.TB, timeout time.Duration, cond func(*control.Status) error) *control.Status {
	t.Helper()
	var last *control.Status
	Eventually(t, timeout, func() error {
		if ok, err := c.Proc.Exited(); ok {
			return fmt.Errorf("cgwd exited: %v\n%s", err, c.Proc.Tail(40))
		}
		st, err := c.status()
		if err != nil {
			return err
		}
		last = st
		return cond(st)
	})
	return last
}

// childrenUp is a waitStatus condition: every tunnel has its CHILD SA.
func childrenUp(st *control.Status) error {
	n := 0
	for _, c := range st.Connections {
		for _, t := range c.Tunnels {
			if t.ChildState != "Established" && t.ChildState != "Rekeying" {
				return fmt.Errorf("tunnel %s: IKE %s, CHILD %s, last error %q", t.Name, t.IKEState, t.ChildState, t.LastError)
			}
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("no tunnels in status")
	}
	return nil
}

// tunnelsUp is a waitStatus condition: every tunnel is up in CloudWatch's
// sense (BGP Established for BGP connections).
func tunnelsUp(st *control.Status) error {
	for _, c := range st.Connections {
		for _, t := range c.Tunnels {
			if t.State != "up" {
				bgp := "no BGP"
				if t.BGP != nil {
					bgp = "BGP " + t.BGP.State
				}
				return fmt.Errorf("tunnel %s is %s (CHILD %s, %s)", t.Name, t.State, t.ChildState, bgp)
			}
		}
	}
	return nil
}

// swanUp checks, from strongSwan's side, that AWS endpoint i has an
// established IKE SA with an installed CHILD SA.
func swanUp(s *sim.Sim, i int) error {
	sas, err := s.ListSAs(i)
	if err != nil {
		return err
	}
	for _, sa := range sas {
		if sa.Established() && len(sa.Installed()) > 0 {
			return nil
		}
	}
	return fmt.Errorf("AWS endpoint %d (strongSwan): no established IKE SA with an installed CHILD SA: %+v", i, sas)
}

// TestImportedXMLBothTunnels: the AWS XML of the simulated connection is
// imported with cgwctl, cgwd starts from it, and both IKE and CHILD SAs come
// up as strongSwan (the AWS side) and cgwd both report; then BGP and a
// LAN->VPC ping go through.
func TestImportedXMLBothTunnels(t *testing.T) {
	s := NewSim(t, sim.Options{})
	start := time.Now()
	d := StartCgwdYAML(t, s, sim.Cust, importedYAML(t, s, nil))
	st := d.waitStatus(t, 60*time.Second, childrenUp)
	t.Logf("e2e: cgwd start to both CHILD_SAs established: %v", time.Since(start).Round(time.Millisecond))
	for i := 1; i <= 2; i++ {
		if err := swanUp(s, i); err != nil {
			t.Error(err)
		}
	}
	for _, tn := range st.Connections[0].Tunnels {
		if tn.IKE == nil || len(tn.Children) == 0 || tn.Children[0].InSPI == "" {
			t.Errorf("tunnel %s: status lacks IKE/CHILD SA details: %+v", tn.Name, tn)
		}
	}
	d.waitStatus(t, 60*time.Second, tunnelsUp)
	t.Logf("e2e: cgwd start to both BGP sessions established: %v", time.Since(start).Round(time.Millisecond))
	if err := s.WaitPing(sim.LAN, sim.VPCHostAddr, 20*time.Second); err != nil {
		t.Fatalf("LAN host cannot reach the VPC host through cgwd: %v", err)
	}
	if loss, err := s.Ping(sim.LAN, sim.VPCHostAddr, 10, 100*time.Millisecond); err != nil || loss > 0 {
		t.Errorf("ping LAN->VPC: loss %.0f%%, err %v", loss, err)
	}
}
