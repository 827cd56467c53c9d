package ike_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/cgwproject/cgw/ike"
	"github.com/cgwproject/cgw/ipsec"
)

// awsNarrowed is an AWS tunnel whose options allow only what keep leaves of
// AWS's default set, listed lowest first as AWS picks (aws-vpn-facts 2.1).
func awsNarrowed(ikeSA bool, keep func(p *ipsec.Proposal)) []ipsec.Proposal {
	var out []ipsec.Proposal
	for _, p := range ipsec.AWSProposals(ikeSA) {
		keep(&p)
		if len(p.Encrs) == 0 || len(p.DHGroups) == 0 || (!p.Encrs[0].ID.IsAEAD() && len(p.Integs) == 0) || (ikeSA && len(p.PRFs) == 0) {
			continue
		}
		out = append(out, p)
	}
	return out
}

func only[T comparable](s []T, v T) []T {
	if slices.Contains(s, v) {
		return []T{v}
	}
	return nil
}

// awsChoice is one AWS tunnel narrowed to a single algorithm of one kind.
type awsChoice struct {
	name     string
	ike, esp func(p *ipsec.Proposal)
	check    func(ikeAlg, espAlg ipsec.Algorithms) bool
}

func awsChoices() []awsChoice {
	var cs []awsChoice
	for _, e := range []ipsec.EncrKey{{ID: ipsec.EncrAESCBC, KeyBits: 128}, {ID: ipsec.EncrAESCBC, KeyBits: 256}, {ID: ipsec.EncrAESGCM16, KeyBits: 128}, {ID: ipsec.EncrAESGCM16, KeyBits: 256}} {
		f := func(p *ipsec.Proposal) { p.Encrs = only(p.Encrs, e) }
		cs = append(cs, awsChoice{"encr " + e.Keyword(), f, f, func(i, s ipsec.Algorithms) bool {
			return i.Encr == e.ID && i.KeyBits == e.KeyBits && s.Encr == e.ID && s.KeyBits == e.KeyBits
		}})
	}
	prfOf := map[ipsec.IntegID]ipsec.PRFID{ipsec.IntegHMACSHA1_96: ipsec.PRFHMACSHA1, ipsec.IntegHMACSHA2_256_128: ipsec.PRFHMACSHA2_256,
		ipsec.IntegHMACSHA2_384_192: ipsec.PRFHMACSHA2_384, ipsec.IntegHMACSHA2_512_256: ipsec.PRFHMACSHA2_512}
	for _, in := range []ipsec.IntegID{ipsec.IntegHMACSHA1_96, ipsec.IntegHMACSHA2_256_128, ipsec.IntegHMACSHA2_384_192, ipsec.IntegHMACSHA2_512_256} {
		// Integrity narrowed: the CBC proposals keep only it, the AEAD
		// IKE proposal only its PRF (AWS's integrity list names the PRF).
		f := func(p *ipsec.Proposal) {
			p.Integs = only(p.Integs, in)
			p.PRFs = only(p.PRFs, prfOf[in])
			if !p.Encrs[0].ID.IsAEAD() && len(p.Integs) == 0 {
				p.Encrs = nil
			}
		}
		cs = append(cs, awsChoice{"integ " + in.Keyword(), f, f, func(i, s ipsec.Algorithms) bool {
			return i.PRF == prfOf[in] && (i.Integ == in || i.Encr.IsAEAD()) && (s.Integ == in || s.Encr.IsAEAD())
		}})
	}
	for _, g := range []ipsec.DHGroup{ipsec.DHMODP1024, ipsec.DHMODP2048, ipsec.DHMODP3072, ipsec.DHMODP4096, ipsec.DHMODP6144, ipsec.DHMODP8192,
		ipsec.DHECP256, ipsec.DHECP384, ipsec.DHECP521, ipsec.DHMODP1024S160, ipsec.DHMODP2048S224, ipsec.DHMODP2048S256} {
		f := func(p *ipsec.Proposal) { p.DHGroups = only(p.DHGroups, g) }
		cs = append(cs, awsChoice{"phase 1 dh " + g.Keyword(), f, func(*ipsec.Proposal) {}, func(i, _ ipsec.Algorithms) bool { return i.DH == g }})
	}
	for _, g := range []ipsec.DHGroup{ipsec.DHMODP1024, ipsec.DHMODP1536, ipsec.DHMODP2048, ipsec.DHMODP3072, ipsec.DHMODP4096, ipsec.DHMODP6144, ipsec.DHMODP8192,
		ipsec.DHECP256, ipsec.DHECP384, ipsec.DHECP521, ipsec.DHMODP1024S160, ipsec.DHMODP2048S224, ipsec.DHMODP2048S256} {
		f := func(p *ipsec.Proposal) { p.DHGroups = only(p.DHGroups, g) }
		cs = append(cs, awsChoice{"phase 2 dh " + g.Keyword(), func(*ipsec.Proposal) {}, f, func(_, s ipsec.Algorithms) bool { return s.DH == g }})
	}
	return cs
}

