package dataplane

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"sort"
	"testing"
	"time"

	"github.com/cgwproject/cgw/dataplane/packet"
)

// withDF returns a copy of the IPv4 packet p with DF set and its header
// checksum fixed.
func withDF(p []byte) []byte {
	q := bytes.Clone(p)
	q[6] |= 0x40
	binary.BigEndian.PutUint16(q[10:], 0)
	binary.BigEndian.PutUint16(q[10:], ^packet.OnesSum(0, q[:20]))
	return q
}

// receive collects n packets written to dev, or fails.
func receive(t *testing.T, dev *memTUN, n int, what string) [][]byte {
	t.Helper()
	var got [][]byte
	for len(got) < n {
		select {
		case p := <-dev.out:
			got = append(got, bytes.Clone(p))
			dev.free <- p
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: got %d packets, want %d", what, len(got), n)
		}
	}
	return got
}

// reassembleIPv4 is a reference reassembler (RFC 791, Section 3.2): it
// checks each fragment and rebuilds the datagram from the first
// fragment's header and the data in offset order.
func reassembleIPv4(t *testing.T, mtu int, frags [][]byte) []byte {
	t.Helper()
	sort.Slice(frags, func(i, j int) bool {
		return binary.BigEndian.Uint16(frags[i][6:])&0x1fff < binary.BigEndian.Uint16(frags[j][6:])&0x1fff
	})
	var data []byte
	for i, f := range frags {
		hlen := int(f[0]&0x0f) * 4
		word := binary.BigEndian.Uint16(f[6:])
		if len(f) > mtu || packet.OnesSum(0, f[:hlen]) != 0xffff || word&0x4000 != 0 {
			t.Fatalf("fragment %d: %d octets (MTU %d), header sum %#x, flags %#x", i, len(f), mtu, packet.OnesSum(0, f[:hlen]), word)
		}
		if int(word&0x1fff)*8 != len(data) || (word&0x2000 != 0) != (i < len(frags)-1) {
			t.Fatalf("fragment %d: offset %d MF %v, want offset %d", i, int(word&0x1fff)*8, word&0x2000 != 0, len(data))
		}
		if !bytes.Equal(f[4:6], frags[0][4:6]) {
			t.Fatalf("fragment %d: identification differs", i)
		}
		data = append(data, f[hlen:]...)
	}
	hlen := int(frags[0][0]&0x0f) * 4
	out := append(bytes.Clone(frags[0][:hlen]), data...)
	binary.BigEndian.PutUint16(out[2:], uint16(len(out)))
	binary.BigEndian.PutUint16(out[6:], 0)
	binary.BigEndian.PutUint16(out[10:], 0)
	binary.BigEndian.PutUint16(out[10:], ^packet.OnesSum(0, out[:hlen]))
	return out
}

