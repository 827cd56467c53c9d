package diagnose

import (
	"crypto/subtle"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/cgwproject/cgw/config"
	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/internal/human"
	"github.com/cgwproject/cgw/ipsec"
)

// tunnelState: is there an IKE SA, then an IPsec (CHILD) SA?
func (d *diagnoser) tunnelState() {
	t, tc := d.t, d.in.Tunnel
	var ev []string
	if sa := t.IKE; sa != nil {
		ev = append(ev, fmt.Sprintf("IKE SA %s_i %s_r %s, established %s, rekey %s, expires %s",
			sa.SPIi, sa.SPIr, sa.Algorithms, d.ago(sa.Established), d.until(sa.RekeyAt), d.until(sa.ExpiresAt)))
	}
	for _, c := range t.Children {
		ev = append(ev, fmt.Sprintf("CHILD SA in %s out %s %s, established %s, expires %s, selectors %s === %s",
			c.InSPI, c.OutSPI, c.Algorithms, d.ago(c.Established), d.until(c.ExpiresAt),
			strings.Join(c.TSLocal, ","), strings.Join(c.TSRemote, ",")))
	}
	if t.LastError != "" {
		ev = append(ev, fmt.Sprintf("last error (%s): %s", d.ago(t.LastErrorAt), t.LastError))
	}
	switch {
	case d.ikeUp() && d.childUp():
		d.add(checkTunnel, control.SeverityOK, "The IKE SA and the CHILD (IPsec) SA are established.", ev, "")
	case d.ikeUp():
		d.add(checkTunnel, control.SeverityError,
			"The IKE SA is up but there is no CHILD (IPsec) SA, so no traffic can cross the tunnel (AWS logs this as \"Phase 2 was unable to establish while keeping Phase 1\").",
			ev, "See the ike-failure finding: usually the ESP proposals (or their PFS group) or the traffic selectors do not match the AWS tunnel options.")
	case t.IKEState == "Negotiating":
		d.add(checkTunnel, control.SeverityWarn, "IKE is negotiating; no SA is established yet.", ev,
			"If this lasts more than a minute, the findings below say what fails.")
	default:
		fix := fmt.Sprintf("cgw retries by itself with a growing delay; the findings below say why it is not up. If it was taken down with `cgwctl tunnel down`, start it with `cgwctl tunnel up %s`.", tc.Name)
		if tc.StartupAction == config.StartRespond {
			fix = "startup_action is respond, so cgw waits for AWS to start IKE; AWS does so only when the tunnel's startup action is \"start\". Set startup_action: initiate, or change the AWS tunnel option."
		}
		d.add(checkTunnel, control.SeverityError, "The tunnel is down: there is no IKE SA.", ev, fix)
	}
}

