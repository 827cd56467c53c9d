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

// wrongPSK is a valid AWS-style key that matches neither simulated tunnel.
const wrongPSK = "WRONGpsk9_zyxwvutsrq.ponmlkjih"

// Proposals the mismatch cases use: what cgwd offers and what the AWS
// endpoint alone accepts (both valid AWS choices, with nothing in common).
var (
	offerIKE  = "aes128-sha1-modp1024"
	offerESP  = "aes128-sha1-modp1024"
	strictIKE = "aes256gcm16-prfsha512-ecp521"
	strictESP = "aes256gcm16-ecp521"
)

// tunnelCond is a waitStatus condition on one tunnel.
func tunnelCond(name string, f func(*control.Tunnel) error) func(*control.Status) error {
	return func(st *control.Status) error {
		tn := findTunnel(st, name)
		if tn == nil {
			return fmt.Errorf("tunnel %s missing from status", name)
		}
		return f(tn)
	}
}

// assertAlive fails when cgwd exited or logged a panic or a data race.
func assertAlive(t testing.TB, d *Cgwd) {
	t.Helper()
	if ok, err := d.Proc.Exited(); ok {
		t.Fatalf("cgwd exited: %v\n%s", err, d.Proc.Tail(3000))
	}
	log := readLog(t, d)
	for _, bad := range []string{"panic:", "goroutine ", "DATA RACE", "fatal error:"} {
		if strings.Contains(log, bad) {
			t.Fatalf("cgwd log contains %q:\n%s", bad, d.Proc.Tail(4000))
		}
	}
}

// logLines returns the lines of cgwd's log that contain every one of subs.
func logLines(t testing.TB, d *Cgwd, subs ...string) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(readLog(t, d), "\n") {
		all := true
		for _, s := range subs {
			if !strings.Contains(l, s) {
				all = false
				break
			}
		}
		if all {
			out = append(out, l)
		}
	}
	return out
}

// mentionsProposal reports whether text names proposal p: every keyword
// of p appears, in any order (strongSwan and cgw may order or derive
// keywords differently).
func mentionsProposal(text, p string) bool {
	for _, kw := range strings.Split(p, "-") {
		if !strings.Contains(text, kw) {
			return false
		}
	}
	return true
}

