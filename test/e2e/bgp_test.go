//go:build e2e

package e2e

// Issue 6, BGP over the tunnels, end to end against BIRD (ASN 64512) on the
// simulated AWS side: sessions and routes both ways, failover by DPD when
// tunnel 1's endpoint becomes unreachable and the way back, active/active
// ECMP, static routing with failover, and route cleanup on SIGTERM.

import (
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgwproject/cgw/test/sim"
)

// fastDPD makes cgwd declare a silent peer dead after about 8 s (2 s x
// (3 retries + 1)) instead of AWS's 40 s, so the failover tests stay short.
// The AWS side keeps its defaults (DPD 10 s, BGP hold 30 s).
const fastDPD = "        dpd: {interval: 2s, retries: 3, action: restart}\n"

// birdASPath returns the AS path (as BIRD prints it) of prefix as learned
// from the customer by AWS endpoint i's BGP session.
func birdASPath(s *sim.Sim, i int, prefix netip.Prefix) (string, error) {
	out, err := s.Birdc(sim.Endpoints[i-1].Role, "show", "route", "for", prefix.String(), "protocol", "cgw", "all")
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(out, "\n") {
		if _, v, ok := strings.Cut(l, "BGP.as_path:"); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("AWS endpoint %d has no route for %s from the customer:\n%s", i, prefix, out)
}

// pinger is a continuous `ping -i 0.1` whose per-packet output is parsed
// afterwards to find the longest run of lost echo requests.
type pinger struct {
	p        *sim.Process
	interval time.Duration
}

var pingReplyRE = regexp.MustCompile(`icmp_seq=(\d+) ttl=`)
var pingSentRE = regexp.MustCompile(`icmp_seq=(\d+)`)

func startPinger(t testing.TB, s *sim.Sim, from sim.Role, to netip.Addr, interval time.Duration, limit time.Duration) *pinger {
	t.Helper()
	p, err := s.StartProcess(from, uniq("ping"), "ping", "-n", "-O", "-W", "1",
		"-i", strconv.FormatFloat(interval.Seconds(), 'f', 3, 64), "-w", strconv.Itoa(int(limit.Seconds())), to.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return &pinger{p: p, interval: interval}
}

// replies returns the sequence numbers answered so far and the highest
// sequence number sent.
func (pg *pinger) replies() (map[int]bool, int) {
	b, _ := os.ReadFile(pg.p.Log)
	got := map[int]bool{}
	maxSeq := 0
	for _, l := range strings.Split(string(b), "\n") {
		if m := pingSentRE.FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			maxSeq = max(maxSeq, n)
		}
		if m := pingReplyRE.FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			got[n] = true
		}
	}
	return got, maxSeq
}

// lastSeq returns the highest sequence number seen in the output.
func (pg *pinger) lastSeq() int { _, n := pg.replies(); return n }

// answeredAfter reports whether some request after seq was answered.
func (pg *pinger) answeredAfter(seq int) bool {
	got, _ := pg.replies()
	for n := range got {
		if n > seq {
			return true
		}
	}
	return false
}

// resumedAfter reports whether k consecutive requests after seq were
// answered.
func (pg *pinger) resumedAfter(seq, k int) bool {
	got, maxSeq := pg.replies()
	run := 0
	for n := seq + 1; n <= maxSeq; n++ {
		if !got[n] {
			run = 0
			continue
		}
		if run++; run >= k {
			return true
		}
	}
	return false
}

// gap returns the longest run of unanswered requests between from and to
// (sequence numbers, inclusive) and the total lost.
func (pg *pinger) gap(from, to int) (longest, lost int) {
	got, _ := pg.replies()
	run := 0
	for n := from; n <= to; n++ {
		if got[n] {
			run = 0
			continue
		}
		run++
		lost++
		longest = max(longest, run)
	}
	return longest, lost
}

// waitGone waits for cgwd to exit by itself (no SIGKILL) within timeout.
func waitGone(t testing.TB, d *Cgwd, timeout time.Duration) {
	t.Helper()
	select {
	case <-d.Proc.Done():
		if _, err := d.Proc.Exited(); err != nil {
			t.Errorf("cgwd exited with %v after SIGTERM\n%s", err, d.Proc.Tail(2000))
		}
	case <-time.After(timeout):
		t.Fatalf("cgwd still running %v after SIGTERM\n%s", timeout, d.Proc.Tail(2000))
	}
}

