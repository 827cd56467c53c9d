//go:build e2e

package e2e

// Issue 16: tunnels over IPv6 outside addresses (AWS's
// OutsideIpAddressType=Ipv6) against the simulator's IPv6 mode: strongSwan
// (libipsec) on 2001:db8:100::10/::20, cgwd on 2001:db8:113::10, IPv4
// inside. One simulation is shared by the subtests.

import (
	"fmt"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/cgwproject/cgw/test/sim"
)

func TestIPv6Outside(t *testing.T) {
	s := NewSim(t, sim.Options{IPv6Outside: true})
	tool := tcpcheckBin(t)
	// AES-GCM in UDP over IPv6: tunnel MTU 1418 (1438 over IPv4); with
	// mss_clamp at AWS's largest 1406 the MSS follows the MTU: 1378.
	d := StartCgwd(t, s, sim.CgwdOptions{ESPProposals: []string{"aes256gcm16-ecp384"}, Extra: fastDPD + "        mss_clamp: 1406\n"})
	st := d.waitStatus(t, 90*time.Second, tunnelsUp)
	t1, t2 := tunnelOf(st, 1), tunnelOf(st, 2)

	t.Run("TunnelsOverIPv6", func(t *testing.T) {
		for i, tn := range []string{t1.Remote, t2.Remote} {
			ap, err := netip.ParseAddrPort(tn)
			if err != nil || ap.Addr() != s.AWSOutside(i+1) {
				t.Errorf("tunnel %d remote endpoint %q, want %s", i+1, tn, s.AWSOutside(i+1))
			}
		}
		for i := 1; i <= 2; i++ {
			sas, err := s.ListSAs(i)
			if err != nil || len(sas) == 0 {
				t.Fatalf("AWS endpoint %d: SAs %v, %v", i, sas, err)
			}
			sa := sas[0]
			if sa.RemoteHost != sim.CustPublicAddr6.String() || sa.LocalHost != s.AWSOutside(i).String() {
				t.Errorf("AWS endpoint %d: IKE SA %s <-> %s, want %s <-> %s", i, sa.LocalHost, sa.RemoteHost, s.AWSOutside(i), sim.CustPublicAddr6)
			}
			if sa.RemotePort != 4500 || len(sa.Installed()) == 0 || !sa.Installed()[0].Encap {
				t.Errorf("AWS endpoint %d: IKE on port %d, CHILD SAs %+v: want ESP in UDP 4500", i, sa.RemotePort, sa.Children)
			}
			t.Logf("e2e: AWS endpoint %d: IKE SA %s[%d] <-> %s[%d], id %s, CHILD encap %v", i, sa.LocalHost, sa.LocalPort, sa.RemoteHost, sa.RemotePort, sa.RemoteID, sa.Installed()[0].Encap)
			b, err := s.WaitBGPRoutes(i, 1, 30*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if b.Neighbor != sim.Endpoints[i-1].CustInside.String() {
				t.Errorf("AWS endpoint %d: BGP neighbor %s, want %s", i, b.Neighbor, sim.Endpoints[i-1].CustInside)
			}
		}
		for _, tn := range []int{1, 2} {
			if m := d.mustTunnel(t, tn).MTU; m != 1418 {
				t.Errorf("tunnel %d MTU %d, want 1418 (AES-GCM in UDP over IPv6)", tn, m)
			}
		}
	})

	t.Run("Traffic", func(t *testing.T) {
		Eventually(t, 15*time.Second, routeVia(s, sim.Cust, sim.DefaultVPC, t1.Device))
		if err := s.WaitPing(sim.LAN, sim.VPCHostAddr, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		// The outer packets on the customer's uplink are IPv6 UDP 4500.
		c := startCapture(t, s, sim.Inet, "cust0", 20, "ip6 and udp port 4500")
		pingAll(t, s, sim.LAN, sim.VPCHostAddr, 5)
		pingAll(t, s, sim.VPCHost, sim.LANHostAddr, 5)
		rows := c.fields(t, 5*time.Second, "ipv6.src", "ipv6.dst", "esp.spi")
		esp := 0
		for _, r := range rows {
			if len(r) == 3 && r[2] != "" {
				esp++
			}
		}
		if esp < 10 {
			t.Errorf("captured %d ESP-in-UDP packets over IPv6 on the customer uplink, want >= 10: %v", esp, rows)
		}
		checkCarried(t, s, d, tool, 1, sim.LAN, sim.VPCHost, netip.AddrPortFrom(sim.VPCHostAddr, 5601), 5_000_000, "ipv6-outside-t1")
	})

	t.Run("MSSClamp", func(t *testing.T) {
		// A LAN host's SYN (MSS 1460) reaches the VPC with MSS 1378 =
		// 1418 - 40: the IPv6 outer header taken into account.
		c := startCapture(t, s, sim.VPCHost, "eth0", 1, "tcp[tcpflags] & tcp-syn != 0 and tcp[tcpflags] & tcp-ack == 0 and port 5602")
		if _, err := transfer(s, tool, sim.LAN, sim.VPCHost, netip.AddrPortFrom(sim.VPCHostAddr, 5602), 100_000, "mss"); err != nil {
			t.Fatal(err)
		}
		rows := c.fields(t, 5*time.Second, "tcp.options.mss_val")
		if len(rows) == 0 || len(rows[0]) == 0 {
			t.Fatalf("no SYN captured at the VPC host")
		}
		if mss, _ := strconv.Atoi(rows[0][0]); mss != 1378 {
			t.Errorf("SYN MSS at the VPC host %d, want 1378 (tunnel MTU 1418 over IPv6 - 40)", mss)
		}
	})

	t.Run("Failover", func(t *testing.T) {
		const interval = 100 * time.Millisecond
		pg := startPinger(t, s, sim.LAN, sim.VPCHostAddr, interval, 120*time.Second)
		Eventually(t, 10*time.Second, func() error {
			if !pg.answeredAfter(3) {
				return fmt.Errorf("continuous ping not answered yet")
			}
			return nil
		})
		blocked := time.Now()
		if err := s.BlockEndpoint(1); err != nil {
			t.Fatal(err)
		}
		Eventually(t, 30*time.Second, routeVia(s, sim.Cust, sim.DefaultVPC, t2.Device))
		switchSeq := pg.lastSeq()
		Eventually(t, 60*time.Second, func() error {
			if !pg.resumedAfter(switchSeq, 10) {
				return fmt.Errorf("traffic has not resumed through tunnel 2")
			}
			return nil
		})
		t.Logf("e2e: IPv6 outside failover: traffic through tunnel 2 %v after blocking endpoint 1", time.Since(blocked).Round(100*time.Millisecond))
		pg.p.Stop()
		if tn := d.mustTunnel(t, 1); tn.State == "up" {
			t.Errorf("tunnel 1 still up while its IPv6 endpoint is blocked")
		}
		checkCarried(t, s, d, tool, 2, sim.LAN, sim.VPCHost, netip.AddrPortFrom(sim.VPCHostAddr, 5603), 2_000_000, "ipv6-outside-t2")
		if err := s.UnblockEndpoint(1); err != nil {
			t.Fatal(err)
		}
	})
}
