//go:build linux

package tun

import (
	"net/netip"
	"os"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// inNetns runs f on a locked OS thread inside a fresh, unnamed network
// namespace, so that the test never touches the host's interfaces.
func inNetns(t *testing.T, f func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces and /dev/net/tun")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skip("no /dev/net/tun")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		// The thread is left locked on purpose: its namespace is not
		// restored, so the runtime discards it when the goroutine exits.
		runtime.LockOSThread()
		ns, err := netns.New()
		if err != nil {
			t.Errorf("netns.New: %v", err)
			return
		}
		defer ns.Close()
		f()
	}()
	<-done
}

func TestCreate(t *testing.T) {
	inNetns(t, func() {
		g0 := runtime.NumGoroutine()
		dev, err := Create("cgwdp-t0", 1436, netip.MustParsePrefix("169.254.15.194/30"))
		if err != nil {
			t.Errorf("Create: %v", err)
			return
		}
		defer dev.Close()
		// Unmonitored: no netlink listener, no once-a-second poll.
		if g := runtime.NumGoroutine(); g > g0 {
			t.Errorf("Create started %d goroutines, want 0", g-g0)
		}
		link, err := netlink.LinkByName("cgwdp-t0")
		if err != nil {
			t.Errorf("LinkByName: %v", err)
			return
		}
		if link.Attrs().MTU != 1436 {
			t.Errorf("MTU = %d, want 1436", link.Attrs().MTU)
		}
		if link.Attrs().TxQLen != TxQueueLen {
			t.Errorf("txqueuelen = %d, want %d", link.Attrs().TxQLen, TxQueueLen)
		}
		if link.Attrs().Flags&(1<<0) == 0 { // net.FlagUp
			t.Errorf("link not up: %v", link.Attrs().Flags)
		}
		addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
		if err != nil || len(addrs) != 1 || addrs[0].IPNet.String() != "169.254.15.194/30" {
			t.Errorf("addresses = %v, %v; want 169.254.15.194/30", addrs, err)
		}
		if n := dev.BatchSize(); n < 2 {
			t.Errorf("BatchSize = %d: offloads (IFF_VNET_HDR) not enabled", n)
		}
		if m, _ := dev.MTU(); m != 1436 {
			t.Errorf("dev.MTU() = %d", m)
		}
	})
}

func TestCreateInvalid(t *testing.T) {
	if _, err := Create("cgwdp-t1", 100, netip.Prefix{}); err == nil {
		t.Error("MTU 100 accepted")
	}
	if _, err := Create("a-name-that-is-too-long", 1400, netip.Prefix{}); err == nil {
		t.Error("long name accepted")
	}
}
