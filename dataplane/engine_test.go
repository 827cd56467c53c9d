package dataplane

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cgwproject/cgw/dataplane/packet"
	"github.com/cgwproject/cgw/ipsec"
	"golang.zx2c4.com/wireguard/tun/tuntest"
)

// TestTwoEnginesInOrder passes 10k packets each way between two engines
// over loopback UDP and checks that every packet arrives intact and in
// order.
func TestTwoEnginesInOrder(t *testing.T) {
	for _, tc := range []struct {
		name string
		alg  ipsec.Algorithms
	}{{"aes128gcm16", algGCM}, {"aes128-sha256", algCBC}} {
		t.Run(tc.name, func(t *testing.T) {
			ta, tb := tuntest.NewChannelTUN(), tuntest.NewChannelTUN()
			pr := newPair(t, tc.alg, ta.TUN(), tb.TUN(), TunnelConfig{})
			const count = 10000
			var wg sync.WaitGroup
			run := func(from, to *tuntest.ChannelTUN, src, dst netip.Addr) {
				defer wg.Done()
				errc := make(chan string, 1)
				go func() {
					for i := range count {
						size := 60 + (i*37)%1300
						select {
						case from.Outbound <- ipv4UDP(src, dst, uint32(i), size):
						case <-time.After(10 * time.Second):
							errc <- "send stalled"
							return
						}
					}
				}()
				for i := range count {
					select {
					case p := <-to.Inbound:
						want := ipv4UDP(src, dst, uint32(i), 60+(i*37)%1300)
						if !bytes.Equal(p, want) {
							t.Errorf("%v->%v: packet %d: got seq %d len %d, want len %d", src, dst, i, seqOf(p), len(p), len(want))
							return
						}
					case msg := <-errc:
						t.Error(msg)
						return
					case <-time.After(10 * time.Second):
						t.Errorf("%v->%v: packet %d never arrived", src, dst, i)
						return
					}
				}
			}
			wg.Add(2)
			go run(ta, tb, addrA, addrB)
			go run(tb, ta, addrB, addrA)
			wg.Wait()
			for _, e := range []*Engine{pr.a, pr.b} {
				// Counters are updated after the TUN write returns.
				waitFor(t, "counters", func() bool {
					st, err := e.TunnelStats("t")
					return err == nil && st.InPackets == count && st.OutPackets == count && !st.LastInbound.IsZero()
				})
			}
			q, err := pr.b.QuerySA("t", ipsec.Inbound, pr.spiAB)
			if err != nil || q.Packets != count || q.LastUsed.IsZero() {
				t.Errorf("QuerySA(in) = %+v, %v", q, err)
			}
			q, err = pr.a.QuerySA("t", ipsec.Outbound, pr.spiAB)
			if err != nil || q.Packets != count {
				t.Errorf("QuerySA(out) = %+v, %v", q, err)
			}
		})
	}
}

