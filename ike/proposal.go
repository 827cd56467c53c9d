package ike

import (
	"fmt"

	"github.com/cgwproject/cgw/ike/message"
	"github.com/cgwproject/cgw/ipsec"
)

// saPayload encodes configured proposals as an SA payload (RFC 7296,
// Section 3.3). spi is empty in IKE_SA_INIT, 8 octets for an IKE SA rekey
// and 4 octets for ESP. withDH=false drops the DH transforms: ESP proposals
// in IKE_AUTH carry none because IKE_AUTH has no KE payload (RFC 7296,
// Section 1.2).
func saPayload(proto ipsec.Protocol, props []ipsec.Proposal, spi []byte, withDH bool) *message.SA {
	sa := &message.SA{}
	for i, p := range props {
		mp := message.Proposal{Number: uint8(i + 1), Protocol: proto, SPI: append([]byte(nil), spi...)}
		for _, e := range p.Encrs {
			mp.Transforms = append(mp.Transforms, message.Transform{Type: ipsec.TransformENCR, ID: uint16(e.ID), KeyLength: uint16(e.KeyBits)})
		}
		if proto == ipsec.ProtoIKE {
			for _, f := range p.PRFs {
				mp.Transforms = append(mp.Transforms, message.Transform{Type: ipsec.TransformPRF, ID: uint16(f)})
			}
		}
		for _, in := range p.Integs {
			mp.Transforms = append(mp.Transforms, message.Transform{Type: ipsec.TransformINTEG, ID: uint16(in)})
		}
		if withDH {
			for _, g := range p.DHGroups {
				mp.Transforms = append(mp.Transforms, message.Transform{Type: ipsec.TransformDH, ID: uint16(g)})
			}
		}
		if proto == ipsec.ProtoESP {
			esn := p.ESN
			if len(esn) == 0 {
				esn = []bool{false}
			}
			for _, e := range esn {
				id := uint16(ipsec.ESNNo)
				if e {
					id = uint16(ipsec.ESNYes)
				}
				mp.Transforms = append(mp.Transforms, message.Transform{Type: ipsec.TransformESN, ID: id})
			}
		}
		sa.Proposals = append(sa.Proposals, mp)
	}
	return sa
}

// transformSet indexes one received proposal's transforms by type.
type transformSet map[ipsec.TransformType][]message.Transform

func indexTransforms(p *message.Proposal) (transformSet, bool) {
	ts := transformSet{}
	for _, t := range p.Transforms {
		if t.Type < ipsec.TransformENCR || t.Type > ipsec.TransformESN {
			// A type we do not negotiate (e.g. RFC 9370 additional key
			// exchanges): accepting the proposal would mean ignoring it.
			return nil, false
		}
		ts[t.Type] = append(ts[t.Type], t)
	}
	return ts, true
}

func (ts transformSet) has(typ ipsec.TransformType, id uint16, keyLen uint16) bool {
	for _, t := range ts[typ] {
		if t.ID == id && t.KeyLength == keyLen {
			return true
		}
	}
	return false
}

// onlyNone reports whether the type is absent or offered only as NONE (0).
func (ts transformSet) onlyNone(typ ipsec.TransformType) bool {
	for _, t := range ts[typ] {
		if t.ID != 0 {
			return false
		}
	}
	return true
}

// selectProposal is the responder's choice (RFC 7296, Section 2.7): walk our
// proposals in configured order and, for each, the peer's proposals; take
// from each transform type our most preferred value the peer offered; AWS
// does the same with its lowest-first list. The DH group follows our order
// too, even when the peer's KE used another acceptable group: the caller
// then answers INVALID_KE_PAYLOAD (RFC 7296, Section 1.2). Without withDH
// (ESP in IKE_AUTH) DH transforms are ignored.
func selectProposal(ours []ipsec.Proposal, theirs []message.Proposal, proto ipsec.Protocol, withDH bool) (ipsec.Algorithms, *message.Proposal, bool) {
	for _, op := range ours {
		for i := range theirs {
			tp := &theirs[i]
			if tp.Protocol != proto {
				continue
			}
			set, ok := indexTransforms(tp)
			if !ok {
				continue
			}
			alg, ok := matchProposal(op, set, proto, withDH)
			if ok {
				return alg, tp, true
			}
		}
	}
	return ipsec.Algorithms{}, nil, false
}

