package ike

import (
	"strings"

	"github.com/cgwproject/cgw/ipsec"
)

// intersectTS returns the overlap of two traffic selectors (RFC 7296,
// Section 2.9): the common address range, protocol and port range.
func intersectTS(a, b ipsec.TrafficSelector) (ipsec.TrafficSelector, bool) {
	if a.Start.Is4() != b.Start.Is4() {
		return ipsec.TrafficSelector{}, false
	}
	var r ipsec.TrafficSelector
	switch {
	case a.IPProto == 0:
		r.IPProto = b.IPProto
	case b.IPProto == 0 || a.IPProto == b.IPProto:
		r.IPProto = a.IPProto
	default:
		return r, false
	}
	r.Start, r.End = a.Start, a.End
	if b.Start.Compare(r.Start) > 0 {
		r.Start = b.Start
	}
	if b.End.Compare(r.End) < 0 {
		r.End = b.End
	}
	if r.End.Less(r.Start) {
		return r, false
	}
	r.StartPort, r.EndPort = max(a.StartPort, b.StartPort), min(a.EndPort, b.EndPort)
	if r.EndPort < r.StartPort {
		return r, false
	}
	return r, true
}

// narrowTS is the responder's narrowing (RFC 7296, Section 2.9): every
// non-empty intersection of an offered selector with a configured one, in
// the order offered. AWS offers 0.0.0.0/0; a CGW configured with narrower
// selectors answers with its own.
func narrowTS(offered, configured []ipsec.TrafficSelector) []ipsec.TrafficSelector {
	var out []ipsec.TrafficSelector
	for _, o := range offered {
		for _, c := range configured {
			r, ok := intersectTS(o, c)
			if !ok {
				continue
			}
			dup := false
			for _, x := range out {
				if x == r {
					dup = true
				}
			}
			if !dup {
				out = append(out, r)
			}
		}
	}
	return out
}

// tsSubset reports whether every selector of got lies inside some selector
// of sent: a responder may narrow but never widen.
func tsSubset(got, sent []ipsec.TrafficSelector) bool {
	if len(got) == 0 {
		return false
	}
	for _, g := range got {
		ok := false
		for _, s := range sent {
			if r, in := intersectTS(g, s); in && r == g {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func tsString(ts []ipsec.TrafficSelector) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = t.String()
	}
	return strings.Join(s, ",")
}