// ikePorts: are UDP 500/4500 answered?
func (d *diagnoser) ikePorts() {
	tc := d.in.Tunnel
	req, resp := d.in.IKERequests, d.in.IKEResponses
	ev := []string{
		fmt.Sprintf("IKE messages sent to %s: %d, received from it: %d", tc.PeerAddress, req, resp),
	}
	if d.t.Local != "" {
		ev = append(ev, fmt.Sprintf("local endpoint %s, AWS endpoint %s", d.t.Local, d.t.Remote))
	}
	switch {
	case resp > 0 && !d.ikeUp() && strings.Contains(d.failure(), "a path that drops IP fragments loses it"):
		// The sentence comes from ike's largeRequestHint.
		d.add(checkIKEPorts, control.SeverityError,
			"AWS answers IKE, but cgw's IKE_AUTH went out as one datagram larger than 1280 octets and got no answer: the path most likely drops IP fragments.",
			append(ev, "last failure: "+d.failure()),
			fmt.Sprintf("Let cgw send IKE fragments (RFC 7383): leave ike_fragment_size at its default 1280, or set it to the path MTU, never 0. Otherwise allow IP fragments to and from %s on every firewall and NAT on the way.", tc.PeerAddress))
	case resp > 0 && !d.ikeUp() && strings.Contains(d.failure(), "did not answer our IKE_AUTH"):
		// cgw floats to UDP 4500 right after IKE_SA_INIT (it always asks
		// for UDP encapsulation), so an answered IKE_SA_INIT and an
		// unanswered IKE_AUTH tell the ports apart.
		d.add(checkIKEPorts, control.SeverityError,
			"AWS answers on UDP 500 but not on UDP 4500: IKE_SA_INIT (port 500) got its answer, and nothing came back after cgw moved to port 4500 for IKE_AUTH.",
			append(ev, "last failure: "+d.failure()),
			fmt.Sprintf("Allow UDP 4500 to and from %s in both directions on every firewall and security appliance on the way; UDP 500 alone is not enough, because IKE_AUTH, every later IKE message and all ESP travel in UDP 4500. If only fragments are dropped, allow IP fragments too.", tc.PeerAddress))
	case resp > 0 && !d.ikeUp() && d.notifyKind() == "TIMEOUT":
		d.add(checkIKEPorts, control.SeverityWarn,
			"AWS answered IKE before, but the latest negotiation got no answer.", ev,
			fmt.Sprintf("Something on the path started dropping UDP 500/4500 to or from %s (a firewall change, an expired NAT or firewall state), or AWS is replacing its tunnel endpoint (AWS Health, tunnel activity log); cgw keeps retrying.", tc.PeerAddress))
	case resp > 0:
		d.add(checkIKEPorts, control.SeverityOK, "AWS answers IKE on UDP 500/4500.", ev, "")
	case req > 0:
		d.add(checkIKEPorts, control.SeverityError,
			fmt.Sprintf("AWS never answered: %s went to %s on UDP 500/4500 and nothing came back.", diagCount(int(min(req, 1<<62)), "IKE request"), tc.PeerAddress),
			append(ev, fmt.Sprintf("peer_address %s is %s", tc.PeerAddress, d.position())),
			fmt.Sprintf("Allow UDP 500 and 4500 to and from %s in every firewall, security appliance and ISP filter on the way. Check that %s is this tunnel's outside IP address in the AWS console (VPN connection > Tunnel details); if AWS shows the tunnel DOWN with nothing in its tunnel log, no IKE packet reaches AWS. An AWS endpoint replacement or maintenance also stops answers for a few minutes.", tc.PeerAddress, tc.PeerAddress))
	case tc.StartupAction == config.StartRespond:
		d.add(checkIKEPorts, control.SeverityInfo,
			"No IKE message exchanged yet: cgw waits for AWS to start (startup_action: respond).", ev,
			"AWS initiates only when the tunnel's startup action is \"start\"; otherwise set startup_action: initiate.")
	default:
		d.add(checkIKEPorts, control.SeverityInfo, "No IKE message exchanged with AWS yet.", ev,
			fmt.Sprintf("Start the tunnel with `cgwctl tunnel up %s` and run diagnose again.", tc.Name))
	}
}

// effectiveLocalID returns our IKE identity and where it comes from.
func (d *diagnoser) effectiveLocalID() (netip.Addr, string) {
	c := d.in.Conn
	if d.in.Tunnel != nil && d.in.Tunnel.Auth == config.AuthCertificate {
		// AWS identifies a certificate gateway by the certificate's
		// subject, not by an address, and does not check our address.
		return netip.Addr{}, "the certificate's subject DN (certificate authentication)"
	}
	switch {
	case c.LocalID.IsValid():
		return c.LocalID, "local_id"
	case c.LocalAddress.IsValid():
		return c.LocalAddress, "local_address (local_id not set)"
	}
	if ap, err := netip.ParseAddrPort(d.t.Local); err == nil {
		return ap.Addr().Unmap(), "the outside address in use (local_id not set)"
	}
	return netip.Addr{}, "the outside address in use (local_id not set)"
}

// isNonPublic reports whether a cannot be the public IP registered on an
// AWS customer gateway: RFC 1918, RFC 6598 shared (CGNAT), loopback,
// link-local.
func isNonPublic(a netip.Addr) bool {
	cgnat := netip.MustParsePrefix("100.64.0.0/10")
	return a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() || cgnat.Contains(a)
}

