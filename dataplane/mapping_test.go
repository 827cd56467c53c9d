package dataplane

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/cgwproject/cgw/esp"
	"github.com/cgwproject/cgw/ipsec"
	"golang.zx2c4.com/wireguard/tun/tuntest"
)

// mappingRig is one engine with tunnel "t" whose peer is played by plain
// UDP sockets holding the peer's ESP keys, so that tests choose the
// source port and the sequence number of every packet.
type mappingRig struct {
	e       *Engine
	dev     *tuntest.ChannelTUN
	ep      netip.AddrPort // the engine's NAT-T endpoint
	in      ipsec.SPI      // engine's inbound SPI
	out     ipsec.SPI      // engine's outbound SPI
	seal    *esp.Outbound  // the peer's side of the engine's inbound SA
	open    *esp.Inbound   // the peer's side of the engine's outbound SA
	changes chan [2]netip.AddrPort
}

func newMappingRig(t *testing.T, peer netip.AddrPort) *mappingRig {
	t.Helper()
	r := &mappingRig{in: 0x3003, out: 0x4004, dev: tuntest.NewChannelTUN(), changes: make(chan [2]netip.AddrPort, 16)}
	r.e = New(Config{Logger: testLogger(t), Workers: 2})
	t.Cleanup(func() { r.e.Close() })
	if err := r.e.Listen(0, 0); err != nil {
		t.Fatal(err)
	}
	_, natt := r.e.Ports()
	r.ep = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), natt)
	if err := r.e.AddTunnel(TunnelConfig{Name: "t", Device: r.dev.TUN(), NATKeepalive: -1}); err != nil {
		t.Fatal(err)
	}
	r.e.SetMappingHandler(func(tunnel string, oldRemote, newRemote netip.AddrPort) {
		if tunnel != "t" {
			t.Errorf("mapping handler called for tunnel %q", tunnel)
		}
		r.changes <- [2]netip.AddrPort{oldRemote, newRemote}
	})
	inP := saParams("t", ipsec.Inbound, r.in, algGCM, r.ep, peer, 1)
	outP := saParams("t", ipsec.Outbound, r.out, algGCM, r.ep, peer, 2)
	for _, p := range []ipsec.SAParams{inP, outP} {
		if err := r.e.AddSA(p); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	inP.Dir = ipsec.Outbound
	if r.seal, err = esp.NewOutbound(inP); err != nil {
		t.Fatal(err)
	}
	outP.Dir = ipsec.Inbound
	if r.open, err = esp.NewInbound(outP); err != nil {
		t.Fatal(err)
	}
	return r
}

// send seals an inner packet with sequence number seq and sends it from c.
func (r *mappingRig) send(t *testing.T, c *net.UDPConn, seq uint64, inner []byte) {
	t.Helper()
	buf := make([]byte, 64+len(inner)+64)
	off := 64
	copy(buf[off:], inner)
	start, end, err := r.seal.Seal(buf, off, len(inner), seq)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteToUDPAddrPort(buf[start:end], r.ep); err != nil {
		t.Fatal(err)
	}
}

// deliver sends seq from c and waits for the inner packet at the TUN.
func (r *mappingRig) deliver(t *testing.T, c *net.UDPConn, seq uint64) {
	t.Helper()
	inner := ipv4UDP(addrA, addrB, uint32(seq), 100)
	r.send(t, c, seq, inner)
	select {
	case p := <-r.dev.Inbound:
		if !bytes.Equal(p, inner) {
			t.Fatalf("seq %d: TUN got %x, want %x", seq, p, inner)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("seq %d from %v never reached the TUN", seq, c.LocalAddr())
	}
}

// remotes returns the remote endpoint of every installed SA.
func (r *mappingRig) remotes(t *testing.T) []netip.AddrPort {
	t.Helper()
	st, err := r.e.TunnelStats("t")
	if err != nil {
		t.Fatal(err)
	}
	var out []netip.AddrPort
	for _, sa := range st.SAs {
		out = append(out, sa.Remote)
	}
	return out
}

func (r *mappingRig) wantRemote(t *testing.T, want netip.AddrPort) {
	t.Helper()
	for _, got := range r.remotes(t) {
		if got != want {
			t.Fatalf("SA remote endpoints = %v, want all %v", r.remotes(t), want)
		}
	}
}

// expectReply sends an inner packet into the engine's TUN and checks that
// its ESP packet arrives at c and opens with the peer's keys.
func (r *mappingRig) expectReply(t *testing.T, c *net.UDPConn, id uint32) {
	t.Helper()
	inner := ipv4UDP(addrB, addrA, id, 120)
	r.dev.Outbound <- inner
	buf := make([]byte, 2048)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("no ESP at %v: %v", c.LocalAddr(), err)
	}
	if from != r.ep {
		t.Errorf("ESP came from %v, want %v", from, r.ep)
	}
	got, _, seq, err := r.open.Open(buf[:n])
	if err != nil || !r.open.Accept(seq) {
		t.Fatalf("ESP at %v does not open: %v", c.LocalAddr(), err)
	}
	if !bytes.Equal(got[:len(inner)], inner) {
		t.Errorf("ESP at %v carries %x, want %x", c.LocalAddr(), got, inner)
	}
}

func (r *mappingRig) noChange(t *testing.T, wait time.Duration) {
	t.Helper()
	select {
	case c := <-r.changes:
		t.Fatalf("mapping handler called: %v -> %v", c[0], c[1])
	case <-time.After(wait):
	}
}