// selectProposalKE is selectProposal for a request that carries a KE
// payload: among the matching proposals it takes, in our order, the first
// one that can use the peer's KE group (selectWithGroup), so that a group
// both sides accept costs no INVALID_KE_PAYLOAD round trip (RFC 7296,
// Section 1.2 lets the responder choose). Only when no matching proposal
// allows that group does it fall back to selectProposal, whose group the
// caller then asks for with INVALID_KE_PAYLOAD. On a lossy path every extra
// exchange is another chance to lose a message before a lifetime runs out.
func selectProposalKE(ours []ipsec.Proposal, theirs []message.Proposal, proto ipsec.Protocol, keGroup ipsec.DHGroup) (ipsec.Algorithms, *message.Proposal, bool) {
	if alg, tp, ok := selectWithGroup(ours, theirs, proto, keGroup); ok {
		return alg, tp, true
	}
	return selectProposal(ours, theirs, proto, true)
}

// selectWithGroup selects, in our order, the first proposal that matches
// with DH group g; it fails when g is none or no proposal allows it.
func selectWithGroup(ours []ipsec.Proposal, theirs []message.Proposal, proto ipsec.Protocol, g ipsec.DHGroup) (ipsec.Algorithms, *message.Proposal, bool) {
	if g == ipsec.DHNone {
		return ipsec.Algorithms{}, nil, false
	}
	for _, op := range ours {
		if !containsDH(op.DHGroups, g) {
			continue
		}
		only := op
		only.DHGroups = []ipsec.DHGroup{g}
		if alg, tp, ok := selectProposal([]ipsec.Proposal{only}, theirs, proto, true); ok {
			return alg, tp, true
		}
	}
	return ipsec.Algorithms{}, nil, false
}

func matchProposal(op ipsec.Proposal, set transformSet, proto ipsec.Protocol, withDH bool) (ipsec.Algorithms, bool) {
	var alg ipsec.Algorithms
	found := false
	for _, e := range op.Encrs {
		if set.has(ipsec.TransformENCR, uint16(e.ID), uint16(e.KeyBits)) {
			alg.Encr, alg.KeyBits, found = e.ID, e.KeyBits, true
			break
		}
	}
	if !found {
		return alg, false
	}
	if proto == ipsec.ProtoIKE {
		found = false
		for _, f := range op.PRFs {
			if set.has(ipsec.TransformPRF, uint16(f), 0) {
				alg.PRF, found = f, true
				break
			}
		}
		if !found {
			return alg, false
		}
	}
	if alg.Encr.IsAEAD() {
		if !set.onlyNone(ipsec.TransformINTEG) {
			return alg, false
		}
	} else {
		found = false
		for _, in := range op.Integs {
			if set.has(ipsec.TransformINTEG, uint16(in), 0) {
				alg.Integ, found = in, true
				break
			}
		}
		if !found {
			return alg, false
		}
	}
	if withDH {
		if len(op.DHGroups) == 0 {
			// No PFS configured: the peer must not insist on a group.
			if !set.onlyNone(ipsec.TransformDH) {
				return alg, false
			}
		} else {
			found = false
			for _, g := range op.DHGroups {
				if set.has(ipsec.TransformDH, uint16(g), 0) {
					alg.DH, found = g, true
					break
				}
			}
			if !found {
				return alg, false
			}
		}
	}
	if proto == ipsec.ProtoESP {
		ours := op.ESN
		if len(ours) == 0 {
			ours = []bool{false}
		}
		found = false
		for _, e := range ours {
			id := uint16(ipsec.ESNNo)
			if e {
				id = uint16(ipsec.ESNYes)
			}
			// A proposal without ESN transforms means "no ESN".
			if set.has(ipsec.TransformESN, id, 0) || (!e && len(set[ipsec.TransformESN]) == 0) {
				alg.ESN, found = e, true
				break
			}
		}
		if !found {
			return alg, false
		}
	}
	return alg, true
}

func containsDH(gs []ipsec.DHGroup, g ipsec.DHGroup) bool {
	for _, x := range gs {
		if x == g {
			return true
		}
	}
	return false
}

