//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cgwproject/cgw/test/sim"
)

// startWithBGP starts cgwd in the customer namespace with the simulator's
// configuration, after edit changed the connection's bgp section.
func startWithBGP(t *testing.T, s *sim.Sim, edit func(bgp map[string]any)) *Cgwd {
	t.Helper()
	text, err := s.CgwdConfig(sim.CgwdOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatal(err)
	}
	edit(doc["connections"].([]any)[0].(map[string]any)["bgp"].(map[string]any))
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return StartCgwdYAML(t, s, sim.Cust, string(out))
}

// TestBGPAdvertiseKernelRoutes: with bgp.advertise_kernel, a route added to
// the customer gateway's kernel (as OSPF or an operator would) inside the
// configured prefix is announced to AWS, and withdrawn when it goes away;
// routes outside the filter are not announced.
func TestBGPAdvertiseKernelRoutes(t *testing.T) {
	s := NewSim(t, sim.Options{})
	d := startWithBGP(t, s, func(b map[string]any) { b["advertise_kernel"] = []string{"10.64.0.0/10"} })
	d.waitStatus(t, 60*time.Second, tunnelsUp)

	awsRoute := func(p string) (bool, error) {
		out, err := s.Birdc(sim.AWS1, "show", "route")
		if err != nil {
			return false, err
		}
		return strings.Contains(out, p), nil
	}
	if _, err := s.Exec(sim.Cust, "ip", "route", "add", "10.77.0.0/16", "via", sim.LANHostAddr.String()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Exec(sim.Cust, "ip", "route", "add", "172.20.0.0/16", "via", sim.LANHostAddr.String()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	Eventually(t, 30*time.Second, func() error {
		ok, err := awsRoute("10.77.0.0/16")
		if err == nil && !ok {
			err = fmt.Errorf("AWS endpoint 1 (BIRD) has no route for 10.77.0.0/16 yet")
		}
		return err
	})
	t.Logf("e2e: kernel route announced to AWS after %v", time.Since(start).Round(100*time.Millisecond))
	if ok, _ := awsRoute("172.20.0.0/16"); ok {
		t.Error("172.20.0.0/16 is outside advertise_kernel but AWS received it")
	}
	if _, err := s.Exec(sim.Cust, "ip", "route", "del", "10.77.0.0/16"); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 30*time.Second, func() error {
		ok, err := awsRoute("10.77.0.0/16")
		if err == nil && ok {
			err = fmt.Errorf("AWS endpoint 1 still has 10.77.0.0/16 after the kernel route was deleted")
		}
		return err
	})
}

// TestBGPSecondaryMED: in active-passive mode the secondary tunnel can be
// marked with a MED instead of AS-path prepends; AWS's BGP speaker (BIRD
// here) sees the MED on tunnel 2 only and an unprepended path on both.
func TestBGPSecondaryMED(t *testing.T) {
	s := NewSim(t, sim.Options{})
	d := startWithBGP(t, s, func(b map[string]any) { b["secondary_med"], b["secondary_prepend"] = 150, 0 })
	d.waitStatus(t, 60*time.Second, tunnelsUp)
	lan := sim.DefaultLAN.String()
	for i, role := range []sim.Role{sim.AWS1, sim.AWS2} {
		var route string
		Eventually(t, 30*time.Second, func() error {
			out, err := s.Birdc(role, "show", "route", "all", lan)
			if err != nil || !strings.Contains(out, "BGP.as_path") {
				return fmt.Errorf("AWS endpoint %d has no BGP route for %s yet: %v %s", i+1, lan, err, out)
			}
			route = out
			return nil
		})
		hasMED := strings.Contains(route, "BGP.med: 150")
		if (i == 1) != hasMED {
			t.Errorf("AWS endpoint %d: MED 150 present=%v, want %v:\n%s", i+1, hasMED, i == 1, route)
		}
		if !strings.Contains(route, "BGP.as_path: 65000\n") {
			t.Errorf("AWS endpoint %d: AS path not unprepended 65000:\n%s", i+1, route)
		}
	}
}

// TestBGPPasswordMD5: with bgp.password set on both sides the sessions
// come up (TCP MD5, RFC 2385); with a wrong key on AWS's side they do not.
func TestBGPPasswordMD5(t *testing.T) {
	o := sim.Options{}
	o.Endpoint[0].BGPPassword = "md5-Secret.1"
	o.Endpoint[1].BGPPassword = "not-the-same"
	s := NewSim(t, o)
	d := startWithBGP(t, s, func(b map[string]any) { b["password"] = "md5-Secret.1" })
	if _, err := s.WaitBGP(1, 60*time.Second); err != nil {
		t.Fatalf("tunnel 1 with matching MD5 keys: %v", err)
	}
	time.Sleep(15 * time.Second)
	if st, _ := s.BGPState(2); st.Established() {
		t.Errorf("tunnel 2's BGP came up although AWS uses another MD5 key")
	}
	if strings.Contains(d.Proc.Tail(400), "md5-Secret.1") {
		t.Error("the BGP password appears in cgwd's log")
	}
}
