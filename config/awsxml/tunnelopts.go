package awsxml

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/cgwproject/cgw/config"
	"github.com/cgwproject/cgw/ipsec"
)

// AWS API algorithm names (aws-vpn-facts 2.1) and what they allow.
var (
	awsCiphers = map[string]ipsec.EncrKey{
		"AES128":        {ID: ipsec.EncrAESCBC, KeyBits: 128},
		"AES256":        {ID: ipsec.EncrAESCBC, KeyBits: 256},
		"AES128-GCM-16": {ID: ipsec.EncrAESGCM16, KeyBits: 128},
		"AES256-GCM-16": {ID: ipsec.EncrAESGCM16, KeyBits: 256},
	}
	awsIntegs = map[string]ipsec.IntegID{
		"SHA1":     ipsec.IntegHMACSHA1_96,
		"SHA2-256": ipsec.IntegHMACSHA2_256_128,
		"SHA2-384": ipsec.IntegHMACSHA2_384_192,
		"SHA2-512": ipsec.IntegHMACSHA2_512_256,
	}
	awsPRFs = map[ipsec.IntegID]ipsec.PRFID{
		ipsec.IntegHMACSHA1_96:      ipsec.PRFHMACSHA1,
		ipsec.IntegHMACSHA2_256_128: ipsec.PRFHMACSHA2_256,
		ipsec.IntegHMACSHA2_384_192: ipsec.PRFHMACSHA2_384,
		ipsec.IntegHMACSHA2_512_256: ipsec.PRFHMACSHA2_512,
	}
)

