package bgp

import (
	"cmp"
	"context"
	"net/netip"
	"slices"

	api "github.com/osrg/gobgp/v3/api"
	"google.golang.org/protobuf/types/known/anypb"
)

// Path is one route learned from a neighbor.
type Path struct {
	Prefix    netip.Prefix
	Neighbor  string     // Neighbor.Name it was learned from
	NextHop   netip.Addr // as sent by the peer (its inside address)
	ASPath    []uint32   // flattened, AS_SET members included, leftmost first
	MED       uint32
	LocalPref uint32 // 0 when the attribute is absent (eBGP)
	Best      bool   // GoBGP's best path for Prefix (RFC 4271 Section 9.1.2)
}

// Learned returns every path learned from the neighbors, IPv4 and IPv6
// unicast, sorted by prefix, best path first, then by neighbor name.
// Locally originated prefixes are not included. Nil before Start.
func (s *Server) Learned() []Path {
	s.ctl.Lock()
	started, stopped := s.ctl.started, s.ctl.stopped
	s.ctl.Unlock()
	if !started || stopped {
		return nil
	}
	var out []Path
	for _, fam := range []*api.Family{family(netip.IPv4Unspecified()), family(netip.IPv6Unspecified())} {
		err := s.gobgp().ListPath(context.Background(), &api.ListPathRequest{TableType: api.TableType_GLOBAL, Family: fam}, func(d *api.Destination) {
			for _, ap := range d.Paths {
				if ap.IsWithdraw {
					continue
				}
				name, ok := s.neighborByAddr(ap.NeighborIp)
				if !ok {
					continue // locally originated
				}
				if p, ok := decodePath(ap); ok {
					p.Neighbor = name
					out = append(out, p)
				}
			}
		})
		if err != nil {
			s.log.Debug("bgp: list paths", "family", fam.Afi.String(), "err", err)
		}
	}
	sortPaths(out)
	return out
}

func sortPaths(ps []Path) {
	slices.SortFunc(ps, func(a, b Path) int {
		if c := comparePrefix(a.Prefix, b.Prefix); c != 0 {
			return c
		}
		if a.Best != b.Best {
			if a.Best {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.Neighbor, b.Neighbor)
	})
}

// decodePath converts GoBGP's API path to a Path (without Neighbor).
func decodePath(ap *api.Path) (Path, bool) {
	p := Path{Best: ap.Best}
	if ap.Nlri == nil {
		return p, false
	}
	m, err := ap.Nlri.UnmarshalNew()
	if err != nil {
		return p, false
	}
	nlri, ok := m.(*api.IPAddressPrefix)
	if !ok {
		return p, false
	}
	addr, err := netip.ParseAddr(nlri.Prefix)
	if err != nil {
		return p, false
	}
	p.Prefix, err = addr.Prefix(int(nlri.PrefixLen))
	if err != nil {
		return p, false
	}
	for _, a := range ap.Pattrs {
		decodeAttr(&p, a)
	}
	return p, true
}

func decodeAttr(p *Path, a *anypb.Any) {
	m, err := a.UnmarshalNew()
	if err != nil {
		return
	}
	switch v := m.(type) {
	case *api.NextHopAttribute:
		if nh, err := netip.ParseAddr(v.NextHop); err == nil {
			p.NextHop = nh
		}
	case *api.MpReachNLRIAttribute:
		// RFC 2545: the first next hop is the global address; a
		// second one, if present, is link-local.
		if len(v.NextHops) > 0 {
			if nh, err := netip.ParseAddr(v.NextHops[0]); err == nil {
				p.NextHop = nh
			}
		}
	case *api.AsPathAttribute:
		p.ASPath = p.ASPath[:0]
		for _, seg := range v.Segments {
			p.ASPath = append(p.ASPath, seg.Numbers...)
		}
	case *api.MultiExitDiscAttribute:
		p.MED = v.Med
	case *api.LocalPrefAttribute:
		p.LocalPref = v.LocalPref
	}
}

// Multipath returns, for each prefix in paths, the paths that tie with the
// best one on LOCAL_PREF, AS_PATH length and MED: the equal-cost set to
// program for active/active ECMP. The reference is the path marked Best;
// without one it is the highest LOCAL_PREF, then shortest AS path, then
// lowest MED. The result is sorted like Learned.
func Multipath(paths []Path) []Path {
	byPrefix := make(map[netip.Prefix][]Path)
	for _, p := range paths {
		byPrefix[p.Prefix] = append(byPrefix[p.Prefix], p)
	}
	var out []Path
	for _, ps := range byPrefix {
		ref := ps[0]
		found := false
		for _, p := range ps {
			if p.Best {
				ref, found = p, true
				break
			}
		}
		if !found {
			for _, p := range ps[1:] {
				if betterThan(p, ref) {
					ref = p
				}
			}
		}
		for _, p := range ps {
			if p.LocalPref == ref.LocalPref && len(p.ASPath) == len(ref.ASPath) && p.MED == ref.MED {
				out = append(out, p)
			}
		}
	}
	sortPaths(out)
	return out
}

// betterThan orders on the attributes Multipath compares (RFC 4271
// Section 9.1.2.2 a-c, in that order).
func betterThan(a, b Path) bool {
	if a.LocalPref != b.LocalPref {
		return a.LocalPref > b.LocalPref
	}
	if len(a.ASPath) != len(b.ASPath) {
		return len(a.ASPath) < len(b.ASPath)
	}
	return a.MED < b.MED
}

// Advertised returns the paths sent to the named neighbor (its Adj-RIB-Out,
// after the export policy: prepends and MED applied), sorted by prefix. Nil
// before Start, after Stop, or for an unknown name.
func (s *Server) Advertised(name string) []Path {
	s.ctl.Lock()
	started, stopped := s.ctl.started, s.ctl.stopped
	n, ok := s.ctl.neighbors[name]
	if l, lan := s.ctl.lan.byNm[name]; lan && !ok {
		n.PeerAddr, ok = l.PeerAddr, true
	}
	s.ctl.Unlock()
	if !started || stopped || !ok {
		return nil
	}
	var out []Path
	for _, fam := range []*api.Family{family(netip.IPv4Unspecified()), family(netip.IPv6Unspecified())} {
		err := s.gobgp().ListPath(context.Background(), &api.ListPathRequest{
			TableType: api.TableType_ADJ_OUT, Name: n.PeerAddr.String(), Family: fam,
		}, func(d *api.Destination) {
			for _, ap := range d.Paths {
				if ap.IsWithdraw {
					continue
				}
				if p, ok := decodePath(ap); ok {
					p.Neighbor = name
					p.Best = true
					out = append(out, p)
				}
			}
		})
		if err != nil {
			s.log.Debug("bgp: list advertised paths", "neighbor", name, "family", fam.Afi.String(), "err", err)
		}
	}
	sortPaths(out)
	return out
}