// nat: is a NAT detected, and is the identity right for it?
func (d *diagnoser) nat() {
	t, tc := d.t, d.in.Tunnel
	var ev []string
	if t.Local != "" {
		ev = append(ev, fmt.Sprintf("local endpoint %s, AWS endpoint %s", t.Local, t.Remote))
	}
	ic := d.identity()
	if ic.wrong() {
		d.natWrongIdentity(ic)
		return
	}
	id, idFrom := ic.id, ic.idFrom
	idLine := "local_id: " + idFrom
	if id.IsValid() {
		idLine = fmt.Sprintf("local_id: %s, from %s", id, idFrom)
	}
	if ic.seen {
		idLine += fmt.Sprintf("; AWS saw our last IKE_SA_INIT come from %s, so the identity matches", netip.AddrPortFrom(id, ic.port))
	}
	switch {
	case t.NAT || (ic.view != nil && ic.view.BehindNAT):
		ev = append(ev, idLine, "ESP is carried in UDP 4500 (RFC 3948)")
		fix := "Behind NAT, local_id must be the public IP of the NAT device, the IP address of the customer gateway in AWS. Keep UDP 4500 forwarded to this host and nat_keepalive on so the NAT mapping does not expire."
		switch {
		case id.IsValid() && isNonPublic(id) && !ic.seen:
			d.add(checkNAT, control.SeverityWarn,
				fmt.Sprintf("A NAT is between cgw and AWS, and our IKE identity %s is not a public address: AWS will answer AUTHENTICATION_FAILED unless its customer gateway was registered with that address.", id),
				ev, "Set local_id to the NAT device's public IP, the IP address of the customer gateway in AWS. "+fix)
		case tc.NATKeepalive == 0:
			d.add(checkNAT, control.SeverityWarn,
				"A NAT is between cgw and AWS and nat_keepalive is off: the NAT mapping can expire while the tunnel is quiet, and AWS's packets then stop arriving.",
				append(ev, "nat_keepalive: off"), "Set nat_keepalive: 20s. "+fix)
		default:
			d.add(checkNAT, control.SeverityInfo, "A NAT is between cgw and AWS; IKE and ESP use UDP 4500.",
				append(ev, "nat_keepalive: "+human.Duration(tc.NATKeepalive)), fix)
		}
	case !d.ikeUp() && ic.view == nil:
		d.add(checkNAT, control.SeverityInfo, "NAT detection needs an answer from AWS; not known yet.", nil, "")
	default:
		// cgw's dataplane always carries ESP in UDP 4500 (it asks AWS for
		// encapsulation even without a NAT), so only UDP matters here.
		if ic.seen {
			ev = append(ev, idLine)
		}
		ev = append(ev, "ESP is carried in UDP 4500 (cgw always encapsulates), so only UDP 500/4500 need to pass firewalls")
		d.add(checkNAT, control.SeverityOK, "No NAT between cgw and AWS.", ev, "")
	}
}

// notifyKind normalises LastIKENotify: "" for none, else upper-case; a
// failure sentence about unanswered requests counts as "TIMEOUT".
func (d *diagnoser) notifyKind() string {
	n := strings.ToUpper(strings.TrimSpace(d.in.LastIKENotify))
	if n == "NONE" {
		n = ""
	}
	if n == "" {
		f := strings.ToLower(d.failure())
		if strings.Contains(f, "did not answer") || strings.Contains(f, "no answer") {
			n = "TIMEOUT"
		}
	}
	return n
}

func (d *diagnoser) failure() string {
	if d.in.LastIKEFailure != "" {
		return d.in.LastIKEFailure
	}
	return d.t.LastError
}

// ikeFailure explains the last negotiation failure by its notify.
func (d *diagnoser) ikeFailure() {
	notify, failure := d.notifyKind(), d.failure()
	if notify == "" && failure == "" {
		d.add(checkIKEFail, control.SeverityOK, "No IKE negotiation failure recorded.", nil, "")
		return
	}
	var ev []string
	if failure != "" {
		when := ""
		if !d.t.LastErrorAt.IsZero() {
			when = " (" + d.ago(d.t.LastErrorAt) + ")"
		}
		ev = append(ev, "last failure"+when+": "+failure)
	}
	if notify != "" && notify != "TIMEOUT" {
		ev = append(ev, "notify: "+notify)
	}
	up := d.ikeUp() && d.childUp()
	sev := control.SeverityError
	if up {
		// A failure after the current CHILD SA came up was a rekey or an
		// additional exchange; the SA in use will expire.
		sev = control.SeverityInfo
		if c := d.newestChild(); c != nil && d.t.LastErrorAt.After(c.Established) {
			sev = control.SeverityWarn
			ev = append(ev, fmt.Sprintf("it happened after the current CHILD SA came up (%s): a rekey failed, and that SA expires %s", d.ago(c.Established), d.until(c.ExpiresAt)))
		}
	}
	explain, ok := ikeNotifyExplanations[notify]
	if !ok {
		explain = explainOtherFailure
	}
	summary, more, fix := explain(d)
	if up && sev == control.SeverityInfo {
		summary = "The tunnel is up now; an earlier negotiation failed: " + lowerFirst(summary)
	}
	d.add(checkIKEFail, sev, summary, append(ev, more...), fix)
}

