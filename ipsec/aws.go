package ipsec

import (
	"slices"
	"time"
)

// AWS's tunnel defaults (aws-vpn-facts sections 2.2, 2.3, 2.7, 2.10, 4).
// config applies them to unset tunnel options and ike to zero PeerConfig
// fields, so both ends rekey and probe on the same schedule.
const (
	AWSIKELifetime   = 8 * time.Hour     // Phase1LifetimeSeconds 28800
	AWSChildLifetime = time.Hour         // Phase2LifetimeSeconds 3600
	AWSRekeyMargin   = 270 * time.Second // RekeyMarginTimeSeconds
	AWSRekeyFuzz     = 100               // RekeyFuzzPercentage
	AWSDPDInterval   = 10 * time.Second  // DPD every 10 s ...
	AWSDPDRetries    = 3                 // ... declared dead after 3 (DPDTimeoutSeconds 30)
	AWSReplayWindow  = 1024              // ReplayWindowSize
	AWSMSSClamp      = 1379              // TCP MSS AWS recommends on the tunnel
)

// DefaultIKEProposals and DefaultESPProposals are cgw's default offer, in
// strongSwan keyword syntax (ParseProposal). They put strong algorithms first
// and still include AWS's minimum (aes128-sha1-modp1024), so a tunnel comes
// up against any AWS tunnel options. AWS chooses the lowest value it has
// configured, not our first one; narrow the AWS tunnel options to force
// strong algorithms. This is the one definition of the default set: replace
// it here, and never modify it at run time.
var (
	DefaultIKEProposals = []string{
		"aes256gcm16-prfsha384-ecp384",
		"aes128gcm16-prfsha256-ecp256",
		"aes256-sha256-modp2048",
		"aes128-sha1-modp2048",
		"aes128-sha1-modp1024",
	}
	DefaultESPProposals = []string{
		"aes256gcm16-ecp384",
		"aes128gcm16-ecp256",
		"aes256-sha256-modp2048",
		"aes128-sha1-modp2048",
		"aes128-sha1-modp1024",
	}
)

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
