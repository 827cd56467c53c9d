package ipsec

import (
	"fmt"
	"slices"
	"strings"
)

// This file parses and prints proposals in strongSwan's keyword syntax
// ("aes256gcm16-prfsha384-ecp384", "aes128-sha1-modp1024"): dash-separated
// algorithm keywords in any order, several of each transform type allowed,
// preference order kept per type. The rules follow strongSwan's
// proposal_create_from_string (src/libstrongswan/crypto/proposal/proposal.c)
// where they matter for interop:
//
//   - IKE, AEAD cipher: integrity keywords are taken as PRFs (an AEAD IKE
//     SA has no INTEG transform but still needs a PRF, RFC 5282 Section 8).
//   - IKE, non-AEAD cipher without a prf keyword: one PRF per integrity
//     algorithm, in the same order (sha256 -> PRF_HMAC_SHA2_256).
//   - ESP: a DH group means PFS for CHILD SA rekeys (RFC 7296 Section 1.3.1).
//
// AEAD and non-AEAD ciphers never share a proposal (RFC 5282 Section 8); write
// them as two proposals instead.

// keyword is one entry of the keyword table.
type keyword struct {
	name  string
	typ   TransformType
	encr  EncrKey
	integ IntegID
	prf   PRFID
	dh    DHGroup
	esn   bool
	alias bool // accepted on input, never printed
}

// keywords is the table of every accepted keyword, in the order they are
// listed in error messages and preferred by String.
var keywords = []keyword{
	{name: "aes128", typ: TransformENCR, encr: EncrKey{ID: EncrAESCBC, KeyBits: 128}},
	{name: "aes256", typ: TransformENCR, encr: EncrKey{ID: EncrAESCBC, KeyBits: 256}},
	{name: "aes128gcm16", typ: TransformENCR, encr: EncrKey{ID: EncrAESGCM16, KeyBits: 128}},
	{name: "aes256gcm16", typ: TransformENCR, encr: EncrKey{ID: EncrAESGCM16, KeyBits: 256}},
	{name: "chacha20poly1305", typ: TransformENCR, encr: EncrKey{ID: EncrChaCha20Poly1305}},

	{name: "sha1", typ: TransformINTEG, integ: IntegHMACSHA1_96},
	{name: "sha256", typ: TransformINTEG, integ: IntegHMACSHA2_256_128},
	{name: "sha384", typ: TransformINTEG, integ: IntegHMACSHA2_384_192},
	{name: "sha512", typ: TransformINTEG, integ: IntegHMACSHA2_512_256},

	{name: "prfsha1", typ: TransformPRF, prf: PRFHMACSHA1},
	{name: "prfsha256", typ: TransformPRF, prf: PRFHMACSHA2_256},
	{name: "prfsha384", typ: TransformPRF, prf: PRFHMACSHA2_384},
	{name: "prfsha512", typ: TransformPRF, prf: PRFHMACSHA2_512},

	{name: "modp1024", typ: TransformDH, dh: DHMODP1024},
	{name: "modp1536", typ: TransformDH, dh: DHMODP1536},
	{name: "modp2048", typ: TransformDH, dh: DHMODP2048},
	{name: "modp3072", typ: TransformDH, dh: DHMODP3072},
	{name: "modp4096", typ: TransformDH, dh: DHMODP4096},
	{name: "modp6144", typ: TransformDH, dh: DHMODP6144},
	{name: "modp8192", typ: TransformDH, dh: DHMODP8192},
	{name: "modp1024s160", typ: TransformDH, dh: DHMODP1024S160},
	{name: "modp2048s224", typ: TransformDH, dh: DHMODP2048S224},
	{name: "modp2048s256", typ: TransformDH, dh: DHMODP2048S256},
	{name: "ecp256", typ: TransformDH, dh: DHECP256},
	{name: "ecp384", typ: TransformDH, dh: DHECP384},
	{name: "ecp521", typ: TransformDH, dh: DHECP521},
	{name: "curve25519", typ: TransformDH, dh: DHCurve25519},
	{name: "x25519", typ: TransformDH, dh: DHCurve25519, alias: true},

	{name: "esn", typ: TransformESN, esn: true},
	{name: "noesn", typ: TransformESN, esn: false},
}

