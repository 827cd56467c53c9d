//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/test/sim"
)

// fragESPProposals is a long ESP proposal list (every AWS cipher and
// integrity algorithm) with the PFS groups given: it makes cgwd's IKE_AUTH
// request longer than 576 octets, standing in for the certificate chains
// that make real IKE_AUTH messages large.
//
// With groups "modp8192" every CHILD rekey carries a 1024-octet KE payload
// in both directions (about 1.2 KB each way). With modp8192 followed by
// the other groups AWS allows (but not the IKE SA's ecp256, which cgw
// would reuse for PFS), cgwd's first rekey request, with its 12 DH
// transforms, is about 1.35 KB: larger than a 1280-octet path.
func fragESPProposals(groups string) []string {
	var out []string
	for _, a := range []string{"aes128gcm16", "aes256gcm16", "aes128-sha1", "aes128-sha256", "aes128-sha384", "aes128-sha512",
		"aes256-sha1", "aes256-sha256", "aes256-sha384", "aes256-sha512"} {
		out = append(out, a+"-"+groups)
	}
	return out
}

const manyGroups = "modp8192-modp6144-modp4096-modp3072-modp2048-modp1536-modp1024-ecp521-ecp384-modp2048s256-modp2048s224-modp1024s160"

// charonPacketSizes returns the sizes charon logged for the packets it
// received from the customer ("received packet: ... (1234 bytes)").
func charonPacketSizes(t testing.TB, s *sim.Sim, i int) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.Dir(), "logs", fmt.Sprintf("charon-aws%d.log", i)))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range regexp.MustCompile(`(?:received packet: from \S+ to \S+|reassembled fragmented IKE message) \((\d+) bytes\)`).FindAllStringSubmatch(string(b), -1) {
		out = append(out, m[1])
	}
	return out
}

// fragConfig is the simulation's cgwd configuration (metrics on) with
// fragESPProposals(groups), an ecp256 IKE SA and ike_fragment_size size on every
// tunnel (0: left out, the default; -1: 0, fragmentation off).
func fragConfig(t testing.TB, s *sim.Sim, size int, groups string) string {
	t.Helper()
	cfg, err := s.CgwdConfig(sim.CgwdOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return editYAML(t, withMetrics(t, cfg), func(doc map[string]any) {
		for _, tn := range yamlTunnels(t, doc) {
			tn["ike_proposals"] = []string{"aes128-sha256-ecp256"}
			tn["esp_proposals"] = fragESPProposals(groups)
			if size != 0 {
				tn["ike_fragment_size"] = max(size, 0) // -1: 0, fragmentation off
			}
		}
	})
}

// fragmentsOf returns the tunnel's IKE fragmentation status (never nil).
func fragmentsOf(st *control.Status, name string) control.IKEFragments {
	if tn := findTunnel(st, name); tn != nil && tn.IKEFragments != nil {
		return *tn.IKEFragments
	}
	return control.IKEFragments{}
}

// rekeyChildAndWait rekeys name's CHILD SA from cgwd and waits until the
// new SA replaced the old one.
func rekeyChildAndWait(t *testing.T, d *Cgwd, name string) *control.Status {
	t.Helper()
	st, err := d.status()
	if err != nil {
		t.Fatal(err)
	}
	tn := findTunnel(st, name)
	if tn == nil || len(tn.Children) != 1 {
		t.Fatalf("tunnel %s before the rekey: %+v", name, tn)
	}
	old := tn.Children[0].InSPI
	if _, err := d.Ctl("tunnel", "rekey", name); err != nil {
		t.Fatal(err)
	}
	return d.waitStatus(t, 60*time.Second, func(st *control.Status) error {
		tn := findTunnel(st, name)
		if tn == nil || len(tn.Children) != 1 || tn.Children[0].InSPI == old {
			return fmt.Errorf("tunnel %s: CHILD SA not replaced yet (last error %q)", name, tn.LastError)
		}
		return nil
	})
}

// charonFragmentLines returns the lines of endpoint i's charon log that
// show RFC 7383 fragments: "EF(n/m)" in parsed and generated messages.
func charonFragmentLines(t testing.TB, s *sim.Sim, i int) (generated, parsed []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.Dir(), "logs", fmt.Sprintf("charon-aws%d.log", i)))
	if err != nil {
		t.Fatal(err)
	}
	ef := regexp.MustCompile(`EF\(\d+/\d+\)`)
	for _, l := range strings.Split(string(b), "\n") {
		if !ef.MatchString(l) {
			continue
		}
		switch {
		case strings.Contains(l, "generating"):
			generated = append(generated, l)
		case strings.Contains(l, "parsed"):
			parsed = append(parsed, l)
		}
	}
	return generated, parsed
}

