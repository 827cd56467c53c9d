package daemon

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/cgwproject/cgw/bgp"
	"github.com/cgwproject/cgw/config"
	"github.com/cgwproject/cgw/dataplane"
	"github.com/cgwproject/cgw/ike"
	"github.com/cgwproject/cgw/ipsec"
)

// Tunnel membership (d.conns, d.tunnels and which connection holds which
// tunnel) changes only on the daemon's owner goroutine: Run before the loop,
// the loop (reload) and Run's shutdown after it. That goroutine reads the
// membership without d.mu and takes d.mu only to publish a change, so slow
// steps (creating a TUN device, waiting for an IKE peer to stop) never block
// `cgwctl status`, metrics or diagnose. A tunnelRT is filled in completely
// before it is published in d.tunnels or a connection.

// addConn creates the connection's TUN devices, registers them with the
// dataplane and hands the tunnels to IKE. The caller publishes the
// returned connection in d.conns. Owner goroutine only; d.mu not held.
func (d *Daemon) addConn(cc *config.Connection) (*connRT, error) {
	c := &connRT{cfg: cc}
	for i := range cc.Tunnels {
		tc := &cc.Tunnels[i]
		t := &tunnelRT{conn: c, cfg: tc, rank: i, changed: time.Now()}
		if err := d.startTunnel(t); err != nil {
			// Undo what was started so a failed add leaves nothing behind.
			for _, done := range c.tunnels {
				d.stopTunnel(done)
			}
			return nil, err
		}
		c.tunnels = append(c.tunnels, t)
	}
	return c, nil
}

// startTunnel brings up an unpublished tunnel and publishes it in
// d.tunnels. Owner goroutine only; d.mu not held.
func (d *Daemon) startTunnel(t *tunnelRT) error {
	tc := t.cfg
	t.dev = d.freeDevName()
	t.mtu = configuredMTU(tc)
	addr := netip.PrefixFrom(tc.InsideLocal(), tc.InsideCIDR.Bits())
	// The device is larger than the tunnel MTU so that the dataplane, not
	// the kernel, handles oversize packets (tunnels[].oversize).
	dev, err := d.createTUN(t.dev, dataplane.DeviceMTU, addr)
	if err != nil {
		return fmt.Errorf("tunnel %s: create TUN device %s: %w (cgwd needs CAP_NET_ADMIN and /dev/net/tun)", tc.Name, t.dev, err)
	}
	t.tun = dev
	if a6 := insideAddr6(tc); a6.IsValid() {
		if err := d.addTUNAddr(t.dev, a6); err != nil {
			dev.Close()
			return fmt.Errorf("tunnel %s: %w", tc.Name, err)
		}
	}
	oversize := dataplane.OversizeFragment
	if tc.Oversize == config.OversizeICMP {
		oversize = dataplane.OversizeICMP
	}
	if err := d.dp.AddTunnel(dataplane.TunnelConfig{
		Name:         tc.Name,
		Device:       dev,
		MTU:          t.mtu,
		MSSClamp:     uint16(tc.MSSClamp),
		NATKeepalive: tc.NATKeepalive,
		Oversize:     oversize,
	}); err != nil {
		dev.Close()
		return fmt.Errorf("tunnel %s: %w", tc.Name, err)
	}
	// IKE's events for this tunnel are queued for the loop, which applies
	// them after this step, once the tunnel is published. The allowed
	// inner sources are set before IKE can install an SA.
	d.mu.Lock()
	d.setTunnelSourcesLocked(t)
	d.mu.Unlock()
	if err := d.ikm.AddPeer(d.withRawESP(peerConfig(t.conn.cfg, tc), tc)); err != nil {
		d.dp.RemoveTunnel(tc.Name)
		return fmt.Errorf("tunnel %s: %w", tc.Name, err)
	}
	if tc.StartupAction == config.StartInitiate {
		t.ikeState = ike.StateNegotiating
	}
	if tc.Keepalive.Target.IsValid() {
		t.keepalive = startKeepalive(d.log, tc.Name, t.dev, tc.InsideLocal(), tc.Keepalive.Target, tc.Keepalive.Interval)
	}
	d.mu.Lock()
	d.tunnels[tc.Name] = t
	d.mu.Unlock()
	d.log.Info("tunnel configured", "tunnel", tc.Name, "connection", t.conn.cfg.Name, "peer", tc.PeerAddress,
		"device", t.dev, "inside", addr, "mtu", t.mtu, "startup", string(tc.StartupAction))
	return nil
}

