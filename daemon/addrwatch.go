package daemon

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"

	"github.com/cgwproject/cgw/ike"
)

// A gateway without a static address (connections without local_address,
// typically with auth: certificate) re-establishes its tunnels at once when
// the host's addresses change (DHCP renew, LTE reconnect), instead of after
// DPD has declared AWS dead (30 s or more):
//   - the address a tunnel's IKE SA uses is removed: its SAs are dropped
//     and a new IKE SA starts from the host's new source address;
//   - an address is added: tunnels that are down retry at once.
// Tunnels with a fixed local_address are left alone: their address is
// configured, and its return is awaited by the ordinary retries.

// watchAddresses subscribes to the host's address changes; the returned
// function stops the watch.
func (d *Daemon) watchAddresses() (stop func(), err error) {
	ch := make(chan netlink.AddrUpdate, 64)
	done := make(chan struct{})
	err = netlink.AddrSubscribeWithOptions(ch, done, netlink.AddrSubscribeOptions{
		ErrorCallback: func(err error) { d.log.Warn("watching the host's addresses", "err", err) },
	})
	if err != nil {
		return nil, fmt.Errorf("watching the host's addresses (netlink): %w", err)
	}
	go func() {
		for u := range ch {
			d.addrChanged(u)
		}
	}()
	return func() { close(done) }, nil
}

// dynTunnel is a tunnel whose local address follows the host.
type dynTunnel struct {
	name string
	is4  bool
	dev  string
}

func (d *Daemon) dynamicTunnels() (out []dynTunnel, devs map[string]bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	devs = map[string]bool{}
	for _, c := range d.conns {
		for _, t := range c.tunnels {
			devs[t.dev] = true
			if c.cfg.LocalAddress.IsValid() && !c.cfg.LocalAddress.IsUnspecified() {
				continue
			}
			out = append(out, dynTunnel{name: t.cfg.Name, is4: t.cfg.PeerAddress.Is4(), dev: t.dev})
		}
	}
	return out, devs
}

func (d *Daemon) addrChanged(u netlink.AddrUpdate) {
	if u.LinkAddress.IP == nil {
		return
	}
	ip, ok := netip.AddrFromSlice(u.LinkAddress.IP)
	ip = ip.Unmap()
	if !ok || !ip.IsGlobalUnicast() || ip.IsLinkLocalUnicast() {
		return
	}
	tunnels, devs := d.dynamicTunnels()
	if len(tunnels) == 0 || d.ikm == nil {
		return
	}
	if l, err := netlink.LinkByIndex(u.LinkIndex); err == nil && devs[l.Attrs().Name] {
		return // an inside address on one of our own devices
	}
	status := map[string]ike.PeerStatus{}
	for _, s := range d.ikm.Status() {
		status[s.Name] = s
	}
	for _, t := range tunnels {
		if t.is4 != ip.Is4() {
			continue
		}
		st := status[t.name]
		switch {
		case !u.NewAddr && st.Local.Addr().Unmap() == ip:
			reason := fmt.Sprintf("our address %s was removed from the host; re-establishing from the new source address", ip)
			d.log.Info("host address removed: re-establishing the tunnel at once", "tunnel", t.name, "address", ip.String())
			d.holdBGPForReconnect(t.name)
			if err := d.ikm.Reconnect(t.name, reason); err != nil {
				d.log.Warn("re-establishing after an address change", "tunnel", t.name, "err", err)
			}
		case u.NewAddr && st.State != ike.StateEstablished && st.State != ike.StateRekeying:
			d.log.Info("host address added: retrying the tunnel at once", "tunnel", t.name, "address", ip.String())
			if err := d.ikm.RetryNow(t.name, fmt.Sprintf("address %s added to the host", ip)); err != nil {
				d.log.Warn("retrying after an address change", "tunnel", t.name, "err", err)
			}
		}
	}
}