// wantCharonFragments checks that endpoint i's charon both parsed and
// generated messages in IKE fragments, and logs the first of each.
func wantCharonFragments(t testing.TB, s *sim.Sim, i int) {
	t.Helper()
	gen, parsed := charonFragmentLines(t, s, i)
	if len(parsed) == 0 || len(gen) == 0 {
		t.Errorf("charon (endpoint %d) log: %d parsed and %d generated messages with EF(n/m); want both", i, len(parsed), len(gen))
		return
	}
	t.Logf("e2e: charon: %s", strings.TrimSpace(parsed[0]))
	t.Logf("e2e: charon: %s", strings.TrimSpace(gen[0]))
}

// TestIKEFragmentationForced: with a 576-octet fragment size on both sides
// (cgwd's ike_fragment_size, charon.fragment_size), both tunnels come up
// with fragmented IKE_AUTH requests, BGP and traffic flow, and a CHILD
// rekey with MODP-8192 is fragmented in both directions. cgwd counts the
// fragments it sent and received, and charon's log shows them.
func TestIKEFragmentationForced(t *testing.T) {
	s := NewSim(t, sim.Options{CharonFragmentSize: 576})
	d := StartCgwdYAML(t, s, sim.Cust, fragConfig(t, s, 576, "modp8192"))
	start := time.Now()
	st := d.waitStatus(t, 90*time.Second, tunnelsUp)
	t.Logf("e2e: ikefrag: both tunnels up (BGP) %v after start", time.Since(start).Round(time.Millisecond))
	for i := 1; i <= 2; i++ {
		if err := swanUp(s, i); err != nil {
			t.Error(err)
		}
	}
	names := []string{}
	for _, tn := range st.Connections[0].Tunnels {
		names = append(names, tn.Name)
		f := fragmentsOf(st, tn.Name)
		if !f.Negotiated || f.Sent < 2 {
			t.Errorf("tunnel %s: fragmentation %+v, want negotiated and the IKE_AUTH request in at least 2 fragments", tn.Name, f)
		}
	}
	if err := s.WaitPing(sim.LAN, sim.VPCHostAddr, 20*time.Second); err != nil {
		t.Fatalf("LAN host cannot reach the VPC host: %v", err)
	}

	before := fragmentsOf(st, names[0])
	st = rekeyChildAndWait(t, d, names[0])
	after := fragmentsOf(st, names[0])
	t.Logf("e2e: ikefrag: tunnel %s fragments after IKE_AUTH %+v, after a MODP-8192 CHILD rekey %+v", names[0], before, after)
	if after.Sent-before.Sent < 3 {
		t.Errorf("CHILD rekey request went out in %d fragments, want at least 3 (1024-octet KE, 576-octet fragments)", after.Sent-before.Sent)
	}
	if after.Received-before.Received < 2 || after.Reassembled-before.Reassembled < 1 {
		t.Errorf("charon's CHILD rekey response: %d fragments received, %d messages reassembled; want it fragmented",
			after.Received-before.Received, after.Reassembled-before.Reassembled)
	}
	if loss, err := s.Ping(sim.LAN, sim.VPCHostAddr, 10, 100*time.Millisecond); err != nil || loss > 0 {
		t.Errorf("ping LAN->VPC after the rekey: loss %.0f%%, err %v", loss, err)
	}

	ms, _ := scrape(t, s)
	for _, ev := range []string{"sent", "received", "reassembled"} {
		if v, ok := metric(ms, "cgw_tunnel_ike_fragments_total", "tunnel", names[0], "event", ev); !ok || v < 1 {
			t.Errorf("cgw_tunnel_ike_fragments_total{tunnel=%q,event=%q} = %v (present %v)", names[0], ev, v, ok)
		}
	}
	if v, ok := metric(ms, "cgw_tunnel_ike_fragmentation", "tunnel", names[1]); !ok || v != 1 {
		t.Errorf("cgw_tunnel_ike_fragmentation{tunnel=%q} = %v (present %v)", names[1], v, ok)
	}
	out, err := d.Ctl("status")
	if err != nil || !strings.Contains(out, "IKE frag negotiated;") {
		t.Errorf("cgwctl status does not show IKE fragmentation (%v):\n%s", err, out)
	}

	wantCharonFragments(t, s, 1)
	if t.Failed() {
		DumpLogs(t, s)
	}
}

