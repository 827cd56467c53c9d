//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/test/sim"
)

// diagnose runs `cgwctl diagnose --json TUNNEL` and returns the findings
// and the exit status.
func (c *Cgwd) diagnose(t testing.TB, tunnel string) (*control.Diagnosis, int, string) {
	t.Helper()
	stdout, stderr, code := c.ctlExit("diagnose", "--json", tunnel)
	var dg control.Diagnosis
	if err := json.Unmarshal([]byte(stdout), &dg); err != nil {
		t.Fatalf("cgwctl diagnose --json %s: exit %d: %v: %q %s", tunnel, code, err, stdout, stderr)
	}
	return &dg, code, stdout
}

// finding returns the finding of check for tunnel, or nil.
func finding(dg *control.Diagnosis, tunnel, check string) *control.Finding {
	for i, f := range dg.Findings {
		if f.Tunnel == tunnel && f.Check == check {
			return &dg.Findings[i]
		}
	}
	return nil
}

// wantFinding checks that check reported sev with summary and fix each
// containing the given words (case-insensitive).
func wantFinding(t testing.TB, dg *control.Diagnosis, tunnel, check string, sev control.Severity, summaryHas, fixHas []string) {
	t.Helper()
	f := finding(dg, tunnel, check)
	if f == nil {
		t.Errorf("diagnose %s: no %q finding among %+v", tunnel, check, dg.Findings)
		return
	}
	if f.Severity != sev {
		t.Errorf("diagnose %s: %s is %s, want %s: %+v", tunnel, check, f.Severity, sev, *f)
	}
	for _, w := range summaryHas {
		if !strings.Contains(strings.ToLower(f.Summary+" "+strings.Join(f.Evidence, " ")), strings.ToLower(w)) {
			t.Errorf("diagnose %s: %s summary/evidence lacks %q: %q %q", tunnel, check, w, f.Summary, f.Evidence)
		}
	}
	for _, w := range fixHas {
		if !strings.Contains(strings.ToLower(f.Fix), strings.ToLower(w)) {
			t.Errorf("diagnose %s: %s fix lacks %q: %q", tunnel, check, w, f.Fix)
		}
	}
}

