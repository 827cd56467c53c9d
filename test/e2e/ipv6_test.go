//go:build e2e

package e2e

// Issue 16: tunnels over IPv6 outside addresses (AWS's
// OutsideIpAddressType=Ipv6) against the simulator's IPv6 mode: strongSwan
// (libipsec) on 2001:db8:100::10/::20, cgwd on 2001:db8:113::10, IPv4
// inside. One simulation is shared by the subtests.

import (
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cgwproject/cgw/control"
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
		if mss := synMSSAtVPC(t, s, tool, "tcp[tcpflags] & tcp-syn != 0 and tcp[tcpflags] & tcp-ack == 0 and port 5602", netip.AddrPortFrom(sim.VPCHostAddr, 5602)); mss != 1378 {
			t.Errorf("SYN MSS at the VPC host %d, want 1378 (tunnel MTU 1418 over IPv6 - 40)", mss)
		}
	})

	t.Run("Failover", func(t *testing.T) {
		failover6(t, s, d, tool, "IPv6 outside", routeVia(s, sim.Cust, sim.DefaultVPC, t2.Device), netip.AddrPortFrom(sim.VPCHostAddr, 5603))
	})
}

// TestIPv6Inside: an IPv6-inside connection (AWS TunnelInsideIpVersion=
// ipv6) over IPv6 outside addresses: BGP over the /126 inside addresses
// with the ipv6 unicast family, IPv6 prefixes advertised and learned as
// BIRD sees them, ping6 both ways, a checksummed TCP transfer, Packet Too
// Big with the tunnel MTU for a 1500-byte ping and the IPv6 MSS clamp.
func TestIPv6Inside(t *testing.T) {
	s := NewSim(t, sim.Options{IPv6Outside: true, IPv6Inside: true})
	tool := tcpcheckBin(t)
	// The configuration comes from the simulator's AWS XML (IPv6 outside
	// addresses, tunnel_inside_ipv6_address) through cgwctl import-aws.
	yml := importedYAML(t, s, func(doc map[string]any) {
		for _, tn := range doc["connections"].([]any)[0].(map[string]any)["tunnels"].([]any) {
			m := tn.(map[string]any)
			m["esp_proposals"] = []string{"aes256gcm16-ecp384"}
			m["mss_clamp"] = 1406
			m["dpd"] = map[string]any{"interval": "2s", "retries": 3, "action": "restart"}
		}
	})
	d := StartCgwdYAML(t, s, sim.Cust, yml)
	st := d.waitStatus(t, 90*time.Second, tunnelsUp)
	t1, t2 := tunnelOf(st, 1), tunnelOf(st, 2)
	route6Via := func(dev string) func() error {
		return func() error {
			out, err := s.Exec(sim.Cust, "ip", "-6", "route", "show", "table", "199", sim.VPCPrefix6.String())
			if err != nil || !strings.Contains(out, "dev "+dev+" ") {
				return fmt.Errorf("cgw's IPv6 route to %s: %q %v, want dev %s", sim.VPCPrefix6, out, err, dev)
			}
			return nil
		}
	}

	t.Run("BGP", func(t *testing.T) {
		for i := 1; i <= 2; i++ {
			b, err := s.WaitBGPRoutes(i, 1, 30*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if b.Neighbor != sim.CustInside6(i).String() || b.NeighborAS != 65000 {
				t.Errorf("AWS endpoint %d: BGP neighbor %s AS %d, want %s AS 65000", i, b.Neighbor, b.NeighborAS, sim.CustInside6(i))
			}
			out, err := s.Birdc(sim.Endpoints[i-1].Role, "show", "route", "protocol", "cgw")
			if err != nil || !strings.Contains(out, sim.LANPrefix6.String()) {
				t.Errorf("AWS endpoint %d did not learn %s from cgwd: %q %v", i, sim.LANPrefix6, out, err)
			}
			t.Logf("e2e: AWS endpoint %d: BGP %s with %s (AS %d), %d IPv6 prefix(es) imported, %d exported", i, b.BGPState, b.Neighbor, b.NeighborAS, b.Imported, b.Exported)
			if tn := d.mustTunnel(t, i); tn.InsideLocal != sim.CustInside6(i).String() || tn.InsidePeer != sim.AWSInside6(i).String() {
				t.Errorf("status tunnel %d inside %s -> %s, want %s -> %s", i, tn.InsideLocal, tn.InsidePeer, sim.CustInside6(i), sim.AWSInside6(i))
			}
		}
		Eventually(t, 15*time.Second, route6Via(t1.Device))
		// Active/passive as for IPv4: tunnel 2's path is prepended.
		p1, err1 := birdASPath(s, 1, sim.LANPrefix6)
		p2, err2 := birdASPath(s, 2, sim.LANPrefix6)
		if err1 != nil || err2 != nil || p1 != "65000" || len(strings.Fields(p2)) < 2 {
			t.Errorf("AWS sees %s with AS path [%s] on tunnel 1 and [%s] on tunnel 2 (%v, %v): want 65000 and 65000 prepended", sim.LANPrefix6, p1, p2, err1, err2)
		}
		t.Logf("e2e: AWS sees %s with AS path [%s] on tunnel 1, [%s] on tunnel 2", sim.LANPrefix6, p1, p2)
	})

	t.Run("Traffic", func(t *testing.T) {
		if err := s.WaitPing(sim.LAN, sim.VPCHostAddr6, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		pingAll(t, s, sim.LAN, sim.VPCHostAddr6, 5)
		pingAll(t, s, sim.VPCHost, sim.LANHostAddr6, 5)
		checkCarried(t, s, d, tool, 1, sim.LAN, sim.VPCHost, netip.AddrPortFrom(sim.VPCHostAddr6, 5611), 5_000_000, "ipv6-inside-t1")
	})

	t.Run("PacketTooBig", func(t *testing.T) {
		// A 1500-byte IPv6 packet: 1452 bytes of ICMPv6 payload.
		out, _ := s.Exec(sim.LAN, "ping", "-n", "-c", "3", "-i", "0.3", "-W", "1", "-M", "do", "-s", "1452", sim.VPCHostAddr6.String())
		m := regexp.MustCompile(`(?i)(?:too big: mtu=|message too long, mtu=)(\d+)`).FindStringSubmatch(out)
		if m == nil || m[1] != "1418" {
			t.Fatalf("1500-byte ping6: want Packet Too Big with mtu 1418 (AES-GCM in UDP over IPv6), got %q", out)
		}
		// A packet of exactly the tunnel MTU passes.
		pingOut, err := s.Exec(sim.LAN, "ping", "-n", "-c", "3", "-i", "0.3", "-W", "2", "-M", "do", "-s", strconv.Itoa(1418-48), sim.VPCHostAddr6.String())
		if err != nil {
			t.Errorf("a 1418-byte ping6 did not pass: %v\n%s", err, pingOut)
		}
		t.Logf("e2e: 1500-byte ping6: Packet Too Big, mtu=%s; 1418-byte ping6 answered", m[1])
	})

	t.Run("DiagnoseMTUProbe", func(t *testing.T) {
		// cgwctl diagnose probes with ICMPv6 echo to AWS's /126 address.
		name := tunnelOf(st, 1).Name
		dg, _, js := d.diagnose(t, name)
		f := finding(dg, name, "mtu")
		if f == nil {
			t.Fatalf("no mtu finding: %s", js)
		}
		ev := strings.Join(f.Evidence, "; ")
		if f.Severity != control.SeverityOK || !strings.Contains(ev, "probe to "+sim.AWSInside6(1).String()) || !strings.Contains(ev, "largest answered: 1418") {
			t.Errorf("mtu finding %s %q, evidence %q: want ok, a probe to %s answered up to 1418 bytes", f.Severity, f.Summary, ev, sim.AWSInside6(1))
		}
		t.Logf("e2e: diagnose mtu over IPv6: %s; %s", f.Summary, ev)
	})

	t.Run("RekeyUnderTraffic", func(t *testing.T) {
		// AWS rekeys tunnel 1's CHILD SA while IPv6 pings flow through it
		// every 50 ms: make-before-break, no request may go unanswered.
		const interval = 50 * time.Millisecond
		pg := startPinger(t, s, sim.LAN, sim.VPCHostAddr6, interval, 60*time.Second)
		Eventually(t, 10*time.Second, func() error {
			if !pg.answeredAfter(3) {
				return fmt.Errorf("ping6 not answered yet")
			}
			return nil
		})
		before := d.mustTunnel(t, 1)
		if len(before.Children) == 0 {
			t.Fatal("tunnel 1 has no CHILD SA")
		}
		oldSPI := before.Children[0].InSPI
		from := pg.lastSeq() + 1
		if err := s.RekeyChild(1); err != nil {
			t.Fatal(err)
		}
		Eventually(t, 30*time.Second, func() error {
			tn := d.mustTunnel(t, 1)
			if len(tn.Children) != 1 || tn.Children[0].InSPI == oldSPI {
				return fmt.Errorf("CHILD SAs of tunnel 1: %+v (old inbound SPI %s)", tn.Children, oldSPI)
			}
			return nil
		})
		time.Sleep(2 * time.Second)
		to := pg.lastSeq() - 20 // answers to the last second may still be on their way
		longest, lost := pg.gap(from, to)
		t.Logf("e2e: CHILD rekey under ping6 every %v: requests %d-%d, %d lost (longest run %d), new inbound SPI %s", interval, from, to, lost, longest, d.mustTunnel(t, 1).Children[0].InSPI)
		if lost > 0 {
			t.Errorf("%d IPv6 pings lost across the CHILD rekey", lost)
		}
		pg.p.Stop()
	})

	t.Run("MSSClamp", func(t *testing.T) {
		if mss := synMSSAtVPC(t, s, tool, "ip6 and tcp port 5612 and ip6[40+13] & 0x12 == 0x02", netip.AddrPortFrom(sim.VPCHostAddr6, 5612)); mss != 1358 {
			t.Errorf("IPv6 SYN MSS at the VPC host %d, want 1358 (tunnel MTU 1418 - 60)", mss)
		}
	})

	t.Run("Failover", func(t *testing.T) {
		failover6(t, s, d, tool, "IPv6 inside", route6Via(t2.Device), netip.AddrPortFrom(sim.VPCHostAddr6, 5613))
	})
}

// failover6 blocks IKE and NAT-T to AWS endpoint 1 (over IPv6 outside
// addresses in both tests) while the LAN pings server's address every
// 100 ms, and checks that moved (cgw's route to the VPC on tunnel 2)
// becomes true, the pings resume, tunnel 1 is no longer up and a
// checksummed transfer to server goes through tunnel 2; then unblocks.
func failover6(t *testing.T, s *sim.Sim, d *Cgwd, tool, what string, moved func() error, server netip.AddrPort) {
	const interval = 100 * time.Millisecond
	pg := startPinger(t, s, sim.LAN, server.Addr(), interval, 120*time.Second)
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
	Eventually(t, 30*time.Second, moved)
	switchSeq := pg.lastSeq()
	Eventually(t, 60*time.Second, func() error {
		if !pg.resumedAfter(switchSeq, 10) {
			return fmt.Errorf("traffic has not resumed through tunnel 2")
		}
		return nil
	})
	t.Logf("e2e: %s failover: traffic through tunnel 2 %v after blocking endpoint 1", what, time.Since(blocked).Round(100*time.Millisecond))
	pg.p.Stop()
	if tn := d.mustTunnel(t, 1); tn.State == "up" {
		t.Errorf("tunnel 1 still up while its IPv6 endpoint is blocked")
	}
	checkCarried(t, s, d, tool, 2, sim.LAN, sim.VPCHost, server, 2_000_000, strings.ReplaceAll(what, " ", "-")+"-t2")
	if err := s.UnblockEndpoint(1); err != nil {
		t.Fatal(err)
	}
}

// synMSSAtVPC captures, on the VPC host, the first SYN matching filter of
// a short transfer from the LAN to server and returns its MSS option.
func synMSSAtVPC(t *testing.T, s *sim.Sim, tool, filter string, server netip.AddrPort) int {
	t.Helper()
	c := startCapture(t, s, sim.VPCHost, "eth0", 1, filter)
	if _, err := transfer(s, tool, sim.LAN, sim.VPCHost, server, 100_000, "mss"); err != nil {
		t.Fatal(err)
	}
	rows := c.fields(t, 5*time.Second, "tcp.options.mss_val")
	if len(rows) == 0 || len(rows[0]) == 0 {
		t.Fatalf("no SYN to %s captured at the VPC host", server)
	}
	mss, _ := strconv.Atoi(rows[0][0])
	return mss
}

// TestIPv6InsideActiveActive: an IPv6-inside connection in active-active
// mode gets one IPv6 multipath route to the VPC over both tunnels, AWS
// sees the LAN prefix with equal (unprepended) AS paths on both sessions,
// and when tunnel 1 is taken down the route keeps only tunnel 2 and ping6
// still crosses; tunnel 1 back restores both next hops.
func TestIPv6InsideActiveActive(t *testing.T) {
	s := NewSim(t, sim.Options{IPv6Outside: true, IPv6Inside: true})
	yml := importedYAML(t, s, func(doc map[string]any) {
		conn := doc["connections"].([]any)[0].(map[string]any)
		conn["bgp"].(map[string]any)["mode"] = "active-active"
	})
	d := StartCgwdYAML(t, s, sim.Cust, yml)
	st := d.waitStatus(t, 90*time.Second, tunnelsUp)
	t1, t2 := tunnelOf(st, 1), tunnelOf(st, 2)
	routeDevs := func(want ...string) func() error {
		return func() error {
			out, err := s.Exec(sim.Cust, "ip", "-6", "route", "show", "table", "199", sim.VPCPrefix6.String())
			if err != nil {
				return err
			}
			got := regexp.MustCompile(`dev (\S+)`).FindAllStringSubmatch(out, -1)
			var devs []string
			for _, m := range got {
				devs = append(devs, m[1])
			}
			sort.Strings(devs)
			sort.Strings(want)
			if strings.Join(devs, ",") != strings.Join(want, ",") {
				return fmt.Errorf("cgw's IPv6 route to %s via %v (%q), want %v", sim.VPCPrefix6, devs, strings.TrimSpace(out), want)
			}
			return nil
		}
	}
	if err := routeDevs(t1.Device, t2.Device)(); err != nil {
		Eventually(t, 30*time.Second, func() error {
			if err := routeDevs(t1.Device, t2.Device)(); err != nil {
				rt, _ := d.Ctl("bgp", "routes")
				return fmt.Errorf("%v; cgwctl bgp routes:\n%s", err, rt)
			}
			return nil
		})
	}
	out, _ := s.Exec(sim.Cust, "ip", "-6", "route", "show", "table", "199", sim.VPCPrefix6.String())
	t.Logf("e2e: IPv6 active-active route: %s", strings.Join(strings.Fields(out), " "))
	for i := 1; i <= 2; i++ {
		if _, err := s.WaitBGPRoutes(i, 1, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		p, err := birdASPath(s, i, sim.LANPrefix6)
		if err != nil || p != "65000" {
			t.Errorf("active-active: AWS endpoint %d sees %s with AS path %q (%v), want 65000 (no prepend)", i, sim.LANPrefix6, p, err)
		}
	}
	if err := s.WaitPing(sim.LAN, sim.VPCHostAddr6, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	pingAll(t, s, sim.LAN, sim.VPCHostAddr6, 5)

	if _, err := d.Ctl("tunnel", "down", t1.Name); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 30*time.Second, routeDevs(t2.Device))
	if err := s.WaitPing(sim.LAN, sim.VPCHostAddr6, 30*time.Second); err != nil {
		t.Fatalf("ping6 with tunnel 1 down: %v", err)
	}
	pingAll(t, s, sim.LAN, sim.VPCHostAddr6, 5)
	t.Logf("e2e: tunnel 1 down: IPv6 route via %s only, ping6 crosses", t2.Device)

	if _, err := d.Ctl("tunnel", "up", t1.Name); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 60*time.Second, routeDevs(t1.Device, t2.Device))
	t.Logf("e2e: tunnel 1 back: IPv6 route over both tunnels again")
}
