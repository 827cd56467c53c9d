package diagnose

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cgwproject/cgw/config"
	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/internal/human"
)

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
			fmt.Sprintf("The data plane is broken or loses packets: see the direction, drops and mtu findings (large BGP UPDATEs are lost when the tunnel MTU is wrong; set mss_clamp: %d). Keep bgp.keepalive at most a third of hold_time (10s/30s as AWS).", awsRecommendedMSS))
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
		if tc.InsideIPv6CIDR.IsValid() {
			ev = append(ev, fmt.Sprintf("our inside address %s, AWS's %s (inside_ipv6_cidr %s; BGP runs over IPv6)", tc.InsideLocal6(), tc.InsidePeer6(), tc.InsideIPv6CIDR))
		} else {
			ev = append(ev, fmt.Sprintf("our inside address %s, AWS's %s (inside_cidr %s)", tc.InsideLocal(), tc.InsidePeer(), tc.InsideCIDR))
		}
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
	"source": {control.SeverityWarn,
		"decrypted packets came from source addresses this tunnel may not carry (not a learned or configured prefix, not the inside CIDR, not extra_sources): spoofed, or AWS sends from a prefix cgw filtered",
		"Check `cgwctl status` for filtered prefixes; add the source to the tunnel's extra_sources, loosen bgp.import, or set source_check: off."},
	"dummy": {control.SeverityInfo,
		"TFC dummy packets (next header 59) were dropped, as intended",
		""},
	"not_ip": {control.SeverityInfo,
		"non-IP frames were read from the tunnel device and discarded",
		""},
}

// dropOrder lists the reasons in the order findings are reported.
var dropOrder = []string{"auth", "padding", "malformed", "unknown_spi", "replay", "ts_mismatch", "no_sa", "mtu",
	"source", "seq_exhausted", "expired", "udp_send", "tun_write", "dummy", "not_ip"}

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
	peer := tc.InsidePeer()
	if tc.InsideIPv6CIDR.IsValid() {
		peer = tc.InsidePeer6() // IPv6-inside: ICMPv6 to AWS's /126 address
	}
	ev := []string{
		fmt.Sprintf("probe to %s with DF set, sizes tried: %s; largest answered: %d", peer, strings.Join(tried, ", "), p.Largest),
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
			fmt.Sprintf("No echo reply through the tunnel from AWS's inside address %s, even for small packets.", peer), ev,
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
