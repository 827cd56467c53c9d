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
	// AdvertiseFor and RemotePrefixesFor add prefixes for one connection,
	// keyed by its VPN connection ID. With several connections, Advertise
	// applies to every BGP connection and RemotePrefixes to every static
	// one.
	AdvertiseFor, RemotePrefixesFor map[string][]netip.Prefix
	// Select keeps only these VPN connection IDs (all when empty).
	Select []string
	// Cert, when set, makes every connection authenticate with this
	// certificate (ACM export) instead of pre-shared keys.
	Cert *CertFiles
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
	// From Options.TunnelOptions of the JSON; zero = the config default.
	fromOptions   bool
	rekeyMargin   int
	rekeyFuzz     *int
	replayWindow  int
	dpdAction     config.DPDAction
	respond       bool
	tsLocal       []netip.Prefix
	tsRemote      []netip.Prefix
	optionsFields []string // the TunnelOptions members used, for the comment
	options       *TunnelOptions
}

// connValues are one connection's checked values.
type connValues struct {
	v         *VPNConnection
	name      string
	advertise []netip.Prefix
	remote    []netip.Prefix
	tvs       []tunnelValues
	// cert is the certificate of a certificate-based connection: the
	// options' files, or placeholders for them (see certFiles).
	cert *CertFiles
}

// Generate checks the document and writes a commented cgw configuration
// that config.Parse accepts (Generate verifies this before returning). The
// warnings concern the document (File XMLFile) or the result (File
// GeneratedFile). Errors about options wrap ErrOptions; errors never
// contain a pre-shared key.
func Generate(v *VPNConnection, opt Options) ([]byte, []config.Warning, error) {
	return GenerateAll([]Connection{{Doc: v}}, opt)
}

// GenerateAll is Generate for several connections (a describe-vpn-connections
// JSON): one configuration with one connection each, in input order, after
// opt.Select. Each connection's tunnels use its Options.TunnelOptions where
// present.
func GenerateAll(conns []Connection, opt Options) ([]byte, []config.Warning, error) {
	optErr := func(format string, args ...any) error {
		return &optionsError{msg: fmt.Sprintf(format, args...)}
	}
	ids := map[string]bool{}
	for _, c := range conns {
		ids[c.Doc.ID] = true
	}
	for _, id := range opt.Select {
		if !ids[id] {
			return nil, nil, optErr("--connection %s: the input has no such connection (it has %s)", id, idList(conns))
		}
	}
	for _, m := range []map[string][]netip.Prefix{opt.AdvertiseFor, opt.RemotePrefixesFor} {
		for id := range m {
			if !ids[id] {
				return nil, nil, optErr("prefixes for %s: the input has no such connection (it has %s)", id, idList(conns))
			}
			if len(opt.Select) > 0 && !slices.Contains(opt.Select, id) {
				return nil, nil, optErr("prefixes for %s: that connection is not selected with --connection", id)
			}
		}
	}
	if len(opt.Select) > 0 {
		var sel []Connection
		for _, c := range conns {
			if slices.Contains(opt.Select, c.Doc.ID) {
				sel = append(sel, c)
			}
		}
		conns = sel
	}
	if len(conns) == 0 {
		return nil, nil, errors.New("awsxml: no VPN connection to import")
	}
	if opt.Name != "" && len(conns) > 1 {
		return nil, nil, optErr("--name applies to one connection, and the input has %d (%s); connections are named by their VPN connection IDs, or pick one with --connection", len(conns), idList(conns))
	}
	multi := len(conns) > 1
	// Plain prefixes must fit some connection.
	anyBGP, anyStatic := false, false
	for _, c := range conns {
		anyBGP = anyBGP || !c.Doc.IsStatic()
		anyStatic = anyStatic || c.Doc.IsStatic()
	}
	if multi && len(opt.Advertise) > 0 && !anyBGP {
		return nil, nil, optErr("--advertise: every connection uses static routing; AWS takes on-premises prefixes from the connections' static routes, not from cgw; drop --advertise")
	}
	if multi && len(opt.RemotePrefixes) > 0 && !anyStatic {
		return nil, nil, optErr("--remote-prefix: every connection uses BGP, and AWS advertises the VPC CIDRs itself; drop --remote-prefix")
	}

	var errs []error
	var warns []config.Warning
	var cvs []connValues
	for _, c := range conns {
		cv, cerrs, cwarns, err := checkConnection(c, opt, multi)
		if err != nil {
			return nil, nil, err
		}
		errs = append(errs, cerrs...)
		warns = append(warns, cwarns...)
		cvs = append(cvs, cv)
	}
	if len(errs) > 0 {
		return nil, warns, errors.Join(errs...)
	}
	out := render(cvs, opt)
	_, cwarns, err := config.Parse(out, GeneratedFile)
	if err != nil && config.OnlyPlaceholders(err) {
		// The certificate files still to be exported: cgwd refuses the
		// configuration until they are named (certFiles warned).
		err = nil
	}
	if err != nil {
		return nil, warns, fmt.Errorf("awsxml: the generated configuration does not validate; this is a bug or an unusual document:\n%w", err)
	}
	return out, append(warns, cwarns...), nil
}

