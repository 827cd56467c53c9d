package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cgwproject/cgw/ipsec"
)

// AWSTunnelOptions records what the AWS side of a tunnel is configured
// with (describe-vpn-connections Options.TunnelOptions; `cgwctl
// import-aws` writes it from that JSON). cgw never sends it anywhere: the
// config check compares the tunnel's own settings with it, so a tunnel
// that cannot come up against these options is named before it is tried.
// Zero values mean "not recorded" (for the algorithm lists: AWS's default,
// every value AWS accepts).
type AWSTunnelOptions struct {
	Phase1, Phase2   AWSPhaseOptions
	RekeyMargin      time.Duration
	DPDTimeout       time.Duration
	DPDTimeoutAction string // clear | none | restart
	StartupAction    string // add | start
}

// AWSPhaseOptions is one phase of AWSTunnelOptions.
type AWSPhaseOptions struct {
	ipsec.AWSOptionsPhase
	Lifetime time.Duration
}

type rawAWSTunnelOptions struct {
	Phase1           *rawAWSPhase `yaml:"phase1"`
	Phase2           *rawAWSPhase `yaml:"phase2"`
	RekeyMargin      *string      `yaml:"rekey_margin"`
	DPDTimeout       *string      `yaml:"dpd_timeout"`
	DPDTimeoutAction *string      `yaml:"dpd_timeout_action"`
	StartupAction    *string      `yaml:"startup_action"`
}

type rawAWSPhase struct {
	Encryption *[]string `yaml:"encryption"`
	Integrity  *[]string `yaml:"integrity"`
	DHGroups   *[]int64  `yaml:"dh_groups"`
	Lifetime   *string   `yaml:"lifetime"`
}

// awsTunnelOptions checks the recorded AWS tunnel options and the tunnel's
// settings against them: proposals that cannot meet them (the tunnel never
// comes up, or its first CHILD rekey fails) and a startup action that
// leaves nobody to start the tunnel are errors, with the fix; a proposal
// AWS will never choose and a DPD action that leaves nobody to restart it
// are warnings.
func (c *checker) awsTunnelOptions(path string, r *rawAWSTunnelOptions, t *Tunnel, explicitIKE, explicitESP bool) *AWSTunnelOptions {
	if r == nil {
		return nil
	}
	o := &AWSTunnelOptions{}
	o.Phase1 = c.awsPhase(path+".phase1", r.Phase1, true)
	o.Phase2 = c.awsPhase(path+".phase2", r.Phase2, false)
	o.RekeyMargin = c.durationRange(path+".rekey_margin", r.RekeyMargin, 0, 60*time.Second, 1800*time.Second,
		"use AWS's RekeyMarginTimeSeconds, 60s-1800s, or remove the key")
	o.DPDTimeout = c.durationRange(path+".dpd_timeout", r.DPDTimeout, 0, 30*time.Second, time.Hour,
		"use AWS's DpdTimeoutSeconds, 30s or more, or remove the key")
	o.DPDTimeoutAction = c.enum(path+".dpd_timeout_action", r.DPDTimeoutAction, "", "clear", "none", "restart")
	o.StartupAction = c.enum(path+".startup_action", r.StartupAction, "", "add", "start")
	if o.Phase1.Lifetime > 0 && o.Phase2.Lifetime >= o.Phase1.Lifetime {
		c.errorf(path+".phase2.lifetime", "copy the tunnel's Phase2LifetimeSeconds; AWS keeps it below Phase1LifetimeSeconds",
			"phase 2 lifetime %v is not below the phase 1 lifetime %v", o.Phase2.Lifetime, o.Phase1.Lifetime)
	}

	c.meetsAWS(path, "ike_proposals", t.IKEProposals, explicitIKE, o.Phase1, true)
	c.meetsAWS(path, "esp_proposals", t.ESPProposals, explicitESP, o.Phase2, false)

	switch {
	case o.StartupAction == "add" && t.StartupAction == StartRespond:
		c.errorf(path[:strings.LastIndex(path, ".")]+".startup_action",
			"set startup_action: initiate, or set the AWS tunnel's startup action to start (aws ec2 modify-vpn-tunnel-options --tunnel-options StartupAction=start) and record it here",
			"startup_action is respond but the AWS tunnel's startup action is add (%s.startup_action): both sides wait for the other and the tunnel never comes up", path)
	case (o.DPDTimeoutAction == "clear" || o.DPDTimeoutAction == "none") && t.StartupAction == StartRespond:
		c.warnf(path+".dpd_timeout_action",
			"the AWS tunnel's DPD timeout action is %s and startup_action is respond: after a DPD timeout AWS does not restart the tunnel and cgw waits for AWS, so it stays down; set startup_action: initiate, or the AWS DPD timeout action to restart", o.DPDTimeoutAction)
	}
	return o
}