func addrPortOf(c *net.UDPConn) netip.AddrPort {
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// TestMappingFollow: authenticated ESP with a new highest sequence number
// from a new port moves every SA of the tunnel there, fires the handler
// once, and replies go to the new port.
func TestMappingFollow(t *testing.T) {
	oldC, newC := rawPeer(t), rawPeer(t)
	oldEP, newEP := addrPortOf(oldC), addrPortOf(newC)
	r := newMappingRig(t, oldEP)

	r.deliver(t, oldC, 1)
	r.deliver(t, oldC, 2)
	r.expectReply(t, oldC, 1)
	r.noChange(t, 0)

	// The NAT rebinds: the peer's next packets come from a new port.
	for seq := uint64(3); seq < 10; seq++ {
		r.deliver(t, newC, seq)
	}
	select {
	case c := <-r.changes:
		if c != [2]netip.AddrPort{oldEP, newEP} {
			t.Errorf("handler got %v -> %v, want %v -> %v", c[0], c[1], oldEP, newEP)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("mapping handler not called")
	}
	r.wantRemote(t, newEP)
	r.expectReply(t, newC, 2)
	r.noChange(t, 100*time.Millisecond) // once per change, not per packet
	st, _ := r.e.TunnelStats("t")
	if st.MappingChanges != 1 {
		t.Errorf("MappingChanges = %d, want 1", st.MappingChanges)
	}
	// NAT-keepalives from the new endpoint count for the tunnel.
	if _, err := newC.WriteToUDPAddrPort([]byte{0xff}, r.ep); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "keepalive from the new endpoint", func() bool {
		st, _ := r.e.TunnelStats("t")
		return st.KeepalivesRx == 1
	})
}

// TestMappingIgnored: nothing but an authentic packet with a new highest
// sequence number moves the tunnel.
func TestMappingIgnored(t *testing.T) {
	oldC, newC := rawPeer(t), rawPeer(t)
	oldEP := addrPortOf(oldC)
	r := newMappingRig(t, oldEP)
	r.deliver(t, oldC, 1)
	r.deliver(t, oldC, 5)

	drops := func(reason string) uint64 {
		st, _ := r.e.TunnelStats("t")
		return st.Drops[reason]
	}

	// Forged: right SPI, higher sequence number, bad ICV.
	buf := make([]byte, 256)
	copy(buf[64:], ipv4UDP(addrA, addrB, 9, 100))
	start, end, err := r.seal.Seal(buf, 64, 100, 9)
	if err != nil {
		t.Fatal(err)
	}
	buf[end-1] ^= 1
	newC.WriteToUDPAddrPort(buf[start:end], r.ep)
	waitFor(t, "auth drop", func() bool { return drops("auth") == 1 })

	// Replayed: a copy of sequence number 5 from the new port.
	r.send(t, newC, 5, ipv4UDP(addrA, addrB, 5, 100))
	waitFor(t, "replay drop", func() bool { return drops("replay") == 1 })

	// Old: sequence number 3 was never seen and lies inside the window,
	// so it is authentic and delivered, but it is older than 5 and so
	// proves nothing about where the peer is now.
	r.deliver(t, newC, 3)

	r.noChange(t, 100*time.Millisecond)
	r.wantRemote(t, oldEP)
	r.expectReply(t, oldC, 1)
	if st, _ := r.e.TunnelStats("t"); st.MappingChanges != 0 {
		t.Errorf("MappingChanges = %d, want 0", st.MappingChanges)
	}

	// The peer's next packet from its current port changes nothing either.
	r.deliver(t, oldC, 6)
	r.noChange(t, 50*time.Millisecond)
}

// TestMappingHoldDown: packets from two mappings interleaved during a
// rebinding move the tunnel once; after the hold-down the newest mapping
// wins.
func TestMappingHoldDown(t *testing.T) {
	old := mappingHoldDown
	mappingHoldDown = 500 * time.Millisecond
	t.Cleanup(func() { mappingHoldDown = old })

	oldC, newC := rawPeer(t), rawPeer(t)
	oldEP, newEP := addrPortOf(oldC), addrPortOf(newC)
	r := newMappingRig(t, oldEP)
	r.deliver(t, oldC, 1)
	r.deliver(t, newC, 2) // moves to new
	r.deliver(t, oldC, 3) // held down: no move back
	r.deliver(t, newC, 4) // matches again
	r.deliver(t, oldC, 5) // held down
	r.deliver(t, oldC, 6) // held down
	if c := <-r.changes; c != [2]netip.AddrPort{oldEP, newEP} {
		t.Fatalf("first change %v -> %v, want %v -> %v", c[0], c[1], oldEP, newEP)
	}
	r.noChange(t, 0)
	r.wantRemote(t, newEP)
	st, _ := r.e.TunnelStats("t")
	if st.MappingChanges != 1 || st.MappingHeld != 3 {
		t.Errorf("MappingChanges, MappingHeld = %d, %d, want 1, 3", st.MappingChanges, st.MappingHeld)
	}

	time.Sleep(mappingHoldDown)
	r.deliver(t, oldC, 7) // the peer really is on the old port again
	select {
	case c := <-r.changes:
		if c != [2]netip.AddrPort{newEP, oldEP} {
			t.Errorf("second change %v -> %v, want %v -> %v", c[0], c[1], newEP, oldEP)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no change after the hold-down")
	}
	r.wantRemote(t, oldEP)
	r.expectReply(t, oldC, 3)
}
