package dataplane

import (
	"bytes"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// enterTestNetns moves the test's goroutine, locked to its thread, into a
// new network namespace with lo up, so raw ESP sockets see only the
// test's packets. The thread is discarded with the namespace when the
// test ends.
func enterTestNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for raw sockets and network namespaces")
	}
	runtime.LockOSThread() // never unlocked: the thread dies with the test
	ns, err := netns.New()
	if err != nil {
		t.Fatalf("netns.New: %v", err)
	}
	t.Cleanup(func() { ns.Close() })
	lo, err := netlink.LinkByName("lo")
	if err == nil {
		err = netlink.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatalf("lo up: %v", err)
	}
}

// TestRawESP carries traffic as raw ESP (IP protocol 50) between two
// engines over IPv4 and IPv6 loopback, checks the SAs report no UDP
// encapsulation and port-0 endpoints, and that an SA negotiated raw still
// accepts the peer's ESP in UDP (and logs which one the peer uses).
func TestRawESP(t *testing.T) {
	enterTestNetns(t)
	ta, tb := newMemTUN(64), newMemTUN(64)
	pr := newPair(t, algGCM, ta, tb, TunnelConfig{})
	if !pr.a.RawESP(netip.MustParseAddr("127.0.0.1")) || !pr.a.RawESP(netip.IPv6Loopback()) {
		t.Fatal("no raw ESP sockets although root")
	}
	send := func(what string, n int) {
		t.Helper()
		src, dst := netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("10.2.0.1")
		for i := range n {
			want := ipv4UDP(src, dst, uint32(i), 100+i*13)
			ta.in <- want
			select {
			case p := <-tb.out:
				if !bytes.Equal(p, want) {
					t.Fatalf("%s: packet %d differs", what, i)
				}
				tb.free <- p
			case <-time.After(5 * time.Second):
				t.Fatalf("%s: packet %d lost", what, i)
			}
		}
	}
	for _, lo := range []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()} {
		aEP, bEP := netip.AddrPortFrom(lo, pr.aEP.Port()), netip.AddrPortFrom(lo, pr.bEP.Port())
		if err := pr.a.UpdateEndpoints("t", aEP, bEP, false); err != nil {
			t.Fatal(err)
		}
		if err := pr.b.UpdateEndpoints("t", bEP, aEP, false); err != nil {
			t.Fatal(err)
		}
		before, _ := pr.b.TunnelStats("t")
		send("raw "+lo.String(), 50)
		st, _ := pr.b.TunnelStats("t")
		if st.InPackets-before.InPackets != 50 {
			t.Errorf("raw %s: %d packets in, want 50", lo, st.InPackets-before.InPackets)
		}
		for _, sa := range st.SAs {
			if sa.Encap || sa.Remote != netip.AddrPortFrom(lo, 0) {
				t.Errorf("raw %s: SA %s/%s encap=%v remote=%v, want raw to %v port 0", lo, sa.Dir, sa.SPI, sa.Encap, sa.Remote, lo)
			}
		}
		if got := pr.b.tunnels["t"].peerEncap.Load(); got != peerEncapRaw {
			t.Errorf("raw %s: receiver saw peer encapsulation %d, want raw (%d)", lo, got, peerEncapRaw)
		}
		if enc, ok := pr.a.TunnelEncap("t"); !ok || enc {
			t.Errorf("TunnelEncap = %v, %v; want false, true", enc, ok)
		}
	}
	// The sender goes back to UDP while the receiver's SA stays raw: the
	// receiver accepts it and does not move its raw endpoint.
	lo := netip.MustParseAddr("127.0.0.1")
	if err := pr.a.UpdateEndpoints("t", pr.aEP, pr.bEP, true); err != nil {
		t.Fatal(err)
	}
	if err := pr.b.UpdateEndpoints("t", pr.bEP, pr.aEP, false); err != nil {
		t.Fatal(err)
	}
	send("udp to a raw SA", 20)
	if got := pr.b.tunnels["t"].peerEncap.Load(); got != peerEncapUDP {
		t.Errorf("receiver saw peer encapsulation %d, want UDP (%d)", got, peerEncapUDP)
	}
	st, _ := pr.b.TunnelStats("t")
	for _, sa := range st.SAs {
		if sa.Remote != netip.AddrPortFrom(lo, 0) {
			t.Errorf("UDP packets moved the raw SA %s/%s to %v", sa.Dir, sa.SPI, sa.Remote)
		}
	}
	// And the other way: raw ESP reaches an SA negotiated with UDP, which
	// keeps its UDP endpoint (no NAT rebinding to port 0).
	if err := pr.a.UpdateEndpoints("t", pr.aEP, pr.bEP, false); err != nil {
		t.Fatal(err)
	}
	if err := pr.b.UpdateEndpoints("t", pr.bEP, pr.aEP, true); err != nil {
		t.Fatal(err)
	}
	send("raw to a UDP SA", 20)
	if got := pr.b.tunnels["t"].peerEncap.Load(); got != peerEncapRaw {
		t.Errorf("receiver saw peer encapsulation %d, want raw (%d)", got, peerEncapRaw)
	}
	st, _ = pr.b.TunnelStats("t")
	for _, sa := range st.SAs {
		if sa.Remote != pr.aEP || !sa.Encap {
			t.Errorf("raw packets changed the UDP SA %s/%s: remote %v encap %v", sa.Dir, sa.SPI, sa.Remote, sa.Encap)
		}
	}
}

// TestAllocsRawESP: the raw ESP path allocates nothing per packet either
// (raw send, raw receive with the IPv4 header skipped, demux, decryption).
// Measured exactly over 300 round trips: the receive pools of both paths
// still grow now and then after the warm-up (new buffers when a read finds
// the free list empty, about 0.05-0.5 per 64-packet round trip here, UDP
// and raw alike; testing.AllocsPerRun rounds that down to 0), so the
// bound is below one allocation per 64 packets, which any per-packet or
// per-batch allocation on the raw path would exceed.
func TestAllocsRawESP(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	enterTestNetns(t)
	ta, tb := newMemTUN(256), newMemTUN(256)
	pr := newPair(t, algGCM, ta, tb, TunnelConfig{MSSClamp: 1379})
	if err := pr.a.UpdateEndpoints("t", pr.aEP, pr.bEP, false); err != nil {
		t.Fatal(err)
	}
	if err := pr.b.UpdateEndpoints("t", pr.bEP, pr.aEP, false); err != nil {
		t.Fatal(err)
	}
	if allocs := roundTripAllocs(t, ta, tb, 300, false); allocs >= 1 {
		t.Errorf("%.2f allocations per round trip of 64 packets over raw ESP, want < 1", allocs)
	}
	if enc, _ := pr.b.TunnelEncap("t"); enc {
		t.Error("the SAs went back to UDP")
	}
}