// applyTunnelOptions overrides the XML's values of one tunnel with what
// Options.TunnelOptions states, and narrows the proposals to exactly the
// algorithms the tunnel allows.
func applyTunnelOptions(tv *tunnelValues, to *TunnelOptions, at string) ([]error, []config.Warning) {
	var errs []error
	var warns []config.Warning
	fail := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("awsxml: %s.%s: %s", at, field, fmt.Sprintf(format, args...)))
	}
	warn := func(field, format string, args ...any) {
		warns = append(warns, config.Warning{File: XMLFile, Path: at + "." + field, Msg: fmt.Sprintf(format, args...)})
	}
	use := func(field string) { tv.optionsFields = append(tv.optionsFields, field) }
	tv.fromOptions = true
	num := func(field string, p *int, lo, hi int) (int, bool) {
		if p == nil {
			return 0, false
		}
		if *p < lo || *p > hi {
			fail(field, "%d is outside AWS's range %d-%d", *p, lo, hi)
			return 0, false
		}
		use(field)
		return *p, true
	}

	if vs := strs(to.IkeVersions); len(vs) > 0 && !slices.ContainsFunc(vs, func(s string) bool { return strings.EqualFold(s, "ikev2") }) {
		fail("IkeVersions", "the tunnel allows %s only; cgw speaks IKEv2: add ikev2 to the tunnel's IKE versions (aws ec2 modify-vpn-tunnel-options)", strings.Join(vs, ", "))
	}
	if to.PreSharedKey != "" {
		if to.PreSharedKey != tv.psk && tv.psk != "" {
			warn("PreSharedKey", "differs from the XML's pre_shared_key; using the TunnelOptions key (the key itself is not shown)")
		}
		if err := config.CheckPSK([]byte(to.PreSharedKey)); err != nil {
			fail("PreSharedKey", "%s", strings.TrimPrefix(err.Error(), "config: "))
		} else {
			tv.psk = to.PreSharedKey
			use("PreSharedKey")
		}
	}
	if s := strings.TrimSpace(to.TunnelInsideCidr); s != "" {
		p, err := netip.ParsePrefix(s)
		switch {
		case err != nil || !p.Addr().Is4():
			fail("TunnelInsideCidr", "%q is not an IPv4 prefix", s)
		case config.CheckInsideCIDR(p.Masked()) != nil:
			fail("TunnelInsideCidr", "%s", strings.TrimPrefix(config.CheckInsideCIDR(p.Masked()).Error(), "config: "))
		default:
			if tv.inside.IsValid() && tv.inside != p.Masked() {
				warn("TunnelInsideCidr", "%v differs from the XML's %v; using %v", p.Masked(), tv.inside, p.Masked())
			}
			tv.inside = p.Masked()
			use("TunnelInsideCidr")
		}
	}
	if s := strings.TrimSpace(to.TunnelInsideIpv6Cidr); s != "" {
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Is6() || p.Bits() != 126 {
			fail("TunnelInsideIpv6Cidr", "%q is not an IPv6 /126", s)
		} else {
			tv.inside6 = p.Masked()
			use("TunnelInsideIpv6Cidr")
		}
	}
	p1, ok1 := num("Phase1LifetimeSeconds", to.Phase1LifetimeSeconds, 900, 28800)
	if ok1 {
		tv.ikeLifetime = p1
	}
	if p2, ok := num("Phase2LifetimeSeconds", to.Phase2LifetimeSeconds, 900, 3600); ok {
		if p2 >= tv.ikeLifetime {
			fail("Phase2LifetimeSeconds", "%d is not below the phase 1 lifetime %d, which AWS requires", p2, tv.ikeLifetime)
		}
		tv.childLife = p2
	}
	if m, ok := num("RekeyMarginTimeSeconds", to.RekeyMarginTimeSeconds, 60, 1800); ok {
		if m > tv.childLife/2 {
			fail("RekeyMarginTimeSeconds", "%d is more than half the phase 2 lifetime %d, which AWS does not allow", m, tv.childLife)
		}
		tv.rekeyMargin = m
	}
	if f, ok := num("RekeyFuzzPercentage", to.RekeyFuzzPercentage, 0, 100); ok {
		tv.rekeyFuzz = &f
	}
	if w, ok := num("ReplayWindowSize", to.ReplayWindowSize, 64, 2048); ok {
		tv.replayWindow = w
	}
	if d, ok := num("DpdTimeoutSeconds", to.DpdTimeoutSeconds, 30, 3600); ok {
		// AWS probes after 10 s of silence and declares the peer dead
		// DpdTimeoutSeconds after the last traffic; probe alike.
		tv.dpdInterval = 10
		tv.dpdRetry = max(d/tv.dpdInterval-1, 1)
	}
	switch a := strings.ToLower(strings.TrimSpace(to.StartupAction)); a {
	case "":
	case "add":
		use("StartupAction")
	case "start":
		tv.respond = true
		use("StartupAction")
	default:
		fail("StartupAction", "unknown value %q (AWS has add and start)", to.StartupAction)
	}
	switch a := strings.ToLower(strings.TrimSpace(to.DpdTimeoutAction)); a {
	case "":
	case "clear", "none", "restart":
		// What AWS does when we go silent. cgw restarts by itself unless
		// AWS both starts the tunnel and restarts it: then it waits.
		use("DpdTimeoutAction")
		if a == "restart" && tv.respond {
			tv.dpdAction = config.DPDClear
		}
	default:
		fail("DpdTimeoutAction", "unknown value %q (AWS has clear, none and restart)", to.DpdTimeoutAction)
	}

	ikeProps, err := narrow(ipsec.DefaultIKEProposals, true, strs(to.Phase1EncryptionAlgorithms), strs(to.Phase1IntegrityAlgorithms), ints(to.Phase1DHGroupNumbers))
	if err != nil {
		fail("Phase1*", "%v", err)
	} else {
		tv.ike = ikeProps
	}
	espProps, err := narrow(ipsec.DefaultESPProposals, false, strs(to.Phase2EncryptionAlgorithms), strs(to.Phase2IntegrityAlgorithms), ints(to.Phase2DHGroupNumbers))
	if err != nil {
		fail("Phase2*", "%v", err)
	} else {
		tv.esp = espProps
	}
	for _, f := range []struct {
		name string
		n    int
	}{{"Phase1EncryptionAlgorithms", len(to.Phase1EncryptionAlgorithms)}, {"Phase1IntegrityAlgorithms", len(to.Phase1IntegrityAlgorithms)},
		{"Phase1DHGroupNumbers", len(to.Phase1DHGroupNumbers)}, {"Phase2EncryptionAlgorithms", len(to.Phase2EncryptionAlgorithms)},
		{"Phase2IntegrityAlgorithms", len(to.Phase2IntegrityAlgorithms)}, {"Phase2DHGroupNumbers", len(to.Phase2DHGroupNumbers)}} {
		if f.n > 0 {
			use(f.name)
		}
	}

	return errs, warns
}

