//go:build e2e

package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/test/sim"
)

// NAT rebinding: the customer sits behind a NAT that forgets its mappings
// (sim.RebindNAT: new public source ports, conntrack flushed) while a
// continuous ping LAN->VPC runs at 10 per second.

const (
	rebindPingInterval = 100 * time.Millisecond
	// rebindMaxLost bounds the pings lost when the AWS side is cgwd: it
	// follows the first authentic ESP packet from the new port, so only
	// replies already on their way to the old port are lost.
	rebindMaxLost = 10
)

// rebindPing starts the continuous ping and waits until it is answered.
func rebindPing(t *testing.T, s *sim.Sim, limit time.Duration) *pinger {
	t.Helper()
	pg := startPinger(t, s, sim.LAN, sim.VPCHostAddr, rebindPingInterval, limit)
	Eventually(t, 10*time.Second, func() error {
		if !pg.resumedAfter(0, 10) {
			return fmt.Errorf("continuous ping not answered yet")
		}
		return nil
	})
	return pg
}

// rebindLoss waits until the ping has been answered 20 times in a row after
// seq, then returns the pings lost from seq on (those still in flight at
// the end excluded) and the longest run of them.
func rebindLoss(t *testing.T, pg *pinger, seq int, within time.Duration) (lost, longest int, took time.Duration) {
	t.Helper()
	start := time.Now()
	Eventually(t, within, func() error {
		if !pg.resumedAfter(seq, 20) {
			return fmt.Errorf("ping LAN->VPC not answered again after the NAT rebinding (seq %d, now %d)", seq, pg.lastSeq())
		}
		return nil
	})
	took = time.Since(start)
	time.Sleep(2 * time.Second) // -W 1: the last requests may still be answered
	end := pg.lastSeq() - 15
	longest, lost = pg.gap(seq-5, end)
	return lost, longest, took
}

// remotePort parses a status remote endpoint.
func remotePort(t *testing.T, ep string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(ep)
	if err != nil {
		t.Fatalf("remote endpoint %q: %v", ep, err)
	}
	return ap
}

func inRange(p, lo, hi uint16) bool { return lo <= p && p <= hi }

// countLog counts the lines of p's log that contain substr.
func countLog(t *testing.T, p *sim.Process, substr string) int {
	t.Helper()
	b, err := os.ReadFile(p.Log)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), substr)
}

const mappingLog = "NAT mapping of the peer changed"

