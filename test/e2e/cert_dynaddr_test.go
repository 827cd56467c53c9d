//go:build e2e

package e2e

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/test/sim"
)

// TestCertDynamicAddress: a gateway without a static IP (no local_address,
// certificate authentication, AWS accepting any customer address) whose
// outside address changes while pings run. cgwd re-establishes both
// tunnels from the new address on the netlink event, well before DPD
// (10 s x 3) would, and keeps the BGP sessions (inside addresses and TUN
// devices stay), so traffic resumes with the CHILD SAs; the test reports
// the recovery time and the pings lost.
func TestCertDynamicAddress(t *testing.T) {
	s := NewSim(t, sim.Options{Cert: &sim.CertOptions{AnyCustomerAddress: true}})
	d := StartCgwd(t, s, sim.CgwdOptions{NoLocalAddress: true})
	d.waitStatus(t, 90*time.Second, tunnelsUp)
	if err := s.WaitPing(sim.LAN, sim.VPCHostAddr, 20*time.Second); err != nil {
		t.Fatalf("no traffic before the change: %v", err)
	}
	const interval = 100 * time.Millisecond
	pg := startPinger(t, s, sim.LAN, sim.VPCHostAddr, interval, 60*time.Second)
	time.Sleep(time.Second)
	seq := pg.lastSeq()
	newAddr := netip.MustParseAddr("203.0.113.77")
	sessionsDown := strings.Count(d.Proc.Tail(1<<20), "bgp: session down")
	start := time.Now()
	old, err := s.ChangeCustomerAddress(newAddr)
	if err != nil {
		t.Fatal(err)
	}
	// Both tunnels' CHILD SAs up again, from the new address.
	d.waitStatus(t, 30*time.Second, func(st *control.Status) error {
		for _, c := range st.Connections {
			for _, tn := range c.Tunnels {
				if !strings.HasPrefix(tn.Local, newAddr.String()+":") || (tn.ChildState != "Established" && tn.ChildState != "Rekeying") {
					return fmt.Errorf("tunnel %s: local %s, CHILD %s", tn.Name, tn.Local, tn.ChildState)
				}
			}
		}
		return nil
	})
	childUp := time.Since(start)
	Eventually(t, 30*time.Second, func() error {
		if !pg.resumedAfter(seq+int(childUp/interval), 5) {
			return fmt.Errorf("pings have not resumed")
		}
		return nil
	})
	trafficBack := time.Since(start)
	end := pg.lastSeq()
	longest, lost := pg.gap(seq, end)
	t.Logf("e2e: address change %v -> %v: both CHILD SAs up from the new address after %v, pings resumed after %v; %d of %d pings lost (longest gap %v)",
		old, newAddr, childUp.Round(time.Millisecond), trafficBack.Round(time.Millisecond), lost, end-seq, time.Duration(longest)*interval)
	// DPD (10 s interval, 3 retries) would need at least 30 s; the
	// address event must be faster than that by far.
	if childUp > 15*time.Second {
		t.Errorf("re-established only after %v: the address change was not acted on at once", childUp)
	}
	log := d.Proc.Tail(1 << 20)
	if !strings.Contains(log, "host address removed: re-establishing the tunnel at once") {
		t.Errorf("cgwd's log does not show the address event")
	}
	// Only the outside address changed: the BGP sessions between the
	// inside addresses survive the re-establishment (reconnectGrace).
	if n := strings.Count(log, "bgp: session down"); n != sessionsDown || !strings.Contains(log, "keeping the BGP session and routes") {
		t.Errorf("the BGP sessions went down %d times during the address change; want them kept", n-sessionsDown)
	}
	if _, err := d.status(); err == nil {
		d.waitStatus(t, 5*time.Second, tunnelsUp)
	}
}

// TestCertDynamicAddressNotBack: the address changes to one AWS refuses
// (its endpoint only accepts the old address), so the tunnel cannot come
// back. cgwd keeps the BGP session and routes only for the reconnect
// grace; then the session goes down and the routes through the tunnel are
// withdrawn, as for any dead tunnel.
func TestCertDynamicAddressNotBack(t *testing.T) {
	s := NewSim(t, sim.Options{Tunnels: 1, Cert: &sim.CertOptions{}})
	d := StartCgwd(t, s, sim.CgwdOptions{NoLocalAddress: true})
	d.waitStatus(t, 90*time.Second, tunnelsUp)
	// viaTunnel: cgwd's kernel routes (status) still send the VPC into
	// the tunnel.
	viaTunnel := func() (bool, string) {
		st, err := d.status()
		if err != nil {
			return false, err.Error()
		}
		rs := st.Connections[0].Routes
		return len(rs) > 0, fmt.Sprintf("%+v", rs)
	}
	Eventually(t, 20*time.Second, func() error {
		if ok, out := viaTunnel(); !ok {
			return fmt.Errorf("no route into the tunnel before the change: %s", out)
		}
		return nil
	})
	start := time.Now()
	if _, err := s.ChangeCustomerAddress(netip.MustParseAddr("203.0.113.78")); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 40*time.Second, func() error {
		if ok, out := viaTunnel(); ok {
			return fmt.Errorf("still routed into the tunnel: %s", out)
		}
		return nil
	})
	t.Logf("e2e: address change AWS refuses: routes withdrawn %v after the change", time.Since(start).Round(time.Millisecond))
	log := d.Proc.Tail(1 << 20)
	for _, want := range []string{"keeping the BGP session and routes", "not re-established within the grace", "bgp: session down"} {
		if !strings.Contains(log, want) {
			t.Errorf("cgwd's log lacks %q", want)
		}
	}
	st, err := d.status()
	if err != nil {
		t.Fatal(err)
	}
	if tn := st.Connections[0].Tunnels[0]; tn.ChildState == "Established" {
		t.Errorf("tunnel up from an address AWS does not accept: %+v", tn)
	}
}
