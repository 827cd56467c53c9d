package bgp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	api "github.com/osrg/gobgp/v3/api"
	"google.golang.org/protobuf/types/known/anypb"
)

// SetAdvertised makes the locally originated prefixes exactly prefixes
// (masked and deduplicated). They are sent with ORIGIN IGP and next hop
// self (our session address, which AWS requires to be connected) to every
// neighbor of the same address family, through the export policy (prepend,
// MED). Prefixes of the other family than a neighbor's session are not sent
// to it.
func (s *Server) SetAdvertised(prefixes []netip.Prefix) error {
	want, err := sortedPrefixes(prefixes)
	if err != nil {
		return err
	}
	s.ctl.Lock()
	defer s.ctl.Unlock()
	if s.ctl.stopped {
		return errStopped
	}
	s.ctl.advWant = want
	if !s.ctl.started {
		s.checkPrefixLimitsLocked()
		return nil
	}
	return s.applyAdvertisedLocked(context.Background())
}

// applyAdvertisedLocked diffs advWant against the paths added to GoBGP.
// Caller must hold s.ctl.
func (s *Server) applyAdvertisedLocked(ctx context.Context) error {
	var errs []error
	want := make(map[netip.Prefix]bool, len(s.ctl.advWant))
	for _, p := range s.ctl.advWant {
		want[p] = true
	}
	for p, id := range s.ctl.advUUID {
		if want[p] {
			continue
		}
		err := s.gobgp().DeletePath(ctx, &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Family: family(p.Addr()), Uuid: id})
		if err != nil {
			errs = append(errs, fmt.Errorf("bgp: withdraw %v: %w", p, err))
			continue
		}
		delete(s.ctl.advUUID, p)
		s.log.Info("bgp: prefix withdrawn", "prefix", p)
	}
	for _, p := range s.ctl.advWant {
		if _, ok := s.ctl.advUUID[p]; ok {
			continue
		}
		path, err := localPath(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		r, err := s.gobgp().AddPath(ctx, &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: path})
		if err != nil {
			errs = append(errs, fmt.Errorf("bgp: advertise %v: %w", p, err))
			continue
		}
		s.ctl.advUUID[p] = r.Uuid
		s.log.Info("bgp: prefix advertised", "prefix", p)
	}
	s.checkPrefixLimitsLocked()
	return errors.Join(errs...)
}

func family(a netip.Addr) *api.Family {
	if a.Is4() {
		return &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	}
	return &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
}

// localPath builds a locally originated path for p: ORIGIN IGP and an
// unspecified next hop, which GoBGP replaces with the session's local
// address toward each eBGP neighbor (next hop self, RFC 4271 Section 5.1.3).
func localPath(p netip.Prefix) (*api.Path, error) {
	nlri, err := anypb.New(&api.IPAddressPrefix{Prefix: p.Addr().String(), PrefixLen: uint32(p.Bits())})
	if err != nil {
		return nil, fmt.Errorf("bgp: encode prefix %v: %w", p, err)
	}
	origin, err := anypb.New(&api.OriginAttribute{Origin: 0}) // IGP
	if err != nil {
		return nil, fmt.Errorf("bgp: encode origin: %w", err)
	}
	var nh *anypb.Any
	if p.Addr().Is4() {
		nh, err = anypb.New(&api.NextHopAttribute{NextHop: "0.0.0.0"})
	} else {
		// RFC 4760: IPv6 NLRI and next hop travel in MP_REACH_NLRI.
		nh, err = anypb.New(&api.MpReachNLRIAttribute{Family: family(p.Addr()), NextHops: []string{"::"}, Nlris: []*anypb.Any{nlri}})
	}
	if err != nil {
		return nil, fmt.Errorf("bgp: encode next hop: %w", err)
	}
	return &api.Path{Family: family(p.Addr()), Nlri: nlri, Pattrs: []*anypb.Any{origin, nh}}, nil
}

// prefixWarning returns the prefix-limit warning for count advertised
// prefixes against limit, or "" when below 90% of it (or limit is 0).
func prefixWarning(count int, limit uint32) string {
	if limit == 0 || uint64(count)*10 < uint64(limit)*9 {
		return ""
	}
	if uint64(count) > uint64(limit) {
		return fmt.Sprintf("advertising %d prefixes, over the peer's limit of %d: the peer will close the session with Cease / Maximum Number of Prefixes Reached; aggregate or remove prefixes", count, limit)
	}
	return fmt.Sprintf("advertising %d prefixes, at least 90%% of the peer's limit of %d; more will make the peer close the session", count, limit)
}

// checkPrefixLimitsLocked recomputes every neighbor's prefix-limit warning
// and logs each new one once. Caller must hold s.ctl.
func (s *Server) checkPrefixLimitsLocked() {
	type logLine struct{ name, warn string }
	var lines []logLine
	s.rt.Lock()
	for _, n := range s.ctl.neighbors {
		w := prefixWarning(s.advertisedCountLocked(n), n.PrefixLimitWarn)
		p, ok := s.rt.peers[n.PeerAddr.String()]
		if !ok || p.warning == w {
			continue
		}
		p.warning = w
		if w != "" {
			lines = append(lines, logLine{n.Name, w})
		}
	}
	s.rt.Unlock()
	for _, l := range lines {
		s.log.Warn("bgp: prefix limit", "neighbor", l.name, "warning", l.warn)
	}
}
