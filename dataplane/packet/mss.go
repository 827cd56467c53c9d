package packet

import "encoding/binary"

// TCP header fields (RFC 9293, Section 3.1).
const (
	tcpFlagSYN     = 0x02
	tcpOptEnd      = 0
	tcpOptNOP      = 1
	tcpOptMSS      = 2
	tcpOptMSSLen   = 4
	tcpChecksumOff = 16
)

// IPv6MSSDelta is how much smaller the MSS of an IPv6 inner packet must be
// than that of an IPv4 one for the same tunnel MTU: the IPv6 header is 20
// octets longer than the IPv4 header.
const IPv6MSSDelta = IPv6HeaderLen - IPv4HeaderLen

// ClampMSS lowers the Maximum Segment Size option of a TCP SYN or SYN-ACK
// in pkt to mss when it is larger, the way iptables TCPMSS --set-mss does,
// and reports whether it changed the packet. For IPv6 packets the limit is
// mss-IPv6MSSDelta, so one configured value (the IPv4 MSS, as AWS gives it)
// fits both families. The TCP checksum is updated incrementally (RFC 1624,
// Section 3, eqn. 3); the IP header is not touched.
//
// Packets that are not TCP SYNs, fragments, or whose headers are
// truncated or malformed are left alone. mss 0 disables clamping.
func ClampMSS(pkt []byte, mss uint16) bool {
	var p Parsed
	if mss == 0 || p.Decode(pkt) != nil {
		return false
	}
	return p.ClampMSS(pkt, mss)
}

// ClampMSS is ClampMSS for a packet already decoded into p; pkt must be the
// buffer p was decoded from.
func (p *Parsed) ClampMSS(pkt []byte, mss uint16) bool {
	if mss == 0 || p.Proto != ProtoTCP || p.Fragment || p.TCPFlags&tcpFlagSYN == 0 {
		return false
	}
	if p.Version == 6 {
		if mss <= IPv6MSSDelta {
			return false
		}
		mss -= IPv6MSSDelta
	}
	if p.L4Off+TCPHeaderLen > p.Length || p.Length > len(pkt) {
		return false
	}
	tcp := pkt[p.L4Off:p.Length]
	hlen := int(tcp[12]>>4) * 4
	if hlen < TCPHeaderLen || hlen > len(tcp) {
		return false
	}
	opts := tcp[TCPHeaderLen:hlen]
	for i := 0; i < len(opts); {
		switch opts[i] {
		case tcpOptEnd:
			return false
		case tcpOptNOP:
			i++
			continue
		}
		if i+1 >= len(opts) {
			return false
		}
		l := int(opts[i+1])
		if l < 2 || i+l > len(opts) {
			return false
		}
		if opts[i] == tcpOptMSS && l == tcpOptMSSLen {
			at := TCPHeaderLen + i + 2 // offset of the MSS value in the TCP header
			old := binary.BigEndian.Uint16(tcp[at:])
			if old <= mss {
				return false
			}
			rewrite16(tcp, at, mss)
			return true
		}
		i += l
	}
	return false
}

// rewrite16 stores v big-endian at tcp[at:at+2] and fixes the TCP checksum
// incrementally. The checksum sums 16-bit words aligned to the start of the
// TCP header (which is 4-octet aligned inside the pseudo-header sum), so a
// value at an odd offset straddles two words; each changed word is updated
// on its own.
func rewrite16(tcp []byte, at int, v uint16) {
	sum := binary.BigEndian.Uint16(tcp[tcpChecksumOff:])
	if at%2 == 0 {
		old := binary.BigEndian.Uint16(tcp[at:])
		binary.BigEndian.PutUint16(tcp[at:], v)
		sum = csumUpdate(sum, old, v)
	} else {
		// Words w0 = tcp[at-1:at+1] and w1 = tcp[at+1:at+3]; an MSS option
		// value never ends at the header end, so at+3 <= len(tcp) holds.
		w0old := binary.BigEndian.Uint16(tcp[at-1:])
		w1old := binary.BigEndian.Uint16(tcp[at+1:])
		binary.BigEndian.PutUint16(tcp[at:], v)
		w0new := binary.BigEndian.Uint16(tcp[at-1:])
		w1new := binary.BigEndian.Uint16(tcp[at+1:])
		sum = csumUpdate(sum, w0old, w0new)
		sum = csumUpdate(sum, w1old, w1new)
	}
	binary.BigEndian.PutUint16(tcp[tcpChecksumOff:], sum)
}
