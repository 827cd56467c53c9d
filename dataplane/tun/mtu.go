//go:build linux

package tun

import (
	"fmt"

	"github.com/vishvananda/netlink"
)

// SetMTU changes the MTU of the device name, e.g. once the negotiated ESP
// algorithms fix the tunnel overhead.
func SetMTU(name string, mtu int) error {
	if mtu < MinMTU || mtu > MaxMTU {
		return fmt.Errorf("tun: %s: MTU %d out of range [%d, %d]", name, mtu, MinMTU, MaxMTU)
	}
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("tun: %s: look up link: %w", name, err)
	}
	if err := netlink.LinkSetMTU(link, mtu); err != nil {
		return fmt.Errorf("tun: %s: set MTU %d: %w", name, mtu, err)
	}
	return nil
}
