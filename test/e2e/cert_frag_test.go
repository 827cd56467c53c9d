//go:build e2e

package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/internal/certtest"
	"github.com/cgwproject/cgw/test/sim"
)

// TestCertIKEFragmentation1280: certificate authentication with AWS
// Private CA's layout (RSA-2048 end entity and RSA-2048 subordinate CA,
// both sent in CERT payloads by each side) on a path with a 1280-octet MTU
// that drops IP fragments. Each IKE_AUTH is about 2.3 KB, so it crosses
// only as IKE fragments (RFC 7383).
//
// Tunnel 1 keeps the defaults (1280-octet fragments on both sides): it
// comes up, cgwd sent and received fragments, charon's log shows EF(n/m)
// payloads and a reassembled IKE_AUTH larger than the path, and traffic
// flows. Tunnel 2, the control, has ike_fragment_size: 0: its IKE_AUTH is
// one datagram larger than the path and is lost, the tunnel stays down,
// and once cgwd's retransmissions run out (about 165 s) status and
// diagnose say that a path dropping IP fragments lost it and how to fix it.
func TestCertIKEFragmentation1280(t *testing.T) {
	s := NewSim(t, sim.Options{Routing: sim.RoutingStatic, Cert: &sim.CertOptions{CustKey: certtest.RSA2048, AWSKey: certtest.RSA2048}})
	if err := s.SetPathMTU(1280, true); err != nil {
		t.Fatal(err)
	}
	cfg, err := s.CgwdConfig(sim.CgwdOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg = editYAML(t, cfg, func(doc map[string]any) {
		yamlTunnels(t, doc)[1]["ike_fragment_size"] = 0
	})
	start := time.Now()
	d := StartCgwdYAML(t, s, sim.Cust, cfg)
	t1, t2 := tunnelNames(t, d)

	st := d.waitStatus(t, 60*time.Second, tunnelCond(t1, func(tn *control.Tunnel) error {
		if tn.ChildState != "Established" {
			return fmt.Errorf("tunnel %s: CHILD %s (last error %q)", tn.Name, tn.ChildState, tn.LastError)
		}
		return nil
	}))
	t.Logf("e2e: cert+frag: tunnel %s up %v after start across a 1280 path that drops IP fragments", t1, time.Since(start).Round(time.Millisecond))
	if err := swanUp(s, 1); err != nil {
		t.Error(err)
	}
	f := fragmentsOf(st, t1)
	// cgwd's IKE_AUTH request and charon's response both carry two RSA
	// certificates: at least two fragments each way.
	if !f.Negotiated || f.Sent < 2 || f.Received < 2 || f.Reassembled < 1 {
		t.Errorf("tunnel %s: fragments %+v; want negotiated, IKE_AUTH sent and received as fragments", t1, f)
	}
	wantCharonFragments(t, s, 1)
	sizes := charonPacketSizes(t, s, 1)
	largest := 0
	for _, v := range sizes {
		n, _ := strconv.Atoi(v)
		largest = max(largest, n)
	}
	t.Logf("e2e: cert+frag: tunnel %s fragments %+v; charon received IKE datagrams/messages of %s octets", t1, f, strings.Join(sizes, ", "))
	if largest <= 1280 {
		t.Errorf("the largest IKE message charon got from cgwd is %d octets; the test needs an IKE_AUTH larger than the path", largest)
	}
	pingThrough(t, s, sim.LAN, sim.VPCHostAddr)

	// The control: the same chain without IKE fragmentation is lost.
	st = d.waitStatus(t, 240*time.Second, tunnelCond(t2, func(tn *control.Tunnel) error {
		if !strings.Contains(tn.LastError, "a path that drops IP fragments loses it") {
			return fmt.Errorf("tunnel %s: no lost large IKE_AUTH yet (last error %q)", tn.Name, tn.LastError)
		}
		return nil
	}))
	tn := findTunnel(st, t2)
	t.Logf("e2e: cert+frag: control %s (ike_fragment_size 0) %v after start: %s", t2, time.Since(start).Round(time.Second), tn.LastError)
	if tn.ChildState == "Established" || fragmentsOf(st, t2).Negotiated {
		t.Errorf("tunnel %s with ike_fragment_size 0 is up or negotiated fragmentation: %+v", t2, tn)
	}
	if _, parsed := charonFragmentLines(t, s, 2); len(parsed) != 0 {
		t.Errorf("charon (endpoint 2) parsed IKE fragments from a tunnel with fragmentation off: %q", parsed[0])
	}
	if !strings.Contains(d.Proc.Tail(1<<20), "no answer to a request sent as one large datagram; the request was one") {
		t.Errorf("cgwd did not warn about the lost large IKE_AUTH at its second retransmission")
	}
	dg, code, _ := d.diagnose(t, t2)
	if code != 3 {
		t.Errorf("diagnose %s exit %d, want 3", t2, code)
	}
	wantFinding(t, dg, t2, "ike-ports", control.SeverityError, []string{"drops IP fragments"}, []string{"ike_fragment_size", "never 0"})
	if t.Failed() {
		DumpLogs(t, s)
	}
}