// TestIKEFragmentationSmallMTUPath: the path between cgwd and AWS has a
// 1280-octet MTU and drops IP fragments (a common firewall or carrier NAT),
// so any IKE datagram above 1280 octets vanishes. With the default
// fragment sizes (1280 on both sides) a CHILD rekey whose request is about
// 1.35 KB still completes (its first request is sent as IKE fragments),
// and traffic keeps flowing; with fragmentation turned off the same
// request is lost. On a 1000-octet path the 1280-octet fragments are lost
// too, until cgwd re-fragments the request for 576 octets.
func TestIKEFragmentationSmallMTUPath(t *testing.T) {
	s := NewSim(t, sim.Options{Tunnels: 1})
	if err := s.SetPathMTU(1280, true); err != nil {
		t.Fatal(err)
	}
	// The path really loses what does not fit: a 1428-octet datagram
	// (fragmented by the sender) does not cross, a 1028-octet one does.
	aws := sim.Endpoints[0].Outside.String()
	if _, err := s.Exec(sim.Cust, "ping", "-n", "-q", "-c", "1", "-W", "2", "-s", "1000", aws); err != nil {
		t.Fatalf("small ping across the 1280 path fails: %v", err)
	}
	if out, err := s.Exec(sim.Cust, "ping", "-n", "-q", "-c", "2", "-W", "1", "-M", "dont", "-s", "1400", aws); err == nil {
		t.Fatalf("a fragmented 1428-octet ping crossed a path that drops fragments:\n%s", out)
	}
	d := StartCgwdYAML(t, s, sim.Cust, fragConfig(t, s, 0, manyGroups))
	st := d.waitStatus(t, 90*time.Second, tunnelsUp)
	name := st.Connections[0].Tunnels[0].Name
	if err := s.WaitPing(sim.LAN, sim.VPCHostAddr, 20*time.Second); err != nil {
		t.Fatalf("LAN host cannot reach the VPC host: %v", err)
	}
	before := fragmentsOf(st, name)
	if !before.Negotiated {
		t.Fatalf("fragmentation not negotiated with the default settings: %+v", before)
	}
	start := time.Now()
	st = rekeyChildAndWait(t, d, name)
	after := fragmentsOf(st, name)
	t.Logf("e2e: ikefrag: 1280 path dropping IP fragments: CHILD rekey done in %v; fragments %+v -> %+v; charon received IKE datagrams of %s octets",
		time.Since(start).Round(time.Millisecond), before, after, strings.Join(charonPacketSizes(t, s, 1), ", "))
	if after.Sent-before.Sent < 2 {
		t.Errorf("the rekey request went out in %d fragments; it only fits the path fragmented", after.Sent-before.Sent)
	}
	if loss, err := s.Ping(sim.LAN, sim.VPCHostAddr, 10, 100*time.Millisecond); err != nil || loss > 0 {
		t.Errorf("ping LAN->VPC after the rekey: loss %.0f%%, err %v", loss, err)
	}

	// Control: with ike_fragment_size 0 (fragmentation off) the same
	// rekey request is one datagram too large for the path and is lost;
	// the old CHILD SA stays while cgwd retransmits in vain.
	if err := os.WriteFile(d.Config, []byte(fragConfig(t, s, -1, manyGroups)), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := d.Ctl("reload"); err != nil {
		t.Fatalf("cgwctl reload: %v\n%s", err, out)
	}
	st = d.waitStatus(t, 60*time.Second, func(st *control.Status) error {
		if f := fragmentsOf(st, name); f.Negotiated {
			return fmt.Errorf("tunnel %s still has fragmentation after ike_fragment_size: 0", name)
		}
		return tunnelsUp(st)
	})
	old := findTunnel(st, name).Children[0].InSPI
	if _, err := d.Ctl("tunnel", "rekey", name); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Second)
	st, err := d.status()
	if err != nil {
		t.Fatal(err)
	}
	tn := findTunnel(st, name)
	if tn == nil || len(tn.Children) == 0 || tn.Children[len(tn.Children)-1].InSPI != old {
		t.Errorf("without IKE fragmentation the 1.3 KB rekey request crossed a path that drops IP fragments: %+v", tn)
	}
	if !strings.Contains(d.Proc.Tail(1<<20), "retransmitting request") {
		t.Errorf("cgwd did not retransmit the lost rekey request")
	}

	// A path narrower than the fragment size (1000 octets, fragments of
	// 1280): the rekey's fragments are lost twice, then cgwd re-fragments
	// the request for the smallest IPv4 path (576) and strongSwan takes it.
	if err := s.SetPathMTU(1000, true); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.Config, []byte(fragConfig(t, s, 0, manyGroups)), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := d.Ctl("reload"); err != nil {
		t.Fatalf("cgwctl reload: %v\n%s", err, out)
	}
	d.waitStatus(t, 60*time.Second, func(st *control.Status) error {
		if f := fragmentsOf(st, name); !f.Negotiated {
			return fmt.Errorf("tunnel %s: fragmentation not negotiated yet", name)
		}
		return tunnelsUp(st)
	})
	start = time.Now()
	rekeyChildAndWait(t, d, name)
	t.Logf("e2e: ikefrag: 1000 path, 1280 fragments: CHILD rekey done in %v (fragments re-cut to 576 after two losses)", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(d.Proc.Tail(1<<20), "retransmitting it in IKE fragments for the smallest path MTU") {
		t.Errorf("cgwd did not re-fragment the lost rekey request")
	}
	if loss, err := s.Ping(sim.LAN, sim.VPCHostAddr, 10, 100*time.Millisecond); err != nil || loss > 0 {
		t.Errorf("ping LAN->VPC after the rekey on the 1000 path: loss %.0f%%, err %v", loss, err)
	}
	if t.Failed() {
		DumpLogs(t, s)
	}
}

// TestIKEFragmentationResponder: AWS (strongSwan) initiates and cgwd
// responds; cgwd answers strongSwan's IKEV2_FRAGMENTATION_SUPPORTED, and a
// CHILD rekey strongSwan starts with MODP-8192 comes in as fragments that
// cgwd reassembles, and goes back as fragments cgwd sends.
func TestIKEFragmentationResponder(t *testing.T) {
	o := sim.Options{Tunnels: 1, CharonFragmentSize: 576}
	o.Endpoint[0].StartAction = "start"
	o.Endpoint[0].ESPProposals = []string{"aes128gcm16-modp8192"}
	s := NewSim(t, o)
	cfg, err := s.CgwdConfig(sim.CgwdOptions{StartupAction: "respond", IKEProposals: []string{"aes128-sha256-ecp256"},
		ESPProposals: fragESPProposals("modp8192"), Extra: "        ike_fragment_size: 576\n"})
	if err != nil {
		t.Fatal(err)
	}
	d := StartCgwdYAML(t, s, sim.Cust, cfg)
	st := d.waitStatus(t, 90*time.Second, tunnelsUp)
	tn := st.Connections[0].Tunnels[0]
	if tn.IKE == nil || tn.IKE.Initiator || len(tn.Children) != 1 {
		t.Fatalf("tunnel %s: want an IKE SA AWS initiated, with one CHILD SA: %+v", tn.Name, tn)
	}
	before := fragmentsOf(st, tn.Name)
	if !before.Negotiated {
		t.Fatalf("cgwd as responder did not negotiate fragmentation: %+v", before)
	}
	old := tn.Children[0].InSPI
	if out, err := s.Swanctl(sim.AWS1, "--rekey", "--child", "aws-t1"); err != nil {
		t.Fatalf("swanctl --rekey: %v\n%s", err, out)
	}
	st = d.waitStatus(t, 60*time.Second, func(st *control.Status) error {
		tn := findTunnel(st, tn.Name)
		if tn == nil || len(tn.Children) != 1 || tn.Children[0].InSPI == old {
			return fmt.Errorf("CHILD SA not replaced by AWS's rekey yet")
		}
		return nil
	})
	after := fragmentsOf(st, tn.Name)
	t.Logf("e2e: ikefrag: responder: AWS's MODP-8192 CHILD rekey: fragments %+v -> %+v", before, after)
	if after.Received-before.Received < 2 || after.Reassembled-before.Reassembled < 1 || after.Sent-before.Sent < 2 {
		t.Errorf("AWS's rekey request and cgwd's response: want both fragmented; fragments %+v -> %+v", before, after)
	}
	wantCharonFragments(t, s, 1)
	if err := s.WaitPing(sim.LAN, sim.VPCHostAddr, 20*time.Second); err != nil {
		t.Errorf("LAN host cannot reach the VPC host after AWS's rekey: %v", err)
	}
	if t.Failed() {
		DumpLogs(t, s)
	}
}
