package bgp

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	api "github.com/osrg/gobgp/v3/api"
)

// ExportFilter limits which of the locally originated prefixes (see
// SetAdvertised) a neighbor is sent: those equal to one of Exact, and
// those inside one of Within (the prefix itself or longer). One BGP
// speaker serves several VPN connections, each with its own advertise
// list; the filter keeps one connection's prefixes off another's sessions.
type ExportFilter struct {
	Exact  []netip.Prefix
	Within []netip.Prefix
}

// key is the filter's fingerprint for exportKey (sorted, so the order of
// the configuration does not reset sessions).
func (f *ExportFilter) key() string {
	if f == nil {
		return "all"
	}
	var b strings.Builder
	for _, l := range [][]netip.Prefix{f.Exact, f.Within} {
		ps := slices.Clone(l)
		slices.SortFunc(ps, comparePrefix)
		for _, p := range slices.Compact(ps) {
			b.WriteString(p.String())
			b.WriteByte(',')
		}
		b.WriteByte('/')
	}
	return b.String()
}

// normalize masks the filter's prefixes and rejects invalid ones.
func (f *ExportFilter) normalize(name string) (*ExportFilter, error) {
	if f == nil {
		return nil, nil
	}
	out := &ExportFilter{}
	for _, p := range f.Exact {
		if !p.IsValid() {
			return nil, fmt.Errorf("bgp: neighbor %q: invalid export prefix", name)
		}
		out.Exact = append(out.Exact, p.Masked())
	}
	for _, p := range f.Within {
		if !p.IsValid() {
			return nil, fmt.Errorf("bgp: neighbor %q: invalid export prefix", name)
		}
		out.Within = append(out.Within, p.Masked())
	}
	return out, nil
}

// prefixSet is GoBGP's prefix set for the filter, holding only the
// prefixes of the neighbor's address family (a GoBGP prefix set has one
// family, and other-family prefixes are never sent on the session). It
// returns nil when nothing of that family passes.
func (f *ExportFilter) prefixSet(setName string, v4 bool) *api.DefinedSet {
	var ps []*api.Prefix
	add := func(p netip.Prefix, maxLen int) {
		if p.Addr().Is4() != v4 {
			return
		}
		ps = append(ps, &api.Prefix{IpPrefix: p.String(), MaskLengthMin: uint32(p.Bits()), MaskLengthMax: uint32(maxLen)})
	}
	for _, p := range f.Exact {
		add(p, p.Bits())
	}
	for _, p := range f.Within {
		add(p, p.Addr().BitLen())
	}
	if len(ps) == 0 {
		return nil
	}
	return &api.DefinedSet{DefinedType: api.DefinedType_PREFIX, Name: setName, Prefixes: ps}
}

// passes reports whether the filter lets p through (nil passes all).
func (f *ExportFilter) passes(p netip.Prefix) bool {
	if f == nil {
		return true
	}
	for _, e := range f.Exact {
		if e == p {
			return true
		}
	}
	for _, w := range f.Within {
		if w.Addr().Is4() == p.Addr().Is4() && w.Bits() <= p.Bits() && w.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

// localASN is the ASN the session with n uses: its own, or the server's.
func (n Neighbor) localASN(serverASN uint32) uint32 {
	if n.LocalASN != 0 {
		return n.LocalASN
	}
	return serverASN
}

// advertisedCountLocked is how many prefixes the export policy sends to an
// established session with n: the locally originated prefixes of its
// address family that pass its filter (applyExportPolicyLocked). Caller
// must hold s.ctl.
func (s *Server) advertisedCountLocked(n Neighbor) int {
	count := 0
	for _, p := range s.ctl.advWant {
		if p.Addr().Is4() == n.PeerAddr.Is4() && n.Export.passes(p) {
			count++
		}
	}
	return count
}
