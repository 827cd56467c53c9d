package bgp

import (
	"context"
	"fmt"

	api "github.com/osrg/gobgp/v3/api"
)

// enableNowLocked enables neighbor n so that its session opens the moment
// the tunnel can carry it. GoBGP's EnablePeer restarts the FSM's idle hold
// timer, which is 5 s (holdtimeIdle) once the peer has left Idle even
// once, and cannot be configured: every tunnel coming up (the first time,
// since the neighbor is added before the tunnel is known to be down, and
// after each flap) waited 5 s in Idle before GoBGP would dial or accept.
// A peer that is not Established is therefore re-created instead, already
// enabled: a fresh FSM has no idle hold, goes to Active at once, accepts
// AWS's connection from then on and dials after GoBGP's first connect
// delay (1-2 s, also fixed). It has no session and no routes to lose.
// An Established peer (a DisablePeer GoBGP dropped) is only enabled.
// Caller must hold s.ctl, with s.ctl.up[n.Name] already true.
func (s *Server) enableNowLocked(ctx context.Context, n Neighbor) error {
	a := n.PeerAddr.String()
	established := false
	err := s.gobgp().ListPeer(ctx, &api.ListPeerRequest{Address: a}, func(p *api.Peer) {
		if p.State != nil && p.State.SessionState == api.PeerState_ESTABLISHED {
			established = true
		}
	})
	if err != nil || established {
		return s.gobgp().EnablePeer(ctx, &api.EnablePeerRequest{Address: a})
	}
	if err := s.gobgp().DeletePeer(ctx, &api.DeletePeerRequest{Address: a}); err != nil {
		return fmt.Errorf("re-create neighbor to skip the idle hold: delete: %w", err)
	}
	if err := s.gobgp().AddPeer(ctx, &api.AddPeerRequest{Peer: s.apiPeer(n)}); err != nil {
		return fmt.Errorf("re-create neighbor to skip the idle hold: add: %w", err)
	}
	return nil
}
