package awsxml

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/cgwproject/cgw/config"
	"github.com/cgwproject/cgw/ipsec"
)

// Options are the settings the XML does not carry.
type Options struct {
	// Name of the connection; default the vpn_connection id.
	Name string
	// LocalAddress is the outside address to bind; zero = any. The IKE
	// identity is always the customer gateway address from the XML (the
	// public address, also behind NAT).
	LocalAddress netip.Addr
	// Advertise lists the on-premises prefixes announced over BGP.
	Advertise []netip.Prefix
	// RemotePrefixes lists the VPC CIDRs routed into the tunnels of a
	// static connection (required there; the XML does not name them).
	RemotePrefixes []netip.Prefix
}

// ErrOptions marks errors caused by the Options rather than the document
// (a command line maps it to a usage error): errors.Is(err, ErrOptions).
var ErrOptions = errors.New("awsxml: invalid options")

type optionsError struct{ msg string }

func (e *optionsError) Error() string        { return "awsxml: " + e.msg }
func (e *optionsError) Is(target error) bool { return target == ErrOptions }

// GeneratedFile is the file name used in the warnings about the generated
// configuration; their line numbers count lines of Generate's output.
const GeneratedFile = "generated"

// XMLFile is the file name used in warnings about the document itself.
const XMLFile = "xml"

// tunnelValues are one tunnel's checked values.
type tunnelValues struct {
	awsOutside, cgwOutside netip.Addr
	inside, inside6        netip.Prefix
	psk                    string
	cgwASN, awsASN         uint32
	holdTime               int
	ike, esp               []string
	ikeLifetime, childLife int
	dpdInterval, dpdRetry  int
	mss                    int
}

// Generate checks the document and writes a commented cgw configuration
// that config.Parse accepts (Generate verifies this before returning). The
// warnings concern the document (File XMLFile) or the result (File
// GeneratedFile). Errors about options wrap ErrOptions; errors never
// contain a pre-shared key.
func Generate(v *VPNConnection, opt Options) ([]byte, []config.Warning, error) {
	var errs []error
	var warns []config.Warning
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("awsxml: "+format, args...))
	}
	optErr := func(format string, args ...any) error {
		return &optionsError{msg: fmt.Sprintf(format, args...)}
	}

	name := opt.Name
	if name == "" {
		name = v.ID
	}
	if name == "" {
		return nil, nil, optErr("the document has no vpn_connection id; pass a connection name (--name)")
	}
	if v.IsStatic() {
		if len(opt.RemotePrefixes) == 0 {
			return nil, nil, optErr("%s uses static routing: pass the VPC CIDR(s) to route into the tunnels (--remote-prefix)", name)
		}
		if len(opt.Advertise) > 0 {
			return nil, nil, optErr("%s uses static routing: AWS takes on-premises prefixes from the connection's static routes, not from cgw; drop --advertise", name)
		}
	} else if len(opt.RemotePrefixes) > 0 {
		return nil, nil, optErr("%s uses BGP: AWS advertises the VPC CIDRs itself; drop --remote-prefix", name)
	}
	if v.Type != "" && v.Type != "ipsec.1" {
		fail("vpn_connection_type is %q; cgw supports ipsec.1", v.Type)
	}
	switch n := len(v.Tunnels); {
	case n == 0:
		fail("the document has no ipsec_tunnel; pass the CustomerGatewayConfiguration of the VPN connection")
	case n > 2:
		fail("the document has %d ipsec_tunnel elements; an AWS VPN connection has two", n)
	}

	var tvs []tunnelValues
	for i := range v.Tunnels {
		tv, terrs, twarns := checkTunnel(v, i)
		errs = append(errs, terrs...)
		warns = append(warns, twarns...)
		tvs = append(tvs, tv)
	}
	// Connection-wide values must agree between the tunnels.
	for i := 1; i < len(tvs); i++ {
		a, b := tvs[0], tvs[i]
		if a.cgwOutside.IsValid() && b.cgwOutside.IsValid() && a.cgwOutside != b.cgwOutside {
			fail("the tunnels name different customer gateway addresses (%v, %v); one connection has one customer gateway", a.cgwOutside, b.cgwOutside)
		}
		if !v.IsStatic() && (a.cgwASN != b.cgwASN || a.awsASN != b.awsASN || a.holdTime != b.holdTime) {
			fail("the tunnels' BGP settings differ (ASN %d/%d, peer ASN %d/%d, hold time %d/%d); one connection has one of each",
				a.cgwASN, b.cgwASN, a.awsASN, b.awsASN, a.holdTime, b.holdTime)
		}
	}
	if len(errs) > 0 {
		return nil, warns, errors.Join(errs...)
	}

	out := render(v, name, opt, tvs)
	_, cwarns, err := config.Parse(out, GeneratedFile)
	if err != nil {
		return nil, warns, fmt.Errorf("awsxml: the generated configuration does not validate; this is a bug or an unusual document:\n%w", err)
	}
	return out, append(warns, cwarns...), nil
}