// stopTunnel deletes the tunnel's SAs (IKE sends DELETE for an established
// IKE SA), removes its device and then its entry in d.tunnels. The caller
// removes it from its connection. Owner goroutine only; d.mu not held: IKE
// waits for the peer's goroutine to stop.
func (d *Daemon) stopTunnel(t *tunnelRT) {
	name := t.cfg.Name
	if t.keepalive != nil {
		t.keepalive.stop()
	}
	if d.ikm != nil {
		if err := d.ikm.RemovePeer(name); err != nil {
			d.log.Warn("removing IKE peer", "tunnel", name, "err", err)
		}
	}
	if d.dp != nil {
		d.dp.RemoveTunnel(name)
	}
	if t.tun != nil {
		t.tun.Close()
	}
	d.mu.Lock()
	if d.tunnels[name] == t {
		delete(d.tunnels, name)
	}
	d.mu.Unlock()
}

// removeAllTunnels stops every tunnel on shutdown. Owner goroutine only.
func (d *Daemon) removeAllTunnels() {
	var names []string
	for n := range d.tunnels {
		names = append(names, n)
	}
	d.bgpGoodbye(names...)
	for _, c := range d.conns {
		for _, t := range c.tunnels {
			d.stopTunnel(t)
		}
	}
	d.mu.Lock()
	d.conns = nil
	d.mu.Unlock()
}

// bgpGoodbyeWait is how long the BGP NOTIFICATION gets to cross the tunnel
// before its SAs are deleted.
const bgpGoodbyeWait = 300 * time.Millisecond

// bgpGoodbye takes the BGP sessions of the named tunnels down while their
// SAs still carry traffic, so AWS receives the NOTIFICATION (Cease) and
// withdraws its routes toward us at once, instead of sending into a dead
// tunnel until its 30 s hold timer expires. Caller must not hold d.mu.
func (d *Daemon) bgpGoodbye(names ...string) {
	if d.bgp == nil {
		return
	}
	established := map[string]bool{}
	for _, n := range d.bgp.Status() {
		established[n.Name] = n.State == "Established"
	}
	sent := false
	for _, n := range names {
		if established[n] && d.bgp.SetPeerUp(n, false) == nil {
			sent = true
		}
	}
	if sent {
		time.Sleep(bgpGoodbyeWait)
	}
}

// freeDevName returns the first cgwN name no tunnel uses. Owner goroutine
// only (it reads d.tunnels, which only that goroutine changes).
func (d *Daemon) freeDevName() string {
	used := map[string]bool{}
	for _, t := range d.tunnels {
		used[t.dev] = true
	}
	for i := 0; ; i++ {
		n := fmt.Sprintf("cgw%d", i)
		if !used[n] {
			return n
		}
	}
}

// peerConfig translates one configured tunnel into IKE's configuration.
func peerConfig(c *config.Connection, t *config.Tunnel) ike.PeerConfig {
	pc := ike.PeerConfig{
		Name:          t.Name,
		LocalAddr:     c.LocalAddress,
		RemoteAddr:    t.PeerAddress,
		PSK:           []byte(t.PSK),
		IKEProposals:  t.IKEProposals,
		ESPProposals:  t.ESPProposals,
		IKELifetime:   t.IKELifetime,
		ChildLifetime: t.ChildLifetime,
		RekeyMargin:   t.RekeyMargin,
		RekeyFuzz:     t.RekeyFuzz,
		DPDInterval:   t.DPD.Interval,
		DPDRetries:    t.DPD.Retries,
		// encapsulation: udp (the default) always asks for ESP in UDP (RFC
		// 3948), as strongSwan's encap=yes does; auto lets NAT detection
		// decide, and without a NAT ESP goes raw (IP protocol 50).
		ForceEncap:   t.Encapsulation != config.EncapAuto || t.ForceEncap,
		NATKeepalive: t.NATKeepalive,
		ReplayWindow: t.ReplayWindow,
		FragmentSize: t.IKEFragmentSize,
	}
	if t.IKEFragmentSize == 0 {
		pc.FragmentSize = -1 // ike_fragment_size: 0 turns fragmentation off
	}
	if c.LocalID.IsValid() {
		pc.LocalID = ike.AddrIdentity(c.LocalID)
	}
	if t.PeerID.IsValid() {
		pc.RemoteID = ike.AddrIdentity(t.PeerID)
	}
	if t.Auth == config.AuthCertificate {
		certPeerConfig(&pc, t)
	}
	switch t.DPD.Action {
	case config.DPDClear:
		pc.DPDAction = ike.DPDClear
	case config.DPDNone:
		pc.DPDAction = ike.DPDNone
	default:
		pc.DPDAction = ike.DPDRestart
	}
	if t.StartupAction == config.StartRespond {
		pc.StartAction = ike.StartRespond
	}
	for _, p := range t.TrafficSelectors.Local {
		pc.TSLocal = append(pc.TSLocal, ipsec.TSFromPrefix(p))
	}
	for _, p := range t.TrafficSelectors.Remote {
		pc.TSRemote = append(pc.TSRemote, ipsec.TSFromPrefix(p))
	}
	return pc
}