// selectedProposal builds the SA payload of a response: the one chosen
// proposal, reduced to the selected transforms, with our SPI (RFC 7296,
// Section 3.3: the accepted proposal keeps the initiator's number).
func selectedProposal(num uint8, proto ipsec.Protocol, alg ipsec.Algorithms, spi []byte, withDH bool) *message.SA {
	p := message.Proposal{Number: num, Protocol: proto, SPI: append([]byte(nil), spi...)}
	p.Transforms = append(p.Transforms, message.Transform{Type: ipsec.TransformENCR, ID: uint16(alg.Encr), KeyLength: uint16(alg.KeyBits)})
	if proto == ipsec.ProtoIKE {
		p.Transforms = append(p.Transforms, message.Transform{Type: ipsec.TransformPRF, ID: uint16(alg.PRF)})
	}
	if alg.Integ != ipsec.IntegNone {
		p.Transforms = append(p.Transforms, message.Transform{Type: ipsec.TransformINTEG, ID: uint16(alg.Integ)})
	}
	if withDH && alg.DH != ipsec.DHNone {
		p.Transforms = append(p.Transforms, message.Transform{Type: ipsec.TransformDH, ID: uint16(alg.DH)})
	}
	if proto == ipsec.ProtoESP {
		id := uint16(ipsec.ESNNo)
		if alg.ESN {
			id = uint16(ipsec.ESNYes)
		}
		p.Transforms = append(p.Transforms, message.Transform{Type: ipsec.TransformESN, ID: id})
	}
	return &message.SA{Proposals: []message.Proposal{p}}
}

// acceptResponse checks the responder's choice against what we sent: one
// proposal whose number is one of ours, one transform of each type, every
// transform taken from our proposal of that number (RFC 7296, Section 2.7).
// Whatever the peer picks inside our proposals is accepted; AWS picks its
// lowest configured values regardless of our order.
func acceptResponse(sent *message.SA, got *message.SA, proto ipsec.Protocol, withDH bool) (ipsec.Algorithms, *message.Proposal, error) {
	var alg ipsec.Algorithms
	if got == nil || len(got.Proposals) != 1 {
		return alg, nil, fmt.Errorf("the response must carry exactly one proposal")
	}
	gp := &got.Proposals[0]
	if gp.Protocol != proto {
		return alg, nil, fmt.Errorf("the response proposal has protocol %d, we asked for %d", gp.Protocol, proto)
	}
	var sp *message.Proposal
	for i := range sent.Proposals {
		if sent.Proposals[i].Number == gp.Number {
			sp = &sent.Proposals[i]
		}
	}
	if sp == nil {
		return alg, nil, fmt.Errorf("the response selected proposal number %d, which we did not send", gp.Number)
	}
	sentSet, _ := indexTransforms(sp)
	seen := map[ipsec.TransformType]bool{}
	for _, t := range gp.Transforms {
		if seen[t.Type] {
			return alg, nil, fmt.Errorf("the response selected more than one transform of type %d", t.Type)
		}
		seen[t.Type] = true
		if t.Type == ipsec.TransformDH && t.ID == 0 && sentSet.onlyNone(ipsec.TransformDH) {
			continue
		}
		if !sentSet.has(t.Type, t.ID, t.KeyLength) {
			return alg, nil, fmt.Errorf("the response selected transform type %d id %d (key %d bits), which our proposal %d did not offer", t.Type, t.ID, t.KeyLength, gp.Number)
		}
		switch t.Type {
		case ipsec.TransformENCR:
			alg.Encr, alg.KeyBits = ipsec.EncrID(t.ID), int(t.KeyLength)
		case ipsec.TransformPRF:
			alg.PRF = ipsec.PRFID(t.ID)
		case ipsec.TransformINTEG:
			alg.Integ = ipsec.IntegID(t.ID)
		case ipsec.TransformDH:
			alg.DH = ipsec.DHGroup(t.ID)
		case ipsec.TransformESN:
			alg.ESN = t.ID == uint16(ipsec.ESNYes)
		}
	}
	if !seen[ipsec.TransformENCR] {
		return alg, nil, fmt.Errorf("the response selected no encryption algorithm")
	}
	if !alg.Encr.IsAEAD() && alg.Integ == ipsec.IntegNone {
		return alg, nil, fmt.Errorf("the response selected no integrity algorithm for a non-AEAD cipher")
	}
	if proto == ipsec.ProtoIKE && (alg.PRF == 0 || alg.DH == ipsec.DHNone) {
		return alg, nil, fmt.Errorf("the response selected no PRF or no Diffie-Hellman group")
	}
	if proto == ipsec.ProtoESP && withDH && !sentSet.onlyNone(ipsec.TransformDH) && alg.DH == ipsec.DHNone {
		return alg, nil, fmt.Errorf("the response dropped the PFS group we require")
	}
	if proto == ipsec.ProtoESP && !withDH {
		alg.DH = ipsec.DHNone
	}
	return alg, gp, nil
}

