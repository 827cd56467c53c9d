package bgp

// StatusReconciled is Status followed by what ReconcileAdmin does, from
// one listing of GoBGP's peers instead of two: the daemon runs both every
// few seconds, and with 200 neighbors each listing (GoBGP builds the full
// API form of every peer) was a measurable part of an idle cgwd's CPU
// (docs/scale.md). A neighbor whose wanted admin state changed after the
// listing (SetPeerUp in between) is left alone: SetPeerUp applied it.
func (s *Server) StatusReconciled() ([]NeighborStatus, error) {
	out := s.Status()
	s.ctl.Lock()
	defer s.ctl.Unlock()
	if s.ctl.stopped || !s.ctl.started {
		return out, nil
	}
	var fixes []adminFix
	for _, st := range out {
		if st.gobgpAdmin == nil || s.adminUpLocked(st.Name) == st.AdminDown {
			continue
		}
		if _, ok := s.ctl.neighbors[st.Name]; !ok {
			continue
		}
		if f, ok := s.adminFixLocked(st.Name, st.PeerAddr.String(), *st.gobgpAdmin); ok {
			fixes = append(fixes, f)
		}
	}
	return out, s.applyAdminFixesLocked(fixes)
}