// TestBGPRoutesFailover: both BGP sessions up (BIRD's view), the VPC prefix
// installed toward tunnel 1 only, the LAN prefix at AWS with the secondary
// tunnel's path prepended, traffic both ways; then tunnel 1's endpoint
// becomes unreachable and a 10/s ping measures how long traffic stops
// before it flows through tunnel 2, and when the endpoint returns the
// route and traffic go back to tunnel 1; finally SIGTERM removes every
// route and device.
func TestBGPRoutesFailover(t *testing.T) {
	s := NewSim(t, sim.Options{})
	d := StartCgwd(t, s, sim.CgwdOptions{Extra: fastDPD})
	st := d.waitStatus(t, 60*time.Second, tunnelsUp)
	t1, t2 := tunnelOf(st, 1), tunnelOf(st, 2)

	t.Run("SessionsAndRoutes", func(t *testing.T) {
		for i := 1; i <= 2; i++ {
			b, err := s.WaitBGPRoutes(i, 1, 20*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if b.NeighborAS != 65000 || b.Neighbor != sim.Endpoints[i-1].CustInside.String() {
				t.Errorf("AWS endpoint %d: BGP neighbor %s AS %d, want %s AS 65000", i, b.Neighbor, b.NeighborAS, sim.Endpoints[i-1].CustInside)
			}
		}
		Eventually(t, 10*time.Second, routeVia(s, sim.Cust, sim.DefaultVPC, t1.Device))
		st := mustStatus(t, d)
		if rs := st.Connections[0].Routes; len(rs) != 1 || rs[0].Prefix != sim.DefaultVPC.String() || strings.Join(rs[0].Via, ",") != t1.Name {
			t.Errorf("status routes %+v, want %s via %s", rs, sim.DefaultVPC, t1.Name)
		}
		p1, err := birdASPath(s, 1, sim.DefaultLAN)
		if err != nil {
			t.Fatal(err)
		}
		p2, err := birdASPath(s, 2, sim.DefaultLAN)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("e2e: AWS sees %s with AS path [%s] on tunnel 1 and [%s] on tunnel 2", sim.DefaultLAN, p1, p2)
		if p1 != "65000" {
			t.Errorf("tunnel 1 (preferred) AS path %q, want 65000", p1)
		}
		if f := strings.Fields(p2); len(f) < 2 || strings.Count(p2, "65000") != len(f) {
			t.Errorf("tunnel 2 (secondary) AS path %q, want 65000 prepended", p2)
		}
		// The VPC router learned the LAN prefix from the AWS side, so the
		// reverse direction works too.
		out, err := s.Exec(sim.VPC, "ip", "route", "show", sim.DefaultLAN.String())
		if err != nil || !strings.Contains(out, "via") {
			t.Errorf("VPC router has no route to %s: %q %v", sim.DefaultLAN, out, err)
		}
		if err := s.WaitPing(sim.LAN, sim.VPCHostAddr, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		pingAll(t, s, sim.LAN, sim.VPCHostAddr, 5)
		pingAll(t, s, sim.VPCHost, sim.LANHostAddr, 5)
	})

	t.Run("Failover", func(t *testing.T) {
		const interval = 100 * time.Millisecond
		pg := startPinger(t, s, sim.LAN, sim.VPCHostAddr, interval, 150*time.Second)
		Eventually(t, 10*time.Second, func() error {
			if !pg.answeredAfter(5) {
				return fmt.Errorf("continuous ping not answered yet")
			}
			return nil
		})
		t.Logf("e2e: cgwd DPD 2s x 3 retries for this test (AWS side: DPD 10s, BGP hold 30s)")
		t2Out := d.trafficOut(t, 2)
		blockSeq := pg.lastSeq()
		blocked := time.Now()
		if err := s.BlockEndpoint(1); err != nil {
			t.Fatal(err)
		}
		Eventually(t, 30*time.Second, routeVia(s, sim.Cust, sim.DefaultVPC, t2.Device))
		detect := time.Since(blocked)
		// Recovered: ten answers in a row after cgwd moved the route.
		switchSeq := pg.lastSeq()
		Eventually(t, 60*time.Second, func() error {
			if !pg.resumedAfter(switchSeq, 10) {
				return fmt.Errorf("traffic has not resumed through tunnel 2")
			}
			return nil
		})
		recovered := time.Since(blocked)
		last := pg.lastSeq()
		longest, lost := pg.gap(blockSeq+1, last)
		t.Logf("e2e: failover gap %v (%d consecutive pings lost at %v, %d lost in total); cgwd moved the VPC route to tunnel 2 after %v, traffic flowing again %v after the block",
			time.Duration(longest)*interval, longest, interval, lost, detect.Round(100*time.Millisecond), recovered.Round(100*time.Millisecond))
		if got := d.trafficOut(t, 2) - t2Out; got < 100*84 {
			t.Errorf("tunnel 2 sent only %d bytes after the failover", got)
		}
		if tn := d.mustTunnel(t, 1); tn.State == "up" {
			t.Errorf("tunnel 1 still up while its endpoint is unreachable: %+v", tn)
		}

		// The endpoint comes back: tunnel 1 re-establishes, BGP comes up
		// and the VPC route returns to the preferred tunnel.
		if err := s.UnblockEndpoint(1); err != nil {
			t.Fatal(err)
		}
		unblocked := time.Now()
		d.waitStatus(t, 120*time.Second, tunnelsUp)
		Eventually(t, 20*time.Second, routeVia(s, sim.Cust, sim.DefaultVPC, t1.Device))
		back := time.Since(unblocked)
		t1Out := d.trafficOut(t, 1)
		pingAll(t, s, sim.LAN, sim.VPCHostAddr, 10)
		if got := d.trafficOut(t, 1) - t1Out; got < 10*84 {
			t.Errorf("tunnel 1 carried %d bytes of 10 pings after the return", got)
		}
		backSeq := pg.lastSeq()
		pg.p.Stop()
		_, lostBack := pg.gap(backSeq-int(back/interval)+1, backSeq)
		t.Logf("e2e: endpoint 1 reachable again: tunnel 1 up and preferred after %v, %d pings lost meanwhile", back.Round(100*time.Millisecond), lostBack)
	})

	t.Run("RoutesRemovedOnSIGTERM", func(t *testing.T) {
		if m, err := cgwRoutes(s, sim.Cust); err != nil || len(m) == 0 {
			t.Fatalf("no cgw routes before SIGTERM (%v): the check below would prove nothing", err)
		}
		if out, err := s.Exec(sim.Cust, "ip", "rule", "show"); err != nil ||
			!strings.Contains(out, "32000:\tfrom all lookup main suppress_prefixlength 0 proto 199") ||
			!strings.Contains(out, "32001:\tnot from all fwmark 0xc7 lookup 199 proto 199") {
			t.Fatalf("cgw's policy rules are not installed (%v):\n%s", err, out)
		}
		// BGP listens on the inside addresses only, not on 0.0.0.0:179.
		out, err := s.Exec(sim.Cust, "ss", "-Hltn", "sport = :179")
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range sim.Endpoints {
			if !strings.Contains(out, e.CustInside.String()+":179") {
				t.Errorf("BGP does not listen on %s:179:\n%s", e.CustInside, out)
			}
		}
		if strings.Contains(out, "0.0.0.0:179") || strings.Contains(out, "*:179") || strings.Contains(out, "[::]:179") {
			t.Errorf("BGP listens on all addresses:\n%s", out)
		}
		if err := d.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		waitGone(t, d, 15*time.Second)
		checkCleanedUp(t, s, t1.Device, t2.Device)
	})
}

// checkCleanedUp asserts that no proto-199 route or policy rule and none of
// the TUN devices is left in the customer namespace.
func checkCleanedUp(t testing.TB, s *sim.Sim, devs ...string) {
	t.Helper()
	m, err := cgwRoutes(s, sim.Cust)
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 0 {
		t.Errorf("routes with protocol 199 left after cgwd exited: %v", m)
	}
	if out, err := s.Exec(sim.Cust, "ip", "rule", "show"); err != nil || strings.Contains(out, "proto 199") || strings.Contains(out, "lookup 199") {
		t.Errorf("cgw's policy rules left after cgwd exited (%v):\n%s", err, out)
	}
	for _, dev := range devs {
		if out, err := s.Exec(sim.Cust, "ip", "-o", "link", "show"); err != nil || strings.Contains(out, " "+dev+":") {
			t.Errorf("TUN device %s still exists after cgwd exited (%v):\n%s", dev, err, out)
		}
	}
}

// TestBGPActiveActive: with mode active-active the VPC route has one
// nexthop per tunnel (ECMP) and the LAN prefix goes to AWS without
// prepending on either tunnel.
func TestBGPActiveActive(t *testing.T) {
	s := NewSim(t, sim.Options{})
	d := StartCgwd(t, s, sim.CgwdOptions{BGPMode: "active-active"})
	st := d.waitStatus(t, 60*time.Second, tunnelsUp)
	devs := []string{tunnelOf(st, 1).Device, tunnelOf(st, 2).Device}
	sort.Strings(devs)
	Eventually(t, 15*time.Second, func() error {
		m, err := cgwRoutes(s, sim.Cust)
		if err != nil {
			return err
		}
		got := append([]string(nil), m[sim.DefaultVPC.String()]...)
		sort.Strings(got)
		if strings.Join(got, ",") != strings.Join(devs, ",") {
			return fmt.Errorf("route %s via %v, want ECMP via %v", sim.DefaultVPC, got, devs)
		}
		return nil
	})
	out, _ := s.Exec(sim.Cust, "ip", "route", "show", "table", "199", sim.DefaultVPC.String())
	t.Logf("e2e: active-active kernel route: %s", strings.Join(strings.Fields(out), " "))
	for i := 1; i <= 2; i++ {
		if _, err := s.WaitBGPRoutes(i, 1, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		p, err := birdASPath(s, i, sim.DefaultLAN)
		if err != nil {
			t.Fatal(err)
		}
		if p != "65000" {
			t.Errorf("active-active: AWS endpoint %d sees AS path %q, want 65000 (no prepend)", i, p)
		}
	}
	if err := s.WaitPing(sim.LAN, sim.VPCHostAddr, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	pingAll(t, s, sim.LAN, sim.VPCHostAddr, 5)
	pingAll(t, s, sim.VPCHost, sim.LANHostAddr, 5)
	logBGPTimeline(t, s, d)
}

// TestStaticFailover: static routing (no BGP anywhere); the VPC prefix is
// routed through tunnel 1, moves to tunnel 2 when DPD declares endpoint 1
// dead, traffic resumes once the AWS side has moved too (its DPD), the
// route returns to tunnel 1 when the endpoint is reachable again, and
// SIGTERM removes it.
func TestStaticFailover(t *testing.T) {
	s := NewSim(t, sim.Options{Routing: sim.RoutingStatic})
	tool := tcpcheckBin(t)
	d := StartCgwd(t, s, sim.CgwdOptions{Extra: fastDPD})
	st := d.waitStatus(t, 30*time.Second, childrenUp)
	t1, t2 := tunnelOf(st, 1), tunnelOf(st, 2)
	if c := st.Connections[0]; c.Routing != "static" {
		t.Fatalf("connection routing %q, want static", c.Routing)
	}
	Eventually(t, 10*time.Second, routeVia(s, sim.Cust, sim.DefaultVPC, t1.Device))
	if err := s.WaitPing(sim.LAN, sim.VPCHostAddr, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	checkCarried(t, s, d, tool, 1, sim.LAN, sim.VPCHost, netip.AddrPortFrom(sim.VPCHostAddr, 5501), 5_000_000, "static-t1")

	const interval = 100 * time.Millisecond
	pg := startPinger(t, s, sim.LAN, sim.VPCHostAddr, interval, 150*time.Second)
	Eventually(t, 10*time.Second, func() error {
		if !pg.answeredAfter(5) {
			return fmt.Errorf("continuous ping not answered yet")
		}
		return nil
	})
	blockSeq := pg.lastSeq()
	blocked := time.Now()
	if err := s.BlockEndpoint(1); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 30*time.Second, routeVia(s, sim.Cust, sim.DefaultVPC, t2.Device))
	detect := time.Since(blocked)
	// The AWS side moves its route to the LAN when its DPD (10 s, then
	// 2 retransmits 10 s apart) clears tunnel 1's CHILD SA.
	switchSeq := pg.lastSeq()
	Eventually(t, 75*time.Second, func() error {
		if !pg.resumedAfter(switchSeq, 10) {
			return fmt.Errorf("traffic has not resumed through tunnel 2")
		}
		return nil
	})
	resumed := time.Since(blocked)
	longest, lost := pg.gap(blockSeq+1, pg.lastSeq()-5)
	t.Logf("e2e: static failover: cgwd moved the VPC route to tunnel 2 after %v (DPD 2s x 3); traffic resumed after %v; gap %v (%d pings lost)",
		detect.Round(100*time.Millisecond), resumed.Round(100*time.Millisecond), time.Duration(longest)*interval, lost)
	pg.p.Stop()
	checkCarried(t, s, d, tool, 2, sim.LAN, sim.VPCHost, netip.AddrPortFrom(sim.VPCHostAddr, 5502), 5_000_000, "static-t2")

	if err := s.UnblockEndpoint(1); err != nil {
		t.Fatal(err)
	}
	unblocked := time.Now()
	d.waitStatus(t, 120*time.Second, childrenUp)
	Eventually(t, 10*time.Second, routeVia(s, sim.Cust, sim.DefaultVPC, t1.Device))
	t.Logf("e2e: static: endpoint 1 reachable again, VPC route back on tunnel 1 after %v", time.Since(unblocked).Round(100*time.Millisecond))
	if err := s.WaitPing(sim.LAN, sim.VPCHostAddr, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	checkCarried(t, s, d, tool, 1, sim.LAN, sim.VPCHost, netip.AddrPortFrom(sim.VPCHostAddr, 5503), 5_000_000, "static-t1-back")

	// Static routes are cgw's too: gone after SIGTERM.
	if err := d.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitGone(t, d, 15*time.Second)
	checkCleanedUp(t, s, t1.Device, t2.Device)
}
