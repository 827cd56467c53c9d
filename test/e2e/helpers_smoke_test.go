//go:build e2e

package e2e

import (
	"testing"
	"time"

	"github.com/cgwproject/cgw/test/sim"
)

// TestHelpersSmoke proves the shared helpers end to end: one tunnel with
// static routing, cgwd in cust, traffic LAN -> VPC, the control socket
// answering status as JSON, teardown leaving nothing behind.
func TestHelpersSmoke(t *testing.T) {
	s := NewSim(t, sim.Options{Tunnels: 1, Routing: sim.RoutingStatic})
	c := StartCgwd(t, s, sim.CgwdOptions{})
	if _, err := s.WaitTunnel(1, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitPing(sim.LAN, sim.VPCHostAddr, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := c.CtlJSON(&st, "status"); err != nil {
		t.Fatal(err)
	}
	if len(st) == 0 {
		t.Fatal("empty status document")
	}
	c.Stop()
	if ok, _ := c.Proc.Exited(); !ok {
		t.Fatal("cgwd still running after Stop")
	}
}