func (d *diagnoser) newestChild() *control.Child {
	var newest *control.Child
	for _, c := range d.t.Children {
		if newest == nil || c.Established.After(newest.Established) {
			newest = c
		}
	}
	return newest
}

// ikeNotifyExplanations maps a notify (RFC 7296, Section 3.10.1) to what it
// means against AWS and how to fix it: summary, extra evidence, fix.
var ikeNotifyExplanations = map[string]func(*diagnoser) (string, []string, string){
	"NO_PROPOSAL_CHOSEN":    explainNoProposal,
	"AUTHENTICATION_FAILED": explainAuthFailed,
	"TS_UNACCEPTABLE":       explainTSUnacceptable,
	"TIMEOUT":               explainTimeout,
	"INVALID_KE_PAYLOAD": func(*diagnoser) (string, []string, string) {
		return "AWS asked for a different Diffie-Hellman group (INVALID_KE_PAYLOAD); cgw retries with the group AWS names, so this alone is harmless.", nil,
			"If the tunnel does not come up, put the group AWS wants first in ike_proposals to save a round trip."
	},
	"SINGLE_PAIR_REQUIRED": func(*diagnoser) (string, []string, string) {
		return "AWS wants a single selector pair (SINGLE_PAIR_REQUIRED).", nil,
			"Use one prefix in traffic_selectors.local and one in traffic_selectors.remote, equal to the tunnel's Local and Remote IPv4 Network CIDR options."
	},
	"INTERNAL_ADDRESS_FAILURE": func(*diagnoser) (string, []string, string) {
		return "AWS refused an address request (INTERNAL_ADDRESS_FAILURE).", nil,
			"AWS does not assign addresses; this points to a cgw bug, please report it with cgwd's log."
	},
}

func proposalList(ps []ipsec.Proposal) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

func explainNoProposal(d *diagnoser) (string, []string, string) {
	tc := d.in.Tunnel
	ev := []string{
		"our IKE proposals: " + proposalList(tc.IKEProposals),
		"our ESP proposals: " + proposalList(tc.ESPProposals),
		"AWS accepts by default, IKE: " + proposalList(ipsec.AWSProposals(true)),
		"AWS accepts by default, ESP: " + proposalList(ipsec.AWSProposals(false)),
	}
	for _, p := range tc.IKEProposals {
		if !slices.ContainsFunc(ipsec.AWSProposals(true), func(a ipsec.Proposal) bool { return ipsec.Overlaps(p, a) }) {
			ev = append(ev, fmt.Sprintf("IKE proposal %s has no combination AWS accepts even with default tunnel options", p))
		}
	}
	for _, p := range tc.ESPProposals {
		if len(p.DHGroups) == 0 {
			ev = append(ev, fmt.Sprintf("ESP proposal %s has no DH group: AWS requires PFS, so rekeys of this CHILD SA fail with NO_PROPOSAL_CHOSEN", p))
			continue
		}
		if !slices.ContainsFunc(ipsec.AWSProposals(false), func(a ipsec.Proposal) bool { return ipsec.Overlaps(p, a) }) {
			ev = append(ev, fmt.Sprintf("ESP proposal %s has no combination AWS accepts even with default tunnel options", p))
		}
	}
	if o := tc.AWS; o != nil {
		ev = append(ev, fmt.Sprintf("AWS tunnel options recorded in aws_tunnel_options: phase 1 %s, phase 2 %s (if AWS still rejects proposals that meet them, the AWS side changed: re-import)", o.Phase1.AWSOptionsPhase, o.Phase2.AWSOptionsPhase))
	}
	ev = append(ev, "AWS picks the lowest value its tunnel options allow among those we offer, not our first choice")
	phase := "our proposals"
	if d.ikeUp() {
		phase = "our ESP (phase 2) proposals"
	}
	return fmt.Sprintf("AWS accepted none of %s (NO_PROPOSAL_CHOSEN).", phase), ev,
		"Compare with the tunnel options of the VPN connection (`aws ec2 describe-vpn-connections`, Options.TunnelOptions: Phase1/Phase2 EncryptionAlgorithms, IntegrityAlgorithms, DHGroupNumbers); the downloaded configuration file shows only the minimum, not custom options. Simplest: remove ike_proposals and esp_proposals to use cgw's defaults, which offer every algorithm AWS accepts, or re-import with `cgwctl import-aws` from that JSON, which offers exactly what each tunnel allows. Otherwise add to ike_proposals and esp_proposals a proposal built from values listed there (for example aes256-sha256-modp2048), and give every ESP proposal a DH group for PFS."
}

