package daemon

import (
	"context"
	"fmt"

	"github.com/cgwproject/cgw/bgp"
)

// startBGP starts the BGP speaker (bc nil: no BGP connection) once the
// tunnels exist, and adds a neighbor per BGP tunnel, enabled only where
// the tunnel's CHILD SA is up. Owner goroutine, before the loop.
//
// The tunnels' IKE events (CHILD SA up) are queued for the loop, which
// does not run yet: with 200 tunnels, most CHILD SAs are up by now and
// their events still queued. They are applied first, while d.bgp is still
// nil (tunnel state only), so that syncBGP enables the neighbors of the
// tunnels that are up instead of adding them enabled and then disabling
// every one whose event was still queued: that sent Cease to sessions
// that had just come up, and the loop enabled them again a moment later
// (8 and 16 of 200 sessions flapped so in two runs of `make bench-scale`).
func (d *Daemon) startBGP(ctx context.Context, bc *bgp.Config) error {
	if bc != nil {
		bc.Logger = d.log.With("component", "bgp")
		s, err := bgp.New(*bc)
		if err != nil {
			return fmt.Errorf("bgp: %w", err)
		}
		if err := s.Start(ctx); err != nil {
			return fmt.Errorf("bgp: %w", err)
		}
		d.drainEvents()
		d.bgp = s
		s.OnUpdate(d.kick)
	}
	return d.syncBGP()
}
