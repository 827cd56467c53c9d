package daemon

import (
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cgwproject/cgw/config"
	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/ike"
)

// metricsCollector exports the daemon state at scrape time, mirroring AWS's
// CloudWatch VPN metrics (TunnelState, TunnelDataIn, TunnelDataOut) plus the
// counters an operator needs to debug a tunnel. Values are read from the
// same snapshot as `cgwctl status`, so a configured tunnel that is down is
// exported as 0 rather than missing, and nothing is updated per packet.
type metricsCollector struct {
	d *Daemon

	tunnelState, ikeUp, childUp, natDetected         *prometheus.Desc
	dataIn, dataOut, pktIn, pktOut, drops            *prometheus.Desc
	fragmented, tooBigSent                           *prometheus.Desc
	rekeys, dpdMisses, ikeFailures, lastInbound      *prometheus.Desc
	bgpState, bgpReceived, bgpAdvertised, bgpAccepts *prometheus.Desc
	routes, filtered, info                           *prometheus.Desc
	ikeDropped                                       *prometheus.Desc
	ikeFrags, ikeFragOn                              *prometheus.Desc
	certDays                                         *prometheus.Desc
}

func newMetricsCollector(d *Daemon) *metricsCollector {
	tl := []string{"connection", "tunnel", "peer"}
	desc := func(name, help string, extra ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, append(append([]string{}, tl...), extra...), nil)
	}
	return &metricsCollector{
		d:             d,
		tunnelState:   desc("cgw_tunnel_state", "1 when the tunnel is up (BGP Established for BGP connections, CHILD SA up for static ones), as CloudWatch TunnelState."),
		ikeUp:         desc("cgw_tunnel_ike_established", "1 when the tunnel's IKE SA is established."),
		childUp:       desc("cgw_tunnel_child_established", "1 when the tunnel's CHILD SA is installed."),
		natDetected:   desc("cgw_tunnel_nat_detected", "1 when IKE detected NAT (or encapsulation is forced) on the tunnel."),
		dataIn:        desc("cgw_tunnel_data_in_bytes_total", "Inner bytes received from AWS through the tunnel, after decryption (CloudWatch TunnelDataOut from AWS's side)."),
		dataOut:       desc("cgw_tunnel_data_out_bytes_total", "Inner bytes sent to AWS through the tunnel, before encryption (CloudWatch TunnelDataIn on AWS's side)."),
		pktIn:         desc("cgw_tunnel_packets_in_total", "Inner packets received through the tunnel."),
		pktOut:        desc("cgw_tunnel_packets_out_total", "Inner packets sent through the tunnel."),
		drops:         desc("cgw_tunnel_drops_total", "Packets dropped on the tunnel, by reason.", "reason"),
		fragmented:    desc("cgw_tunnel_fragmented_total", "Inner IPv4 packets larger than the tunnel MTU that were fragmented before encryption."),
		tooBigSent:    desc("cgw_tunnel_too_big_sent_total", "ICMP fragmentation-needed and ICMPv6 packet-too-big errors sent back for inner packets larger than the tunnel MTU."),
		rekeys:        desc("cgw_tunnel_rekeys_total", "Completed rekeys, by SA kind (ike or child).", "kind"),
		dpdMisses:     desc("cgw_tunnel_dpd_misses_total", "DPD probes that went unanswered."),
		ikeFailures:   desc("cgw_tunnel_ike_failures_total", "Failed IKE negotiations, by notify type.", "notify"),
		ikeFrags:      desc("cgw_tunnel_ike_fragments_total", "IKE fragments (RFC 7383), by event: sent (retransmissions included), received (authentic, accepted), reassembled (messages).", "event"),
		ikeFragOn:     desc("cgw_tunnel_ike_fragmentation", "1 when the tunnel's IKE SA negotiated IKE fragmentation (RFC 7383)."),
		lastInbound:   desc("cgw_tunnel_last_inbound_timestamp_seconds", "Unix time of the last packet received from the peer (0 = never)."),
		certDays:      desc("cgw_tunnel_certificate_expiry_days", "Days until our certificate of a tunnel with auth: certificate expires (negative once expired); alert well before 0."),
		bgpState:      desc("cgw_bgp_session_established", "1 when the tunnel's BGP session is Established."),
		bgpReceived:   desc("cgw_bgp_prefixes_received", "Prefixes received from the tunnel's BGP neighbor."),
		bgpAccepts:    desc("cgw_bgp_prefixes_accepted", "Prefixes accepted from the tunnel's BGP neighbor."),
		bgpAdvertised: desc("cgw_bgp_prefixes_advertised", "Prefixes advertised to the tunnel's BGP neighbor."),
		routes:        prometheus.NewDesc("cgw_routes_installed", "Kernel routes cgw installed, by connection.", []string{"connection"}, nil),
		filtered: prometheus.NewDesc("cgw_routes_filtered", "Prefixes learned from AWS and not installed, by connection and reason (default_route, deny, not_allowed, prefix_limit).",
			[]string{"connection", "reason"}, nil),
		info: prometheus.NewDesc("cgw_build_info", "Build information.", []string{"version"}, nil),
		ikeDropped: prometheus.NewDesc("cgw_ike_dropped_total",
			"IKE packets dropped or answered without reaching a tunnel, by reason (malformed, unknown_spi, overflow, resend_limited, cookie_sent, invalid_ke, init_failed, "+
				"and for IKE fragments fragment_malformed, fragment_unauthentic, fragment_too_many, fragment_too_large, fragment_duplicate, fragment_stale, fragment_budget).",
			[]string{"reason"}, nil),
	}
}

