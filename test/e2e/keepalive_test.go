//go:build e2e

package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/cgwproject/cgw/test/sim"
)

// TestInsideKeepalive: tunnels[].keepalive sends ICMP echo through an
// otherwise idle tunnel to the AWS inside address, so AWS's idle and DPD
// timers never fire; the replies come back through the tunnel.
func TestInsideKeepalive(t *testing.T) {
	s := NewSim(t, sim.Options{Tunnels: 1, Routing: sim.RoutingStatic})
	ep := sim.Endpoints[0]
	d := StartCgwd(t, s, sim.CgwdOptions{
		Extra: fmt.Sprintf("        keepalive: {target: %s, interval: 1s}\n", ep.AWSInside),
	})
	st := d.waitStatus(t, 60*time.Second, childrenUp)
	first := st.Connections[0].Tunnels[0].Traffic
	time.Sleep(6 * time.Second)
	st, err := d.status()
	if err != nil {
		t.Fatal(err)
	}
	tn := st.Connections[0].Tunnels[0]
	out, in := tn.Traffic.PacketsOut-first.PacketsOut, tn.Traffic.PacketsIn-first.PacketsIn
	t.Logf("e2e: keepalive over 6 s of an idle tunnel: %d packets out, %d in", out, in)
	if out < 4 || in < 4 {
		t.Errorf("keepalive every 1 s to %s: %d packets out and %d in over 6 s, want at least 4 each way", ep.AWSInside, out, in)
	}
}
