package dataplane

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
)

// sourceSet is the set of inner source addresses a tunnel may carry,
// immutable once built and published through an atomic.Pointer like the
// SAD. Prefixes are merged into disjoint, sorted address ranges per family,
// so a lookup is a binary search without allocation: O(log n) for the up to
// 1000 prefixes a Transit Gateway may send.
type sourceSet struct {
	v4 []range4
	v6 []range6
}

type range4 struct{ lo, hi uint32 }

type u128 struct{ hi, lo uint64 }

type range6 struct{ lo, hi u128 }

func (a u128) less(b u128) bool { return a.hi < b.hi || (a.hi == b.hi && a.lo < b.lo) }

func (a u128) next() (u128, bool) {
	if a.lo == ^uint64(0) {
		if a.hi == ^uint64(0) {
			return a, false
		}
		return u128{a.hi + 1, 0}, true
	}
	return u128{a.hi, a.lo + 1}, true
}

func u128Of(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// lastAddr returns the highest address of p (masked).
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// newSourceSet builds the set from prefixes; IPv4-mapped IPv6 prefixes are
// taken as IPv4.
func newSourceSet(prefixes []netip.Prefix) (*sourceSet, error) {
	s := &sourceSet{}
	for _, p := range prefixes {
		if !p.IsValid() {
			return nil, fmt.Errorf("dataplane: invalid source prefix %v", p)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		p = p.Masked()
		if p.Addr().Is4() {
			lo, hi := p.Addr().As4(), lastAddr(p).As4()
			s.v4 = append(s.v4, range4{binary.BigEndian.Uint32(lo[:]), binary.BigEndian.Uint32(hi[:])})
		} else {
			s.v6 = append(s.v6, range6{u128Of(p.Addr()), u128Of(lastAddr(p))})
		}
	}
	slices.SortFunc(s.v4, func(a, b range4) int { return cmp.Compare(a.lo, b.lo) })
	s.v4 = mergeRanges(s.v4, func(a, b range4) bool { return b.lo <= a.hi || (a.hi != ^uint32(0) && b.lo == a.hi+1) },
		func(a, b range4) range4 { return range4{a.lo, max(a.hi, b.hi)} })
	slices.SortFunc(s.v6, func(a, b range6) int {
		if c := cmp.Compare(a.lo.hi, b.lo.hi); c != 0 {
			return c
		}
		return cmp.Compare(a.lo.lo, b.lo.lo)
	})
	s.v6 = mergeRanges(s.v6, func(a, b range6) bool {
		n, ok := a.hi.next()
		return !a.hi.less(b.lo) || (ok && n == b.lo)
	}, func(a, b range6) range6 {
		if a.hi.less(b.hi) {
			a.hi = b.hi
		}
		return a
	})
	return s, nil
}

// mergeRanges joins sorted ranges that overlap or touch.
func mergeRanges[R any](rs []R, joins func(a, b R) bool, join func(a, b R) R) []R {
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 && joins(out[n-1], r) {
			out[n-1] = join(out[n-1], r)
			continue
		}
		out = append(out, r)
	}
	return out
}

// contains reports whether a lies in the set. It does not allocate.
func (s *sourceSet) contains(a netip.Addr) bool {
	if a.Is4() || a.Is4In6() {
		b := a.Unmap().As4()
		x := binary.BigEndian.Uint32(b[:])
		rs := s.v4
		i, j := 0, len(rs)
		for i < j { // first range with hi >= x
			h := int(uint(i+j) >> 1)
			if rs[h].hi < x {
				i = h + 1
			} else {
				j = h
			}
		}
		return i < len(rs) && rs[i].lo <= x
	}
	x := u128Of(a)
	rs := s.v6
	i, j := 0, len(rs)
	for i < j {
		h := int(uint(i+j) >> 1)
		if rs[h].hi.less(x) {
			i = h + 1
		} else {
			j = h
		}
	}
	return i < len(rs) && !x.less(rs[i].lo)
}

// SetTunnelSources sets the inner source addresses a tunnel may carry. With
// strict, a decrypted packet whose source lies outside prefixes is dropped
// and counted as drops{reason="source"}; without, no check is made (also
// the state before the first call). The set is swapped atomically; packets
// in flight see the old or the new one.
func (e *Engine) SetTunnelSources(name string, strict bool, prefixes []netip.Prefix) error {
	var set *sourceSet
	if strict {
		var err error
		if set, err = newSourceSet(prefixes); err != nil {
			return err
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.tunnels[name]
	if t == nil {
		return fmt.Errorf("dataplane: SetTunnelSources: no tunnel %q", name)
	}
	t.sources.Store(set)
	return nil
}