// rejected explains keywords strongSwan knows but cgw refuses.
var rejected = map[string]string{
	"3des":        "3DES is not accepted by AWS and is deprecated (RFC 8247)",
	"des":         "DES is broken",
	"blowfish":    "Blowfish is not accepted by AWS",
	"cast128":     "CAST is not accepted by AWS",
	"null":        "the NULL cipher gives no confidentiality",
	"aes":         "write the key size explicitly: aes128 or aes256",
	"aes192":      "AES-192 is not accepted by AWS",
	"aes128gcm8":  "only the 16-octet ICV variant is supported: aes128gcm16",
	"aes256gcm8":  "only the 16-octet ICV variant is supported: aes256gcm16",
	"aes128gcm12": "only the 16-octet ICV variant is supported: aes128gcm16",
	"aes256gcm12": "only the 16-octet ICV variant is supported: aes256gcm16",
	"aes128ctr":   "AES-CTR is not accepted by AWS",
	"aes256ctr":   "AES-CTR is not accepted by AWS",
	"md5":         "MD5 is not accepted by AWS and is deprecated (RFC 8247)",
	"prfmd5":      "MD5 is not accepted by AWS and is deprecated (RFC 8247)",
	"sha":         "write sha1 explicitly",
	"aesxcbc":     "AES-XCBC is not accepted by AWS",
	"prfaesxcbc":  "AES-XCBC is not accepted by AWS",
	"modp768":     "MODP-768 (group 1) is broken",
	"modpnone":    "write the proposal without a DH group instead (ESP only)",
}

func lookupKeyword(name string) (keyword, bool) {
	for _, k := range keywords {
		if k.name == name {
			return k, true
		}
	}
	return keyword{}, false
}

func typeName(t TransformType) string {
	switch t {
	case TransformENCR:
		return "encryption"
	case TransformINTEG:
		return "integrity"
	case TransformPRF:
		return "PRF"
	case TransformDH:
		return "DH group"
	case TransformESN:
		return "ESN"
	}
	return fmt.Sprintf("transform type %d", uint8(t))
}

// keywordList lists the accepted keywords of one transform type.
func keywordList(t TransformType) string {
	var names []string
	for _, k := range keywords {
		if k.typ == t && !k.alias {
			names = append(names, k.name)
		}
	}
	return strings.Join(names, ", ")
}

// acceptedKeywords describes every keyword usable for an IKE or ESP proposal.
func acceptedKeywords(ike bool) string {
	types := []TransformType{TransformENCR, TransformINTEG, TransformPRF, TransformDH}
	if !ike {
		types = []TransformType{TransformENCR, TransformINTEG, TransformDH, TransformESN}
	}
	var parts []string
	for _, t := range types {
		parts = append(parts, typeName(t)+": "+keywordList(t))
	}
	return strings.Join(parts, "; ")
}

func kind(ike bool) string {
	if ike {
		return "IKE"
	}
	return "ESP"
}