// TestOversizeFragment: by default (AWS's advice) an IPv4 packet larger
// than the tunnel MTU has DF cleared and is fragmented before encryption;
// each fragment crosses as its own ESP packet and B's host gets fragments
// that reassemble to the original.
func TestOversizeFragment(t *testing.T) {
	ta, tb := newMemTUN(16), newMemTUN(16)
	pr := newPair(t, algGCM, ta, tb, TunnelConfig{MTU: 1000})

	plain := ipv4UDP(addrA, addrB, 1, 1400) // no DF: byte-exact after reassembly
	binary.BigEndian.PutUint16(plain[4:], 0x4242)
	binary.BigEndian.PutUint16(plain[10:], 0)
	binary.BigEndian.PutUint16(plain[10:], ^packet.OnesSum(0, plain[:20]))
	ta.in <- plain
	frags := receive(t, tb, 2, "fragments of a packet without DF")
	if got := reassembleIPv4(t, 1000, frags); !bytes.Equal(got, plain) {
		t.Errorf("reassembled packet differs from the original")
	}

	df := withDF(ipv4UDP(addrA, addrB, 2, 1400)) // Linux sends DF datagrams with ID 0
	ta.in <- df
	frags = receive(t, tb, 2, "fragments of a DF packet")
	got := reassembleIPv4(t, 1000, frags)
	if binary.BigEndian.Uint16(got[4:]) == 0 {
		t.Error("DF was cleared but the datagram kept identification 0 (RFC 6864: fragments need a unique ID)")
	}
	want := bytes.Clone(df)
	copy(want[4:6], got[4:6])
	want[6] &^= 0x40
	binary.BigEndian.PutUint16(want[10:], 0)
	binary.BigEndian.PutUint16(want[10:], ^packet.OnesSum(0, want[:20]))
	if !bytes.Equal(got, want) {
		t.Errorf("reassembled DF packet differs from the original with DF cleared")
	}

	// At the MTU nothing is fragmented.
	ta.in <- withDF(ipv4UDP(addrA, addrB, 3, 1000))
	if p := receive(t, tb, 1, "packet at the MTU")[0]; len(p) != 1000 || p[6]&0x40 == 0 {
		t.Errorf("packet at the MTU changed: %d octets, flags %#x", len(p), p[6])
	}
	// A counts after its send returns, which may be after B delivered.
	waitFor(t, "A counts 5 ESP packets", func() bool {
		st, _ := pr.a.TunnelStats("t")
		return st.OutPackets == 5
	})
	st, _ := pr.a.TunnelStats("t")
	if st.Fragmented != 2 || st.Drops["mtu"] != 0 || st.TooBigSent != 0 {
		t.Errorf("A: fragmented %d, mtu drops %d, too big %d; want 2, 0, 0", st.Fragmented, st.Drops["mtu"], st.TooBigSent)
	}
	waitFor(t, "B counts 5 ESP packets", func() bool {
		st, _ := pr.b.TunnelStats("t")
		return st.InPackets == 5
	})
}

// TestOversizeIPv6: IPv6 is never fragmented on the way (RFC 8200,
// Section 5): in both modes the sender gets "packet too big" with the
// tunnel MTU, and nothing is sent.
func TestOversizeIPv6(t *testing.T) {
	for _, mode := range []Oversize{OversizeFragment, OversizeICMP} {
		t.Run(mode.String(), func(t *testing.T) {
			ta, tb := newMemTUN(8), newMemTUN(8)
			pr := newPair(t, algGCM, ta, tb, TunnelConfig{MTU: 1280, Oversize: mode})
			src, dst := netip.MustParseAddr("fd00:a::1"), netip.MustParseAddr("fd00:b::1")
			ta.in <- ipv6UDP(src, dst, 1, 1400)
			reply := receive(t, ta, 1, "ICMPv6 packet too big")[0]
			var p packet.Parsed
			if err := p.Decode(reply); err != nil {
				t.Fatal(err)
			}
			if p.Proto != packet.ProtoICMPv6 || reply[40] != 2 || binary.BigEndian.Uint32(reply[44:]) != 1280 || p.Src != dst || p.Dst != src {
				t.Errorf("reply %v -> %v proto %d type %d mtu %d", p.Src, p.Dst, p.Proto, reply[40], binary.BigEndian.Uint32(reply[44:]))
			}
			waitFor(t, "mtu drop and too-big counted", func() bool {
				st, _ := pr.a.TunnelStats("t")
				return st.Drops["mtu"] == 1 && st.TooBigSent == 1 && st.OutPackets == 0
			})
		})
	}
}