// rawPeer is a plain UDP socket standing in for a remote IKE/ESP peer.
func rawPeer(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 3)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestDemux(t *testing.T) {
	ta, tb := tuntest.NewChannelTUN(), tuntest.NewChannelTUN()
	pr := newPair(t, algGCM, ta.TUN(), tb.TUN(), TunnelConfig{})
	e := pr.b
	type ikeMsg struct {
		local, remote netip.AddrPort
		data          []byte
	}
	got := make(chan ikeMsg, 10)
	e.SetIKEHandler(func(local, remote netip.AddrPort, data []byte) {
		got <- ikeMsg{local, remote, append([]byte(nil), data...)}
	})
	ikePort, nattPort := e.Ports()
	peer := rawPeer(t)
	peerAP := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	send := func(port uint16, b []byte) {
		t.Helper()
		if _, err := peer.WriteToUDPAddrPort(b, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), port)); err != nil {
			t.Fatal(err)
		}
	}
	ike := []byte("IKE-HEADER-AND-PAYLOADS-0123456789")
	expectIKE := func(port uint16) {
		t.Helper()
		select {
		case m := <-got:
			if !bytes.Equal(m.data, ike) {
				t.Errorf("IKE data = %q, want %q (marker must be stripped)", m.data, ike)
			}
			if m.local != netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), port) {
				t.Errorf("IKE local = %v, want 127.0.0.2:%d (from PKTINFO)", m.local, port)
			}
			if m.remote != peerAP {
				t.Errorf("IKE remote = %v, want %v", m.remote, peerAP)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("IKE message not delivered")
		}
	}
	// Port 4500: non-ESP marker + IKE.
	send(nattPort, append([]byte{0, 0, 0, 0}, ike...))
	expectIKE(nattPort)
	// Port 500: no marker.
	send(ikePort, ike)
	expectIKE(ikePort)

	// NAT-keepalive from the tunnel's peer address is counted for the
	// tunnel, but it is not inbound traffic: LastInbound and the traffic
	// counters stay.
	before, _ := e.TunnelStats("t")
	kaPeer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer kaPeer.Close()
	kaPeer.WriteToUDPAddrPort([]byte{0xff}, pr.bEP)
	waitFor(t, "keepalive counted", func() bool {
		st, _ := e.TunnelStats("t")
		return st.KeepalivesRx == before.KeepalivesRx+1
	})
	if st, _ := e.TunnelStats("t"); !st.LastInbound.Equal(before.LastInbound) || st.InPackets != before.InPackets || st.InBytes != before.InBytes {
		t.Errorf("a NAT-keepalive counted as inbound traffic: last inbound %v -> %v, packets %d -> %d",
			before.LastInbound, st.LastInbound, before.InPackets, st.InPackets)
	}
	// Unknown SPI from the peer's address: tunnel drop; from elsewhere: engine counter.
	esp := make([]byte, 64)
	binary.BigEndian.PutUint32(esp, 0xdeadbeef)
	kaPeer.WriteToUDPAddrPort(esp, pr.bEP)
	waitFor(t, "unknown SPI counted on tunnel", func() bool {
		st, _ := e.TunnelStats("t")
		return st.Drops["unknown_spi"] == 1
	})
	send(nattPort, esp)
	send(nattPort, []byte{1, 2, 3}) // too short for ESP
	send(nattPort, []byte{0xff})    // keepalive from a stranger
	waitFor(t, "engine counters", func() bool {
		s := e.Stats()
		return s.UnknownSPI == 1 && s.Malformed == 1 && s.StrayKeepalives == 1
	})
	// A forged ESP packet for a known SPI is an auth failure.
	binary.BigEndian.PutUint32(esp, uint32(pr.spiAB))
	binary.BigEndian.PutUint32(esp[4:], 1)
	kaPeer.WriteToUDPAddrPort(esp, pr.bEP)
	waitFor(t, "auth drop", func() bool {
		st, _ := e.TunnelStats("t")
		return st.Drops["auth"] == 1
	})

	// SendIKE: marker on 4500, none on 500, from the requested source.
	buf := make([]byte, 1500)
	for _, tc := range []struct {
		local  netip.AddrPort
		remote netip.AddrPort
		marker bool
	}{
		{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), ikePort), peerAP, false},
		{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), nattPort), peerAP, true},
	} {
		if err := e.SendIKE(tc.local, tc.remote, ike); err != nil {
			t.Fatal(err)
		}
		peer.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, from, err := peer.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatal(err)
		}
		want := ike
		if tc.marker {
			want = append([]byte{0, 0, 0, 0}, ike...)
		}
		if !bytes.Equal(buf[:n], want) {
			t.Errorf("SendIKE from %v sent %q, want %q", tc.local, buf[:n], want)
		}
		if from != tc.local {
			t.Errorf("SendIKE left from %v, want %v", from, tc.local)
		}
	}
}