// ParseProposal parses one proposal in strongSwan keyword syntax. ike selects
// the rules of an IKE SA proposal (PRF required, DH group required, no ESN)
// or of an ESP proposal (no PRF, DH optional = PFS, ESN allowed). Keywords are
// case-insensitive; duplicates are ignored. The error names the offending
// keyword and the accepted ones.
func ParseProposal(s string, ike bool) (Proposal, error) {
	var p Proposal
	fail := func(format string, args ...any) (Proposal, error) {
		return Proposal{}, fmt.Errorf("ipsec: %s proposal %q: %s", kind(ike), s, fmt.Sprintf(format, args...))
	}
	if strings.TrimSpace(s) == "" {
		return fail("empty; write keywords separated by dashes, e.g. %q", example(ike))
	}
	var integs []IntegID
	for _, tok := range strings.Split(s, "-") {
		name := strings.ToLower(strings.TrimSpace(tok))
		if name == "" {
			return fail("empty keyword (two dashes in a row or a dash at an end)")
		}
		k, ok := lookupKeyword(name)
		if !ok {
			if r, isRejected := rejected[name]; isRejected {
				return fail("unsupported keyword %q (%s); accepted keywords are %s", tok, r, acceptedKeywords(ike))
			}
			return fail("unknown keyword %q; accepted keywords are %s", tok, acceptedKeywords(ike))
		}
		switch k.typ {
		case TransformENCR:
			p.Encrs = appendUnique(p.Encrs, k.encr)
		case TransformINTEG:
			integs = appendUnique(integs, k.integ)
		case TransformPRF:
			if !ike {
				return fail("%q is a PRF keyword, which only IKE proposals use; remove it", tok)
			}
			p.PRFs = appendUnique(p.PRFs, k.prf)
		case TransformDH:
			p.DHGroups = appendUnique(p.DHGroups, k.dh)
		case TransformESN:
			if ike {
				return fail("%q applies to ESP proposals only; remove it", tok)
			}
			p.ESN = appendUnique(p.ESN, k.esn)
		}
	}
	if len(p.Encrs) == 0 {
		return fail("no encryption algorithm; add one of %s", keywordList(TransformENCR))
	}
	aead := p.Encrs[0].ID.IsAEAD()
	for _, e := range p.Encrs[1:] {
		if e.ID.IsAEAD() != aead {
			return fail("mixes AEAD (GCM, ChaCha20-Poly1305) and non-AEAD (CBC) ciphers, which RFC 5282 forbids in one proposal; split it into two proposals, e.g. %q and %q", "aes256gcm16-prfsha256-"+firstDH(p, ike), "aes256-sha256-"+firstDH(p, ike))
		}
	}
	if ike {
		if len(p.DHGroups) == 0 {
			return fail("no DH group; an IKE SA needs one (RFC 7296 Section 1.2), e.g. ecp384 or modp2048")
		}
		if aead {
			// strongSwan: integrity algorithms listed with an AEAD cipher
			// name the PRFs.
			for _, i := range integs {
				p.PRFs = appendUnique(p.PRFs, prfForInteg(i))
			}
			if len(p.PRFs) == 0 {
				return fail("AEAD cipher without a PRF; add one of %s (e.g. %q)", keywordList(TransformPRF), "aes256gcm16-prfsha384-ecp384")
			}
		} else {
			if len(integs) == 0 {
				return fail("no integrity algorithm for a CBC cipher; add one of %s", keywordList(TransformINTEG))
			}
			p.Integs = integs
			if len(p.PRFs) == 0 {
				for _, i := range integs {
					p.PRFs = appendUnique(p.PRFs, prfForInteg(i))
				}
			}
		}
		return p, nil
	}
	if aead && len(integs) > 0 {
		return fail("an AEAD cipher provides integrity itself; remove the integrity keywords or use aes128/aes256")
	}
	if !aead && len(integs) == 0 {
		return fail("no integrity algorithm for a CBC cipher; add one of %s", keywordList(TransformINTEG))
	}
	p.Integs = integs
	return p, nil
}

func example(ike bool) string {
	if ike {
		return "aes256gcm16-prfsha384-ecp384"
	}
	return "aes256gcm16-ecp384"
}

func firstDH(p Proposal, ike bool) string {
	if len(p.DHGroups) > 0 {
		return p.DHGroups[0].Keyword()
	}
	if ike {
		return "ecp384"
	}
	return "modp2048"
}

func appendUnique[T comparable](s []T, v T) []T {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}

// prfForInteg maps an integrity algorithm to the PRF on the same hash, as
// strongSwan does for proposals without an explicit PRF.
func prfForInteg(i IntegID) PRFID {
	switch i {
	case IntegHMACSHA1_96:
		return PRFHMACSHA1
	case IntegHMACSHA2_256_128:
		return PRFHMACSHA2_256
	case IntegHMACSHA2_384_192:
		return PRFHMACSHA2_384
	case IntegHMACSHA2_512_256:
		return PRFHMACSHA2_512
	}
	return 0
}

// Keyword returns the strongSwan keyword of a DH group, or "" if cgw has none.
func (g DHGroup) Keyword() string {
	for _, k := range keywords {
		if k.typ == TransformDH && k.dh == g && !k.alias {
			return k.name
		}
	}
	return ""
}

// Keyword returns the strongSwan keyword of a cipher, or "" if cgw has none.
func (e EncrKey) Keyword() string {
	for _, k := range keywords {
		if k.typ == TransformENCR && k.encr == e {
			return k.name
		}
	}
	return ""
}

// Keyword returns the strongSwan keyword of an integrity algorithm, or "".
func (i IntegID) Keyword() string {
	for _, k := range keywords {
		if k.typ == TransformINTEG && k.integ == i {
			return k.name
		}
	}
	return ""
}

// Keyword returns the strongSwan keyword of a PRF ("prfsha256"), or "".
func (p PRFID) Keyword() string {
	for _, k := range keywords {
		if k.typ == TransformPRF && k.prf == p {
			return k.name
		}
	}
	return ""
}