func (c *checker) awsPhase(path string, r *rawAWSPhase, ike bool) AWSPhaseOptions {
	var p AWSPhaseOptions
	if r == nil {
		return p
	}
	n := 1
	lo, hi := 900*time.Second, 28800*time.Second
	if !ike {
		n, hi = 2, 3600*time.Second
	}
	if r.Encryption != nil {
		p.Encryption = slices.Clone(*r.Encryption)
	}
	if r.Integrity != nil {
		p.Integrity = slices.Clone(*r.Integrity)
	}
	if r.DHGroups != nil {
		for _, g := range *r.DHGroups {
			p.DHGroups = append(p.DHGroups, int(g))
		}
	}
	if _, err := ipsec.AWSAllowed(p.AWSOptionsPhase, ike); err != nil {
		c.errorf(path, fmt.Sprintf("copy the tunnel's Phase%[1]dEncryptionAlgorithms, Phase%[1]dIntegrityAlgorithms and Phase%[1]dDHGroupNumbers (AWS's names, e.g. AES256, SHA2-256, 14), or remove the key", n), "%v", err)
		p.AWSOptionsPhase = ipsec.AWSOptionsPhase{}
	}
	p.Lifetime = c.durationRange(path+".lifetime", r.Lifetime, 0, lo, hi,
		fmt.Sprintf("copy the tunnel's Phase%dLifetimeSeconds (%v-%v), or remove the key", n, lo, hi))
	return p
}

// meetsAWS checks a proposal list against one phase of the AWS options: an
// error when no proposal can meet them, a warning for each proposal AWS
// will never choose (only in a list the file sets: cgw's defaults offer
// every algorithm AWS accepts on purpose).
func (c *checker) meetsAWS(optPath, key string, props []ipsec.Proposal, explicit bool, o AWSPhaseOptions, ike bool) {
	allowed, err := ipsec.AWSAllowed(o.AWSOptionsPhase, ike)
	if err != nil || len(props) == 0 {
		return
	}
	tunnelPath := optPath[:strings.LastIndex(optPath, ".")]
	phase := map[bool]string{true: "phase1", false: "phase2"}[ike]
	exact, _ := ipsec.NarrowDefaults(o.AWSOptionsPhase, ike)
	anyMeets := false
	var never []string
	for _, p := range props {
		check := p
		if !ike && len(check.DHGroups) == 0 {
			// The CHILD SA of IKE_AUTH has no KE; its rekeys do, and the
			// config check warns about the missing group already.
			check.DHGroups = slices.Clone(allowed[0].DHGroups)
		}
		meets := slices.ContainsFunc(allowed, func(a ipsec.Proposal) bool { return ipsec.Overlaps(check, a) })
		anyMeets = anyMeets || meets
		if !meets {
			never = append(never, p.String())
		}
	}
	when := "the tunnel never comes up"
	if !ike {
		when = "the CHILD SA fails (NO_PROPOSAL_CHOSEN) at IKE_AUTH or at its first rekey"
	}
	fix := fmt.Sprintf("remove %s to offer every algorithm AWS accepts, or use exactly what these options allow: %s; if the AWS tunnel options changed, update %s.%s (re-import the describe-vpn-connections JSON)",
		key, strings.Join(exact, ", "), optPath, phase)
	if !anyMeets {
		c.errorf(tunnelPath+"."+key, fix, "no proposal can meet the AWS tunnel options of %s.%s (%s): %s", optPath, phase, o.AWSOptionsPhase, when)
		return
	}
	if !explicit {
		return
	}
	for _, s := range never {
		c.warnf(tunnelPath+"."+key, "proposal %q is outside the AWS tunnel options of %s.%s (%s): AWS will never choose it", s, optPath, phase, o.AWSOptionsPhase)
	}
}
