package awsxml

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/cgwproject/cgw/config"
	"github.com/cgwproject/cgw/ipsec"
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
	tv.options = to
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

	ikeProps, err := ipsec.NarrowDefaults(to.phase1(), true)
	if err != nil {
		fail("Phase1*", "%v", err)
	} else {
		tv.ike = ikeProps
	}
	espProps, err := ipsec.NarrowDefaults(to.phase2(), false)
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

func (to *TunnelOptions) phase1() ipsec.AWSOptionsPhase {
	return ipsec.AWSOptionsPhase{Encryption: strs(to.Phase1EncryptionAlgorithms), Integrity: strs(to.Phase1IntegrityAlgorithms), DHGroups: ints(to.Phase1DHGroupNumbers)}
}

func (to *TunnelOptions) phase2() ipsec.AWSOptionsPhase {
	return ipsec.AWSOptionsPhase{Encryption: strs(to.Phase2EncryptionAlgorithms), Integrity: strs(to.Phase2IntegrityAlgorithms), DHGroups: ints(to.Phase2DHGroupNumbers)}
}

// renderAWSOptions records the tunnel options as aws_tunnel_options, so
// `cgwctl config check` and cgwd can tell when the tunnel's settings,
// edited later, no longer meet them.
func renderAWSOptions(w func(string, ...any), to *TunnelOptions) {
	var lines []string
	phase := func(name string, p ipsec.AWSOptionsPhase, life *int) {
		var parts []string
		if len(p.Encryption) > 0 {
			parts = append(parts, "encryption: ["+strings.Join(p.Encryption, ", ")+"]")
		}
		if len(p.Integrity) > 0 {
			parts = append(parts, "integrity: ["+strings.Join(p.Integrity, ", ")+"]")
		}
		if len(p.DHGroups) > 0 {
			g := make([]string, len(p.DHGroups))
			for i, n := range p.DHGroups {
				g[i] = fmt.Sprint(n)
			}
			parts = append(parts, "dh_groups: ["+strings.Join(g, ", ")+"]")
		}
		if life != nil {
			parts = append(parts, fmt.Sprintf("lifetime: %ds", *life))
		}
		if len(parts) > 0 {
			lines = append(lines, fmt.Sprintf("%s: {%s}", name, strings.Join(parts, ", ")))
		}
	}
	phase("phase1", to.phase1(), to.Phase1LifetimeSeconds)
	phase("phase2", to.phase2(), to.Phase2LifetimeSeconds)
	if to.RekeyMarginTimeSeconds != nil {
		lines = append(lines, fmt.Sprintf("rekey_margin: %ds", *to.RekeyMarginTimeSeconds))
	}
	if to.DpdTimeoutSeconds != nil {
		lines = append(lines, fmt.Sprintf("dpd_timeout: %ds", *to.DpdTimeoutSeconds))
	}
	if a := strings.ToLower(strings.TrimSpace(to.DpdTimeoutAction)); a != "" {
		lines = append(lines, "dpd_timeout_action: "+a)
	}
	if a := strings.ToLower(strings.TrimSpace(to.StartupAction)); a != "" {
		lines = append(lines, "startup_action: "+a)
	}
	if len(lines) == 0 {
		return
	}
	w("        aws_tunnel_options:  # the AWS side (Options.TunnelOptions): config check compares the settings above with it\n")
	for _, l := range lines {
		w("          %s\n", l)
	}
}
