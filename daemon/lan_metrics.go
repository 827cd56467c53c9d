package daemon

import "github.com/prometheus/client_golang/prometheus"

// lanCollector exports the LAN neighbors and the drain state.
type lanCollector struct {
	d                                     *Daemon
	state, received, accepted, advertised *prometheus.Desc
	drained                               *prometheus.Desc
}

func newLANCollector(d *Daemon) *lanCollector {
	l := []string{"neighbor", "peer"}
	return &lanCollector{
		d:          d,
		state:      prometheus.NewDesc("cgw_lan_bgp_session_established", "1 when the session with the LAN BGP neighbor is Established.", l, nil),
		received:   prometheus.NewDesc("cgw_lan_bgp_prefixes_received", "Prefixes the LAN neighbor sent.", l, nil),
		accepted:   prometheus.NewDesc("cgw_lan_bgp_prefixes_accepted", "Prefixes from the LAN neighbor that passed its import policy (announced to AWS).", l, nil),
		advertised: prometheus.NewDesc("cgw_lan_bgp_prefixes_advertised", "AWS prefixes announced to the LAN neighbor.", l, nil),
		drained:    prometheus.NewDesc("cgw_drained", "1 while this gateway is drained (cgwctl drain).", nil, nil),
	}
}

func (m *lanCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.state, m.received, m.accepted, m.advertised, m.drained} {
		ch <- d
	}
}

func (m *lanCollector) Collect(ch chan<- prometheus.Metric) {
	lan := m.d.lanStatus()
	if lan == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(m.drained, prometheus.GaugeValue, b2f(lan.Drained))
	for _, n := range lan.Neighbors {
		l := []string{n.Name, n.Address}
		ch <- prometheus.MustNewConstMetric(m.state, prometheus.GaugeValue, b2f(n.State == "Established"), l...)
		ch <- prometheus.MustNewConstMetric(m.received, prometheus.GaugeValue, float64(n.Received), l...)
		ch <- prometheus.MustNewConstMetric(m.accepted, prometheus.GaugeValue, float64(n.Accepted), l...)
		ch <- prometheus.MustNewConstMetric(m.advertised, prometheus.GaugeValue, float64(n.Advertised), l...)
	}
}
