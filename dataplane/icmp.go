package dataplane

import (
	"encoding/binary"

	"github.com/cgwproject/cgw/dataplane/packet"
)

// ICMP constants.
const (
	icmpv4DestUnreach   = 3 // RFC 792
	icmpv4FragNeeded    = 4 // code: fragmentation needed and DF set (RFC 1191)
	icmpv6PacketTooBig  = 2 // RFC 4443, Section 3.2
	icmpv4MaxReply      = 576
	icmpv6MaxReply      = 1280
	icmpHeaderLen       = 8
	replyTTL            = 64
	ipv4FlagDF          = 0x40
	icmpv6InfoTypeStart = 128 // types below are errors (RFC 4443, Section 2.1)
)

// tooBig handles an inner packet larger than the tunnel MTU: it is
// dropped, and with FragNeededICMP the sender learns the MTU from an ICMP
// "fragmentation needed" (IPv4 with DF) or ICMPv6 "packet too big".
func (t *tunnel) tooBig(pkt []byte, p *packet.Parsed) {
	t.drop(dropMTU, 1)
	if !t.fragICMP {
		return
	}
	reply := t.e.pools.getElem()
	defer t.e.pools.putElem(reply)
	n := buildTooBig(reply.buf[tunWriteOffset:], pkt, p, int(t.mtu.Load()))
	if n == 0 {
		return
	}
	if _, err := t.dev.Write([][]byte{reply.buf[:tunWriteOffset+n]}, tunWriteOffset); err != nil {
		t.drop(dropTUNWrite, 1)
	}
}

// buildTooBig writes the ICMP error for the oversize packet pkt into out
// and returns its length, or 0 when no error may be sent: for IPv4 packets
// without DF (they may be fragmented; AWS advises clearing DF anyway),
// non-first fragments, and ICMP errors themselves (RFC 1122, Section
// 3.2.2; RFC 4443, Section 2.4 (e)). The reply comes from the packet's
// destination, the only address of the far side we know.
func buildTooBig(out, pkt []byte, p *packet.Parsed, mtu int) int {
	if p.NonFirstFragment {
		return 0
	}
	l4 := pkt[p.L4Off:p.Length]
	if p.Version == 4 {
		if pkt[6]&ipv4FlagDF == 0 {
			return 0
		}
		if p.Proto == packet.ProtoICMP && len(l4) > 0 && isICMPv4Error(l4[0]) {
			return 0
		}
		quote := min(len(pkt), icmpv4MaxReply-packet.IPv4HeaderLen-icmpHeaderLen)
		n := packet.IPv4HeaderLen + icmpHeaderLen + quote
		if n > len(out) {
			return 0
		}
		clear(out[:packet.IPv4HeaderLen+icmpHeaderLen])
		ip := out[:packet.IPv4HeaderLen]
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(n))
		ip[8] = replyTTL
		ip[9] = packet.ProtoICMP
		copy(ip[12:16], pkt[16:20]) // from the original destination
		copy(ip[16:20], pkt[12:16]) // to the original source
		binary.BigEndian.PutUint16(ip[10:], ^sum16(0, ip))
		icmp := out[packet.IPv4HeaderLen:n]
		icmp[0] = icmpv4DestUnreach
		icmp[1] = icmpv4FragNeeded
		binary.BigEndian.PutUint16(icmp[6:], uint16(mtu)) // Next-Hop MTU (RFC 1191, Section 4)
		copy(icmp[icmpHeaderLen:], pkt[:quote])
		binary.BigEndian.PutUint16(icmp[2:], ^sum16(0, icmp))
		return n
	}
	if p.Proto == packet.ProtoICMPv6 && len(l4) > 0 && l4[0] < icmpv6InfoTypeStart {
		return 0
	}
	quote := min(len(pkt), icmpv6MaxReply-packet.IPv6HeaderLen-icmpHeaderLen)
	n := packet.IPv6HeaderLen + icmpHeaderLen + quote
	if n > len(out) {
		return 0
	}
	clear(out[:packet.IPv6HeaderLen+icmpHeaderLen])
	ip := out[:packet.IPv6HeaderLen]
	ip[0] = 0x60
	plen := n - packet.IPv6HeaderLen
	binary.BigEndian.PutUint16(ip[4:], uint16(plen))
	ip[6] = packet.ProtoICMPv6
	ip[7] = replyTTL
	copy(ip[8:24], pkt[24:40])
	copy(ip[24:40], pkt[8:24])
	icmp := out[packet.IPv6HeaderLen:n]
	icmp[0] = icmpv6PacketTooBig
	binary.BigEndian.PutUint32(icmp[4:], uint32(mtu))
	copy(icmp[icmpHeaderLen:], pkt[:quote])
	// Pseudo-header (RFC 8200, Section 8.1): addresses, length, next header.
	s := sum16(0, ip[8:40])
	s = add16(s, uint16(plen>>16))
	s = add16(s, uint16(plen))
	s = add16(s, packet.ProtoICMPv6)
	binary.BigEndian.PutUint16(icmp[2:], ^sum16(s, icmp))
	return n
}

func isICMPv4Error(typ byte) bool {
	switch typ {
	case 3, 4, 5, 11, 12: // unreachable, source quench, redirect, time exceeded, parameter problem
		return true
	}
	return false
}

// sum16 adds b to the one's complement sum s (RFC 1071), unfinalised.
func sum16(s uint16, b []byte) uint16 {
	acc := uint32(s)
	for len(b) >= 2 {
		acc += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint32(b[0]) << 8
	}
	for acc > 0xffff {
		acc = (acc & 0xffff) + (acc >> 16)
	}
	return uint16(acc)
}

func add16(s, v uint16) uint16 {
	acc := uint32(s) + uint32(v)
	return uint16((acc & 0xffff) + (acc >> 16))
}
