package diagnose

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/cgwproject/cgw/config"
	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/internal/human"
	"github.com/cgwproject/cgw/ipsec"
)

// Diagnose: the troubleshooting checklist of `cgwctl diagnose`.
//
// Tunnel walks AWS's troubleshooting order (aws-vpn-facts section 7:
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

// Input is everything diagnose needs about one tunnel.
type Input struct {
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
	// NAT is the NAT detection of the tunnel's last IKE_SA_INIT; nil when
	// none was answered. It outlives a failed IKE SA.
	NAT *NATView
}

// NATView is what AWS's NAT detection payloads in the answer to our last
// IKE_SA_INIT said about our side (ike.NATView).
type NATView struct {
	At time.Time
	// Local is our address and port on this host's side of any NAT.
	Local netip.AddrPort
	// BehindNAT: AWS saw our request come from another address or port.
	BehindNAT bool
	// SeenAs reports whether AWS saw our request come from addr, and from
	// which port (a test against AWS's NAT_DETECTION_DESTINATION_IP hash).
	SeenAs func(addr netip.Addr) (port uint16, ok bool)
}

// Check identifiers, in the order Tunnel reports them.
const (
	checkTunnel    = "tunnel"
	checkIKEPorts  = "ike-ports"
	checkNAT       = "nat"
	checkIKEFail   = "ike-failure"
	checkCert      = "certificate"
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
	awsPhase1Lifetime   = ipsec.AWSIKELifetime
	awsPhase2Lifetime   = ipsec.AWSChildLifetime
	awsRekeyMargin      = ipsec.AWSRekeyMargin
	awsPhase1Min        = 900 * time.Second
	awsPhase2Min        = 900 * time.Second
	awsIdleDPD          = ipsec.AWSDPDInterval // AWS probes after 10 s without traffic
	awsBGPStartup       = time.Minute          // AWS: BGP is up "about 30 s" after IPsec
	awsVGWPrefixLimit   = 100
	awsTGWPrefixLimit   = 1000
	awsRecommendedMSS   = ipsec.AWSMSSClamp // tcp_mss_adjustment in AWS's configuration
	awsMaxReplayWindow  = 2048
	diagMinPackets      = 3 // fewer packets in a window are too few to call a direction broken
	diagIdleKeepaliveX  = 3 // keepalive intervals without inbound before calling it unanswered
	diagStaleInboundMul = 3 // DPD intervals without inbound before calling the tunnel idle
)

// Tunnel runs every check on one tunnel and returns the findings in
// checklist order. It never panics on partial input: missing samples turn
// into findings that say what could not be checked.
func Tunnel(in Input) []control.Finding {
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
	(*diagnoser).certificate,
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
	in   Input
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