// TestNATRebindCgwdFollows: a second cgwd stands in for AWS endpoint 1,
// the customer's cgwd is behind the NAT. When the NAT rebinds, the
// customer's ESP arrives from a new public port; the AWS-side cgwd moves
// its ESP there on the first authentic packet (before any IKE message),
// logs it once, and the ping loses at most a few replies. IKE follows on
// the next exchange from the customer, after which the AWS side's own IKE
// requests reach the new port as well.
func TestNATRebindCgwdFollows(t *testing.T) {
	s := NewSim(t, sim.Options{AWS: sim.AWSNone, Tunnels: 1, Routing: sim.RoutingStatic, NAT: true})
	ike := []string{"aes128gcm16-prfsha256-ecp256"}
	esp := []string{"aes128gcm16-ecp256"}
	aws := StartCgwd(t, s, sim.CgwdOptions{AWSSide: true, Endpoints: []int{1}, IKEProposals: ike, ESPProposals: esp})
	cust := StartCgwd(t, s, sim.CgwdOptions{IKEProposals: ike, ESPProposals: esp})
	ta, _ := s.Transit(1)
	if err := s.AddStaticRoute(sim.VPC, sim.DefaultLAN, "via", ta.String()); err != nil {
		t.Fatal(err)
	}
	cust.waitStatus(t, 30*time.Second, childrenUp)
	aws.waitStatus(t, 10*time.Second, childrenUp)
	if err := s.WaitPing(sim.LAN, sim.VPCHostAddr, 20*time.Second); err != nil {
		t.Fatal(err)
	}

	lo, hi, err := s.NATPortRange()
	if err != nil {
		t.Fatal(err)
	}
	at := aws.mustTunnel(t, 1)
	before := remotePort(t, at.Remote)
	if before.Addr() != sim.CustPublicAddr || !inRange(before.Port(), lo, hi) || !at.NAT {
		t.Fatalf("AWS-side cgwd: remote endpoint %s (NAT detected %v), want %s with a port in %d-%d", at.Remote, at.NAT, sim.CustPublicAddr, lo, hi)
	}
	custRemote := cust.mustTunnel(t, 1).Remote
	ikeSPIs := at.IKE.SPIi + "/" + at.IKE.SPIr

	pg := rebindPing(t, s, 120*time.Second)
	seq := pg.lastSeq()
	rebound := time.Now()
	if err := s.RebindNAT(); err != nil {
		t.Fatal(err)
	}
	nlo, nhi, err := s.NATPortRange()
	if err != nil {
		t.Fatal(err)
	}
	var after netip.AddrPort
	// Without following ESP this takes until the customer's next IKE
	// message: a DPD after 10 s without inbound traffic.
	Eventually(t, 5*time.Second, func() error {
		st, err := aws.status()
		if err != nil {
			return err
		}
		tn := tunnelOf(st, 1)
		if tn == nil {
			return fmt.Errorf("AWS-side cgwd: no tunnel 1 in status")
		}
		after = remotePort(t, tn.Remote)
		if after.Addr() != sim.CustPublicAddr || !inRange(after.Port(), nlo, nhi) {
			return fmt.Errorf("AWS-side cgwd: remote endpoint %s, want %s with a port in %d-%d", tn.Remote, sim.CustPublicAddr, nlo, nhi)
		}
		return nil
	})
	followed := time.Since(rebound)
	lost, longest, _ := rebindLoss(t, pg, seq, 15*time.Second)
	t.Logf("e2e: NAT rebinding: %d pings lost (longest run %d at 10/s); AWS-side cgwd moved %s -> %s within %v",
		lost, longest, before, after, followed.Round(10*time.Millisecond))
	if lost > rebindMaxLost {
		t.Errorf("%d pings lost across the NAT rebinding, want at most %d: the AWS-side cgwd should follow the first authentic ESP packet from the new port", lost, rebindMaxLost)
	}
	if n := countLog(t, aws.Proc, mappingLog); n != 1 {
		t.Errorf("AWS-side cgwd logged %q %d times, want once", mappingLog, n)
	}
	if n := countLog(t, cust.Proc, mappingLog); n != 0 {
		t.Errorf("customer cgwd logged %q %d times; AWS's address did not change", mappingLog, n)
	}
	at = aws.mustTunnel(t, 1)
	if at.IKE == nil || at.IKE.SPIi+"/"+at.IKE.SPIr != ikeSPIs {
		t.Errorf("AWS-side IKE SA changed across the rebinding (%+v, was %s): following must not need a new SA", at.IKE, ikeSPIs)
	}
	if got := cust.mustTunnel(t, 1).Remote; got != custRemote {
		t.Errorf("customer cgwd's remote endpoint moved %s -> %s; only the customer's NAT changed", custRemote, got)
	}
	// Both ways, and from the VPC's side too.
	pingAll(t, s, sim.VPCHost, sim.LANHostAddr, 5)
	pingAll(t, s, sim.LAN, sim.VPCHostAddr, 5)

	// IKE: a CHILD rekey the customer starts reaches the AWS side from the
	// new port, and the AWS side's IKE follows it; a rekey the AWS side
	// starts afterwards reaches the customer through the new mapping.
	for _, c := range []*Cgwd{cust, aws} {
		name := c.mustTunnel(t, 1).Name
		old := c.mustTunnel(t, 1).Children[0].InSPI
		if _, err := c.Ctl("tunnel", "rekey", name); err != nil {
			t.Fatal(err)
		}
		c.waitStatus(t, 20*time.Second, func(st *control.Status) error {
			tn := tunnelOf(st, 1)
			if tn == nil || len(tn.Children) != 1 || tn.Children[0].InSPI == old || tn.ChildState != "Established" {
				return fmt.Errorf("%s: CHILD SA not rekeyed yet: %+v", c.Role, tn)
			}
			return nil
		})
		t.Logf("e2e: CHILD rekey started by the %s cgwd after the rebinding: done", c.Role)
	}
	if got := remotePort(t, aws.mustTunnel(t, 1).Remote); got != after {
		t.Errorf("AWS-side remote endpoint %s after the rekeys, want %s", got, after)
	}
	pingAll(t, s, sim.LAN, sim.VPCHostAddr, 5)
	if n := countLog(t, aws.Proc, mappingLog); n != 1 {
		t.Errorf("AWS-side cgwd logged %q %d times after the rekeys, want once (IKE installed the new SAs at the followed endpoint)", mappingLog, n)
	}
}

