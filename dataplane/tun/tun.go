//go:build linux

// Package tun creates the TUN devices of cgw's tunnels. A tunnel's TUN is
// its VTI equivalent: the kernel routes inner packets to it, the dataplane
// reads them in batches and writes decrypted packets back.
//
// Devices are wireguard-go tun.Device values created with IFF_VNET_HDR, so
// the kernel hands the dataplane TSO/GSO superpackets, which Read splits
// into MTU-sized packets, and Write coalesces TCP/UDP segments (GRO) before
// handing them to the kernel. The state wireguard-go keeps for that per
// device (read buffer, GRO tables) is shared by all devices (shared.go).
// Device is an alias of that interface so that
// tests can use golang.zx2c4.com/wireguard/tun/tuntest.ChannelTUN.
package tun

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// Device is a TUN device: batched Read/Write with an offset leaving room
// for headers in front of each packet.
type Device = wgtun.Device

// Linux limits for the tunnel MTU: 576 keeps IPv4 hosts happy and is
// below the IPv6 minimum only for IPv4-only tunnels; 9001 is the largest
// AWS jumbo MTU.
const (
	MinMTU = 576
	MaxMTU = 9001
)

// TxQueueLen is the device queue we give each TUN (Linux's default is
// 500): the packets the kernel holds for the dataplane's reader, which
// drops them (tx_dropped) once it is full. At 20 kpps 500 packets are 25 ms,
// less than a busy 2-core host may keep the reader from running; 4096 ride
// out 200 ms at 20 kpps and 29 ms at AWS's 140 kpps per tunnel, for at most
// about 10 MB of queued 1400-octet packets (issue 18).
const TxQueueLen = 4096

// Create creates (or opens, when it exists and is not in use) the TUN
// device name with the given MTU, assigns addr to it — for an AWS inside
// CIDR this is our address .2 with prefix length 30, so the kernel installs
// the connected /30 route towards the peer's .1 — and sets it up. An
// invalid addr assigns no address.
func Create(name string, mtu int, addr netip.Prefix) (Device, error) {
	if mtu < MinMTU || mtu > MaxMTU {
		return nil, fmt.Errorf("tun: %s: MTU %d out of range [%d, %d]", name, mtu, MinMTU, MaxMTU)
	}
	if len(name) == 0 || len(name) > 15 {
		return nil, fmt.Errorf("tun: interface name %q: must be 1-15 characters", name)
	}
	dev, err := open(name)
	if err != nil {
		return nil, fmt.Errorf("tun: create %s: %w", name, err)
	}
	if err := configure(name, mtu, addr); err != nil {
		return nil, errors.Join(err, dev.Close())
	}
	return dev, nil
}

// open creates the device as wgtun.CreateTUN does (IFF_VNET_HDR, so with
// offloads) but unmonitored: wgtun.CreateTUN adds, per device, a netlink
// socket and a pipe (3 fds), a goroutine woken by every link and address
// change in the namespace, and a goroutine that writes to the device once
// a second to see whether it is up. Their only output is the Events
// channel, which cgw drains and ignores; at 200 tunnels they were 600 fds,
// 400 goroutines and 200 wake-ups a second of idle cgwd.
func open(name string) (Device, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("TUNSETIFF: %w", err)
	}
	// shared (shared.go) makes fd non-blocking before it hands it to the
	// runtime's poller, closes it with the device, and closes it itself
	// when it fails.
	return shared(fd, name)
}

func configure(name string, mtu int, addr netip.Prefix) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("tun: %s: look up link: %w", name, err)
	}
	if err := netlink.LinkSetMTU(link, mtu); err != nil {
		return fmt.Errorf("tun: %s: set MTU %d: %w", name, mtu, err)
	}
	if err := netlink.LinkSetTxQLen(link, TxQueueLen); err != nil {
		return fmt.Errorf("tun: %s: set txqueuelen %d: %w", name, TxQueueLen, err)
	}
	if addr.IsValid() {
		a := &netlink.Addr{IPNet: netlink.NewIPNet(addr.Addr().AsSlice())}
		a.IPNet.Mask = maskOf(addr)
		if err := netlink.AddrReplace(link, a); err != nil {
			return fmt.Errorf("tun: %s: add address %s: %w", name, addr, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("tun: %s: set up: %w", name, err)
	}
	return nil
}

func maskOf(p netip.Prefix) []byte {
	bits := p.Addr().BitLen()
	m := make([]byte, bits/8)
	for i := 0; i < p.Bits(); i++ {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return m
}