// TestDefaultsMeetEveryAWSChoice: with cgw's default proposals, a tunnel
// comes up against an AWS tunnel narrowed to any single algorithm AWS
// allows (every cipher, integrity algorithm and DH group of each phase),
// whoever initiates, with at most one INVALID_KE_PAYLOAD round trip per
// exchange, and the negotiated suite is the narrowed one. Phase 2 groups
// are negotiated by a CHILD rekey (IKE_AUTH carries no KE).
func TestDefaultsMeetEveryAWSChoice(t *testing.T) {
	parse := func(ss []string, ikeSA bool) []ipsec.Proposal { return props(t, ikeSA, ss...) }
	for _, c := range awsChoices() {
		for _, awsStarts := range []bool{false, true} {
			name := c.name + "/cgw initiates"
			if awsStarts {
				name = c.name + "/aws initiates"
			}
			t.Run(name, func(t *testing.T) {
				p := newPair(t, func(cg, aw *ike.PeerConfig) {
					cg.IKEProposals, cg.ESPProposals = parse(ipsec.DefaultIKEProposals, true), parse(ipsec.DefaultESPProposals, false)
					aw.IKEProposals, aw.ESPProposals = awsNarrowed(true, c.ike), awsNarrowed(false, c.esp)
					if awsStarts {
						cg.StartAction, aw.StartAction = ike.StartRespond, ike.StartInitiate
					}
				})
				if awsStarts {
					// The responder (cgw) is added first; start AWS now.
					must(t, p.aws.Manager.Initiate("cgw"))
				}
				requests := countRequests(p)
				st := wantState(t, p.cgw, ike.StateEstablished, ike.StateEstablished)
				if requests > 3 {
					t.Errorf("%d requests to establish: more than one INVALID_KE_PAYLOAD round trip", requests)
				}
				// As responder cgw takes AWS's KE group whenever a proposal
				// of ours allows it: no INVALID_KE_PAYLOAD at all.
				if awsStarts && requests > 2 {
					t.Errorf("%d requests to establish with AWS initiating: cgw asked for another group although it accepts AWS's", requests)
				}
				// Phase 2 DH: rekey the CHILD SA from the side that started.
				starter, name := p.cgw, "aws-t1"
				if awsStarts {
					starter, name = p.aws, "cgw"
				}
				must(t, starter.Manager.Rekey(name, false))
				n := countRequests(p)
				if n > 3 { // CREATE_CHILD_SA, INVALID_KE retry, DELETE
					t.Errorf("%d requests to rekey the CHILD SA: more than one INVALID_KE_PAYLOAD round trip", n)
				}
				if awsStarts && n > 2 { // CREATE_CHILD_SA, DELETE
					t.Errorf("%d requests for AWS's CHILD rekey: cgw asked for another group although it accepts AWS's", n)
				}
				st = wantState(t, p.cgw, ike.StateEstablished, ike.StateEstablished)
				if len(st.Children) != 1 {
					t.Fatalf("%d CHILD SAs after the rekey", len(st.Children))
				}
				if !c.check(st.IKEAlg, st.Children[0].Alg) {
					t.Errorf("negotiated IKE %s, ESP %s: not the narrowed choice", algText(st.IKEAlg), algText(st.Children[0].Alg))
				}
				if p.cgw.Listener.Has(ike.EventNegotiationFailed) {
					t.Errorf("a negotiation failure was reported")
				}
			})
		}
	}
}

// countRequests delivers packets until none move and returns the number
// of requests (IKE messages without the response flag) among them.
func countRequests(p *pair) int {
	n := 0
	for {
		pkts := p.net.Step()
		if len(pkts) == 0 {
			return n
		}
		for _, pk := range pkts {
			if isRequest(pk.Data) {
				n++
			}
		}
	}
}

// isRequest reads the IKE header's flags (RFC 7296, Section 3.1): the
// response bit is 0x20. On port 4500 the packet starts with the four-zero
// non-ESP marker. A request sent in SKF fragments (RFC 7383; a MODP-8192
// KE needs them) counts once, by its fragment 1.
func isRequest(b []byte) bool {
	if len(b) >= 4 && b[0] == 0 && b[1] == 0 && b[2] == 0 && b[3] == 0 {
		b = b[4:]
	}
	if len(b) >= 34 && b[16] == 53 && (b[32] != 0 || b[33] != 1) {
		return false
	}
	return len(b) >= 28 && b[19]&0x20 == 0
}

func algText(a ipsec.Algorithms) string {
	return fmt.Sprintf("%s/%s/%s/%s", ipsec.EncrKey{ID: a.Encr, KeyBits: a.KeyBits}.Keyword(), a.Integ.Keyword(), a.PRF.Keyword(), a.DH.Keyword())
}