func (m *metricsCollector) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(m, ch)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (m *metricsCollector) Collect(ch chan<- prometheus.Metric) {
	st := m.d.snapshot()
	counters := m.d.eventCounters()
	gauge := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	counter := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, l...)
	}
	gauge(m.info, 1, st.Version)
	for r, n := range st.IKEDrops {
		counter(m.ikeDropped, float64(n), r)
	}
	for _, c := range st.Connections {
		gauge(m.routes, float64(len(c.Routes)), c.Name)
		if c.Routing == string(config.RoutingBGP) {
			byReason := map[string]int{filterDefault: 0, filterDeny: 0, filterNotAllowed: 0, filterPrefixLimit: 0}
			for _, f := range c.Filtered {
				byReason[f.Reason]++
			}
			for r, n := range byReason {
				gauge(m.filtered, float64(n), c.Name, r)
			}
		}
		for _, t := range c.Tunnels {
			l := []string{c.Name, t.Name, peerLabel(t.Remote)}
			gauge(m.tunnelState, b2f(t.State == stateUp), l...)
			gauge(m.ikeUp, b2f(t.IKEState == ike.StateEstablished.String() || t.IKEState == ike.StateRekeying.String()), l...)
			gauge(m.childUp, b2f(t.ChildState == ike.StateEstablished.String() || t.ChildState == ike.StateRekeying.String()), l...)
			gauge(m.natDetected, b2f(t.NAT), l...)
			counter(m.dataIn, float64(t.Traffic.BytesIn), l...)
			counter(m.dataOut, float64(t.Traffic.BytesOut), l...)
			counter(m.pktIn, float64(t.Traffic.PacketsIn), l...)
			counter(m.pktOut, float64(t.Traffic.PacketsOut), l...)
			for _, r := range dropReasons(t.Traffic.Drops) {
				counter(m.drops, float64(t.Traffic.Drops[r]), append(l, r)...)
			}
			counter(m.fragmented, float64(t.Traffic.Fragmented), l...)
			counter(m.tooBigSent, float64(t.Traffic.TooBigSent), l...)
			ec := counters[t.Name]
			counter(m.rekeys, float64(ec.childRekeys), append(l, "child")...)
			counter(m.rekeys, float64(ec.ikeRekeys), append(l, "ike")...)
			counter(m.dpdMisses, float64(ec.dpdMisses), l...)
			for notify, n := range ec.failures {
				counter(m.ikeFailures, float64(n), append(l, notify)...)
			}
			var last float64
			if !t.Traffic.LastInbound.IsZero() {
				last = float64(t.Traffic.LastInbound.UnixNano()) / float64(time.Second)
			}
			gauge(m.lastInbound, last, l...)
			var fr control.IKEFragments
			if t.IKEFragments != nil {
				fr = *t.IKEFragments
			}
			gauge(m.ikeFragOn, b2f(fr.Negotiated), l...)
			counter(m.ikeFrags, float64(fr.Sent), append(l, "sent")...)
			counter(m.ikeFrags, float64(fr.Received), append(l, "received")...)
			counter(m.ikeFrags, float64(fr.Reassembled), append(l, "reassembled")...)
			if a := t.Auth; a != nil && !a.CertificateExpires.IsZero() {
				gauge(m.certDays, a.ExpiresInDays, l...)
			}
			if t.BGP != nil {
				gauge(m.bgpState, b2f(t.BGP.State == "Established"), l...)
				gauge(m.bgpReceived, float64(t.BGP.Received), l...)
				gauge(m.bgpAccepts, float64(t.BGP.Accepted), l...)
				gauge(m.bgpAdvertised, float64(t.BGP.Advertised), l...)
			}
		}
	}
}

// peerLabel is the AWS outside address without the port: the remote
// endpoint's port moves between 500 and 4500 (NAT-T), and a label that
// changes with it would start a new series and break rate() on the
// counters across every renegotiation.
func peerLabel(remote string) string {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().String()
	}
	return remote
}

// metricsTimeouts bound what a slow or idle client can hold on the metrics
// endpoint: a scrape is one small GET, so a client that sends its request
// slowly, reads the answer slowly or keeps an idle connection open is cut
// off. A variable for tests.
var metricsTimeouts = struct{ readHeader, read, write, idle time.Duration }{
	readHeader: 5 * time.Second,
	read:       10 * time.Second,
	write:      30 * time.Second,
	idle:       60 * time.Second,
}

// serveMetrics starts the Prometheus endpoint on addr; it returns the
// listener so Run can close it.
func (d *Daemon) serveMetrics(addr string) (net.Listener, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newMetricsCollector(d), newLANCollector(d), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/metrics", http.StatusFound)
	})
	go newMetricsServer(mux).Serve(ln)
	return ln, nil
}

func newMetricsServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: metricsTimeouts.readHeader,
		ReadTimeout:       metricsTimeouts.read,
		WriteTimeout:      metricsTimeouts.write,
		IdleTimeout:       metricsTimeouts.idle,
		MaxHeaderBytes:    16 << 10,
	}
}

var _ = control.SeverityOK
