package daemon

import (
	"crypto/subtle"
	"fmt"
	"github.com/cgwproject/cgw/internal/human"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cgwproject/cgw/config"
	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/ipsec"
)

// Diagnose: the troubleshooting checklist of `cgwctl diagnose`.
//
// diagnoseTunnel walks AWS's troubleshooting order (aws-vpn-facts section 7:
// is there an IKE SA, then an IPsec SA, do the firewalls let it through, does
// traffic cross the tunnel, is BGP Established with prefixes both ways, are
// the routes installed) over one tunnel's configuration and two status
// samples, and explains each result in plain language with the numbers seen
// and what to change. It is a pure function of its input, so every finding
// is unit-tested with realistic samples; collecting the samples, counting IKE
// messages and probing the MTU is the caller's job. A check that passes
// yields an OK finding rather than nothing, so a healthy tunnel reads as a
// completed checklist.

// MTUProbeResult is the outcome of an MTU probe through a tunnel: ICMP echo
// requests with DF set, of several inner IPv4 packet sizes, to the tunnel's
// inside peer address.
type MTUProbeResult struct {
	// Largest is the largest inner IPv4 packet size, in bytes, that got an
	// echo reply; 0 when none did.
	Largest int
	// Tried lists the sizes sent, in order.
	Tried []int
	// Err says why the probe failed or stopped early ("" when it ran).
	Err string
}

// DiagInput is everything diagnose needs about one tunnel.
type DiagInput struct {
	Conn   *config.Connection
	Tunnel *config.Tunnel
	// Before and After are two status samples of the tunnel taken Window
	// apart; the counter deltas between them drive the direction analysis.
	// Before may be nil (no direction analysis); After should not be.
	Before, After *control.Tunnel
	Window        time.Duration
	// Routes are the kernel routes installed for the connection.
	Routes []control.Route
	// MTUProbe is nil when no probe ran (for example the tunnel is down).
	MTUProbe *MTUProbeResult
	// IKEResponses and IKERequests count the IKE messages received from and
	// sent to the peer since start: are UDP 500/4500 answered?
	IKEResponses, IKERequests uint64
	// LastIKEFailure is the last negotiation failure sentence;
	// LastIKENotify its notify name (NO_PROPOSAL_CHOSEN,
	// AUTHENTICATION_FAILED, TS_UNACCEPTABLE, ...), "timeout" when the peer
	// stopped answering, or "" / "none".
	LastIKEFailure string
	LastIKENotify  string
	// Now is when After was taken; the zero value means time.Now().
	Now time.Time
}

// Check identifiers, in the order diagnoseTunnel reports them.
const (
	checkTunnel    = "tunnel"
	checkIKEPorts  = "ike-ports"
	checkNAT       = "nat"
	checkIKEFail   = "ike-failure"
	checkLifetimes = "lifetimes"
	checkDPD       = "dpd"
	checkBGP       = "bgp"
	checkRoutes    = "routes"
	checkDirection = "direction"
	checkDrops     = "drops"
	checkMTU       = "mtu"
)

// AWS's tunnel defaults (aws-vpn-facts 2.2, 2.3, 2.4, 2.10, 4) the findings
// compare against. These are facts about the peer, not cgw's defaults.
const (
	awsPhase1Lifetime   = 28800 * time.Second
	awsPhase2Lifetime   = 3600 * time.Second
	awsRekeyMargin      = 270 * time.Second
	awsPhase1Min        = 900 * time.Second
	awsPhase2Min        = 900 * time.Second
	awsIdleDPD          = 10 * time.Second // AWS probes after 10 s without traffic
	awsBGPStartup       = time.Minute      // AWS: BGP is up "about 30 s" after IPsec
	awsVGWPrefixLimit   = 100
	awsTGWPrefixLimit   = 1000
	awsRecommendedMSS   = 1379 // tcp_mss_adjustment in AWS's configuration
	awsMaxReplayWindow  = 2048
	diagMinPackets      = 3 // fewer packets in a window are too few to call a direction broken
	diagIdleKeepaliveX  = 3 // keepalive intervals without inbound before calling it unanswered
	diagStaleInboundMul = 3 // DPD intervals without inbound before calling the tunnel idle
)

