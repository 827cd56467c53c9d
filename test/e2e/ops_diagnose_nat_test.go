//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/test/sim"
)

// TestDiagnoseWrongIdentityBehindNAT: the customer gateway sits behind a
// NAT and local_id is its own private address instead of the public IP
// registered on the AWS customer gateway, a first-hour mistake. AWS
// (strongSwan, which expects the public address) answers
// AUTHENTICATION_FAILED; `cgwctl diagnose` must fail the nat check (exit
// 3), tell it from a wrong PSK by AWS's NAT detection, and say to set
// local_id to the NAT's public IP. With that fix and `cgwctl reload`, both
// tunnels come up and the LAN reaches the VPC.
func TestDiagnoseWrongIdentityBehindNAT(t *testing.T) {
	s := NewSim(t, sim.Options{NAT: true})
	cfg, err := s.CgwdConfig(sim.CgwdOptions{})
	if err != nil {
		t.Fatal(err)
	}
	private := sim.CustNATAddr.String()
	cfg = editYAML(t, cfg, func(doc map[string]any) {
		doc["connections"].([]any)[0].(map[string]any)["local_id"] = private
	})
	d := StartCgwdYAML(t, s, sim.Cust, cfg)
	t1, t2 := tunnelNames(t, d)
	d.waitStatus(t, 30*time.Second, tunnelCond(t1, func(tn *control.Tunnel) error {
		if !strings.Contains(tn.LastError, "rejected our PSK/identity") {
			return fmt.Errorf("last error %q, want AWS's AUTHENTICATION_FAILED", tn.LastError)
		}
		return nil
	}))
	dg, code, _ := d.diagnose(t, t1)
	if code != 3 {
		t.Errorf("diagnose exit %d, want 3", code)
	}
	wantFinding(t, dg, t1, "nat", control.SeverityError,
		[]string{"identity " + private + " is this host's address behind the NAT", "AUTHENTICATION_FAILED", "left from " + private},
		[]string{"set local_id to the NAT device's public IP", "cgwctl reload"})
	wantFinding(t, dg, t1, "ike-failure", control.SeverityError,
		[]string{"our identity " + private + " is not the address AWS sees us at"}, []string{"local_id"})
	text, _, _ := d.ctlExit("diagnose", t1)
	t.Logf("e2e: cgwctl diagnose %s (local_id is the private address behind NAT):\n%s", t1, text)

	// The fix the finding names: the NAT's public IP, then reload.
	editConfigFile(t, d, func(doc map[string]any) {
		doc["connections"].([]any)[0].(map[string]any)["local_id"] = sim.CustPublicAddr.String()
	})
	if out, err := d.Ctl("reload"); err != nil {
		t.Fatalf("cgwctl reload: %v\n%s", err, out)
	}
	d.waitStatus(t, 90*time.Second, func(st *control.Status) error {
		for _, n := range []string{t1, t2} {
			if tn := findTunnel(st, n); tn == nil || tn.State != "up" {
				return fmt.Errorf("%s not up: %+v", n, tn)
			}
		}
		return nil
	})
	if err := s.WaitPing(sim.LAN, sim.VPCHostAddr, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	dg, code, _ = d.diagnose(t, t1)
	if code != 0 {
		t.Errorf("diagnose after the fix: exit %d, want 0: %+v", code, dg.Findings)
	}
	wantFinding(t, dg, t1, "nat", control.SeverityInfo,
		[]string{"A NAT is between", "AWS saw our last IKE_SA_INIT come from " + sim.CustPublicAddr.String()}, nil)
}
