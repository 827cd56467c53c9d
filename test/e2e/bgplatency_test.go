//go:build e2e

package e2e

import (
	"os"
	"testing"

	"github.com/cgwproject/cgw/test/sim"
)

// logBGPTimeline reads cgwd's log and logs, per tunnel, how long it took
// from its CHILD SA to BGP Established and to the VPC route through it
// being installed (issue 18; the figures belong to `make bench`, so no
// bound on them here). It fails if a tunnel's timeline is incomplete or
// out of order: the bench's control-plane row parses the same log lines.
func logBGPTimeline(t *testing.T, s *sim.Sim, d *Cgwd) {
	t.Helper()
	b, err := os.ReadFile(d.Proc.Log)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{s.ConnectionID() + "-t1", s.ConnectionID() + "-t2"}
	for _, tl := range sim.ParseBGPTimeline(b, names, sim.DefaultVPC) {
		if tl.ChildUp.IsZero() || tl.Device == "" || tl.Established <= 0 || tl.Routes <= 0 {
			t.Fatalf("tunnel %s: incomplete timeline in cgwd's log: %+v", tl.Tunnel, tl)
		}
		if tl.Routes < tl.Established {
			t.Errorf("tunnel %s: route through %s installed %v after the CHILD SA, before BGP was Established (%v)", tl.Tunnel, tl.Device, tl.Routes, tl.Established)
		}
		t.Logf("e2e: %s: CHILD SA -> BGP Established %v, -> VPC route via %s installed %v", tl.Tunnel, tl.Established, tl.Device, tl.Routes)
	}
}