func checkTunnel(v *VPNConnection, i int) (tunnelValues, []error, []config.Warning) {
	t := &v.Tunnels[i]
	var tv tunnelValues
	var errs []error
	var warns []config.Warning
	at := fmt.Sprintf("ipsec_tunnel[%d]", i)
	fail := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("awsxml: %s/%s: %s", at, field, fmt.Sprintf(format, args...)))
	}
	addr := func(field, s string) netip.Addr {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			fail(field, "invalid IP address %q", s)
			return netip.Addr{}
		}
		return a.Unmap()
	}
	num := func(field, s string, def, lo, hi int) int {
		if s == "" {
			return def
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < lo || n > hi {
			fail(field, "%q is not a number in %d-%d", s, lo, hi)
			return def
		}
		return n
	}

	tv.cgwOutside = addr("customer_gateway/tunnel_outside_address/ip_address", t.Customer.OutsideAddress)
	tv.awsOutside = addr("vpn_gateway/tunnel_outside_address/ip_address", t.AWS.OutsideAddress)

	// Inside /30: AWS has the first usable address, the customer gateway
	// the second (aws-vpn-facts 2.8); cgw relies on that layout.
	cgwIn := addr("customer_gateway/tunnel_inside_address/ip_address", t.Customer.InsideAddress)
	awsIn := addr("vpn_gateway/tunnel_inside_address/ip_address", t.AWS.InsideAddress)
	bits := num("customer_gateway/tunnel_inside_address/network_cidr", t.Customer.InsideCIDR, 30, 0, 32)
	if t.Customer.InsideCIDR == "" && t.Customer.InsideMask != "" {
		if m, err := netip.ParseAddr(t.Customer.InsideMask); err == nil && m.Is4() {
			bits = maskBits(m.As4())
		}
	}
	if cgwIn.IsValid() && awsIn.IsValid() {
		p := netip.PrefixFrom(cgwIn, bits).Masked()
		switch {
		case !cgwIn.Is4():
			fail("customer_gateway/tunnel_inside_address", "%v is not IPv4", cgwIn)
		case config.CheckInsideCIDR(p) != nil:
			fail("customer_gateway/tunnel_inside_address", "%s", strings.TrimPrefix(config.CheckInsideCIDR(p).Error(), "config: "))
		case awsIn != p.Addr().Next() || cgwIn != p.Addr().Next().Next():
			fail("tunnel_inside_address", "AWS %v and customer gateway %v are not the first and second addresses of %v, the layout AWS uses and cgw expects", awsIn, cgwIn, p)
		default:
			tv.inside = p
		}
	}
	if t.Customer.InsideIPv6 != "" || t.AWS.InsideIPv6 != "" {
		cgw6 := addr("customer_gateway/tunnel_inside_ipv6_address/ip_address", t.Customer.InsideIPv6)
		aws6 := addr("vpn_gateway/tunnel_inside_ipv6_address/ip_address", t.AWS.InsideIPv6)
		bits6 := num("customer_gateway/tunnel_inside_ipv6_address/prefix_length", t.Customer.InsideIPv6Len, 126, 0, 128)
		if cgw6.IsValid() && aws6.IsValid() {
			p := netip.PrefixFrom(cgw6, bits6).Masked()
			switch {
			case !cgw6.Is6() || bits6 != 126:
				fail("customer_gateway/tunnel_inside_ipv6_address", "%v is not an IPv6 /126", p)
			case aws6 != p.Addr().Next() || cgw6 != p.Addr().Next().Next():
				fail("tunnel_inside_ipv6_address", "AWS %v and customer gateway %v are not the first and second addresses of %v", aws6, cgw6, p)
			default:
				tv.inside6 = p
			}
		}
	}

	if err := config.CheckPSK([]byte(t.IKE.PreSharedKey)); err != nil {
		fail("ike/pre_shared_key", "%s", strings.TrimPrefix(err.Error(), "config: "))
	} else {
		tv.psk = t.IKE.PreSharedKey
	}

	if !v.IsStatic() {
		asn := func(side string, g Gateway) uint32 {
			if g.BGP == nil || g.BGP.ASN == "" {
				fail(side+"/bgp/asn", "missing; a BGP connection carries both ASNs (static connections have vpn_connection_attributes %s)", StaticRouting)
				return 0
			}
			n, err := strconv.ParseUint(g.BGP.ASN, 10, 32)
			if err != nil || n == 0 {
				fail(side+"/bgp/asn", "invalid ASN %q", g.BGP.ASN)
				return 0
			}
			return uint32(n)
		}
		tv.cgwASN = asn("customer_gateway", t.Customer)
		tv.awsASN = asn("vpn_gateway", t.AWS)
		tv.holdTime = 30
		if t.AWS.BGP != nil {
			tv.holdTime = num("vpn_gateway/bgp/hold_time", t.AWS.BGP.HoldTime, 30, 3, 65535)
		}
	}

	tv.ikeLifetime = num("ike/lifetime", t.IKE.Lifetime, 28800, 900, 28800)
	tv.childLife = num("ipsec/lifetime", t.IPsec.Lifetime, 3600, 900, 3600)
	tv.dpdInterval = num("ipsec/dead_peer_detection/interval", t.IPsec.DPDInterval, 10, 1, 300)
	tv.dpdRetry = num("ipsec/dead_peer_detection/retries", t.IPsec.DPDRetries, 3, 1, 20)
	tv.mss = num("ipsec/tcp_mss_adjustment", t.IPsec.TCPMSSAdjustment, config.DefaultMSSClamp, 536, 1406)

	tv.ike = withSample(ipsec.DefaultIKEProposals, t.IKE.EncryptionProtocol, t.IKE.AuthenticationProtocol, t.IKE.PFS, true, at+"/ike", &warns)
	tv.esp = withSample(ipsec.DefaultESPProposals, t.IPsec.EncryptionProtocol, t.IPsec.AuthenticationProtocol, t.IPsec.PFS, false, at+"/ipsec", &warns)
	return tv, errs, warns
}