func explainAuthFailed(d *diagnoser) (string, []string, string) {
	tc := d.in.Tunnel
	if tc.Auth == config.AuthCertificate {
		return explainCertAuthFailed(d)
	}
	id, idFrom := d.effectiveLocalID()
	ev := []string{fmt.Sprintf("this is %s, AWS outside IP %s", d.position(), tc.PeerAddress)}
	if id.IsValid() {
		ev = append(ev, fmt.Sprintf("our identity (IDi): %s, from %s", id, idFrom))
	}
	if tc.PSKFile != "" {
		ev = append(ev, "psk read from "+tc.PSKFile)
	} else {
		ev = append(ev, "psk given inline in the configuration")
	}
	for i := range d.in.Conn.Tunnels {
		o := &d.in.Conn.Tunnels[i]
		if o.Name != tc.Name && len(o.PSK) > 0 && subtle.ConstantTimeCompare(o.PSK, tc.PSK) == 1 {
			ev = append(ev, fmt.Sprintf("tunnels %s and %s have the same PSK; AWS generates a different key per tunnel unless you set them", tc.Name, o.Name))
		}
	}
	if d.t.NAT {
		ev = append(ev, "a NAT was detected: AWS expects the NAT device's public IP as our identity")
	}
	if ic := d.identity(); ic.wrong() {
		return fmt.Sprintf("AWS rejected our authentication (AUTHENTICATION_FAILED): our identity %s is not the address AWS sees us at (see the nat finding).", ic.id),
			append(ev, fmt.Sprintf("AWS's NAT detection shows it saw our IKE_SA_INIT come from another address than %s", ic.id)),
			"Set local_id to the address AWS sees: the customer gateway's IP address in AWS (behind NAT, the NAT device's public IP), as the nat finding says. If AUTHENTICATION_FAILED stays after that, check the pre-shared key of the tunnel whose outside IP is " + tc.PeerAddress.String() + "."
	}
	return "AWS rejected our authentication (AUTHENTICATION_FAILED): the pre-shared key or our identity does not match what AWS has for this tunnel.", ev,
		fmt.Sprintf("Copy the pre-shared key of the tunnel whose outside IP is %s (AWS console > VPN connection > Modify VPN tunnel options, or the downloaded configuration): tunnel 1 and tunnel 2 have different keys and are easily swapped, and stray spaces or quotes break it. Our identity must be the customer gateway's IP address in AWS (behind NAT, the NAT device's public IP): set local_id.", tc.PeerAddress)
}