func idList(conns []Connection) string {
	var ids []string
	for _, c := range conns {
		ids = append(ids, c.Doc.ID)
	}
	return strings.Join(ids, ", ")
}

// checkConnection checks one connection and gathers its values. A non-nil
// err is an options error that stops the import.
func checkConnection(c Connection, opt Options, multi bool) (connValues, []error, []config.Warning, error) {
	v := c.Doc
	var errs []error
	var warns []config.Warning
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("awsxml: "+format, args...))
	}
	optErr := func(format string, args ...any) error {
		return &optionsError{msg: fmt.Sprintf(format, args...)}
	}
	cv := connValues{v: v, name: opt.Name}
	if cv.name == "" {
		cv.name = v.ID
	}
	if cv.name == "" {
		return cv, nil, nil, optErr("the document has no vpn_connection id; pass a connection name (--name)")
	}
	if c.Options != nil && c.Options.StaticRoutesOnly != nil && *c.Options.StaticRoutesOnly != v.IsStatic() {
		fail("%s: Options.StaticRoutesOnly is %v but the XML says the opposite (vpn_connection_attributes %q); the JSON was edited", v.ID, *c.Options.StaticRoutesOnly, v.Attributes)
	}
	adv := opt.AdvertiseFor[v.ID]
	rem := opt.RemotePrefixesFor[v.ID]
	if v.IsStatic() {
		if len(adv) > 0 || (!multi && len(opt.Advertise) > 0) {
			return cv, nil, nil, optErr("%s uses static routing: AWS takes on-premises prefixes from the connection's static routes, not from cgw; drop --advertise", cv.name)
		}
		cv.remote = append(slices.Clone(opt.RemotePrefixes), rem...)
		if len(cv.remote) == 0 {
			return cv, nil, nil, optErr("%s uses static routing: pass the VPC CIDR(s) to route into the tunnels (--remote-prefix CIDR, or --remote-prefix %s=CIDR)", cv.name, v.ID)
		}
	} else {
		if len(rem) > 0 || (!multi && len(opt.RemotePrefixes) > 0) {
			return cv, nil, nil, optErr("%s uses BGP: AWS advertises the VPC CIDRs itself; drop --remote-prefix", cv.name)
		}
		cv.advertise = append(slices.Clone(opt.Advertise), adv...)
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
	var tos []TunnelOptions
	if c.Options != nil {
		tos = c.Options.TunnelOptions
	}
	used := make([]bool, len(tos))
	for i := range v.Tunnels {
		tv, terrs, twarns := checkTunnel(v, i)
		errs = append(errs, terrs...)
		warns = append(warns, twarns...)
		// Pair by AWS outside address: the XML order is not promised to
		// match TunnelOptions (aws-vpn-facts 5.1).
		for j := range tos {
			if a, err := netip.ParseAddr(strings.TrimSpace(tos[j].OutsideIpAddress)); err == nil && a.Unmap() == tv.awsOutside && tv.awsOutside.IsValid() && !used[j] {
				used[j] = true
				oerrs, owarns := applyTunnelOptions(&tv, &tos[j], fmt.Sprintf("%s Options.TunnelOptions[%d]", v.ID, j))
				errs = append(errs, oerrs...)
				warns = append(warns, owarns...)
			}
		}
		cv.tvs = append(cv.tvs, tv)
	}
	for j, u := range used {
		if !u && len(v.Tunnels) > 0 {
			warns = append(warns, config.Warning{File: XMLFile, Path: fmt.Sprintf("%s Options.TunnelOptions[%d]", v.ID, j),
				Msg: fmt.Sprintf("OutsideIpAddress %q matches no tunnel of the XML; these tunnel options are not used", tos[j].OutsideIpAddress)})
		}
	}
	if c.Options != nil {
		errs = append(errs, trafficSelectors(cv.tvs, c.Options, v.ID)...)
	}
	// Connection-wide values must agree between the tunnels.
	for i := 1; i < len(cv.tvs); i++ {
		a, b := cv.tvs[0], cv.tvs[i]
		if a.cgwOutside.IsValid() && b.cgwOutside.IsValid() && a.cgwOutside != b.cgwOutside {
			fail("the tunnels name different customer gateway addresses (%v, %v); one connection has one customer gateway", a.cgwOutside, b.cgwOutside)
		}
		if !v.IsStatic() && (a.cgwASN != b.cgwASN || a.awsASN != b.awsASN || a.holdTime != b.holdTime) {
			fail("the tunnels' BGP settings differ (ASN %d/%d, peer ASN %d/%d, hold time %d/%d); one connection has one of each",
				a.cgwASN, b.cgwASN, a.awsASN, b.awsASN, a.holdTime, b.holdTime)
		}
	}
	var w *config.Warning
	cv.cert, w = certFiles(v, cv.tvs, opt)
	if w != nil {
		warns = append(warns, *w)
	}
	return cv, errs, warns, nil
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

	if t.IKE.PreSharedKey == "" {
		// A certificate-based connection (noPSK, see CertFiles).
	} else if err := config.CheckPSK([]byte(t.IKE.PreSharedKey)); err != nil {
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
	for _, d := range defaults {
		if dp, err := ipsec.ParseProposal(d, ike); err == nil && covers(dp, p) {
			return out
		}
	}
	return append(out, p.String())
}

// covers reports whether proposal d offers every transform of p.
func covers(d, p ipsec.Proposal) bool {
	return subset(p.Encrs, d.Encrs) && subset(p.Integs, d.Integs) && subset(p.PRFs, d.PRFs) && subset(p.DHGroups, d.DHGroups) && subset(p.ESN, d.ESN)
}

func subset[T comparable](a, b []T) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

func render(cvs []connValues, opt Options) []byte {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	q := func(s string) string {
		if plainRE.MatchString(s) && !yamlWords[strings.ToLower(s)] {
			return s
		}
		return strconv.Quote(s)
	}

	w("# cgw configuration generated by `cgwctl import-aws` from the AWS\n")
	for _, cv := range cvs {
		v := cv.v
		gw := "virtual private gateway " + v.VPNGatewayID
		if v.IsTransitGateway() {
			gw = "a transit gateway"
		}
		w("# configuration of %s (customer gateway %s, %s).\n", oneLine(v.ID), oneLine(v.CustomerGatewayID), oneLine(gw))
	}
	w("#\n")
	w("# Tunnels are listed in the order of the AWS document, which AWS does not\n")
	w("# promise to match Tunnel 1/Tunnel 2 of the console: match them by the AWS\n")
	w("# outside address (peer_address). The first tunnel is the preferred one.\n")
	w("#\n")
	w("# Where the tunnel options were known (describe-vpn-connections JSON), the\n")
	w("# proposals offer exactly what the AWS tunnel allows. Otherwise they offer\n")
	w("# every algorithm AWS accepts, strongest first: the algorithms in the AWS\n")
	w("# document are AWS's minimum, not what the tunnel accepts. AWS picks the\n")
	w("# lowest value it is configured with: narrow the AWS tunnel options to\n")
	w("# force strong algorithms.\n")
	w("#\n")
	w("# This file holds pre-shared keys: keep it readable by root only\n")
	w("# (cgwctl import-aws -o FILE writes it with mode 0600), or move each key\n")
	w("# to a file named by psk_file.\n")
	w("version: 1\n")
	w("connections:\n")
	for _, cv := range cvs {
		renderConnection(w, q, cv, opt)
	}
	return []byte(b.String())
}

func renderConnection(w func(string, ...any), q func(string) string, cv connValues, opt Options) {
	v, tvs, name := cv.v, cv.tvs, cv.name
	w("  - name: %s\n", q(name))
	if opt.LocalAddress.IsValid() {
		w("    local_address: %s\n", opt.LocalAddress)
	}
	if cv.cert != nil {
		renderCert(w, q, cv.cert, v.CustomerGatewayID)
	} else if len(tvs) > 0 && tvs[0].cgwOutside.IsValid() {
		w("    local_id: %s  # the customer gateway's address in AWS\n", tvs[0].cgwOutside)
	}
	if v.IsStatic() {
		w("    routing: static\n")
		w("    static:\n")
		w("      remote_prefixes: %s  # routed into the tunnels\n", prefixList(cv.remote))
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
		if len(cv.advertise) == 0 {
			w("      advertise: []  # add the on-premises prefixes to announce to AWS\n")
		} else {
			w("      advertise: %s  # AWS accepts at most %s\n", prefixList(cv.advertise), limit)
		}
		w("      mode: active-passive\n")
	}
	w("    tunnels:\n")
	for i, tv := range tvs {
		w("      - name: %s\n", q(fmt.Sprintf("%s-t%d", name, i+1)))
		w("        peer_address: %s  # AWS outside address\n", tv.awsOutside)
		if tv.fromOptions && len(tv.optionsFields) > 0 {
			w("        # from Options.TunnelOptions: %s\n", strings.Join(tv.optionsFields, ", "))
		}
		if cv.cert != nil {
			renderPeerDN(w, q, v.ID, i)
		} else {
			w("        psk: %s\n", q(tv.psk))
		}
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
		if tv.rekeyMargin > 0 {
			w("        rekey_margin: %ds\n", tv.rekeyMargin)
		}
		if tv.rekeyFuzz != nil {
			w("        rekey_fuzz: %d\n", *tv.rekeyFuzz)
		}
		action := tv.dpdAction
		if action == "" {
			action = config.DPDRestart
		}
		w("        dpd: {interval: %ds, retries: %d, action: %s}\n", tv.dpdInterval, tv.dpdRetry, action)
		if tv.respond {
			w("        startup_action: respond  # AWS starts the tunnel (StartupAction start)\n")
		}
		if tv.replayWindow > 0 {
			w("        replay_window: %d\n", tv.replayWindow)
		}
		if len(tv.tsLocal) > 0 {
			w("        traffic_selectors: {local: [%q], remote: [%q]}  # Options.Local/Remote network CIDR\n", tv.tsLocal[0].String(), tv.tsRemote[0].String())
		}
		w("        mss_clamp: %d\n", tv.mss)
		if tv.options != nil {
			renderAWSOptions(w, tv.options)
		}
	}
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