// diagnoseTunnel runs every check on one tunnel and returns the findings in
// checklist order. It never panics on partial input: missing samples turn
// into findings that say what could not be checked.
func diagnoseTunnel(in DiagInput) []control.Finding {
	d := &diagnoser{in: in, now: in.Now}
	if d.now.IsZero() {
		d.now = time.Now()
	}
	if in.Tunnel == nil || in.Conn == nil {
		name := ""
		if in.After != nil {
			name = in.After.Name
		}
		return []control.Finding{{Tunnel: name, Check: checkTunnel, Severity: control.SeverityError,
			Summary: "The tunnel has no configuration; diagnose cannot run.",
			Fix:     "Check the tunnel name against `cgwctl status` and the configuration file."}}
	}
	d.name = in.Tunnel.Name
	d.t = in.After
	if d.t == nil {
		d.t = &control.Tunnel{Name: in.Tunnel.Name, State: "down", IKEState: "Down", ChildState: "Down"}
	}
	for _, check := range diagChecks {
		check(d)
	}
	return d.out
}

// diagChecks is the checklist, in AWS's troubleshooting order.
var diagChecks = []func(*diagnoser){
	(*diagnoser).tunnelState,
	(*diagnoser).ikePorts,
	(*diagnoser).nat,
	(*diagnoser).ikeFailure,
	(*diagnoser).lifetimes,
	(*diagnoser).dpd,
	(*diagnoser).bgp,
	(*diagnoser).routes,
	(*diagnoser).direction,
	(*diagnoser).drops,
	(*diagnoser).mtu,
}

type diagnoser struct {
	in   DiagInput
	now  time.Time
	name string
	t    *control.Tunnel // the After sample, never nil
	out  []control.Finding
}

func (d *diagnoser) add(check string, sev control.Severity, summary string, evidence []string, fix string) {
	d.out = append(d.out, control.Finding{Tunnel: d.name, Check: check, Severity: sev, Summary: summary, Evidence: evidence, Fix: fix})
}

func (d *diagnoser) ikeUp() bool {
	return d.t.IKE != nil || d.t.IKEState == "Established" || d.t.IKEState == "Rekeying"
}

func (d *diagnoser) childUp() bool {
	return d.t.ChildState == "Established" || d.t.ChildState == "Rekeying"
}

func (d *diagnoser) ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return human.Duration(d.now.Sub(t)) + " ago"
}

func (d *diagnoser) until(t time.Time) string {
	if t.IsZero() {
		return "not scheduled"
	}
	return "in " + human.Duration(t.Sub(d.now))
}