// TestNATRebindStrongSwan: the same rebinding against the strongSwan AWS
// side (charon with kernel-libipsec), the customer's cgwd behind the NAT.
// strongSwan does not follow ESP from a new port: it moves the IKE SA only
// when an authenticated IKE message arrives from there ("remote endpoint
// changed"), and then rekeys the CHILD SA. Our side recovers at the latest
// with its next DPD exchange, which it starts when nothing came back for
// the DPD interval (measured: about 9.5 s of pings lost at the default
// 10 s). The test measures the outage and checks that the tunnel came back
// without the IKE SA being re-established.
func TestNATRebindStrongSwan(t *testing.T) {
	s := NewSim(t, sim.Options{Tunnels: 1, Routing: sim.RoutingStatic, NAT: true})
	d := StartCgwd(t, s, sim.CgwdOptions{})
	d.waitStatus(t, 30*time.Second, childrenUp)
	Eventually(t, 10*time.Second, func() error { return swanUp(s, 1) })
	if err := s.WaitPing(sim.LAN, sim.VPCHostAddr, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	swanSA := func() (sim.IKESA, error) {
		sas, err := s.ListSAs(1)
		if err != nil {
			return sim.IKESA{}, err
		}
		for _, sa := range sas {
			if sa.Established() {
				return sa, nil
			}
		}
		return sim.IKESA{}, fmt.Errorf("AWS endpoint 1: no established IKE SA: %+v", sas)
	}
	lo, hi, err := s.NATPortRange()
	if err != nil {
		t.Fatal(err)
	}
	sa0, err := swanSA()
	if err != nil {
		t.Fatal(err)
	}
	if !inRange(uint16(sa0.RemotePort), lo, hi) {
		t.Fatalf("strongSwan sees the customer at port %d, want %d-%d", sa0.RemotePort, lo, hi)
	}
	tn := d.mustTunnel(t, 1)
	dpd := tn.DPD.Interval()
	ikeSPIs := tn.IKE.SPIi + "/" + tn.IKE.SPIr

	pg := rebindPing(t, s, 180*time.Second)
	seq := pg.lastSeq()
	rebound := time.Now()
	if err := s.RebindNAT(); err != nil {
		t.Fatal(err)
	}
	nlo, nhi, err := s.NATPortRange()
	if err != nil {
		t.Fatal(err)
	}
	// strongSwan's view of the customer: when does it move?
	var moved time.Duration
	Eventually(t, 3*dpd+10*time.Second, func() error {
		sa, err := swanSA()
		if err != nil {
			return err
		}
		if !inRange(uint16(sa.RemotePort), nlo, nhi) {
			return fmt.Errorf("strongSwan still sends to %s:%d (new NAT ports %d-%d)", sa.RemoteHost, sa.RemotePort, nlo, nhi)
		}
		if sa.SPIInit+"/"+sa.SPIResp != sa0.SPIInit+"/"+sa0.SPIResp {
			return fmt.Errorf("strongSwan's IKE SA was replaced (%s/%s, was %s/%s)", sa.SPIInit, sa.SPIResp, sa0.SPIInit, sa0.SPIResp)
		}
		return nil
	})
	moved = time.Since(rebound)
	// At the latest one DPD interval without inbound traffic, plus one
	// DPD round trip (retransmitted after 4 s at worst) and the checks'
	// granularity.
	lost, longest, _ := rebindLoss(t, pg, seq, dpd+15*time.Second)
	outage := time.Duration(longest) * rebindPingInterval
	t.Logf("e2e: NAT rebinding against strongSwan: %d pings lost (longest run %d = %v at 10/s); strongSwan moved to the new port after %v (cgwd DPD interval %v)",
		lost, longest, outage, moved.Round(100*time.Millisecond), dpd)
	if outage > dpd+10*time.Second {
		t.Errorf("ping outage %v after the NAT rebinding; cgwd's DPD (every %v without inbound traffic) should have moved strongSwan sooner", outage, dpd)
	}
	tn = d.mustTunnel(t, 1)
	if tn.IKE == nil || tn.IKE.SPIi+"/"+tn.IKE.SPIr != ikeSPIs {
		t.Errorf("cgwd's IKE SA changed across the rebinding (%+v, was %s): the tunnel should recover without being re-established", tn.IKE, ikeSPIs)
	}
	pingAll(t, s, sim.LAN, sim.VPCHostAddr, 5)
}
