package tun

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// AddAddress adds addr to the device name (replacing it if present), for
// a second address family on a tunnel device: an IPv6-inside tunnel has
// its IPv4 /30 and its IPv6 /126. IPv6 addresses skip duplicate address
// detection (a point-to-point tunnel has no one to collide with), so they
// are usable at once.
func AddAddress(name string, addr netip.Prefix) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("tun: %s: look up link: %w", name, err)
	}
	a := &netlink.Addr{IPNet: netlink.NewIPNet(addr.Addr().AsSlice())}
	a.IPNet.Mask = maskOf(addr)
	if addr.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	if err := netlink.AddrReplace(link, a); err != nil {
		return fmt.Errorf("tun: %s: add address %s: %w (IPv6 disabled on the host? net.ipv6.conf.all.disable_ipv6)", name, addr, err)
	}
	return nil
}
