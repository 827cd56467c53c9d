package dataplane

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/cgwproject/cgw/dataplane/packet"
	"github.com/cgwproject/cgw/ipsec"
)

func ipv6UDP(src, dst netip.Addr, seq uint32, size int) []byte {
	size = max(size, 40+8+4)
	p := make([]byte, size)
	p[0] = 0x60
	binary.BigEndian.PutUint16(p[4:], uint16(size-40))
	p[6] = 17
	p[7] = 64
	s, d := src.As16(), dst.As16()
	copy(p[8:], s[:])
	copy(p[24:], d[:])
	binary.BigEndian.PutUint16(p[40:], 5000)
	binary.BigEndian.PutUint16(p[42:], 6000)
	binary.BigEndian.PutUint16(p[44:], uint16(size-40))
	binary.BigEndian.PutUint32(p[48:], seq)
	return p
}

// TestIPv6 carries IPv6 inner packets over IPv6 outer endpoints (::1).
func TestIPv6(t *testing.T) {
	ta, tb := newMemTUN(64), newMemTUN(64)
	pr := newPair(t, algGCM, ta, tb, TunnelConfig{})
	if pr.a.nattSocket(netip.IPv6Loopback()) == nil {
		t.Skip("no IPv6")
	}
	lo6 := netip.IPv6Loopback()
	aEP := netip.AddrPortFrom(lo6, pr.aEP.Port())
	bEP := netip.AddrPortFrom(lo6, pr.bEP.Port())
	for _, e := range []*Engine{pr.a, pr.b} {
		if err := e.UpdateEndpoints("t", netip.AddrPort{}, netip.AddrPort{}, true); err == nil {
			t.Error("UpdateEndpoints without remote accepted")
		}
	}
	if err := pr.a.UpdateEndpoints("t", aEP, bEP, true); err != nil {
		t.Fatal(err)
	}
	if err := pr.b.UpdateEndpoints("t", bEP, aEP, true); err != nil {
		t.Fatal(err)
	}
	src, dst := netip.MustParseAddr("fd00:a::1"), netip.MustParseAddr("fd00:b::1")
	for i := range 100 {
		want := ipv6UDP(src, dst, uint32(i), 100+i*10)
		ta.in <- want
		select {
		case p := <-tb.out:
			if !bytes.Equal(p, want) {
				t.Fatalf("packet %d differs", i)
			}
			tb.free <- p
		case <-time.After(5 * time.Second):
			t.Fatalf("IPv6 packet %d lost", i)
		}
	}
	st, _ := pr.b.TunnelStats("t")
	for _, sa := range st.SAs {
		if sa.Remote != aEP {
			t.Errorf("SA %s remote = %v after UpdateEndpoints, want %v", sa.SPI, sa.Remote, aEP)
		}
	}
}

func TestBuildTooBigIPv6(t *testing.T) {
	src, dst := netip.MustParseAddr("fd00:a::1"), netip.MustParseAddr("fd00:b::1")
	pkt := ipv6UDP(src, dst, 1, 2000)
	var p packet.Parsed
	if err := p.Decode(pkt); err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 2000)
	n := packet.BuildTooBig(out, pkt, &p, 1400)
	if n != 1280 {
		t.Fatalf("reply length %d, want 1280 (RFC 4443 minimum MTU)", n)
	}
	var r packet.Parsed
	if err := r.Decode(out[:n]); err != nil {
		t.Fatal(err)
	}
	if r.Src != dst || r.Dst != src || r.Proto != packet.ProtoICMPv6 || out[40] != 2 || binary.BigEndian.Uint32(out[44:]) != 1400 {
		t.Errorf("reply %+v type %d", r, out[40])
	}
	// Verify the checksum with the pseudo-header.
	s := packet.OnesSum(0, out[8:40])
	s = packet.OnesSum(s, []byte{byte((n - 40) >> 8), byte(n - 40), 0, packet.ProtoICMPv6})
	if packet.OnesSum(s, out[40:n]) != 0xffff {
		t.Error("bad ICMPv6 checksum")
	}
	// No error for ICMPv6 errors, nor for IPv4 without DF.
	pkt[6] = packet.ProtoICMPv6
	pkt[40] = 1
	p.Decode(pkt)
	if packet.BuildTooBig(out, pkt, &p, 1400) != 0 {
		t.Error("answered an ICMPv6 error with an error")
	}
	v4 := ipv4UDP(addrA, addrB, 1, 1200)
	p.Decode(v4)
	if packet.BuildTooBig(out, v4, &p, 1000) != 0 {
		t.Error("answered a packet without DF")
	}
}