// position names the tunnel as the AWS console does ("tunnel 1 of 2").
func (d *diagnoser) position() string {
	for i := range d.in.Conn.Tunnels {
		if d.in.Conn.Tunnels[i].Name == d.name {
			return fmt.Sprintf("tunnel %d of %d of connection %s", i+1, len(d.in.Conn.Tunnels), d.in.Conn.Name)
		}
	}
	return "connection " + d.in.Conn.Name
}

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
	id, idFrom := d.effectiveLocalID()
	idLine := "local_id: " + idFrom
	if id.IsValid() {
		idLine = fmt.Sprintf("local_id: %s, from %s", id, idFrom)
	}
	switch {
	case t.NAT:
		ev = append(ev, idLine, "ESP is carried in UDP 4500 (RFC 3948)")
		fix := "Behind NAT, local_id must be the public IP of the NAT device, the IP address of the customer gateway in AWS. Keep UDP 4500 forwarded to this host and nat_keepalive on so the NAT mapping does not expire."
		switch {
		case id.IsValid() && isNonPublic(id):
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
	case !d.ikeUp() && d.in.IKEResponses == 0:
		d.add(checkNAT, control.SeverityInfo, "NAT detection needs an answer from AWS; not known yet.", nil, "")
	default:
		// cgw's dataplane always carries ESP in UDP 4500 (it asks AWS for
		// encapsulation even without a NAT), so only UDP matters here.
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

// bgp: is the session Established, and if not, why?
func (d *diagnoser) bgp() {
	c, tc := d.in.Conn, d.in.Tunnel
	if c.Routing != config.RoutingBGP || c.BGP == nil {
		return
	}
	b := d.t.BGP
	if b == nil {
		d.add(checkBGP, control.SeverityWarn, "BGP is configured but the daemon reports no neighbor for this tunnel.", nil,
			"Check cgwd's log for BGP errors at startup.")
		return
	}
	ev := []string{fmt.Sprintf("neighbor %s AS %d, state %s", b.Neighbor, b.PeerASN, b.State)}
	if b.State == "Established" && !b.Since.IsZero() {
		ev[0] += ", up for " + human.Duration(d.now.Sub(b.Since))
	}
	ev = append(ev, fmt.Sprintf("prefixes received %d, accepted %d, advertised %d", b.Received, b.Accepted, b.Advertised))
	if b.LastError != "" {
		ev = append(ev, "last error: "+b.LastError)
	}
	lastErr := strings.ToLower(b.LastError)
	switch {
	case b.State == "Established":
		switch {
		case len(c.BGP.Advertise) == 0:
			d.add(checkBGP, control.SeverityWarn, "BGP is Established but cgw advertises no prefix: AWS has no route back to your network.", ev,
				"List your on-premises prefixes (or 0.0.0.0/0) in bgp.advertise.")
		case b.Advertised > awsVGWPrefixLimit:
			d.add(checkBGP, control.SeverityWarn,
				fmt.Sprintf("BGP is Established but cgw advertises %d prefixes: a virtual private gateway accepts at most %d (a transit gateway %d) and closes the session above that.", b.Advertised, awsVGWPrefixLimit, awsTGWPrefixLimit), ev,
				"Summarise the advertised prefixes.")
		case strings.Contains(lastErr, "advertising"):
			d.add(checkBGP, control.SeverityWarn, "BGP is Established but close to AWS's prefix limit.", ev, "Summarise the advertised prefixes.")
		default:
			d.add(checkBGP, control.SeverityOK, "BGP is Established.", ev, "")
		}
	case !d.childUp():
		d.add(checkBGP, control.SeverityWarn,
			"BGP is down because the tunnel is down: the session runs inside the tunnel.", ev,
			"Fix the IPsec findings above first; BGP comes up about 30 s after the CHILD SA.")
	case b.LastError == "" && !d.t.Since.IsZero() && d.now.Sub(d.t.Since) < awsBGPStartup:
		d.add(checkBGP, control.SeverityInfo,
			fmt.Sprintf("BGP is starting (state %s): the tunnel came up %s ago and AWS establishes BGP about 30 s after IPsec.", b.State, human.Duration(d.now.Sub(d.t.Since))), ev,
			"Run diagnose again in a minute.")
	case strings.Contains(lastErr, "hold timer expired"):
		d.add(checkBGP, control.SeverityError,
			"BGP went down because the hold timer expired: AWS's keepalives stopped arriving through the tunnel even though the SAs are up.", ev,
			"The data plane is broken or loses packets: see the direction, drops and mtu findings (large BGP UPDATEs are lost when the tunnel MTU is wrong; set mss_clamp: 1379). Keep bgp.keepalive at most a third of hold_time (10s/30s as AWS).")
	case strings.Contains(lastErr, "bad peer as") || strings.Contains(lastErr, "bad open") || strings.Contains(lastErr, "open message error"):
		ev = append(ev, fmt.Sprintf("configured: bgp.asn %d, bgp.peer_asn %d", c.BGP.ASN, c.BGP.PeerASN))
		d.add(checkBGP, control.SeverityError,
			"BGP is refused at OPEN: an AS number does not match (AWS logs \"bad OPEN ... remote AS is X, expected Y\").", ev,
			"bgp.asn must be the BGP ASN of the customer gateway in AWS, and bgp.peer_asn the Amazon-side ASN of the virtual private gateway or transit gateway (64512 unless chosen at creation).")
	case strings.Contains(lastErr, "maximum number of prefixes"):
		d.add(checkBGP, control.SeverityError,
			fmt.Sprintf("AWS closed the session because cgw advertised too many prefixes (Cease 6/1): at most %d to a virtual private gateway, %d to a transit gateway.", awsVGWPrefixLimit, awsTGWPrefixLimit), ev,
			"Summarise bgp.advertise into fewer, larger prefixes.")
	case strings.Contains(lastErr, "cease") || strings.Contains(lastErr, "administrative"):
		d.add(checkBGP, control.SeverityError,
			"AWS closed the BGP session (a NOTIFICATION Cease came from AWS); the tunnel itself is up.", ev,
			"AWS shuts sessions for administrative reasons (maintenance, a configuration change of the VPN connection, an endpoint replacement) or a prefix limit; cgw reconnects by itself. If it persists, check the VPN connection's tunnel details and AWS's BGP log.")
	case b.State == "Connect" || b.State == "Active":
		ev = append(ev, fmt.Sprintf("our inside address %s, AWS's %s (inside_cidr %s)", tc.InsideLocal(), tc.InsidePeer(), tc.InsideCIDR))
		d.add(checkBGP, control.SeverityError,
			fmt.Sprintf("BGP is stuck in %s: no TCP connection on port 179 through the tunnel.", b.State), ev,
			"Check that inside_cidr is the tunnel's Inside IPv4 CIDR in AWS (AWS uses the first address, cgw the second), that no host firewall blocks TCP 179 on the tunnel interface, and see the direction finding: traffic must cross the tunnel both ways.")
	default:
		d.add(checkBGP, control.SeverityError, fmt.Sprintf("BGP is not Established (state %s).", b.State), ev,
			"See the last error above and cgwd's log; AWS's BGP log (if enabled) has AWS's side.")
	}
}

// routes: are the routes installed?
func (d *diagnoser) routes() {
	c, tc := d.in.Conn, d.in.Tunnel
	var mine, others []control.Route
	for _, r := range d.in.Routes {
		if slices.Contains(r.Via, tc.Name) {
			mine = append(mine, r)
		} else {
			others = append(others, r)
		}
	}
	var ev []string
	for _, r := range d.in.Routes {
		ev = append(ev, fmt.Sprintf("%s via %s (%s, metric %d)", r.Prefix, strings.Join(r.Via, ","), r.Source, r.Metric))
	}
	if len(ev) == 0 {
		ev = append(ev, "no kernel route installed for connection "+c.Name)
	}
	standby := func() {
		d.add(checkRoutes, control.SeverityOK,
			fmt.Sprintf("This tunnel is the standby path: the connection's routes (%d) use its other tunnel.", len(others)), ev, "")
	}
	if c.Routing == config.RoutingStatic && c.Static != nil {
		if !d.childUp() {
			d.add(checkRoutes, control.SeverityInfo, "The tunnel is down, so its static routes are withdrawn (as intended).", ev, "")
			return
		}
		var missing []string
		for _, p := range c.Static.RemotePrefixes {
			if !slices.ContainsFunc(d.in.Routes, func(r control.Route) bool { return r.Prefix == p.String() }) {
				missing = append(missing, p.String())
			}
		}
		switch {
		case len(missing) > 0:
			d.add(checkRoutes, control.SeverityError,
				fmt.Sprintf("The tunnel is up but %d of the static.remote_prefixes have no kernel route: %s.", len(missing), strings.Join(missing, ", ")), ev,
				"Check the routes section (table, protocol, metric) and cgwd's log for route errors; `ip route show table all proto <routes.protocol>` lists what cgw installed.")
		case len(mine) == 0:
			standby()
		default:
			d.add(checkRoutes, control.SeverityOK, fmt.Sprintf("This tunnel carries %s.", diagCount(len(mine), "static route")), ev, "")
		}
		return
	}
	b := d.t.BGP
	if b == nil || b.State != "Established" {
		d.add(checkRoutes, control.SeverityInfo, "BGP is not Established on this tunnel, so no routes are learned through it.", ev, "")
		return
	}
	switch {
	case b.Received == 0:
		d.add(checkRoutes, control.SeverityError, "BGP is Established but AWS advertises no prefix, so there is nothing to route to AWS.", ev,
			"A virtual private gateway advertises the CIDRs of the VPC it is attached to: check the gateway is attached to the VPC. A transit gateway advertises the routes of the TGW route table associated with the VPN attachment: check the VPC attachments propagate into it.")
	case b.Accepted == 0:
		d.add(checkRoutes, control.SeverityError,
			fmt.Sprintf("AWS sent %s but cgw accepted none.", diagCount(b.Received, "prefix")), ev,
			"Prefixes whose AS path holds our own ASN are dropped as a loop: if another of your sites uses the same ASN, give them distinct ASNs. cgwd's log names the reason.")
	case len(d.in.Routes) == 0:
		d.add(checkRoutes, control.SeverityError,
			fmt.Sprintf("BGP accepted %s from AWS but no kernel route is installed.", diagCount(b.Accepted, "prefix")), ev,
			"Check the routes section of the configuration (table, protocol, metric): `ip route show table <routes.table> proto <routes.protocol>` should list them; cgwd's log has the route errors.")
	case len(mine) == 0:
		standby()
	default:
		d.add(checkRoutes, control.SeverityOK, fmt.Sprintf("This tunnel carries %s learned from AWS.", diagCount(len(mine), "route")), ev, "")
	}
}

// counterDelta returns b-a, or false when the counter went backwards (the
// tunnel was recreated between the samples).
func counterDelta(a, b uint64) (uint64, bool) {
	if b < a {
		return 0, false
	}
	return b - a, true
}

// direction: which way does traffic flow during the window?
func (d *diagnoser) direction() {
	if !d.childUp() {
		d.add(checkDirection, control.SeverityInfo, "No CHILD SA, so no traffic can cross the tunnel; direction analysis skipped.", nil, "")
		return
	}
	if d.in.Before == nil || d.in.Window <= 0 {
		d.add(checkDirection, control.SeverityInfo, "Direction analysis needs two samples of the counters; not measured.", nil, "")
		return
	}
	b, a := d.in.Before.Traffic, d.t.Traffic
	pout, ok1 := counterDelta(b.PacketsOut, a.PacketsOut)
	pin, ok2 := counterDelta(b.PacketsIn, a.PacketsIn)
	bout, ok3 := counterDelta(b.BytesOut, a.BytesOut)
	bin, ok4 := counterDelta(b.BytesIn, a.BytesIn)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		d.add(checkDirection, control.SeverityInfo, "The counters restarted during the measurement (the tunnel was re-created); run diagnose again.", nil, "")
		return
	}
	w := human.Duration(d.in.Window)
	ev := []string{
		fmt.Sprintf("in %s: sent %d packets (%s) to AWS, received %d packets (%s)", w, pout, human.Bytes(bout), pin, human.Bytes(bin)),
		fmt.Sprintf("since start: sent %d packets (%s), received %d packets (%s)", a.PacketsOut, human.Bytes(a.BytesOut), a.PacketsIn, human.Bytes(a.BytesIn)),
	}
	espIn := "inbound UDP 4500" // cgw always carries ESP in UDP
	switch {
	case pout >= diagMinPackets && pin == 0:
		d.add(checkDirection, control.SeverityError,
			"Packets leave through the tunnel but nothing comes back from AWS.", ev,
			"On the AWS side check: the security groups of the instances allow your on-premises CIDR; the subnet's network ACLs allow it both ways; the VPC route tables have a route to your on-premises prefix via the virtual private gateway (or route propagation enabled), or for a transit gateway the TGW route tables; firewalls on the instances themselves. On this side check that "+espIn+" from "+d.in.Tunnel.PeerAddress.String()+" is not blocked.")
	case pin >= diagMinPackets && pout == 0:
		d.add(checkDirection, control.SeverityWarn,
			"AWS sends packets through the tunnel but nothing goes back: on-premises routing does not send the replies into the tunnel.", ev,
			"The on-premises hosts or router need a route to the VPC CIDR via this gateway; on this host enable IP forwarding (net.ipv4.ip_forward=1) and check firewall FORWARD rules and rp_filter. With two tunnels, replies leaving through the other tunnel are fine (asymmetric routing).")
	case pin > 0 && pout > 0:
		d.add(checkDirection, control.SeverityOK, "Traffic crosses the tunnel in both directions.", ev, "")
	default:
		d.add(checkDirection, control.SeverityInfo,
			"Too little traffic during the measurement to judge the direction.", ev,
			"Send traffic through the tunnel (for example ping a VPC instance) while diagnose runs, or set keepalive.target.")
	}
}

// dropReasonInfo explains one dataplane drop reason (see dataplane's
// DropReasons).
type dropReasonInfo struct {
	sev     control.Severity
	meaning string
	fix     string
}

var dropExplanations = map[string]dropReasonInfo{
	"auth": {control.SeverityError,
		"ESP packets failed the integrity check: the keys do not match (the SAs are out of sync after a rekey) or something on the path alters the packets",
		"Rekey the tunnel (`cgwctl tunnel rekey NAME`); if drops continue, restart it (`cgwctl tunnel down NAME` then `up`) and look for middleboxes that rewrite ESP or UDP 4500."},
	"replay": {control.SeverityWarn,
		"packets arrived twice, or so late that the anti-replay window had moved past them",
		fmt.Sprintf("The path reorders or duplicates packets; raise replay_window (up to %d, AWS's maximum) if reordering is heavy.", awsMaxReplayWindow)},
	"ts_mismatch": {control.SeverityWarn,
		"decrypted packets had addresses outside the negotiated traffic selectors",
		"Align traffic_selectors with the addresses really in use, or use 0.0.0.0/0 on both sides (AWS's default)."},
	"no_sa": {control.SeverityWarn,
		"packets were routed into the tunnel while it had no outbound SA (down or being set up)",
		"Fix the tunnel findings above; routes through a down tunnel should move to the other tunnel (BGP withdraws them)."},
	"unknown_spi": {control.SeverityWarn,
		"ESP arrived for an SPI cgw does not know: AWS still uses an SA that cgw deleted (for example after cgwd restarted)",
		"Restart the tunnel (`cgwctl tunnel down NAME` then `up`) so AWS replaces its SAs."},
	"malformed": {control.SeverityWarn,
		"ESP or inner packets were malformed",
		"A middlebox may truncate or alter packets; check the MTU finding and the path."},
	"padding": {control.SeverityWarn,
		"ESP padding was wrong after decryption, usually a key or algorithm mismatch",
		"Rekey the tunnel (`cgwctl tunnel rekey NAME`)."},
	"mtu": {control.SeverityWarn,
		"inner packets were larger than the tunnel MTU",
		fmt.Sprintf("Set mss_clamp: %d (AWS's tcp_mss_adjustment) and lower the MTU of on-premises routers toward the VPC, or let path MTU discovery work (do not block ICMP \"fragmentation needed\").", awsRecommendedMSS)},
	"tun_write": {control.SeverityError,
		"the tunnel device refused decrypted packets",
		"Check that the tunnel interface is up (`ip link`) and cgwd's log."},
	"udp_send": {control.SeverityError,
		"this host refused to send ESP packets toward AWS",
		"Check the route to AWS's outside IP, the outside interface and local firewall OUTPUT rules."},
	"seq_exhausted": {control.SeverityWarn,
		"an outbound SA ran out of sequence numbers before it was rekeyed",
		"Check that rekeys succeed (ike-failure finding) or lower child_lifetime."},
	"expired": {control.SeverityWarn,
		"an SA reached its hard limit before it was rekeyed",
		"Check that rekeys succeed (ike-failure finding)."},
	"dummy": {control.SeverityInfo,
		"TFC dummy packets (next header 59) were dropped, as intended",
		""},
	"not_ip": {control.SeverityInfo,
		"non-IP frames were read from the tunnel device and discarded",
		""},
}

// dropOrder lists the reasons in the order findings are reported.
var dropOrder = []string{"auth", "padding", "malformed", "unknown_spi", "replay", "ts_mismatch", "no_sa", "mtu",
	"seq_exhausted", "expired", "udp_send", "tun_write", "dummy", "not_ip"}

func sortedDropReasons(m map[string]uint64) []string {
	var out []string
	for _, r := range dropOrder {
		if _, ok := m[r]; ok {
			out = append(out, r)
		}
	}
	var rest []string
	for r := range m {
		if _, ok := dropExplanations[r]; !ok {
			rest = append(rest, r)
		}
	}
	slices.Sort(rest)
	return append(out, rest...)
}

// drops: explain each drop reason that increased during the window.
func (d *diagnoser) drops() {
	a := d.t.Traffic.Drops
	var totals []string
	for _, r := range sortedDropReasons(a) {
		if a[r] > 0 {
			totals = append(totals, fmt.Sprintf("%s: %d", r, a[r]))
		}
	}
	if d.in.Before == nil || d.in.Window <= 0 {
		if len(totals) == 0 {
			d.add(checkDrops, control.SeverityOK, "No packet dropped since start.", nil, "")
			return
		}
		d.add(checkDrops, control.SeverityInfo, "Packets were dropped since start (not measured over a window).",
			[]string{"drops since start: " + strings.Join(totals, ", ")}, "Run diagnose again while traffic flows to see which drops are still increasing.")
		return
	}
	b := d.in.Before.Traffic.Drops
	w := human.Duration(d.in.Window)
	found := false
	for _, r := range sortedDropReasons(a) {
		n, ok := counterDelta(b[r], a[r])
		if !ok || n == 0 {
			continue
		}
		found = true
		info, known := dropExplanations[r]
		if !known {
			info = dropReasonInfo{control.SeverityWarn, "packets were dropped for reason " + r, "See cgwd's log."}
		}
		fix := strings.ReplaceAll(info.fix, "NAME", d.name)
		d.add(checkDrops, info.sev,
			fmt.Sprintf("%s dropped in %s (%s): %s.", diagCount(int(min(n, 1<<62)), "packet"), w, r, info.meaning),
			[]string{fmt.Sprintf("%s drops: %d before, %d after %s", r, b[r], a[r], w)}, fix)
	}
	if !found {
		var ev []string
		if len(totals) > 0 {
			ev = []string{"drops since start: " + strings.Join(totals, ", ")}
		}
		d.add(checkDrops, control.SeverityOK, fmt.Sprintf("No packet dropped during the %s measurement.", w), ev, "")
	}
}

// mtu: the probe result against the tunnel MTU.
func (d *diagnoser) mtu() {
	tc := d.in.Tunnel
	p := d.in.MTUProbe
	mtu := d.t.MTU
	if mtu == 0 {
		mtu = tc.MTU
	}
	clamp := "mss_clamp: off"
	if tc.MSSClamp > 0 {
		clamp = fmt.Sprintf("mss_clamp: %d", tc.MSSClamp)
	}
	if p == nil {
		if d.childUp() {
			d.add(checkMTU, control.SeverityInfo, "The MTU probe did not run.", []string{clamp}, "")
		} else {
			d.add(checkMTU, control.SeverityInfo, "The MTU probe needs the tunnel up; skipped.", nil, "")
		}
		return
	}
	tried := make([]string, len(p.Tried))
	for i, s := range p.Tried {
		tried[i] = strconv.Itoa(s)
	}
	ev := []string{
		fmt.Sprintf("probe to %s with DF set, sizes tried: %s; largest answered: %d", tc.InsidePeer(), strings.Join(tried, ", "), p.Largest),
		fmt.Sprintf("tunnel MTU: %d", mtu), clamp,
	}
	if p.Err != "" {
		ev = append(ev, "probe: "+p.Err)
	}
	switch {
	case p.Largest == 0 && len(p.Tried) == 0:
		d.add(checkMTU, control.SeverityWarn, "The MTU probe could not run.", ev, "cgwd needs CAP_NET_RAW to send ICMP echo through the tunnel.")
	case p.Largest == 0:
		d.add(checkMTU, control.SeverityError,
			fmt.Sprintf("No echo reply through the tunnel from AWS's inside address %s, even for small packets.", tc.InsidePeer()), ev,
			"The tunnel does not carry traffic both ways: see the direction and drops findings.")
	case mtu > 0 && p.Largest < mtu:
		sev := control.SeverityWarn
		fix := fmt.Sprintf("Packets between %d and %d bytes with DF set are lost on the path (a path MTU black hole). Set mtu: %d on this tunnel and keep mss_clamp at %d or below %d; AWS also recommends clearing DF and fragmenting before encryption.", p.Largest+1, mtu, p.Largest, awsRecommendedMSS, p.Largest-40)
		if tc.MSSClamp == 0 {
			sev = control.SeverityError
		}
		d.add(checkMTU, sev,
			fmt.Sprintf("Only packets up to %d bytes cross the tunnel, but its MTU is %d: larger TCP segments are lost.", p.Largest, mtu), ev, fix)
	case tc.MSSClamp == 0:
		d.add(checkMTU, control.SeverityWarn,
			fmt.Sprintf("Packets up to %d bytes cross the tunnel, but TCP MSS clamping is off: hosts that ignore the tunnel MTU send segments that get fragmented or lost.", p.Largest), ev,
			fmt.Sprintf("Set mss_clamp: %d, AWS's recommended TCP MSS.", awsRecommendedMSS))
	default:
		d.add(checkMTU, control.SeverityOK, fmt.Sprintf("Packets up to %d bytes cross the tunnel with DF set.", p.Largest), ev, "")
	}
}

// diagCount prints "1 route", "2 routes", "3 prefixes".
func diagCount(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if strings.HasSuffix(noun, "x") {
		return strconv.Itoa(n) + " " + noun + "es"
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