func prefixList(ps []netip.Prefix) string {
	if len(ps) == 0 {
		return "(none)"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

func explainTSUnacceptable(d *diagnoser) (string, []string, string) {
	ts := d.in.Tunnel.TrafficSelectors
	ev := []string{
		fmt.Sprintf("our selectors: local (customer side) %s, remote (AWS side) %s", prefixList(ts.Local), prefixList(ts.Remote)),
		"AWS's defaults: Local IPv4 Network CIDR 0.0.0.0/0, Remote IPv4 Network CIDR 0.0.0.0/0 (in AWS's terms Local is your side)",
	}
	return "AWS refused our traffic selectors (TS_UNACCEPTABLE).", ev,
		"Set traffic_selectors.local to the tunnel's Local IPv4 Network CIDR and traffic_selectors.remote to its Remote IPv4 Network CIDR, exactly (AWS console > Modify VPN tunnel options), or leave both at 0.0.0.0/0, AWS's default, and let the routes decide what enters the tunnel."
}

func explainTimeout(d *diagnoser) (string, []string, string) {
	tc := d.in.Tunnel
	ev := []string{fmt.Sprintf("IKE messages sent: %d, received: %d", d.in.IKERequests, d.in.IKEResponses)}
	if d.in.IKEResponses == 0 {
		return "The negotiation timed out: AWS never answered.", ev,
			fmt.Sprintf("Allow UDP 500 and 4500 to and from %s on every firewall on the way, and check it is this tunnel's outside IP in the AWS console.", tc.PeerAddress)
	}
	return "The negotiation timed out: AWS answered earlier messages, then stopped.", ev,
		"When AWS answered IKE_SA_INIT but not IKE_AUTH, UDP 4500 is usually blocked (IKE moves from port 500 to 4500 when a NAT is detected) or IP fragments of the larger IKE_AUTH message are dropped: allow UDP 4500 both ways and fragments. If the tunnel had been up, AWS may be replacing its endpoint; cgw retries."
}

func explainOtherFailure(d *diagnoser) (string, []string, string) {
	n := d.notifyKind()
	if n == "" {
		return "The last IKE negotiation failed.", nil,
			"cgwd's log around that time has the IKE exchange that failed; the tunnel activity log in AWS (if enabled) has AWS's side."
	}
	return fmt.Sprintf("The last IKE negotiation failed with %s.", n), nil,
		"cgwd's log around that time has the IKE exchange that failed; the tunnel activity log in AWS (if enabled) has AWS's side."
}

func lowerFirst(s string) string {
	if s == "" || strings.HasPrefix(s, "AWS") || strings.HasPrefix(s, "IKE") {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// lifetimes: AWS rekeys on its schedule whatever ours is.
func (d *diagnoser) lifetimes() {
	tc := d.in.Tunnel
	type row struct {
		key       string
		ours, aws time.Duration
	}
	rows := []row{
		{"ike_lifetime", tc.IKELifetime, awsPhase1Lifetime},
		{"child_lifetime", tc.ChildLifetime, awsPhase2Lifetime},
		{"rekey_margin", tc.RekeyMargin, awsRekeyMargin},
	}
	var ev []string
	differ := false
	for _, r := range rows {
		mark := ""
		if r.ours != r.aws {
			differ = true
			mark = " (differs)"
		}
		ev = append(ev, fmt.Sprintf("%s: %s, AWS default %s (%d s)%s", r.key, human.Duration(r.ours), human.Duration(r.aws), int(r.aws/time.Second), mark))
	}
	var problems []string
	if tc.IKELifetime < awsPhase1Min || tc.IKELifetime > awsPhase1Lifetime {
		problems = append(problems, fmt.Sprintf("ike_lifetime %s is outside what AWS allows for phase 1 (900 to 28800 s)", human.Duration(tc.IKELifetime)))
	}
	if tc.ChildLifetime < awsPhase2Min || tc.ChildLifetime > awsPhase2Lifetime {
		problems = append(problems, fmt.Sprintf("child_lifetime %s is outside what AWS allows for phase 2 (900 to 3600 s)", human.Duration(tc.ChildLifetime)))
	}
	if tc.ChildLifetime >= tc.IKELifetime {
		problems = append(problems, "child_lifetime is not shorter than ike_lifetime (AWS requires phase 2 < phase 1)")
	}
	ev = append(ev, problems...)
	if !differ && len(problems) == 0 {
		d.add(checkLifetimes, control.SeverityOK, "Lifetimes match AWS's defaults (IKE 8h, CHILD 1h, rekey margin 4m30s).", ev,
			"")
		return
	}
	d.add(checkLifetimes, control.SeverityWarn,
		"Lifetimes differ from AWS's defaults. AWS rekeys on its own schedule whatever cgw's lifetimes are, so the side with the shorter lifetime rekeys first; unless the AWS tunnel options were changed to the same values, rekeys come at times you do not expect.",
		ev,
		"Set ike_lifetime, child_lifetime and rekey_margin to the tunnel's Phase1LifetimeSeconds, Phase2LifetimeSeconds and RekeyMarginTimeSeconds (28800, 3600 and 270 unless changed), or remove them from the configuration to use AWS's defaults.")
}

// dpd: unanswered probes, and tunnels that sit idle.
func (d *diagnoser) dpd() {
	t, tc := d.t, d.in.Tunnel
	ev := []string{}
	if tc.DPD.Interval > 0 && tc.DPD.Action != config.DPDNone {
		ev = append(ev, fmt.Sprintf("dpd: every %s without inbound traffic, %d retries, action %s", human.Duration(tc.DPD.Interval), tc.DPD.Retries, tc.DPD.Action))
	} else {
		ev = append(ev, "dpd: off")
	}
	last := t.Traffic.LastInbound
	if last.IsZero() {
		last = t.DPD.LastSeen
	}
	ev = append(ev, "last packet from AWS: "+d.ago(last))
	ka := tc.Keepalive
	if ka.Target.IsValid() {
		ev = append(ev, fmt.Sprintf("keepalive: ping %s every %s", ka.Target, human.Duration(ka.Interval)))
	} else {
		ev = append(ev, "keepalive: off")
	}
	if t.DPD.Misses > 0 {
		ev = append(ev, fmt.Sprintf("unanswered DPD probes: %d", t.DPD.Misses))
	}
	dead := strings.HasPrefix(strings.ToLower(d.failure()), "peer dead")
	switch {
	case !d.ikeUp() && dead:
		d.add(checkDPD, control.SeverityError,
			"AWS stopped answering dead peer detection and was declared dead.", ev,
			"Check that UDP 500/4500 still pass both ways (firewall state timeouts, NAT mappings: keep nat_keepalive on) and whether AWS replaced its tunnel endpoint (AWS Health, tunnel activity log). cgw restarts the tunnel when dpd.action is restart.")
		return
	case t.DPD.Misses > 0 && d.ikeUp():
		d.add(checkDPD, control.SeverityWarn,
			fmt.Sprintf("%s went unanswered: packets from AWS are not arriving.", diagCount(t.DPD.Misses, "dead peer detection probe")), ev,
			"Check that UDP 500/4500 still pass both ways and that a NAT mapping has not expired (nat_keepalive). AWS applies its DPD action after 3 unanswered probes of its own.")
		return
	case tc.DPD.Interval == 0 || tc.DPD.Action == config.DPDNone:
		d.add(checkDPD, control.SeverityWarn,
			"Dead peer detection is off: cgw does not notice when AWS replaces its endpoint or the path breaks, and keeps a dead tunnel.", ev,
			"Set dpd: {interval: 10s, retries: 3, action: restart}, as AWS recommends.")
		return
	case !d.childUp():
		d.add(checkDPD, control.SeverityInfo, "Dead peer detection has nothing to watch while the tunnel is down.", ev, "")
		return
	}
	idle := d.now.Sub(last)
	switch {
	case last.IsZero():
		d.add(checkDPD, control.SeverityWarn, "Nothing has ever been received through this tunnel.", ev,
			"See the direction finding; if the tunnel only carries occasional traffic, set keepalive.target to the AWS inside address "+tc.InsidePeer().String()+" so it never sits idle.")
	case ka.Target.IsValid() && ka.Interval > 0 && idle > diagIdleKeepaliveX*ka.Interval:
		d.add(checkDPD, control.SeverityWarn,
			fmt.Sprintf("The keepalive to %s gets no reply: nothing received for %s.", ka.Target, human.Duration(idle)), ev,
			"Check that the target answers ICMP echo (AWS's inside address "+tc.InsidePeer().String()+" does) and see the direction and drops findings.")
	case !ka.Target.IsValid() && idle > max(awsIdleDPD, diagStaleInboundMul*tc.DPD.Interval):
		d.add(checkDPD, control.SeverityWarn,
			fmt.Sprintf("The tunnel has been idle for %s. AWS probes after 10 s without traffic and may take an idle tunnel down.", human.Duration(idle)), ev,
			"Set keepalive.target to the AWS inside address "+tc.InsidePeer().String()+" (interval 5s) so the tunnel never sits idle, as AWS recommends.")
	default:
		d.add(checkDPD, control.SeverityOK, "No unanswered dead peer detection probes; AWS's packets arrive.", ev, "")
	}
}