func maskBits(m [4]byte) int {
	n := 0
	for _, b := range m {
		for i := 7; i >= 0; i-- {
			if b&(1<<i) == 0 {
				return n
			}
			n++
		}
	}
	return n
}

// withSample returns the default proposals plus the document's sample set
// if the defaults do not already contain it.
func withSample(defaults []string, encr, integ, pfs string, ike bool, at string, warns *[]config.Warning) []string {
	out := slices.Clone(defaults)
	if encr == "" {
		return out
	}
	p, err := sampleProposal(encr, integ, pfs, ike)
	if err != nil {
		*warns = append(*warns, config.Warning{File: XMLFile, Path: at,
			Msg: fmt.Sprintf("%s: not added to the proposals; cgw's defaults (which include AWS's minimum) apply", strings.TrimPrefix(err.Error(), "ipsec: "))})
		return out
	}
	s := p.String()
	for _, d := range defaults {
		if dp, err := ipsec.ParseProposal(d, ike); err == nil && dp.String() == s {
			return out
		}
	}
	return append(out, s)
}

func render(v *VPNConnection, name string, opt Options, tvs []tunnelValues) []byte {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	q := func(s string) string {
		if plainRE.MatchString(s) && !yamlWords[strings.ToLower(s)] {
			return s
		}
		return strconv.Quote(s)
	}

	gw := "virtual private gateway " + v.VPNGatewayID
	if v.IsTransitGateway() {
		gw = "a transit gateway"
	}
	w("# cgw configuration generated by `cgwctl import-aws` from the AWS\n")
	w("# CustomerGatewayConfiguration of %s\n", oneLine(v.ID))
	w("# (customer gateway %s, %s).\n", oneLine(v.CustomerGatewayID), oneLine(gw))
	w("#\n")
	w("# Tunnels are listed in the order of the AWS document, which AWS does not\n")
	w("# promise to match Tunnel 1/Tunnel 2 of the console: match them by the AWS\n")
	w("# outside address (peer_address). The first tunnel is the preferred one.\n")
	w("#\n")
	w("# The algorithms in the AWS document are AWS's minimum, not what the tunnel\n")
	w("# accepts, so the proposals offer strong algorithms first and keep AWS's\n")
	w("# minimum last. AWS picks the lowest value it is configured with: narrow\n")
	w("# the AWS tunnel options to force strong algorithms.\n")
	w("#\n")
	w("# This file holds pre-shared keys: keep it readable by root only\n")
	w("# (chmod 600), or move each key to a file named by psk_file.\n")
	w("version: 1\n")
	w("connections:\n")
	w("  - name: %s\n", q(name))
	if opt.LocalAddress.IsValid() {
		w("    local_address: %s\n", opt.LocalAddress)
	}
	if len(tvs) > 0 && tvs[0].cgwOutside.IsValid() {
		w("    local_id: %s  # the customer gateway's address in AWS\n", tvs[0].cgwOutside)
	}
	if v.IsStatic() {
		w("    routing: static\n")
		w("    static:\n")
		w("      remote_prefixes: %s  # routed into the tunnels\n", prefixList(opt.RemotePrefixes))
	} else {
		tv := tvs[0]
		limit := "100 prefixes (virtual private gateway)"
		if v.IsTransitGateway() {
			limit = "1000 prefixes (transit gateway)"
		}
		w("    routing: bgp\n")
		w("    bgp:\n")
		w("      asn: %d  # customer gateway ASN\n", tv.cgwASN)
		w("      peer_asn: %d  # Amazon-side ASN\n", tv.awsASN)
		w("      hold_time: %ds\n", tv.holdTime)
		w("      keepalive: %ds\n", max(tv.holdTime/3, 1))
		if len(opt.Advertise) == 0 {
			w("      advertise: []  # add the on-premises prefixes to announce to AWS\n")
		} else {
			w("      advertise: %s  # AWS accepts at most %s\n", prefixList(opt.Advertise), limit)
		}
		w("      mode: active-passive\n")
	}
	w("    tunnels:\n")
	for i, tv := range tvs {
		w("      - name: %s\n", q(fmt.Sprintf("%s-t%d", name, i+1)))
		w("        peer_address: %s  # AWS outside address\n", tv.awsOutside)
		w("        psk: %s\n", q(tv.psk))
		w("        inside_cidr: %s  # AWS %s, cgw %s\n", tv.inside, tv.inside.Addr().Next(), tv.inside.Addr().Next().Next())
		if tv.inside6.IsValid() {
			w("        inside_ipv6_cidr: %s  # AWS %s, cgw %s\n", tv.inside6, tv.inside6.Addr().Next(), tv.inside6.Addr().Next().Next())
		}
		w("        ike_proposals:\n")
		for _, p := range tv.ike {
			w("          - %s\n", p)
		}
		w("        esp_proposals:\n")
		for _, p := range tv.esp {
			w("          - %s\n", p)
		}
		w("        ike_lifetime: %ds\n", tv.ikeLifetime)
		w("        child_lifetime: %ds\n", tv.childLife)
		w("        dpd: {interval: %ds, retries: %d, action: restart}\n", tv.dpdInterval, tv.dpdRetry)
		w("        mss_clamp: %d\n", tv.mss)
	}
	return []byte(b.String())
}

// plainRE matches strings YAML reads back unchanged without quotes.
var plainRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9._-]*$`)

// yamlWords are plain scalars YAML may read as something other than a string.
var yamlWords = map[string]bool{"null": true, "true": true, "false": true, "yes": true, "no": true, "on": true, "off": true, "y": true, "n": true}

func prefixList(ps []netip.Prefix) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.String())
	}
	return "[" + strings.Join(s, ", ") + "]"
}

// oneLine keeps document text from breaking out of a YAML comment.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