// TestIKEFailures breaks each tunnel of one simulation in its own way and
// checks cgwd explains it, stays up, keeps retrying and recovers by itself
// once the AWS side is fixed:
//   - tunnel 1: the AWS endpoint expects another PSK (AUTHENTICATION_FAILED);
//   - tunnel 2: the AWS endpoint accepts only proposals cgwd does not offer
//     (NO_PROPOSAL_CHOSEN in IKE_SA_INIT), then only its ESP proposal
//     differs (IKE SA up, CHILD SA refused: "phase 2").
func TestIKEFailures(t *testing.T) {
	o := sim.Options{Routing: sim.RoutingStatic}
	o.Endpoint[1].IKEProposals = []string{strictIKE}
	o.Endpoint[1].ESPProposals = []string{strictESP}
	s := NewSim(t, o)
	cfg, err := s.CgwdConfig(sim.CgwdOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg = editYAML(t, withMetrics(t, cfg), func(doc map[string]any) {
		tn := yamlTunnels(t, doc)[1]
		tn["ike_proposals"] = []string{offerIKE}
		tn["esp_proposals"] = []string{offerESP}
	})
	// The configuration above carries the right PSK; now AWS expects another.
	if err := s.SetPSK(1, wrongPSK); err != nil {
		t.Fatal(err)
	}
	d := StartCgwdYAML(t, s, sim.Cust, cfg)
	st, err := d.status()
	if err != nil {
		t.Fatal(err)
	}
	t1, t2 := st.Connections[0].Tunnels[0].Name, st.Connections[0].Tunnels[1].Name

	t.Run("wrong PSK", func(t *testing.T) {
		st := d.waitStatus(t, 20*time.Second, tunnelCond(t1, func(tn *control.Tunnel) error {
			if tn.LastError == "" {
				return fmt.Errorf("no last_error yet (IKE %s)", tn.IKEState)
			}
			return nil
		}))
		tn := findTunnel(st, t1)
		t.Logf("e2e: wrong PSK: status last_error: %s", tn.LastError)
		low := strings.ToLower(tn.LastError)
		if !strings.Contains(low, "psk") || !(strings.Contains(low, "auth") || strings.Contains(low, "reject")) {
			t.Errorf("last_error does not name the authentication failure and the PSK: %q", tn.LastError)
		}
		if tn.IKEState == "Established" || tn.State == "up" {
			t.Errorf("tunnel %s is %s/%s with a wrong PSK", t1, tn.State, tn.IKEState)
		}
		lines := logLines(t, d, t1)
		var authLines []string
		for _, l := range lines {
			if strings.Contains(l, "AUTHENTICATION_FAILED") || strings.Contains(strings.ToLower(l), "psk") {
				authLines = append(authLines, l)
			}
		}
		if len(authLines) == 0 {
			t.Errorf("cgwd's log has no line about the authentication failure of %s", t1)
		} else {
			t.Logf("e2e: wrong PSK: log: %s", authLines[0])
		}

		// It keeps retrying: the failure counter (by notify) grows.
		var n float64
		Eventually(t, 25*time.Second, func() error {
			ms, _ := scrape(t, s)
			v, ok := metric(ms, "cgw_tunnel_ike_failures_total", "tunnel", t1, "notify", "AUTHENTICATION_FAILED")
			if !ok || v < 2 {
				return fmt.Errorf("cgw_tunnel_ike_failures_total{notify=AUTHENTICATION_FAILED} = %v (present %v), want >= 2 attempts", v, ok)
			}
			n = v
			return nil
		})
		assertAlive(t, d)
		t.Logf("e2e: wrong PSK: %v failed attempts, cgwd alive; fixing the PSK on the AWS side", n)

		// Fix the AWS side only: the next retry succeeds on its own.
		fixed := time.Now()
		if err := s.SetPSK(1, sim.Endpoints[0].DefaultPSK); err != nil {
			t.Fatal(err)
		}
		d.waitStatus(t, 30*time.Second, tunnelCond(t1, func(tn *control.Tunnel) error {
			if tn.ChildState != "Established" {
				return fmt.Errorf("tunnel %s: CHILD %s, last error %q", t1, tn.ChildState, tn.LastError)
			}
			return nil
		}))
		t.Logf("e2e: wrong PSK: tunnel up by itself %v after the PSK was fixed", time.Since(fixed).Round(time.Millisecond))
		if err := swanUp(s, 1); err != nil {
			t.Error(err)
		}
		pingInside(t, s, 1)
	})

	t.Run("IKE proposal mismatch", func(t *testing.T) {
		st := d.waitStatus(t, 20*time.Second, tunnelCond(t2, func(tn *control.Tunnel) error {
			if !strings.Contains(tn.LastError, "NO_PROPOSAL_CHOSEN") {
				return fmt.Errorf("last_error %q does not name NO_PROPOSAL_CHOSEN", tn.LastError)
			}
			return nil
		}))
		tn := findTunnel(st, t2)
		t.Logf("e2e: IKE proposal mismatch: status last_error: %s", tn.LastError)
		if !mentionsProposal(tn.LastError, offerIKE) {
			t.Errorf("last_error does not list what we offered (%s): %q", offerIKE, tn.LastError)
		}
		if tn.IKEState == "Established" {
			t.Errorf("IKE SA established despite the mismatch")
		}
		if len(logLines(t, d, append([]string{"NO_PROPOSAL_CHOSEN", t2}, strings.Split(offerIKE, "-")...)...)) == 0 {
			t.Errorf("cgwd's log has no NO_PROPOSAL_CHOSEN line listing our proposal %s", offerIKE)
		}
		ms, _ := scrape(t, s)
		if v, _ := metric(ms, "cgw_tunnel_ike_failures_total", "tunnel", t2, "notify", "NO_PROPOSAL_CHOSEN"); v < 1 {
			t.Errorf("cgw_tunnel_ike_failures_total{tunnel=%s,notify=NO_PROPOSAL_CHOSEN} = %v, want >= 1", t2, v)
		}
		assertAlive(t, d)
	})

	t.Run("ESP proposal mismatch", func(t *testing.T) {
		// IKE now matches, ESP still does not.
		if err := s.SetProposals(2, []string{offerIKE}, []string{strictESP}); err != nil {
			t.Fatal(err)
		}
		before := time.Now()
		if _, err := d.Ctl("tunnel", "up", t2); err != nil { // skip the backoff
			t.Fatal(err)
		}
		st := d.waitStatus(t, 20*time.Second, tunnelCond(t2, func(tn *control.Tunnel) error {
			if tn.IKEState != "Established" || !tn.LastErrorAt.After(before) {
				return fmt.Errorf("IKE %s, CHILD %s, last error %q at %v", tn.IKEState, tn.ChildState, tn.LastError, tn.LastErrorAt)
			}
			return nil
		}))
		tn := findTunnel(st, t2)
		t.Logf("e2e: ESP proposal mismatch: status last_error: %s", tn.LastError)
		if tn.ChildState == "Established" || len(tn.Children) > 0 {
			t.Errorf("CHILD SA up despite the ESP mismatch: %s %+v", tn.ChildState, tn.Children)
		}
		if !strings.Contains(tn.LastError, "NO_PROPOSAL_CHOSEN") || !mentionsProposal(tn.LastError, offerESP) {
			t.Errorf("last_error does not name NO_PROPOSAL_CHOSEN and our ESP proposal %s: %q", offerESP, tn.LastError)
		}
		if !strings.Contains(strings.ToLower(tn.LastError), "phase 2") && len(logLines(t, d, "phase 2", t2)) == 0 {
			t.Errorf("neither last_error nor the log say the failure is in phase 2: %q", tn.LastError)
		}
		if len(logLines(t, d, "phase 2 was unable to establish while keeping phase 1")) == 0 {
			t.Errorf("cgwd's log lacks the \"phase 2 was unable to establish while keeping phase 1\" event")
		}
		// strongSwan keeps the IKE SA without a CHILD SA.
		sa, err := swanSAFor(s, 2, tn.IKE)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(sa.Installed()); n != 0 {
			t.Errorf("strongSwan installed %d CHILD SAs", n)
		}
		assertAlive(t, d)

		// Fix ESP on the AWS side: the CHILD SA retry succeeds on the same IKE SA.
		if err := s.SetProposals(2, nil, []string{offerESP}); err != nil {
			t.Fatal(err)
		}
		st = d.waitStatus(t, 30*time.Second, tunnelCond(t2, func(tn *control.Tunnel) error {
			if tn.ChildState != "Established" {
				return fmt.Errorf("CHILD %s, last error %q", tn.ChildState, tn.LastError)
			}
			return nil
		}))
		if got := findTunnel(st, t2).IKE; got == nil || got.SPIi != tn.IKE.SPIi {
			t.Errorf("the CHILD SA came up on another IKE SA (%+v), want the kept one %s_i", got, tn.IKE.SPIi)
		}
		if err := swanUp(s, 2); err != nil {
			t.Error(err)
		}
		pingInside(t, s, 2)
	})
	assertAlive(t, d)
}