// trafficSelectors applies Options.Local/Remote*NetworkCidr, the traffic
// selectors AWS proposes, to every tunnel; 0.0.0.0/0 on both sides (the
// default) writes nothing.
func trafficSelectors(tvs []tunnelValues, co *ConnectionOptions, id string) []error {
	var errs []error
	v6 := strings.EqualFold(co.TunnelInsideIpVersion, "ipv6")
	local, remote := co.LocalIpv4NetworkCidr, co.RemoteIpv4NetworkCidr
	lname, rname := "LocalIpv4NetworkCidr", "RemoteIpv4NetworkCidr"
	if v6 {
		local, remote = co.LocalIpv6NetworkCidr, co.RemoteIpv6NetworkCidr
		lname, rname = "LocalIpv6NetworkCidr", "RemoteIpv6NetworkCidr"
	}
	tsl, okl := selector(local, v6)
	tsr, okr := selector(remote, v6)
	if !okl {
		errs = append(errs, fmt.Errorf("awsxml: %s Options.%s: %q is not an IP%s prefix", id, lname, local, map[bool]string{true: "v6", false: "v4"}[v6]))
	}
	if !okr {
		errs = append(errs, fmt.Errorf("awsxml: %s Options.%s: %q is not an IP%s prefix", id, rname, remote, map[bool]string{true: "v6", false: "v4"}[v6]))
	}
	if errs != nil || !(tsl.IsValid() && tsl.Bits() > 0 || tsr.IsValid() && tsr.Bits() > 0) {
		return errs
	}
	for i := range tvs {
		tvs[i].tsLocal, tvs[i].tsRemote = []netip.Prefix{orAny(tsl, v6)}, []netip.Prefix{orAny(tsr, v6)}
	}
	return nil
}

func selector(s string, v6 bool) (netip.Prefix, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Prefix{}, true
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || p.Addr().Is6() != v6 {
		return netip.Prefix{}, false
	}
	return p.Masked(), true
}

func orAny(p netip.Prefix, v6 bool) netip.Prefix {
	if p.IsValid() {
		return p
	}
	if v6 {
		return netip.MustParsePrefix("::/0")
	}
	return netip.MustParsePrefix("0.0.0.0/0")
}

// narrow keeps of the default proposals only the algorithms the tunnel
// options allow, in the defaults' (strongest-first) order. Empty lists mean
// AWS's default (all). A proposal left without a cipher, integrity or group
// is dropped; none left is an error (the options allow nothing cgw offers).
func narrow(defaults []string, ike bool, encrs, integs []string, groups []int) ([]string, error) {
	var allowE []ipsec.EncrKey
	for _, e := range encrs {
		k, ok := awsCiphers[strings.ToUpper(e)]
		if !ok {
			return nil, fmt.Errorf("unknown encryption algorithm %q (AWS has AES128, AES256, AES128-GCM-16, AES256-GCM-16)", e)
		}
		allowE = append(allowE, k)
	}
	var allowI []ipsec.IntegID
	var allowP []ipsec.PRFID
	for _, i := range integs {
		k, ok := awsIntegs[strings.ToUpper(i)]
		if !ok {
			return nil, fmt.Errorf("unknown integrity algorithm %q (AWS has SHA1, SHA2-256, SHA2-384, SHA2-512)", i)
		}
		allowI = append(allowI, k)
		allowP = append(allowP, awsPRFs[k])
	}
	var allowG []ipsec.DHGroup
	for _, g := range groups {
		allowG = append(allowG, ipsec.DHGroup(g))
	}
	var out []string
	for _, d := range defaults {
		p, err := ipsec.ParseProposal(d, ike)
		if err != nil {
			return nil, err
		}
		p.Encrs = keep(p.Encrs, allowE)
		p.Integs = keep(p.Integs, allowI)
		p.PRFs = keep(p.PRFs, allowP)
		p.DHGroups = keep(p.DHGroups, allowG)
		aead := len(p.Encrs) > 0 && p.Encrs[0].ID.IsAEAD()
		if len(p.Encrs) == 0 || (!aead && len(p.Integs) == 0) || (ike && len(p.PRFs) == 0) || len(p.DHGroups) == 0 {
			continue
		}
		out = append(out, p.String())
	}
	for _, g := range allowG {
		found := false
		for _, d := range defaults {
			if p, err := ipsec.ParseProposal(d, ike); err == nil && slices.Contains(p.DHGroups, g) {
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("DH group %d is not one AWS accepts in phase %d", g, map[bool]int{true: 1, false: 2}[ike])
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the tunnel options allow no complete algorithm set (encryption %v, integrity %v, DH groups %v): fix them with aws ec2 modify-vpn-tunnel-options", encrs, integs, groups)
	}
	return out, nil
}

// keep filters have to the members of allow, keeping have's order; an
// empty allow keeps everything.
func keep[T comparable](have, allow []T) []T {
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