// bgpConfig returns the BGP speaker settings, or nil when no connection
// uses BGP. The router ID is the first BGP tunnel's inside address; the
// speaker's ASN is the first BGP connection's, and every session carries
// its own connection's ASN as its local AS (syncBGP). The
// speaker listens on the BGP tunnels' inside addresses only, never on
// 0.0.0.0:179.
func bgpConfig(cfg *config.Config) *bgp.Config {
	for _, c := range cfg.Connections {
		if c.BGP != nil && len(c.Tunnels) > 0 {
			return &bgp.Config{ASN: c.BGP.ASN, RouterID: c.Tunnels[0].InsideLocal(), ListenPort: 179, ListenAddresses: bgpListen(cfg)}
		}
	}
	return nil
}

// bgpListen is the inside address of every BGP tunnel: where AWS opens its
// sessions (TCP 179).
func bgpListen(cfg *config.Config) []netip.Addr {
	var out []netip.Addr
	for _, c := range cfg.Connections {
		if c.BGP == nil {
			continue
		}
		for i := range c.Tunnels {
			local, _ := insideAddrs(&c.Tunnels[i])
			out = append(out, local)
		}
	}
	return out
}

// syncBGP declares the neighbors and advertised prefixes from the running
// configuration. Neighbors start disabled and are enabled when their
// tunnel's CHILD SA comes up.
func (d *Daemon) syncBGP() error {
	if d.bgp == nil {
		return nil
	}
	d.mu.Lock()
	var ns []bgp.Neighbor
	up := map[string]bool{}
	for _, c := range d.conns {
		b := c.cfg.BGP
		if b == nil {
			continue
		}
		for _, t := range c.tunnels {
			local, peer := insideAddrs(t.cfg)
			n := bgp.Neighbor{
				Name:            t.cfg.Name,
				PeerAddr:        peer,
				LocalAddr:       local,
				PeerASN:         b.PeerASN,
				LocalASN:        b.ASN,
				Export:          &bgp.ExportFilter{Exact: b.Advertise, Within: b.AdvertiseKernel},
				HoldTime:        b.HoldTime,
				Keepalive:       b.Keepalive,
				Password:        string(b.Password),
				PrefixLimitWarn: b.PrefixLimit,
			}
			if b.Mode == config.ActivePassive && t.rank > 0 {
				n.Prepend = b.SecondaryPrepend
				n.MED = b.SecondaryMED
			}
			n.Prepend = d.drainedPrependLocked(n.Prepend)
			ns = append(ns, n)
			up[t.cfg.Name] = t.childUp()
		}
	}
	d.mu.Unlock()
	var errs []error
	if err := d.bgp.SetNeighbors(ns); err != nil {
		errs = append(errs, err)
	}
	for _, n := range ns {
		if err := d.bgp.SetPeerUp(n.Name, up[n.Name]); err != nil {
			errs = append(errs, err)
		}
	}
	if err := d.syncAdvertised(); err != nil {
		errs = append(errs, err)
	}
	if err := d.syncLAN(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bgp: %w", err)
	}
	return nil
}

// syncAdvertised announces the configured prefixes plus the kernel routes
// selected by bgp.advertise_kernel (routes cgw did not install, not through
// a tunnel). One BGP speaker serves every connection: it originates the
// union of all connections' prefixes, and each session's export filter
// (syncBGP) sends it only its own connection's.
func (d *Daemon) syncAdvertised() error {
	if d.bgp == nil {
		return nil
	}
	d.mu.Lock()
	var adv, within []netip.Prefix
	var devs []string
	seen := map[netip.Prefix]bool{}
	add := func(p netip.Prefix) {
		if !seen[p] {
			seen[p] = true
			adv = append(adv, p)
		}
	}
	for _, c := range d.conns {
		if b := c.cfg.BGP; b != nil {
			for _, p := range b.Advertise {
				add(p)
			}
			within = append(within, b.AdvertiseKernel...)
		}
		for _, t := range c.tunnels {
			devs = append(devs, t.dev)
		}
	}
	d.mu.Unlock()
	if len(within) > 0 && d.router != nil {
		kernel, err := d.router.Foreign(within, devs)
		if err != nil {
			d.log.Warn("cannot read kernel routes for bgp.advertise_kernel", "err", err)
		}
		for _, p := range kernel {
			add(p)
		}
	}
	return d.bgp.SetAdvertised(adv)
}