// IsIKE reports whether p is an IKE proposal (it has PRFs).
func (p Proposal) IsIKE() bool { return len(p.PRFs) > 0 }

// String prints p in strongSwan keyword syntax such that ParseProposal(
// p.String(), p.IsIKE()) returns an equal proposal. PRFs are printed only
// when they differ from the ones strongSwan would derive from the integrity
// algorithms. Unknown identifiers print as "encr(N)" and the like.
func (p Proposal) String() string {
	var parts []string
	for _, e := range p.Encrs {
		parts = append(parts, orID(e.Keyword(), "encr", uint16(e.ID)))
	}
	for _, i := range p.Integs {
		parts = append(parts, orID(i.Keyword(), "integ", uint16(i)))
	}
	if len(p.PRFs) > 0 && !slices.Equal(p.PRFs, derivedPRFs(p.Integs)) {
		for _, f := range p.PRFs {
			parts = append(parts, orID(f.Keyword(), "prf", uint16(f)))
		}
	}
	for _, g := range p.DHGroups {
		parts = append(parts, orID(g.Keyword(), "dh", uint16(g)))
	}
	for _, e := range p.ESN {
		if e {
			parts = append(parts, "esn")
		} else {
			parts = append(parts, "noesn")
		}
	}
	return strings.Join(parts, "-")
}

// String names a negotiated algorithm set the way Proposal.String names a
// proposal, e.g. "aes128-sha1-modp1024" or "aes256gcm16-prfsha384-ecp384"
// (IKE SA) and "aes256gcm16-ecp384-esn" (CHILD SA with PFS and ESN). Unset
// fields are left out; the zero value prints as "".
func (a Algorithms) String() string {
	var p Proposal
	if a.Encr != 0 {
		p.Encrs = []EncrKey{{ID: a.Encr, KeyBits: a.KeyBits}}
	}
	if a.Integ != IntegNone {
		p.Integs = []IntegID{a.Integ}
	}
	if a.PRF != 0 {
		p.PRFs = []PRFID{a.PRF}
	}
	if a.DH != DHNone {
		p.DHGroups = []DHGroup{a.DH}
	}
	if a.ESN {
		p.ESN = []bool{true}
	}
	return p.String()
}

// Name returns the keyword of a cipher, or "encr(N)" if cgw has none.
func (e EncrKey) Name() string { return orID(e.Keyword(), "encr", uint16(e.ID)) }

// Name returns the keyword of a DH group, or "dh(N)" if cgw has none.
func (g DHGroup) Name() string { return orID(g.Keyword(), "dh", uint16(g)) }

// ProposalsString prints a list of proposals as "[p1, p2]", each in the
// syntax of Proposal.String.
func ProposalsString(props []Proposal) string {
	s := make([]string, len(props))
	for i, p := range props {
		s[i] = p.String()
	}
	return "[" + strings.Join(s, ", ") + "]"
}

func derivedPRFs(integs []IntegID) []PRFID {
	var out []PRFID
	for _, i := range integs {
		out = appendUnique(out, prfForInteg(i))
	}
	return out
}

func orID(kw, typ string, id uint16) string {
	if kw != "" {
		return kw
	}
	return fmt.Sprintf("%s(%d)", typ, id)
}

// Overlaps reports whether a and b share at least one complete algorithm
// set: a cipher, an integrity algorithm (or none for both with AEAD), a PRF
// (IKE), a DH group (or no DH on both sides) and an ESN choice. For an ESP
// proposal without PFS against one with PFS it is false: only the CHILD SA
// created inside IKE_AUTH (which carries no KE) could be negotiated.
func Overlaps(a, b Proposal) bool {
	if !intersects(a.Encrs, b.Encrs) {
		return false
	}
	if (len(a.Integs) > 0 || len(b.Integs) > 0) && !intersects(a.Integs, b.Integs) {
		return false
	}
	if (len(a.PRFs) > 0 || len(b.PRFs) > 0) && !intersects(a.PRFs, b.PRFs) {
		return false
	}
	if (len(a.DHGroups) > 0 || len(b.DHGroups) > 0) && !intersects(a.DHGroups, b.DHGroups) {
		return false
	}
	return intersects(esnOrDefault(a.ESN), esnOrDefault(b.ESN))
}

func esnOrDefault(e []bool) []bool {
	if len(e) == 0 {
		return []bool{false}
	}
	return e
}

func intersects[T comparable](a, b []T) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}
