package packet

import (
	"encoding/binary"
	"net/netip"
)

// ICMP errors for packets too big for the tunnel (RFC 1191, RFC 4443).

var ipv4Broadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// ICMP constants.
const (
	icmpv4DestUnreach   = 3 // RFC 792
	icmpv4FragNeeded    = 4 // code: fragmentation needed and DF set (RFC 1191)
	icmpv6PacketTooBig  = 2 // RFC 4443, Section 3.2
	icmpv4MaxReply      = 576
	icmpv6MaxReply      = 1280
	icmpHeaderLen       = 8
	replyTTL            = 64
	icmpv6InfoTypeStart = 128 // types below are errors (RFC 4443, Section 2.1)
)

// BuildTooBig writes the ICMP error for the oversize packet pkt into out
// and returns its length, or 0 when no error may be sent: for IPv4 packets
// without DF (they may be fragmented), non-first fragments, ICMP errors
// themselves, and packets from an address that does not identify a single
// host (RFC 1122, Section 3.2.2; RFC 4443, Section 2.4 (e)). The reply
// comes from the packet's destination, the only address of the far side
// we know.
func BuildTooBig(out, pkt []byte, p *Parsed, mtu int) int {
	if p.NonFirstFragment || p.Src.IsUnspecified() || p.Src.IsMulticast() || p.Src == ipv4Broadcast {
		return 0
	}
	l4 := pkt[p.L4Off:p.Length]
	if p.Version == 4 {
		if !DF(pkt) {
			return 0
		}
		if p.Proto == ProtoICMP && len(l4) > 0 && isICMPv4Error(l4[0]) {
			return 0
		}
		quote := min(len(pkt), icmpv4MaxReply-IPv4HeaderLen-icmpHeaderLen)
		n := IPv4HeaderLen + icmpHeaderLen + quote
		if n > len(out) {
			return 0
		}
		clear(out[:IPv4HeaderLen+icmpHeaderLen])
		ip := out[:IPv4HeaderLen]
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(n))
		ip[8] = replyTTL
		ip[9] = ProtoICMP
		copy(ip[12:16], pkt[16:20]) // from the original destination
		copy(ip[16:20], pkt[12:16]) // to the original source
		binary.BigEndian.PutUint16(ip[10:], ^OnesSum(0, ip))
		icmp := out[IPv4HeaderLen:n]
		icmp[0] = icmpv4DestUnreach
		icmp[1] = icmpv4FragNeeded
		binary.BigEndian.PutUint16(icmp[6:], uint16(mtu)) // Next-Hop MTU (RFC 1191, Section 4)
		copy(icmp[icmpHeaderLen:], pkt[:quote])
		binary.BigEndian.PutUint16(icmp[2:], ^OnesSum(0, icmp))
		return n
	}
	if p.Proto == ProtoICMPv6 && len(l4) > 0 && l4[0] < icmpv6InfoTypeStart {
		return 0
	}
	quote := min(len(pkt), icmpv6MaxReply-IPv6HeaderLen-icmpHeaderLen)
	n := IPv6HeaderLen + icmpHeaderLen + quote
	if n > len(out) {
		return 0
	}
	clear(out[:IPv6HeaderLen+icmpHeaderLen])
	ip := out[:IPv6HeaderLen]
	ip[0] = 0x60
	plen := n - IPv6HeaderLen
	binary.BigEndian.PutUint16(ip[4:], uint16(plen))
	ip[6] = ProtoICMPv6
	ip[7] = replyTTL
	copy(ip[8:24], pkt[24:40])
	copy(ip[24:40], pkt[8:24])
	icmp := out[IPv6HeaderLen:n]
	icmp[0] = icmpv6PacketTooBig
	binary.BigEndian.PutUint32(icmp[4:], uint32(mtu))
	copy(icmp[icmpHeaderLen:], pkt[:quote])
	// Pseudo-header (RFC 8200, Section 8.1): addresses, length, next header.
	s := OnesSum(0, ip[8:40])
	s = add16(s, uint16(plen>>16))
	s = add16(s, uint16(plen))
	s = add16(s, ProtoICMPv6)
	binary.BigEndian.PutUint16(icmp[2:], ^OnesSum(s, icmp))
	return n
}

func isICMPv4Error(typ byte) bool {
	switch typ {
	case 3, 4, 5, 11, 12: // unreachable, source quench, redirect, time exceeded, parameter problem
		return true
	}
	return false
}
