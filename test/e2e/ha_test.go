//go:build e2e

package e2e

// Issue 13, two cgw gateways for one site (AWS's recommended layout): an
// on-premises router running BIRD peers with both over BGP (bgp.lan_neighbors),
// each gateway has its own VPN connection (four tunnels in all).

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/test/sim"
)

// routerBest returns the BIRD protocol (gw_a, gw_b) of the LAN router's
// best path to prefix, and every protocol it has a path from.
func routerBest(h *sim.HA, prefix netip.Prefix) (best string, all []string, err error) {
	out, err := h.Birdc(sim.Router, "show", "route", "for", prefix.String())
	if err != nil {
		return "", nil, err
	}
	for _, l := range strings.Split(out, "\n") {
		_, rest, ok := strings.Cut(l, "unicast [")
		if !ok {
			continue
		}
		proto, _, _ := strings.Cut(rest, " ")
		all = append(all, proto)
		if strings.Contains(l, "] * ") || strings.Contains(l, "] *") {
			best = proto
		}
	}
	return best, all, nil
}

// tunnelPackets is a gateway's inner packets out (LAN→VPC) and in, over
// both tunnels.
func tunnelPackets(t testing.TB, d *Cgwd) (out, in uint64) {
	t.Helper()
	for _, c := range mustStatus(t, d).Connections {
		for _, tu := range c.Tunnels {
			out += tu.Traffic.PacketsOut
			in += tu.Traffic.PacketsIn
		}
	}
	return out, in
}

// carries checks that n pings from the LAN cross gateway via, both ways,
// and not gateway other.
func carries(t testing.TB, h *sim.HA, via, other *Cgwd, n int) {
	t.Helper()
	vo, vi := tunnelPackets(t, via)
	oo, oi := tunnelPackets(t, other)
	pingAll(t, h.Sim, sim.LAN, sim.VPCHostAddr, n)
	vo2, vi2 := tunnelPackets(t, via)
	oo2, oi2 := tunnelPackets(t, other)
	if vo2-vo < uint64(n) || vi2-vi < uint64(n) {
		t.Errorf("%d pings: gateway %s carried %d out, %d in; want at least %d each way", n, via.Role, vo2-vo, vi2-vi, n)
	}
	if oo2-oo >= uint64(n) || oi2-oi >= uint64(n) {
		t.Errorf("%d pings: gateway %s carried %d out, %d in; want only BGP keepalives", n, other.Role, oo2-oo, oi2-oi)
	}
}

// lanPinger starts a 10/s ping from the LAN host to the VPC host and
// waits for its first answer.
func lanPinger(t *testing.T, h *sim.HA) *pinger {
	t.Helper()
	pg := startPinger(t, h.Sim, sim.LAN, sim.VPCHostAddr, 100*time.Millisecond, 60*time.Second)
	Eventually(t, 5*time.Second, func() error {
		if !pg.answeredAfter(0) {
			return fmt.Errorf("no ping answered yet")
		}
		return nil
	})
	return pg
}

