//go:build e2e

package e2e

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/cgwproject/cgw/test/sim"
)

// TestRawESP: cgwd <-> cgwd with encapsulation: auto on both sides and no
// NAT in the path negotiate no UDP encapsulation (RFC 7296, Section 2.23)
// and carry ESP as IP protocol 50 (RFC 4303): both CHILD SAs report
// encap none, the tunnel MTU gains the 8 UDP octets, the customer's
// uplink carries protocol 50 and no ESP in UDP 4500, a ping and a
// checksummed transfer pass, and the AWS side logs that the peer's ESP
// arrives raw. Over IPv6 outside addresses and, briefly, IPv4.
func TestRawESP(t *testing.T) {
	for _, tc := range []struct {
		name     string
		v6       bool
		mtu      int    // AES-128-GCM, raw ESP
		espMatch string // capture filter for raw ESP
	}{
		{"IPv6", true, 1426, "ip6 proto 50"},
		{"IPv4", false, 1446, "ip proto 50"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSim(t, sim.Options{AWS: sim.AWSNone, Tunnels: 1, Routing: sim.RoutingStatic, IPv6Outside: tc.v6})
			tool := tcpcheckBin(t)
			ike := []string{"aes128gcm16-prfsha256-ecp256"}
			esp := []string{"aes128gcm16-ecp256"}
			auto := "        encapsulation: auto\n"
			aws := StartCgwd(t, s, sim.CgwdOptions{AWSSide: true, Endpoints: []int{1}, IKEProposals: ike, ESPProposals: esp, Extra: auto})
			cust := StartCgwd(t, s, sim.CgwdOptions{IKEProposals: ike, ESPProposals: esp, Extra: auto})
			ta, _ := s.Transit(1)
			if err := s.AddStaticRoute(sim.VPC, sim.DefaultLAN, "via", ta.String()); err != nil {
				t.Fatal(err)
			}
			cust.waitStatus(t, 30*time.Second, childrenUp)
			aws.waitStatus(t, 10*time.Second, childrenUp)
			for _, c := range []*Cgwd{cust, aws} {
				tn := c.mustTunnel(t, 1)
				if tn.NAT || tn.Encap || len(tn.Children) == 0 || tn.Children[0].Encap != "none" {
					t.Errorf("%s cgwd: nat %v, udp_encap %v, CHILD SAs %+v: want no NAT and CHILD encap none", c.Role, tn.NAT, tn.Encap, tn.Children)
				}
				if ap, err := netip.ParseAddrPort(tn.Remote); err != nil || ap.Addr().Is4() == tc.v6 {
					t.Errorf("%s cgwd: remote endpoint %q, want an IPv6=%v address", c.Role, tn.Remote, tc.v6)
				}
				if tn.MTU != tc.mtu {
					t.Errorf("%s cgwd: tunnel MTU %d, want %d (AES-GCM, raw ESP)", c.Role, tn.MTU, tc.mtu)
				}
			}
			if err := s.WaitPing(sim.LAN, sim.VPCHostAddr, 20*time.Second); err != nil {
				t.Fatal(err)
			}
			// On the customer's uplink: protocol 50, and no ESP in UDP 4500.
			raw := startCapture(t, s, sim.Inet, "cust0", 20, tc.espMatch)
			udp := startCapture(t, s, sim.Inet, "cust0", 0, "udp port 4500")
			pingAll(t, s, sim.LAN, sim.VPCHostAddr, 5)
			pingAll(t, s, sim.VPCHost, sim.LANHostAddr, 5)
			rawRows := raw.fields(t, 5*time.Second, "esp.spi")
			udpRows := udp.fields(t, time.Second, "esp.spi")
			if len(rawRows) < 10 {
				t.Errorf("captured %d raw ESP packets (%s) on the customer uplink, want >= 10", len(rawRows), tc.espMatch)
			}
			if len(udpRows) > 0 {
				t.Errorf("captured %d UDP 4500 packets on the customer uplink, want none: %v", len(udpRows), udpRows)
			}
			t.Logf("e2e: raw ESP over %s: %d protocol-50 packets, %d UDP 4500 packets captured", tc.name, len(rawRows), len(udpRows))
			checkCarried(t, s, cust, tool, 1, sim.LAN, sim.VPCHost, netip.AddrPortFrom(sim.VPCHostAddr, 5701), 5_000_000, "raw-"+tc.name)
			if err := waitLog(aws.Proc, "ESP from the peer arrives as raw ESP (IP protocol 50)", 5*time.Second); err != nil {
				t.Error(err)
			}
			for _, c := range []*Cgwd{cust, aws} {
				if d := nonZero(c.mustTunnel(t, 1).Traffic.Drops); d["auth"]+d["replay"]+d["malformed"]+d["unknown_spi"] > 0 {
					t.Errorf("%s cgwd dropped packets as invalid: %v", c.Role, d)
				}
			}
			out, _ := cust.Ctl("status")
			if want := "aes128gcm16, encap none"; !strings.Contains(out, want) {
				t.Errorf("cgwctl status lacks %q:\n%s", want, out)
			}
		})
	}
}