// TestOpsDiagnose breaks the simulator in the ways AWS's troubleshooting
// guides list and checks `cgwctl diagnose` names each with the right check
// and fix, exits 3 on a broken tunnel and 0 on a healthy one. Tunnel 1
// starts with a wrong PSK and tunnel 2 with UDP 500/4500 blocked; then
// tunnel 1 is fixed (healthy) while tunnel 2 gets a proposal mismatch;
// finally AWS stops BGP on tunnel 1 (its routes disappear).
func TestOpsDiagnose(t *testing.T) {
	o := sim.Options{}
	s := NewSim(t, o)
	cfg, err := s.CgwdConfig(sim.CgwdOptions{LogLevel: "debug"})
	if err != nil {
		t.Fatal(err)
	}
	// Tunnel 2 offers one suite, so that narrowing AWS to another (the
	// proposal mismatch below) leaves nothing in common: the default
	// proposals contain every algorithm AWS accepts.
	cfg = editYAML(t, cfg, func(doc map[string]any) {
		tn := yamlTunnels(t, doc)[1]
		tn["ike_proposals"] = []string{offerIKE}
		tn["esp_proposals"] = []string{offerESP}
	})
	if err := s.SetPSK(1, wrongPSK); err != nil {
		t.Fatal(err)
	}
	if err := s.BlockEndpoint(2); err != nil {
		t.Fatal(err)
	}
	d := StartCgwdYAML(t, s, sim.Cust, cfg)
	t1, t2 := tunnelNames(t, d)
	var outputs []string

	t.Run("wrong PSK", func(t *testing.T) {
		d.waitStatus(t, 20*time.Second, tunnelCond(t1, func(tn *control.Tunnel) error {
			if tn.LastError == "" {
				return fmt.Errorf("no failure yet")
			}
			return nil
		}))
		dg, code, js := d.diagnose(t, t1)
		outputs = append(outputs, js)
		if code != 3 {
			t.Errorf("diagnose exit %d, want 3 for a broken tunnel", code)
		}
		wantFinding(t, dg, t1, "ike-failure", control.SeverityError, []string{"AUTHENTICATION_FAILED"}, []string{"pre-shared key", sim.Endpoints[0].Outside.String()})
		wantFinding(t, dg, t1, "tunnel", control.SeverityError, nil, nil)
		wantFinding(t, dg, t1, "ike-ports", control.SeverityOK, nil, nil)
		text, _, _ := d.ctlExit("diagnose", t1)
		outputs = append(outputs, text)
		t.Logf("e2e: cgwctl diagnose %s (AWS expects another PSK):\n%s", t1, text)
	})

	t.Run("UDP 500/4500 blocked", func(t *testing.T) {
		// No need to wait for IKE to give up: requests without any answer
		// are the evidence.
		dg, code, js := d.diagnose(t, t2)
		outputs = append(outputs, js)
		if code != 3 {
			t.Errorf("diagnose exit %d, want 3", code)
		}
		wantFinding(t, dg, t2, "ike-ports", control.SeverityError, []string{"never answered", sim.Endpoints[1].Outside.String()}, []string{"UDP 500 and 4500", sim.Endpoints[1].Outside.String()})
		if f := finding(dg, t2, "tunnel"); f == nil || f.Severity == control.SeverityOK {
			t.Errorf("tunnel finding %+v, want not OK", f)
		}
		text, _, _ := d.ctlExit("diagnose", t2)
		outputs = append(outputs, text)
		t.Logf("e2e: cgwctl diagnose %s (UDP 500/4500 to AWS blocked):\n%s", t2, text)
	})

	t.Run("healthy", func(t *testing.T) {
		if err := s.SetPSK(1, sim.Endpoints[0].DefaultPSK); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Ctl("tunnel", "up", t1); err != nil { // skip the retry backoff
			t.Fatal(err)
		}
		d.waitStatus(t, 60*time.Second, tunnelCond(t1, func(tn *control.Tunnel) error {
			if tn.State != "up" {
				return fmt.Errorf("%s %s (BGP %+v)", tn.Name, tn.State, tn.BGP)
			}
			return nil
		}))
		// Traffic during the measurement window, for the direction check.
		if err := s.WaitPing(sim.LAN, sim.VPCHostAddr, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		type pingResult struct {
			loss float64
			err  error
		}
		pinger := make(chan pingResult, 1)
		go func() {
			loss, err := s.Ping(sim.LAN, sim.VPCHostAddr, 30, 100*time.Millisecond)
			pinger <- pingResult{loss, err}
		}()
		dg, code, js := d.diagnose(t, t1)
		outputs = append(outputs, js)
		if r := <-pinger; r.err != nil || r.loss > 0 {
			t.Errorf("ping LAN -> VPC during diagnose: loss %.0f%%, err %v", r.loss*100, r.err)
		}
		if code != 0 {
			t.Errorf("diagnose exit %d, want 0 for a healthy tunnel: %+v", code, dg.Findings)
		}
		for _, f := range dg.Findings {
			if f.Severity == control.SeverityError || f.Severity == control.SeverityWarn {
				t.Errorf("healthy tunnel: %s %s: %s", f.Check, f.Severity, f.Summary)
			}
		}
		for _, c := range []string{"tunnel", "ike-ports", "lifetimes", "dpd", "bgp", "routes", "direction", "drops", "mtu"} {
			wantFinding(t, dg, t1, c, control.SeverityOK, nil, nil)
		}
		// The wrong PSK before is history now: at most information.
		if f := finding(dg, t1, "ike-failure"); f == nil || (f.Severity != control.SeverityOK && f.Severity != control.SeverityInfo) {
			t.Errorf("ike-failure finding on the repaired tunnel: %+v, want ok or info", f)
		}
		text, _, _ := d.ctlExit("diagnose", t1)
		outputs = append(outputs, text)
		t.Logf("e2e: cgwctl diagnose %s (healthy):\n%s", t1, text)
	})

	t.Run("proposal mismatch", func(t *testing.T) {
		if err := s.UnblockEndpoint(2); err != nil {
			t.Fatal(err)
		}
		if err := s.SetProposals(2, []string{strictIKE}, []string{strictESP}); err != nil {
			t.Fatal(err)
		}
		before := time.Now()
		// Abandon the unanswered IKE_SA_INIT and start over at once.
		if _, err := d.Ctl("tunnel", "down", t2); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Ctl("tunnel", "up", t2); err != nil {
			t.Fatal(err)
		}
		d.waitStatus(t, 20*time.Second, tunnelCond(t2, func(tn *control.Tunnel) error {
			if !strings.Contains(tn.LastError, "NO_PROPOSAL_CHOSEN") || !tn.LastErrorAt.After(before) {
				return fmt.Errorf("last error %q", tn.LastError)
			}
			return nil
		}))
		dg, code, js := d.diagnose(t, t2)
		outputs = append(outputs, js)
		if code != 3 {
			t.Errorf("diagnose exit %d, want 3", code)
		}
		wantFinding(t, dg, t2, "ike-failure", control.SeverityError, []string{"NO_PROPOSAL_CHOSEN", "our IKE proposals"}, []string{"ike_proposals", "esp_proposals"})
		wantFinding(t, dg, t2, "ike-ports", control.SeverityOK, nil, nil)
		t.Logf("e2e: diagnose %s (proposal mismatch): %s", t2, finding(dg, t2, "ike-failure").Summary)
	})

	t.Run("no route from AWS", func(t *testing.T) {
		// AWS stops advertising the VPC CIDR on tunnel 1 (a virtual private
		// gateway detached from its VPC, a TGW route table without
		// propagation): BGP stays up, nothing is left to route.
		if _, err := s.Birdc(sim.AWS1, "disable", "vpc_cidrs"); err != nil {
			t.Fatal(err)
		}
		d.waitStatus(t, 20*time.Second, func(st *control.Status) error {
			tn := findTunnel(st, t1)
			if tn.BGP == nil || tn.BGP.State != "Established" || tn.BGP.Received != 0 || len(st.Connections[0].Routes) != 0 {
				return fmt.Errorf("%s BGP %+v, routes %+v", t1, tn.BGP, st.Connections[0].Routes)
			}
			return nil
		})
		dg, code, js := d.diagnose(t, t1)
		outputs = append(outputs, js)
		wantFinding(t, dg, t1, "routes", control.SeverityError, []string{"advertises no prefix"}, []string{"attached to the VPC", "propagate"})
		if code != 3 {
			t.Errorf("diagnose exit %d with an error finding, want 3", code)
		}
		wantFinding(t, dg, t1, "bgp", control.SeverityOK, nil, nil)
		t.Logf("e2e: diagnose %s (AWS advertises no route): exit %d: %s", t1, code, finding(dg, t1, "routes").Summary)
		if _, err := s.Birdc(sim.AWS1, "enable", "vpc_cidrs"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("no BGP from AWS", func(t *testing.T) {
		if err := s.DisableBGP(1); err != nil {
			t.Fatal(err)
		}
		d.waitStatus(t, 20*time.Second, func(st *control.Status) error {
			tn := findTunnel(st, t1)
			if tn.BGP == nil || tn.BGP.State == "Established" || len(st.Connections[0].Routes) != 0 {
				return fmt.Errorf("%s BGP %+v, routes %+v", t1, tn.BGP, st.Connections[0].Routes)
			}
			return nil
		})
		dg, code, js := d.diagnose(t, t1)
		outputs = append(outputs, js)
		if code != 3 {
			t.Errorf("diagnose exit %d, want 3", code)
		}
		wantFinding(t, dg, t1, "tunnel", control.SeverityOK, nil, nil)
		// The evidence carries AWS's reason, whichever state GoBGP is in.
		wantFinding(t, dg, t1, "bgp", control.SeverityError, []string{"Cease", "Administrative Shutdown"}, nil)
		if f := finding(dg, t1, "bgp"); f != nil && f.Fix == "" {
			t.Errorf("bgp finding without a fix: %+v", *f)
		}
		if f := finding(dg, t1, "routes"); f == nil || f.Severity == control.SeverityOK {
			t.Errorf("routes finding with BGP down: %+v", f)
		}
		text, _, _ := d.ctlExit("diagnose", t1)
		outputs = append(outputs, text)
		t.Logf("e2e: cgwctl diagnose %s (AWS shut its BGP session):\n%s", t1, text)
	})

	t.Run("no secrets", func(t *testing.T) {
		psks := []string{sim.Endpoints[0].DefaultPSK, sim.Endpoints[1].DefaultPSK, wrongPSK}
		assertNoSecrets(t, "cgwd's log", readLog(t, d), psks...)
		for i, o := range outputs {
			assertNoSecrets(t, fmt.Sprintf("diagnose output #%d", i), o, psks...)
		}
	})
}