func TestHAGateways(t *testing.T) {
	NeedRoot(t)
	h, err := sim.NewHA(sim.HAOptions{Logf: t.Logf, KeepDir: os.Getenv("CGW_E2E_KEEP") != ""})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			DumpLogs(t, h.Sim)
		}
		if err := h.Close(); err != nil {
			t.Errorf("sim teardown: %v", err)
		}
	})
	vpc, lan := sim.DefaultVPC, sim.DefaultLAN
	a := StartCgwdYAML(t, h.Sim, sim.Cust, h.GatewayConfig(0, ""))
	// Gateway B has an allow-list; A has none, so only the never-announce
	// rules keep the router's default route and 169.254/16 from AWS.
	b := StartCgwdYAML(t, h.Sim, sim.Cust2, h.GatewayConfig(1, "      import: {allow: [10.1.0.0/16]}"))
	a.waitStatus(t, 60*time.Second, tunnelsUp)
	b.waitStatus(t, 60*time.Second, tunnelsUp)

	t.Run("Routes", func(t *testing.T) {
		Eventually(t, 30*time.Second, func() error {
			best, all, err := routerBest(h, vpc)
			if err != nil || best != "gw_a" || len(all) != 2 {
				return fmt.Errorf("router's paths to %s: best %q of %v (%v); want gw_a of gw_a, gw_b", vpc, best, all, err)
			}
			return nil
		})
		// AWS learns the LAN prefix the router announced, through every
		// tunnel of both gateways, and nothing the rules refuse.
		for _, e := range append(sim.Endpoints[:], sim.HAEndpoints[:]...) {
			Eventually(t, 20*time.Second, func() error {
				out, err := h.Birdc(e.Role, "show", "route", "protocol", "cgw")
				if err != nil || !strings.Contains(out, lan.String()) {
					return fmt.Errorf("AWS endpoint %d has no %s from its gateway: %v\n%s", e.Index, lan, err, out)
				}
				for _, bad := range []string{"0.0.0.0/0", "169.254.0.0/16"} {
					if strings.Contains(out, bad) {
						t.Errorf("AWS endpoint %d received %s:\n%s", e.Index, bad, out)
					}
				}
				return nil
			})
		}
		out, _ := h.Birdc(sim.AWS1, "show", "route", "for", lan.String(), "all")
		if !strings.Contains(out, "BGP.as_path: 65000 65100") {
			t.Errorf("AWS endpoint 1's path to %s does not come from the router through gateway A:\n%s", lan, out)
		}
		st := mustStatus(t, a)
		if st.LAN == nil || len(st.LAN.Neighbors) != 1 {
			t.Fatalf("status has no LAN neighbor: %+v", st.LAN)
		}
		n := st.LAN.Neighbors[0]
		if n.State != "Established" || n.Received != 3 || n.Accepted != 1 || n.Advertised != 1 || n.Type != "ebgp" || st.LAN.Drained {
			t.Errorf("LAN neighbor %+v: want Established, 3 received, 1 accepted (the LAN prefix), 1 advertised (the VPC)", n)
		}
		t.Logf("e2e: gateway A's LAN neighbor: %+v", n)
		// bgp routes: what the router sent (only the LAN prefix was
		// accepted) and what it was sent (the VPC, next hop self).
		recv, err := a.Ctl("bgp", "routes", "received", "lan:router")
		if err != nil || !strings.Contains(recv, "lan:router") || !strings.Contains(recv, lan.String()) || !strings.Contains(recv, "from_lan") || strings.Contains(recv, "0.0.0.0/0") {
			t.Errorf("bgp routes received lan:router: %v\n%s", err, recv)
		}
		adv, err := a.Ctl("bgp", "routes", "advertised")
		if err != nil || !strings.Contains(adv, "lan:router") || !strings.Contains(adv, vpc.String()) || !strings.Contains(adv, sim.Gateways()[0].LANAddr.String()) {
			t.Errorf("bgp routes advertised: %v\n%s", err, adv)
		}
		t.Logf("e2e: cgwctl bgp routes advertised on gateway A:\n%s", adv)
		if err := h.WaitPing(sim.LAN, sim.VPCHostAddr, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		carries(t, h, a, b, 20)
	})
	if t.Failed() {
		return
	}

	// The LAN's preference follows A's tunnels: without its preferred
	// tunnel A announces the VPC with MED 0+100, worse than B's 50; without
	// any tunnel it withdraws it.
	t.Run("TunnelState", func(t *testing.T) {
		wantBest := func(want string, paths int) {
			t.Helper()
			Eventually(t, 10*time.Second, func() error {
				best, all, err := routerBest(h, vpc)
				if err != nil || best != want || len(all) != paths {
					return fmt.Errorf("router's paths to %s: best %q of %v (%v); want %s of %d paths", vpc, best, all, err, want, paths)
				}
				return nil
			})
		}
		if _, err := a.Ctl("tunnel", "down", "vpn-a-t1"); err != nil {
			t.Fatal(err)
		}
		wantBest("gw_b", 2)
		if out, _ := h.Birdc(sim.Router, "show", "route", "for", vpc.String(), "protocol", "gw_a", "all"); !strings.Contains(out, "BGP.med: 100") {
			t.Errorf("gateway A without its preferred tunnel: want MED 100 at the router:\n%s", out)
		}
		if _, err := a.Ctl("tunnel", "down", "vpn-a-t2"); err != nil {
			t.Fatal(err)
		}
		wantBest("gw_b", 1)
		for _, tn := range []string{"vpn-a-t1", "vpn-a-t2"} {
			if _, err := a.Ctl("tunnel", "up", tn); err != nil {
				t.Fatal(err)
			}
		}
		a.waitStatus(t, 60*time.Second, tunnelsUp)
		wantBest("gw_a", 2)
	})
	if t.Failed() {
		return
	}

	t.Run("DrainThenStop", func(t *testing.T) {
		if _, err := a.Ctl("health"); err != nil {
			t.Errorf("health of gateway A before the drain: %v", err)
		}
		pg := lanPinger(t, h)
		first := pg.lastSeq()
		start := time.Now()
		// The simulator's BGP keepalives (every 2 s on both tunnels, with
		// their ACKs) make about 5 packets/s; the ping alone 20 (in + out).
		var res control.DrainResult
		if err := a.CtlJSON(&res, "drain", "--idle-rate", "12", "--wait", "40s"); err != nil {
			t.Fatal(err)
		}
		t.Logf("e2e: drain of gateway A: %+v after %v", res, time.Since(start).Round(time.Millisecond))
		if !res.Moved || !res.Drained {
			t.Errorf("drain did not report the traffic moved: %+v", res)
		}
		if best, _, _ := routerBest(h, vpc); best != "gw_b" {
			t.Errorf("after the drain the router's best path to %s is %q, want gw_b", vpc, best)
		}
		if st := mustStatus(t, a); st.LAN == nil || !st.LAN.Drained {
			t.Errorf("status does not show gateway A drained: %+v", st.LAN)
		}
		if _, err := a.Ctl("health"); err == nil {
			t.Errorf("health of a drained gateway exits 0")
		}
		a.Stop()
		time.Sleep(3 * time.Second)
		last := pg.lastSeq() - 10 // requests still within -W 1
		longest, lost := pg.gap(first, last)
		t.Logf("e2e: drain + stop of gateway A with a 10/s ping: %d of %d lost (longest gap %d)", lost, last-first+1, longest)
		if lost != 0 {
			t.Errorf("drain then stop lost %d pings", lost)
		}
		pg.p.Stop()
	})
	if t.Failed() {
		return
	}

	// Gateway A back: the router and AWS prefer it again.
	a = StartCgwdYAML(t, h.Sim, sim.Cust, h.GatewayConfig(0, ""))
	a.waitStatus(t, 60*time.Second, tunnelsUp)
	Eventually(t, 30*time.Second, func() error {
		if best, _, err := routerBest(h, vpc); best != "gw_a" {
			return fmt.Errorf("router's best path to %s: %q (%v), want gw_a", vpc, best, err)
		}
		if out, _ := h.Exec(sim.VPC, "ip", "route", "get", sim.LANHostAddr.String()); !strings.Contains(out, "aws1") {
			return fmt.Errorf("VPC router does not route %s through gateway A's tunnel 1: %s", sim.LANHostAddr, out)
		}
		return nil
	})
	carries(t, h, a, b, 20)

	t.Run("KillPreferred", func(t *testing.T) {
		pg := lanPinger(t, h)
		killed := pg.lastSeq()
		if err := a.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		Eventually(t, 45*time.Second, func() error {
			if !pg.resumedAfter(killed, 10) {
				return fmt.Errorf("traffic has not resumed through gateway B")
			}
			return nil
		})
		longest, lost := pg.gap(killed, pg.lastSeq()-10)
		gap := time.Duration(longest) * 100 * time.Millisecond
		t.Logf("e2e: SIGKILL of the preferred gateway: traffic moved to gateway B after a gap of %v (%d pings lost); LAN router hold 3 s, AWS BGP hold 6 s", gap, lost)
		if gap > 30*time.Second {
			t.Errorf("gap %v: want within the hold times (about 6 s)", gap)
		}
		if best, _, _ := routerBest(h, vpc); best != "gw_b" {
			t.Errorf("router's best path after the kill: %q, want gw_b", best)
		}
		pg.p.Stop()
	})
}