// TestOversizeICMP: with OversizeICMP a DF packet gets ICMP
// "fragmentation needed" with the tunnel MTU (RFC 1191), while a packet
// without DF is still fragmented.
func TestOversizeICMP(t *testing.T) {
	ta, tb := newMemTUN(8), newMemTUN(8)
	pr := newPair(t, algGCM, ta, tb, TunnelConfig{MTU: 1000, Oversize: OversizeICMP})
	big := withDF(ipv4UDP(addrA, addrB, 1, 1200))
	ta.in <- big
	p := receive(t, ta, 1, "ICMP fragmentation needed")[0]
	var pp packet.Parsed
	if err := pp.Decode(p); err != nil {
		t.Fatal(err)
	}
	icmp := p[pp.L4Off:]
	if pp.Proto != packet.ProtoICMP || icmp[0] != 3 || icmp[1] != 4 || binary.BigEndian.Uint16(icmp[6:]) != 1000 {
		t.Errorf("reply = proto %d type %d code %d mtu %d", pp.Proto, icmp[0], icmp[1], binary.BigEndian.Uint16(icmp[6:]))
	}
	if pp.Src != addrB || pp.Dst != addrA {
		t.Errorf("reply %v -> %v", pp.Src, pp.Dst)
	}
	if packet.OnesSum(0, p[:20]) != 0xffff || packet.OnesSum(0, icmp) != 0xffff {
		t.Error("bad checksums in the ICMP reply")
	}
	if !bytes.Equal(icmp[8:8+28], big[:28]) {
		t.Error("ICMP does not quote the original header")
	}

	plain := ipv4UDP(addrA, addrB, 2, 1200)
	ta.in <- plain
	if got := reassembleIPv4(t, 1000, receive(t, tb, 2, "fragments")); !bytes.Equal(got, plain) {
		t.Error("packet without DF not fragmented and reassembled intact")
	}
	waitFor(t, "1 mtu drop, 1 too-big, 1 fragmented", func() bool {
		st, _ := pr.a.TunnelStats("t")
		return st.Drops["mtu"] == 1 && st.TooBigSent == 1 && st.Fragmented == 1
	})
}

// TestSetTunnelMTU: the tunnel MTU and the effective MSS clamp follow
// SetTunnelMTU; the device MTU plays no part.
func TestSetTunnelMTU(t *testing.T) {
	ta, tb := newMemTUN(8), newMemTUN(8)
	pr := newPair(t, algGCM, ta, tb, TunnelConfig{MTU: 1000, MSSClamp: 1379})
	mssAfter := func() uint16 {
		t.Helper()
		ta.in <- tcpSYN(addrA, addrB, 1460)
		p := receive(t, tb, 1, "SYN")[0]
		return binary.BigEndian.Uint16(p[20+22:])
	}
	if m := mssAfter(); m != 960 {
		t.Errorf("MSS with tunnel MTU 1000 = %d, want 960 (MTU-40, below mss_clamp 1379)", m)
	}
	// B clamps inbound SYNs too, with its own tunnel MTU.
	for _, e := range []*Engine{pr.a, pr.b} {
		if err := e.SetTunnelMTU("t", 1438); err != nil {
			t.Fatal(err)
		}
	}
	if m := mssAfter(); m != 1379 {
		t.Errorf("MSS with tunnel MTU 1438 = %d, want the configured 1379", m)
	}
	ta.in <- withDF(ipv4UDP(addrA, addrB, 1, 1438))
	if p := receive(t, tb, 1, "1438-octet packet")[0]; len(p) != 1438 {
		t.Errorf("1438-octet packet arrived as %d octets", len(p))
	}
	if err := pr.a.SetTunnelMTU("nope", 1400); err == nil {
		t.Error("SetTunnelMTU of an unknown tunnel succeeded")
	}
	for _, bad := range []int{0, 67, maxMTU + 1} {
		if err := pr.a.SetTunnelMTU("t", bad); err == nil {
			t.Errorf("SetTunnelMTU(%d) succeeded", bad)
		}
	}
	e := New(Config{Logger: testLogger(t), Workers: 1})
	defer e.Close()
	if err := e.AddTunnel(TunnelConfig{Name: "x", Device: newMemTUN(1), Oversize: OversizeICMP + 1}); err == nil {
		t.Error("AddTunnel accepted an unknown Oversize")
	}
}

func TestICMPRateLimit(t *testing.T) {
	var r rateLimit
	now := int64(time.Hour)
	n := 0
	for range 100 {
		if r.allow(now) {
			n++
		}
	}
	if n != icmpBurst {
		t.Errorf("burst allowed %d, want %d", n, icmpBurst)
	}
	now += int64(time.Second) / icmpRate
	if !r.allow(now) || r.allow(now) {
		t.Error("one token per 1/icmpRate second expected")
	}
	now += int64(time.Hour)
	n = 0
	for range 100 {
		if r.allow(now) {
			n++
		}
	}
	if n != icmpBurst {
		t.Errorf("after a long pause allowed %d, want the burst %d", n, icmpBurst)
	}
}
