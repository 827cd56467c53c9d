package bgp

import (
	"context"
	"net/netip"
	"time"

	api "github.com/osrg/gobgp/v3/api"
)

// NeighborStatus is the operational state of one neighbor.
type NeighborStatus struct {
	Name     string
	PeerAddr netip.Addr
	PeerASN  uint32
	// State is the RFC 4271 FSM state: Idle, Connect, Active, OpenSent,
	// OpenConfirm or Established.
	State     string
	AdminDown bool          // disabled with SetPeerUp(name, false)
	Uptime    time.Duration // time in Established; 0 otherwise
	// Received and Accepted count prefixes from the peer (before and after
	// the import checks); Advertised counts prefixes sent to it.
	Received, Accepted, Advertised int
	// LastError is the last session error seen, e.g. "received
	// NOTIFICATION Cease / Maximum Number of Prefixes Reached" or "hold
	// timer expired". It is kept after the session recovers.
	LastError string
	// Warning is the prefix-limit warning, if any (see the package doc).
	Warning string
	// gobgpAdmin is GoBGP's admin state in the listing, when the
	// neighbor was listed (StatusReconciled).
	gobgpAdmin *api.PeerState_AdminState
}

// Status returns one entry per configured neighbor, in SetNeighbors order.
func (s *Server) Status() []NeighborStatus {
	s.ctl.Lock()
	out := make([]NeighborStatus, 0, len(s.ctl.order))
	for _, name := range s.ctl.order {
		n := s.ctl.neighbors[name]
		out = append(out, NeighborStatus{
			Name:      name,
			PeerAddr:  n.PeerAddr,
			PeerASN:   n.PeerASN,
			State:     "Idle",
			AdminDown: !s.adminUpLocked(name),
		})
	}
	s.ctl.Unlock()
	s.fillStatus(out)
	return out
}

// fillStatus completes out (Name, PeerAddr, PeerASN, State and AdminDown
// set) with the runtime state and GoBGP's view of each peer.
func (s *Server) fillStatus(out []NeighborStatus) {
	s.ctl.Lock()
	started, stopped := s.ctl.started, s.ctl.stopped
	s.ctl.Unlock()
	idx := make(map[string]int, len(out))
	for i, st := range out {
		idx[st.PeerAddr.String()] = i
	}
	s.rt.Lock()
	for a, i := range idx {
		if p, ok := s.rt.peers[a]; ok {
			out[i].LastError = p.lastError
			out[i].Warning = p.warning
		}
	}
	s.rt.Unlock()
	if !started || stopped {
		return
	}

	now := time.Now()
	var established []string
	err := s.gobgp().ListPeer(context.Background(), &api.ListPeerRequest{}, func(p *api.Peer) {
		if p.State == nil {
			return
		}
		i, ok := idx[p.State.NeighborAddress]
		if !ok {
			return
		}
		st := &out[i]
		st.State = stateName(p.State.SessionState)
		admin := p.State.AdminState
		st.gobgpAdmin = &admin
		if st.State == "Established" && p.Timers != nil && p.Timers.State != nil && p.Timers.State.Uptime != nil {
			if up := p.Timers.State.Uptime.AsTime(); up.Before(now) {
				st.Uptime = now.Sub(up)
			}
		}
		if st.State == "Established" {
			established = append(established, p.State.NeighborAddress)
		}
		for _, af := range p.AfiSafis {
			if af.State == nil {
				continue
			}
			st.Received += int(af.State.Received)
			st.Accepted += int(af.State.Accepted)
		}
	})
	if err != nil {
		s.log.Debug("bgp: list peers", "err", err)
	}
	// What a session is sent is known without asking GoBGP, which would
	// run the whole export policy (a statement per neighbor) over every
	// path for each neighbor: with 200 neighbors that took seconds.
	var others []string
	s.ctl.Lock()
	for _, a := range established {
		i := idx[a]
		if n, ok := s.ctl.neighbors[out[i].Name]; ok {
			out[i].Advertised = s.advertisedCountLocked(n)
		} else {
			others = append(others, a)
		}
	}
	s.ctl.Unlock()
	// LAN neighbors are sent what was learned from AWS, which only GoBGP
	// knows; there are few of them.
	for _, a := range others {
		err := s.gobgp().ListPeer(context.Background(), &api.ListPeerRequest{Address: a, EnableAdvertised: true}, func(p *api.Peer) {
			for _, af := range p.AfiSafis {
				if af.State != nil {
					out[idx[a]].Advertised += int(af.State.Advertised)
				}
			}
		})
		if err != nil {
			s.log.Debug("bgp: list advertised", "peer", a, "err", err)
		}
	}
}