// TestTunnelLifecycle re-adds a removed tunnel, rejects duplicates and
// checks that Close is idempotent.
func TestTunnelLifecycle(t *testing.T) {
	e := New(Config{Logger: testLogger(t), Workers: 1})
	if err := e.Listen(0, 0); err != nil {
		t.Fatal(err)
	}
	if err := e.Listen(0, 0); err == nil {
		t.Error("second Listen succeeded")
	}
	d1 := newMemTUN(4)
	if err := e.AddTunnel(TunnelConfig{Name: "x", Device: d1}); err != nil {
		t.Fatal(err)
	}
	if err := e.AddTunnel(TunnelConfig{Name: "x", Device: newMemTUN(4)}); err == nil {
		t.Error("duplicate tunnel accepted")
	}
	if err := e.AddTunnel(TunnelConfig{Name: "y"}); err == nil {
		t.Error("tunnel without device accepted")
	}
	if err := e.RemoveTunnel("x"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d1.closed:
	default:
		t.Error("RemoveTunnel did not close the device")
	}
	if err := e.RemoveTunnel("x"); err == nil {
		t.Error("removing a removed tunnel succeeded")
	}
	if err := e.AddTunnel(TunnelConfig{Name: "x", Device: newMemTUN(4)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.QuerySA("x", ipsec.Inbound, 1); err == nil {
		t.Error("QuerySA of an unknown SA succeeded")
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.AddTunnel(TunnelConfig{Name: "z", Device: newMemTUN(4)}); err == nil {
		t.Error("AddTunnel after Close succeeded")
	}
	if err := e.SendIKE(netip.AddrPort{}, netip.MustParseAddrPort("127.0.0.1:500"), []byte("x")); err == nil {
		t.Error("SendIKE after Close succeeded")
	}
}

// TestKeepaliveWire checks the keepalive bytes on the wire: exactly one
// 0xFF octet from the NAT-T port (RFC 3948, Section 2.3), and none while
// traffic flows.
func TestKeepaliveWire(t *testing.T) {
	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	e := New(Config{Logger: testLogger(t), Workers: 1})
	defer e.Close()
	if err := e.Listen(0, 0); err != nil {
		t.Fatal(err)
	}
	_, natt := e.Ports()
	if err := e.AddTunnel(TunnelConfig{Name: "t", Device: newMemTUN(4), NATKeepalive: 20 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	local := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), natt)
	if err := e.AddSA(saParams("t", ipsec.Outbound, 0x100, algGCM, local, peer.LocalAddr().(*net.UDPAddr).AddrPort(), 1)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := peer.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 || buf[0] != 0xff || from != local {
		t.Errorf("keepalive = % x from %v, want ff from %v", buf[:n], from, local)
	}
}

// TestFwMark: every socket carries the mark, whether it was set before or
// after Listen, so cgwd's own traffic bypasses cgw's routing table.
func TestFwMark(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SO_MARK needs CAP_NET_ADMIN")
	}
	e := New(Config{Logger: testLogger(t), Workers: 1})
	defer e.Close()
	if err := e.SetFwMark(0xc7); err != nil {
		t.Fatal(err)
	}
	if err := e.Listen(0, 0); err != nil {
		t.Fatal(err)
	}
	check := func(want uint32) {
		t.Helper()
		for _, s := range e.sockets {
			if m, err := s.conn.Mark(); err != nil || m != want {
				t.Fatalf("socket port %d: mark %#x, %v; want %#x", s.conn.Port(), m, err, want)
			}
		}
	}
	check(0xc7)
	if err := e.SetFwMark(0x99); err != nil {
		t.Fatal(err)
	}
	check(0x99)
}

// wipeCounter wraps a transform and records Wipe.
type wipeCounter struct {
	inboundTransform
	wiped chan ipsec.SPI
}

func (w wipeCounter) Wipe() { w.wiped <- w.SPI() }

// TestDelSAWipesKeys: a deleted SA's keys are zeroed once it is out of the
// SAD and the grace period for packets in flight has passed, not before.
func TestDelSAWipesKeys(t *testing.T) {
	saved, savedGrace := newInboundTransform, saWipeGrace
	t.Cleanup(func() { newInboundTransform, saWipeGrace = saved, savedGrace })
	wiped := make(chan ipsec.SPI, 4)
	newInboundTransform = func(p ipsec.SAParams) (inboundTransform, error) {
		tr, err := saved(p)
		return wipeCounter{tr, wiped}, err
	}
	saWipeGrace = 300 * time.Millisecond

	ta, tb := newMemTUN(8), newMemTUN(8)
	pr := newPair(t, algGCM, ta, tb, TunnelConfig{})
	del := time.Now()
	if err := pr.b.DelSA("t", ipsec.Inbound, pr.spiAB); err != nil {
		t.Fatal(err)
	}
	select {
	case spi := <-wiped:
		if spi != pr.spiAB {
			t.Errorf("wiped SA %v, want %v", spi, pr.spiAB)
		}
		if d := time.Since(del); d < saWipeGrace {
			t.Errorf("wiped after %v, before the grace period of %v", d, saWipeGrace)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the deleted SA was never wiped")
	}
	// Removing the tunnel wipes its remaining inbound SA too.
	if err := pr.a.RemoveTunnel("t"); err != nil {
		t.Fatal(err)
	}
	select {
	case spi := <-wiped:
		if spi != pr.spiBA {
			t.Errorf("wiped SA %v, want %v", spi, pr.spiBA)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the removed tunnel's SA was never wiped")
	}
}
