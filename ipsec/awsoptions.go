package ipsec

import (
	"fmt"
	"slices"
	"strings"
)

// AWS tunnel options name algorithms in the API's terms (aws-vpn-facts 2.1:
// Phase1EncryptionAlgorithms, Phase1IntegrityAlgorithms,
// Phase1DHGroupNumbers and their phase 2 twins). The import and the config
// check both read them through these functions.
var (
	awsCipherNames = map[string]EncrKey{
		"AES128":        {ID: EncrAESCBC, KeyBits: 128},
		"AES256":        {ID: EncrAESCBC, KeyBits: 256},
		"AES128-GCM-16": {ID: EncrAESGCM16, KeyBits: 128},
		"AES256-GCM-16": {ID: EncrAESGCM16, KeyBits: 256},
	}
	awsIntegNames = map[string]IntegID{
		"SHA1":     IntegHMACSHA1_96,
		"SHA2-256": IntegHMACSHA2_256_128,
		"SHA2-384": IntegHMACSHA2_384_192,
		"SHA2-512": IntegHMACSHA2_512_256,
	}
)

// AWSOptionsPhase is one phase of an AWS tunnel's options: the algorithm
// names and DH group numbers it allows. An empty list is AWS's default:
// every value AWS accepts in that phase.
type AWSOptionsPhase struct {
	Encryption []string // AES128, AES256, AES128-GCM-16, AES256-GCM-16
	Integrity  []string // SHA1, SHA2-256, SHA2-384, SHA2-512
	DHGroups   []int    // 2, 5 (phase 2 only), 14-24
}

// String describes the phase as AWS's console does ("AES256, SHA2-512,
// DH 16"); "AWS's defaults" when nothing is narrowed.
func (o AWSOptionsPhase) String() string {
	var parts []string
	if len(o.Encryption) > 0 {
		parts = append(parts, strings.Join(o.Encryption, "/"))
	}
	if len(o.Integrity) > 0 {
		parts = append(parts, strings.Join(o.Integrity, "/"))
	}
	if len(o.DHGroups) > 0 {
		g := make([]string, len(o.DHGroups))
		for i, n := range o.DHGroups {
			g[i] = fmt.Sprint(n)
		}
		parts = append(parts, "DH "+strings.Join(g, "/"))
	}
	if len(parts) == 0 {
		return "AWS's defaults"
	}
	return strings.Join(parts, ", ")
}

// transforms resolves the names; an unknown name or group is an error
// naming the values AWS has.
func (o AWSOptionsPhase) transforms(ike bool) (encrs []EncrKey, integs []IntegID, prfs []PRFID, groups []DHGroup, err error) {
	for _, e := range o.Encryption {
		k, ok := awsCipherNames[strings.ToUpper(strings.TrimSpace(e))]
		if !ok {
			return nil, nil, nil, nil, fmt.Errorf("unknown encryption algorithm %q (AWS has AES128, AES256, AES128-GCM-16, AES256-GCM-16)", e)
		}
		encrs = append(encrs, k)
	}
	for _, i := range o.Integrity {
		k, ok := awsIntegNames[strings.ToUpper(strings.TrimSpace(i))]
		if !ok {
			return nil, nil, nil, nil, fmt.Errorf("unknown integrity algorithm %q (AWS has SHA1, SHA2-256, SHA2-384, SHA2-512)", i)
		}
		integs = append(integs, k)
		prfs = append(prfs, prfForInteg(k))
	}
	accepted := awsPhase2Groups
	if ike {
		accepted = awsPhase1Groups
	}
	for _, g := range o.DHGroups {
		if g < 0 || g > 0xffff || !slices.Contains(accepted, DHGroup(g)) {
			return nil, nil, nil, nil, fmt.Errorf("DH group %d is not one AWS accepts in phase %d (2, %s14-24)", g, phase(ike), map[bool]string{true: "", false: "5, "}[ike])
		}
		groups = append(groups, DHGroup(g))
	}
	return encrs, integs, prfs, groups, nil
}

func phase(ike bool) int {
	if ike {
		return 1
	}
	return 2
}

// AWSAllowed returns the algorithm sets an AWS tunnel with these options
// accepts in phase 1 (ike) or phase 2: AWSProposals narrowed to o.
func AWSAllowed(o AWSOptionsPhase, ike bool) ([]Proposal, error) {
	encrs, integs, prfs, groups, err := o.transforms(ike)
	if err != nil {
		return nil, err
	}
	var out []Proposal
	for _, p := range AWSProposals(ike) {
		if q, ok := narrowProposal(p, ike, encrs, integs, prfs, groups); ok {
			out = append(out, q)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the phase %d options (%s) allow no complete algorithm set: fix them with aws ec2 modify-vpn-tunnel-options", phase(ike), o)
	}
	return out, nil
}

// NarrowDefaults keeps of cgw's default proposals (DefaultIKEProposals or
// DefaultESPProposals) only what the AWS options allow, in the defaults'
// strongest-first order, in keyword form: exactly what a tunnel with these
// options can negotiate, and what import writes.
func NarrowDefaults(o AWSOptionsPhase, ike bool) ([]string, error) {
	encrs, integs, prfs, groups, err := o.transforms(ike)
	if err != nil {
		return nil, err
	}
	defaults := DefaultESPProposals
	if ike {
		defaults = DefaultIKEProposals
	}
	var out []string
	for _, d := range defaults {
		p, err := ParseProposal(d, ike)
		if err != nil {
			return nil, err
		}
		if q, ok := narrowProposal(p, ike, encrs, integs, prfs, groups); ok {
			out = append(out, q.String())
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the tunnel options allow no complete algorithm set (encryption %v, integrity %v, DH groups %v): fix them with aws ec2 modify-vpn-tunnel-options", o.Encryption, o.Integrity, o.DHGroups)
	}
	return out, nil
}

// narrowProposal filters p to the allowed transforms (an empty allow list
// keeps everything); false when a needed transform type is left empty.
func narrowProposal(p Proposal, ike bool, encrs []EncrKey, integs []IntegID, prfs []PRFID, groups []DHGroup) (Proposal, bool) {
	p.Encrs = keepAllowed(p.Encrs, encrs)
	p.Integs = keepAllowed(p.Integs, integs)
	p.PRFs = keepAllowed(p.PRFs, prfs)
	p.DHGroups = keepAllowed(p.DHGroups, groups)
	aead := len(p.Encrs) > 0 && p.Encrs[0].ID.IsAEAD()
	if len(p.Encrs) == 0 || (!aead && len(p.Integs) == 0) || (ike && len(p.PRFs) == 0) || len(p.DHGroups) == 0 {
		return Proposal{}, false
	}
	return p, true
}

// keepAllowed filters have to the members of allow, keeping have's order;
// an empty allow keeps everything.
func keepAllowed[T comparable](have, allow []T) []T {
	if len(allow) == 0 {
		return have
	}
	var out []T
	for _, h := range have {
		if slices.Contains(allow, h) {
			out = append(out, h)
		}
	}
	return out
}
