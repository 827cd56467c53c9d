package ipsec

import "slices"

// awsPhase1Groups and awsPhase2Groups are the DH groups AWS accepts by
// default (aws-vpn-facts 2.1: Phase1DHGroupNumbers, Phase2DHGroupNumbers;
// group 5 in phase 2 only).
var (
	awsPhase1Groups = []DHGroup{DHMODP1024, DHMODP2048, DHMODP3072, DHMODP4096, DHMODP6144, DHMODP8192,
		DHECP256, DHECP384, DHECP521, DHMODP1024S160, DHMODP2048S224, DHMODP2048S256}
	awsPhase2Groups = []DHGroup{DHMODP1024, DHMODP1536, DHMODP2048, DHMODP3072, DHMODP4096, DHMODP6144, DHMODP8192,
		DHECP256, DHECP384, DHECP521, DHMODP1024S160, DHMODP2048S224, DHMODP2048S256}
)

// AWSProposals returns the algorithm set an AWS tunnel accepts when its
// tunnel options are left at their defaults (aws-vpn-facts 2.1), as two
// proposals, CBC and AEAD, as AWS's "all of them" default. AWS picks the
// lowest configured value, not the initiator's order, so these describe
// what may be negotiated, not what should be preferred.
func AWSProposals(ike bool) []Proposal {
	cbc := []EncrKey{{ID: EncrAESCBC, KeyBits: 128}, {ID: EncrAESCBC, KeyBits: 256}}
	gcm := []EncrKey{{ID: EncrAESGCM16, KeyBits: 128}, {ID: EncrAESGCM16, KeyBits: 256}}
	integs := []IntegID{IntegHMACSHA1_96, IntegHMACSHA2_256_128, IntegHMACSHA2_384_192, IntegHMACSHA2_512_256}
	if ike {
		prfs := derivedPRFs(integs)
		return []Proposal{
			{Encrs: cbc, Integs: integs, PRFs: prfs, DHGroups: slices.Clone(awsPhase1Groups)},
			{Encrs: gcm, PRFs: slices.Clone(prfs), DHGroups: slices.Clone(awsPhase1Groups)},
		}
	}
	return []Proposal{
		{Encrs: cbc, Integs: integs, DHGroups: slices.Clone(awsPhase2Groups)},
		{Encrs: gcm, DHGroups: slices.Clone(awsPhase2Groups)},
	}
}