// TestInnerChecks covers no_sa, selector mismatch both ways and MSS
// clamping through the pipeline.
func TestInnerChecks(t *testing.T) {
	ta, tb := newMemTUN(64), newMemTUN(64)
	pr := newPair(t, algGCM, ta, tb, TunnelConfig{MSSClamp: 1300})
	// Narrow B's selectors: B only accepts 10.1.0.0/16 -> 10.2.0.0/16.
	lo := netip.MustParseAddr("127.0.0.1")
	_ = lo
	in := saParams("t", ipsec.Inbound, 0x3003, algGCM, pr.bEP, pr.aEP, 3)
	in.TSLocal = []ipsec.TrafficSelector{ipsec.TSFromPrefix(netip.MustParsePrefix("10.2.0.0/16"))}
	in.TSRemote = []ipsec.TrafficSelector{ipsec.TSFromPrefix(netip.MustParsePrefix("10.1.0.0/16"))}
	if err := pr.b.AddSA(in); err != nil {
		t.Fatal(err)
	}
	if err := pr.a.AddSA(saParams("t", ipsec.Outbound, 0x3003, algGCM, pr.aEP, pr.bEP, 3)); err != nil {
		t.Fatal(err)
	}
	ta.in <- ipv4UDP(netip.MustParseAddr("10.9.0.1"), addrB, 1, 100) // outside B's remote TS
	ta.in <- ipv4UDP(addrA, addrB, 2, 100)
	select {
	case p := <-tb.out:
		if seqOf(p) != 2 {
			t.Errorf("got packet %d, want 2", seqOf(p))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("packet not delivered")
	}
	waitFor(t, "ts_mismatch", func() bool {
		st, _ := pr.b.TunnelStats("t")
		return st.Drops["ts_mismatch"] == 1
	})

	// TCP SYN with MSS 1460 is clamped to 1300 on the way out of A.
	syn := tcpSYN(addrA, addrB, 1460)
	ta.in <- syn
	select {
	case p := <-tb.out:
		var pp packet.Parsed
		if err := pp.Decode(p); err != nil {
			t.Fatal(err)
		}
		if mss := binary.BigEndian.Uint16(p[pp.L4Off+22:]); mss != 1300 {
			t.Errorf("MSS after tunnel = %d, want 1300", mss)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("SYN not delivered")
	}

	// Without an outbound SA packets are dropped as no_sa; non-IP as not_ip.
	pr.a.DelSA("t", ipsec.Outbound, 0x3003)
	pr.a.DelSA("t", ipsec.Outbound, pr.spiAB)
	ta.in <- ipv4UDP(addrA, addrB, 3, 100)
	ta.in <- []byte{0x00, 1, 2, 3}
	waitFor(t, "no_sa and not_ip", func() bool {
		st, _ := pr.a.TunnelStats("t")
		return st.Drops["no_sa"] == 1 && st.Drops["not_ip"] == 1 && st.ActiveOutbound == 0
	})
}

func tcpSYN(src, dst netip.Addr, mss uint16) []byte {
	p := make([]byte, 20+24)
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	p[8] = 64
	p[9] = 6
	s, d := src.As4(), dst.As4()
	copy(p[12:], s[:])
	copy(p[16:], d[:])
	binary.BigEndian.PutUint16(p[10:], ^packet.OnesSum(0, p[:20]))
	tcp := p[20:]
	binary.BigEndian.PutUint16(tcp[0:], 40000)
	binary.BigEndian.PutUint16(tcp[2:], 22)
	tcp[12] = 6 << 4
	tcp[13] = 0x02
	tcp[20], tcp[21] = 2, 4
	binary.BigEndian.PutUint16(tcp[22:], mss)
	return p
}

// TestRekeyUnderLoad swaps SAs make-before-break while packets flow: the
// SAD and active outbound SA are replaced atomically, so nothing is lost
// and the new SA carries the traffic afterwards.
func TestRekeyUnderLoad(t *testing.T) {
	ta, tb := newMemTUN(256), newMemTUN(256)
	pr := newPair(t, algGCM, ta, tb, TunnelConfig{})
	// UDP has no flow control: bound the packets in flight so that the
	// test measures the pipeline, not socket buffer overflows.
	credits := make(chan struct{}, 128)
	for range cap(credits) {
		credits <- struct{}{}
	}
	var sent atomic.Uint32
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := uint32(0); ; i++ {
			select {
			case <-stop:
				return
			case <-credits:
			}
			select {
			case <-stop:
				return
			case ta.in <- ipv4UDP(addrA, addrB, i, 200):
				sent.Add(1)
			}
		}
	}()
	var recv uint32
	next := uint32(0)
	check := func(p []byte) {
		if s := seqOf(p); s != next {
			t.Fatalf("packet %d arrived, want %d", s, next)
		}
		next++
		recv++
		tb.free <- p
		credits <- struct{}{}
	}
	deadline := time.After(20 * time.Second)
	spiOld := pr.spiAB
	for round := range 5 {
		for range 500 {
			select {
			case p := <-tb.out:
				check(p)
			case <-deadline:
				t.Fatal("traffic stalled")
			}
		}
		spiNew := ipsec.SPI(0x5000 + round)
		if err := pr.b.AddSA(saParams("t", ipsec.Inbound, spiNew, algGCM, pr.bEP, pr.aEP, byte(10+round))); err != nil {
			t.Fatal(err)
		}
		if err := pr.a.AddSA(saParams("t", ipsec.Outbound, spiNew, algGCM, pr.aEP, pr.bEP, byte(10+round))); err != nil {
			t.Fatal(err)
		}
		if err := pr.a.DelSA("t", ipsec.Outbound, spiOld); err != nil {
			t.Fatal(err)
		}
		// Packets sealed with the old SA may still be in flight: delete
		// the old inbound SA only after the new one carried traffic.
		waitFor(t, "traffic on the new SA", func() bool {
			for {
				select {
				case p := <-tb.out:
					check(p)
					continue
				default:
				}
				break
			}
			q, _ := pr.b.QuerySA("t", ipsec.Inbound, spiNew)
			return q.Packets > 0
		})
		if err := pr.b.DelSA("t", ipsec.Inbound, spiOld); err != nil {
			t.Fatal(err)
		}
		spiOld = spiNew
	}
	close(stop)
	<-done
	waitFor(t, "all packets", func() bool {
		for {
			select {
			case p := <-tb.out:
				check(p)
				continue
			default:
			}
			break
		}
		return recv == sent.Load()
	})
	st, _ := pr.b.TunnelStats("t")
	for r, n := range st.Drops {
		if n != 0 {
			t.Errorf("drop %s = %d", r, n)
		}
	}
	if len(st.SAs) != 2 { // one inbound (latest) + the outbound B->A
		t.Errorf("SAs after rekeys = %+v", st.SAs)
	}
}

func TestKeepalive(t *testing.T) {
	ta, tb := newMemTUN(8), newMemTUN(8)
	pr := newPair(t, algGCM, ta, tb, TunnelConfig{NATKeepalive: 30 * time.Millisecond})
	waitFor(t, "keepalives both ways", func() bool {
		a, _ := pr.a.TunnelStats("t")
		b, _ := pr.b.TunnelStats("t")
		return a.KeepalivesTx >= 2 && b.KeepalivesRx >= 2 && a.KeepalivesRx >= 2
	})
	// Keepalives alone are no inbound traffic (no ESP was sent).
	if b, _ := pr.b.TunnelStats("t"); !b.LastInbound.IsZero() {
		t.Errorf("keepalives moved LastInbound to %v", b.LastInbound)
	}
}

func TestSoftExpire(t *testing.T) {
	ta, tb := newMemTUN(8), newMemTUN(8)
	pr := newPair(t, algGCM, ta, tb, TunnelConfig{})
	fired := make(chan ipsec.SPI, 4)
	pr.a.SetSoftExpireHandler(func(tunnel string, spi ipsec.SPI) {
		if tunnel == "t" {
			fired <- spi
		}
	})
	p := saParams("t", ipsec.Outbound, 0x7007, algGCM, pr.aEP, pr.bEP, 1)
	p.SoftBytes = 1000
	p.HardBytes = 3000
	if err := pr.b.AddSA(saParams("t", ipsec.Inbound, 0x7007, algGCM, pr.bEP, pr.aEP, 1)); err != nil {
		t.Fatal(err)
	}
	if err := pr.a.AddSA(p); err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		ta.in <- ipv4UDP(addrA, addrB, uint32(i), 500)
		select {
		case pkt := <-tb.out:
			tb.free <- pkt
		case <-time.After(20 * time.Millisecond):
		}
	}
	select {
	case spi := <-fired:
		if spi != 0x7007 {
			t.Errorf("soft expire for %v", spi)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("soft expire handler not called")
	}
	if len(fired) != 0 {
		t.Error("soft expire fired more than once")
	}
	st, _ := pr.a.TunnelStats("t")
	if st.Drops["expired"] == 0 || st.OutBytes > 3000+500 {
		t.Errorf("hard limit not enforced: out bytes %d, drops %v", st.OutBytes, st.Drops)
	}
}

func TestAllocSPI(t *testing.T) {
	e := New(Config{Logger: testLogger(t)})
	defer e.Close()
	seen := map[ipsec.SPI]bool{}
	for range 1000 {
		spi, err := e.AllocSPI("t")
		if err != nil {
			t.Fatal(err)
		}
		if spi < 256 || seen[spi] {
			t.Fatalf("AllocSPI returned %v (reserved or duplicate)", spi)
		}
		seen[spi] = true
	}
	if err := e.AddSA(ipsec.SAParams{Tunnel: "nope", SPI: 1234, Dir: ipsec.Inbound, Encap: true,
		Remote: netip.MustParseAddrPort("192.0.2.1:4500"), Alg: algGCM, EncKey: fill(20, 1)}); err == nil {
		t.Error("AddSA on an unknown tunnel succeeded")
	}
	if err := e.DelSA("nope", ipsec.Inbound, 1234); err != nil {
		t.Errorf("DelSA of unknown SA: %v", err)
	}
}
