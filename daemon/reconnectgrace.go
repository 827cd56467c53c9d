package daemon

import "time"

// reconnectGrace is how long a tunnel that cgwd re-establishes because the
// host's address changed keeps its BGP session and routes while its CHILD
// SA is down. Only the outside address changes: the TUN device and the
// inside addresses stay, so the BGP TCP session between the inside
// addresses survives a re-establishment that takes well under a second
// (TCP retransmits what the gap lost). Disabling the neighbor instead
// would withdraw the routes and cost a new BGP session (seconds) after
// every DHCP renew or LTE reconnect. The routes through the tunnel (BGP
// or static) stay too, so the VPC's traffic waits in the tunnel for the
// new SAs instead of taking the default route. If the tunnel is not back
// within the grace, BGP and the routes go as for any other dead tunnel.
const reconnectGrace = 10 * time.Second

// holdBGPForReconnect starts the grace of tunnel name; call it before
// asking IKE to re-establish the tunnel.
func (d *Daemon) holdBGPForReconnect(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if t := d.tunnels[name]; t != nil {
		t.bgpGraceUntil = time.Now().Add(reconnectGrace)
	}
}

// inReconnectGrace reports whether t is re-establishing after an address
// change within its grace. Caller holds d.mu.
func (t *tunnelRT) inReconnectGrace(now time.Time) bool {
	return now.Before(t.bgpGraceUntil)
}

// endReconnectGrace runs when the grace of tunnel name ends: a tunnel
// still without CHILD SA gets its BGP neighbor disabled and its routes
// withdrawn, as applyEvent would have done at once.
func (d *Daemon) endReconnectGrace(name string) {
	d.mu.Lock()
	t := d.tunnels[name]
	down := t != nil && !t.childUp() && !t.bgpGraceUntil.IsZero() && !t.inReconnectGrace(time.Now())
	bgpOn := down && d.bgp != nil && t.conn.cfg.BGP != nil
	if down {
		t.bgpGraceUntil = time.Time{}
	}
	d.mu.Unlock()
	if !down {
		return
	}
	d.log.Warn("tunnel not re-established within the grace after the address change: routes through it withdrawn", "tunnel", name, "grace", reconnectGrace, "bgp_down", bgpOn)
	if bgpOn {
		if err := d.bgp.SetPeerUp(name, false); err != nil {
			d.log.Error("bgp: cannot change neighbor state", "tunnel", name, "up", false, "err", err)
		}
	}
	d.kick()
}
