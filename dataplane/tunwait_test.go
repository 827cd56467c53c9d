//go:build linux

package dataplane

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/cgwproject/cgw/dataplane/tun"
	"github.com/vishvananda/netns"
)

// TestTUNWaiter: wait blocks while the device has nothing to read and
// returns once a packet is queued, which Read then gets.
func TestTUNWaiter(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace and /dev/net/tun")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // left locked: the thread's namespace is not restored
		ns, err := netns.New()
		if err != nil {
			t.Errorf("netns.New: %v", err)
			return
		}
		defer ns.Close()
		// No IPv6 on the device: its router solicitations and MLD
		// reports would be queued on it.
		if err := os.WriteFile("/proc/sys/net/ipv6/conf/default/disable_ipv6", []byte("1"), 0o644); err != nil {
			t.Logf("disable IPv6: %v", err)
		}
		dev, err := tun.Create("cgwwait0", 1400, netip.MustParsePrefix("10.9.0.2/30"))
		if err != nil {
			t.Errorf("tun.Create: %v", err)
			return
		}
		defer dev.Close()
		w := newTUNWaiter(dev)
		if w == nil {
			t.Error("no waiter for a kernel TUN device")
			return
		}
		bufs := [][]byte{make([]byte, 2048)}
		sizes := make([]int, 1)
		// A busy reader's Read gives up at hold's deadline; the deadline
		// must not end the untimed wait below.
		t0 := time.Now()
		w.hold(t0.Add(-busyHold / 2)) // last read 50 ms ago: 50 ms left
		if n, err := dev.Read(bufs, sizes, tunReadOffset); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("Read with nothing to read past hold's deadline: %d packets, %v; want os.ErrDeadlineExceeded", n, err)
		}
		if d := time.Since(t0); d < 40*time.Millisecond {
			t.Errorf("Read returned after %v, want hold's 50 ms", d)
		}
		woke := make(chan struct{})
		go func() { w.wait(); close(woke) }()
		select {
		case <-woke:
			t.Error("wait returned with nothing to read")
			return
		case <-time.After(200 * time.Millisecond):
		}
		c, err := net.Dial("udp", "10.9.0.1:9")
		if err != nil {
			t.Errorf("dial: %v", err)
			return
		}
		defer c.Close()
		c.Write([]byte("x"))
		select {
		case <-woke:
		case <-time.After(5 * time.Second):
			t.Error("wait did not return for a queued packet")
			return
		}
		w.hold(time.Now()) // a busy reader's Read gets the queued packet
		if n, err := dev.Read(bufs, sizes, tunReadOffset); err != nil || n != 1 || sizes[0] != 20+8+1 {
			t.Errorf("Read after wait: %d packets, sizes %v, %v; want the 29-byte UDP packet", n, sizes, err)
		}
	}()
	<-done
	if newTUNWaiter(nil) != nil {
		t.Error("a waiter for a device without a file")
	}
}
