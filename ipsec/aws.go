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
// strongSwan keyword syntax (ParseProposal): every algorithm an AWS tunnel
// accepts (aws-vpn-facts 2.1) in two proposals per phase, AEAD and CBC,
// several transforms of each type, strongest first, so a tunnel comes up
// whatever its AWS tunnel options allow. AWS chooses the lowest value it is
// configured with, not our first one: narrow the AWS tunnel options to force
// strong algorithms. The first DH group, ecp256, is the KE payload of our
// first IKE_SA_INIT: cheap to compute and strong; when AWS wants another
// group it answers INVALID_KE_PAYLOAD naming it, and the retry (one round
// trip) uses that group. Group 5 (modp1536) is accepted by AWS in phase 2
// only. This is the one definition of the default set: replace it here, and
// never modify it at run time.
var (
	DefaultIKEProposals = []string{
		"aes256gcm16-aes128gcm16-prfsha512-prfsha384-prfsha256-prfsha1-" + defaultPhase1Groups,
		"aes256-aes128-sha512-sha384-sha256-sha1-" + defaultPhase1Groups,
	}
	DefaultESPProposals = []string{
		"aes256gcm16-aes128gcm16-" + defaultPhase2Groups,
		"aes256-aes128-sha512-sha384-sha256-sha1-" + defaultPhase2Groups,
	}
)

// The DH groups AWS accepts in keyword form, ecp256 first (the KE guess),
// then strongest first.
const (
	defaultPhase1Groups = "ecp256-ecp521-ecp384-modp8192-modp6144-modp4096-modp3072-modp2048s256-modp2048-modp2048s224-modp1024s160-modp1024"
	defaultPhase2Groups = "ecp256-ecp521-ecp384-modp8192-modp6144-modp4096-modp3072-modp2048s256-modp2048-modp2048s224-modp1536-modp1024s160-modp1024"
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