// pfsGroup returns the DH group to use for CHILD rekeys of a CHILD SA
// negotiated with alg: the SA's own group if it has one; else, for a CHILD
// SA created in IKE_AUTH (no KE), the IKE SA's group ikeDH when the
// matching proposal offers it (a peer that chose it for phase 1, as AWS
// does by picking its lowest configured group, likely allows it in phase 2:
// no INVALID_KE_PAYLOAD round trip), else that proposal's first group;
// DHNone when that proposal has no PFS.
func pfsGroup(props []ipsec.Proposal, alg ipsec.Algorithms, ikeDH ipsec.DHGroup) ipsec.DHGroup {
	for _, p := range props {
		if proposalMatches(p, alg) {
			switch {
			case len(p.DHGroups) == 0:
				return ipsec.DHNone
			case alg.DH != ipsec.DHNone && containsDH(p.DHGroups, alg.DH):
				return alg.DH
			case ikeDH != ipsec.DHNone && containsDH(p.DHGroups, ikeDH):
				return ikeDH
			}
			return p.DHGroups[0]
		}
	}
	if len(props) > 0 && len(props[0].DHGroups) > 0 {
		return props[0].DHGroups[0]
	}
	return ipsec.DHNone
}

// rekeyGroups is the DH transform list of a CHILD rekey offering the
// algorithms in use: the KE group first, then the other groups of the
// configured proposal matching alg, so a peer that does not allow the KE
// group answers INVALID_KE_PAYLOAD naming one it does rather than
// NO_PROPOSAL_CHOSEN.
func rekeyGroups(props []ipsec.Proposal, alg ipsec.Algorithms, ke ipsec.DHGroup) []ipsec.DHGroup {
	out := []ipsec.DHGroup{ke}
	for _, p := range props {
		if proposalMatches(p, alg) && containsDH(p.DHGroups, ke) {
			for _, g := range p.DHGroups {
				if g != ke {
					out = append(out, g)
				}
			}
			break
		}
	}
	return out
}

func proposalMatches(p ipsec.Proposal, alg ipsec.Algorithms) bool {
	ok := false
	for _, e := range p.Encrs {
		if e.ID == alg.Encr && e.KeyBits == alg.KeyBits {
			ok = true
		}
	}
	if !ok {
		return false
	}
	if alg.Integ == ipsec.IntegNone {
		return len(p.Integs) == 0
	}
	for _, in := range p.Integs {
		if in == alg.Integ {
			return true
		}
	}
	return false
}

// algProposal is the proposal that offers exactly alg.
func algProposal(alg ipsec.Algorithms) ipsec.Proposal {
	p := ipsec.Proposal{Encrs: []ipsec.EncrKey{{ID: alg.Encr, KeyBits: alg.KeyBits}}}
	if alg.PRF != 0 {
		p.PRFs = []ipsec.PRFID{alg.PRF}
	}
	if alg.Integ != ipsec.IntegNone {
		p.Integs = []ipsec.IntegID{alg.Integ}
	}
	if alg.DH != ipsec.DHNone {
		p.DHGroups = []ipsec.DHGroup{alg.DH}
	}
	if alg.ESN {
		p.ESN = []bool{true}
	}
	return p
}

// firstDH is the group of our first KE: the first group of the first
// proposal (RFC 7296, Section 1.2 lets the initiator guess).
func firstDH(props []ipsec.Proposal) ipsec.DHGroup {
	for _, p := range props {
		if len(p.DHGroups) > 0 {
			return p.DHGroups[0]
		}
	}
	return ipsec.DHNone
}

// offersDH reports whether any proposal contains group g.
func offersDH(props []ipsec.Proposal, g ipsec.DHGroup) bool {
	for _, p := range props {
		if containsDH(p.DHGroups, g) {
			return true
		}
	}
	return false
}

// proposalMatchesConfigured reports whether the algorithms alg with PFS
// group g are still allowed by one of the configured proposals (the
// configuration may have changed since the SA was negotiated).
func proposalMatchesConfigured(props []ipsec.Proposal, alg ipsec.Algorithms, g ipsec.DHGroup) bool {
	for _, p := range props {
		if !proposalMatches(p, alg) {
			continue
		}
		if g == ipsec.DHNone && len(p.DHGroups) == 0 || g != ipsec.DHNone && containsDH(p.DHGroups, g) {
			return true
		}
	}
	return false
}
