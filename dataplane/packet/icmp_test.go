package packet

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// FuzzBuildTooBig checks the ICMP error builder on any packet Decode
// accepts: it never panics or writes past out, it stays silent where RFC
// 1122/1191/4443 forbid an error, and every reply it builds is a valid
// packet back to the sender with correct checksums, the MTU and a quote of
// the original packet within the 576/1280-octet limits. The seed corpus is
// in testdata/fuzz/FuzzBuildTooBig.
func FuzzBuildTooBig(f *testing.F) {
	f.Add(ipv4Packet(1500, nil, ipv4FlagDF), uint16(1400), uint16(2048))
	f.Add(buildTCP(true, tcpFlagSYN, []byte{2, 4, 5, 0xb4}, make([]byte, 1400)), uint16(1280), uint16(2048))
	f.Fuzz(func(t *testing.T, pkt []byte, mtu, outLen uint16) {
		var p Parsed
		if p.Decode(pkt) != nil {
			return
		}
		orig := append([]byte(nil), pkt...)
		out := make([]byte, int(outLen)+16)
		guard := bytes.Repeat([]byte{0xa5}, 16)
		copy(out[outLen:], guard)
		n := BuildTooBig(out[:outLen], pkt, &p, int(mtu))
		if !bytes.Equal(pkt, orig) {
			t.Fatal("BuildTooBig changed the original packet")
		}
		if !bytes.Equal(out[outLen:], guard) {
			t.Fatal("BuildTooBig wrote past the end of out")
		}
		if n == 0 {
			return
		}
		if n > int(outLen) {
			t.Fatalf("reply length %d exceeds the buffer (%d)", n, outLen)
		}
		if p.NonFirstFragment || p.Src.IsUnspecified() || p.Src.IsMulticast() {
			t.Fatalf("answered a packet that must not be answered: %+v", p)
		}
		var r Parsed
		if err := r.Decode(out[:n]); err != nil {
			t.Fatalf("reply does not decode: %v", err)
		}
		if r.Src != p.Dst || r.Dst != p.Src || r.Length != n {
			t.Fatalf("reply %s -> %s (%d octets), want %s -> %s (%d)", r.Src, r.Dst, r.Length, p.Dst, p.Src, n)
		}
		if p.Version == 4 {
			if !DF(pkt) {
				t.Fatal("answered an IPv4 packet without DF")
			}
			if p.Proto == ProtoICMP && p.Length > p.L4Off && isICMPv4Error(pkt[p.L4Off]) {
				t.Fatal("answered an ICMP error with an error")
			}
			if n > icmpv4MaxReply || OnesSum(0, out[:IPv4HeaderLen]) != 0xffff {
				t.Fatalf("IPv4 reply of %d octets, header sum %#x", n, OnesSum(0, out[:IPv4HeaderLen]))
			}
			icmp := out[IPv4HeaderLen:n]
			if r.Proto != ProtoICMP || icmp[0] != icmpv4DestUnreach || icmp[1] != icmpv4FragNeeded ||
				binary.BigEndian.Uint16(icmp[6:]) != mtu || OnesSum(0, icmp) != 0xffff {
				t.Fatalf("bad ICMP fragmentation needed: % x", icmp[:icmpHeaderLen])
			}
			if !bytes.HasPrefix(pkt, icmp[icmpHeaderLen:]) {
				t.Fatal("the quote is not the start of the original packet")
			}
			return
		}
		if p.Proto == ProtoICMPv6 && p.Length > p.L4Off && pkt[p.L4Off] < icmpv6InfoTypeStart {
			t.Fatal("answered an ICMPv6 error with an error")
		}
		if n > icmpv6MaxReply {
			t.Fatalf("IPv6 reply of %d octets exceeds 1280", n)
		}
		icmp := out[IPv6HeaderLen:n]
		s := OnesSum(0, out[8:40])
		s = OnesSum(s, []byte{0, 0, byte(len(icmp) >> 8), byte(len(icmp)), 0, 0, 0, ProtoICMPv6})
		if r.Proto != ProtoICMPv6 || icmp[0] != icmpv6PacketTooBig || binary.BigEndian.Uint32(icmp[4:]) != uint32(mtu) || OnesSum(s, icmp) != 0xffff {
			t.Fatalf("bad ICMPv6 packet too big: % x", icmp[:icmpHeaderLen])
		}
		if !bytes.HasPrefix(pkt, icmp[icmpHeaderLen:]) {
			t.Fatal("the quote is not the start of the original packet")
		}
	})
}
