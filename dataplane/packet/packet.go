// Package packet parses IPv4 and IPv6 packets in place, rewrites TCP
// options for MSS clamping, and clears DF and fragments IPv4 packets (RFC
// 791). It is the per-packet helper of the dataplane.
//
// Nothing here allocates: Decode fills a caller-owned Parsed that can be
// reused for every packet, ClampMSS and ClearDF edit the packet buffer in
// place with an incremental checksum update (RFC 1624), and FragmentIPv4
// writes one fragment at a time into a buffer of the caller's. Functions never panic on
// malformed input; they report it. A Parsed is not safe for concurrent use;
// the functions themselves are.
package packet

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// IP protocol numbers used by the dataplane (IANA "Assigned Internet
// Protocol Numbers").
const (
	ProtoICMP     = 1
	ProtoIPv4     = 4 // IPv4 encapsulation: ESP Next Header of a tunnel-mode IPv4 packet
	ProtoTCP      = 6
	ProtoUDP      = 17
	ProtoIPv6     = 41 // ESP Next Header of a tunnel-mode IPv6 packet
	ProtoICMPv6   = 58
	ProtoNoNext   = 59 // IPv6 No Next Header; ESP TFC dummy packets (RFC 4303, Section 2.6)
	ProtoSCTP     = 132
	ProtoUDPLite  = 136
	protoHopOpts  = 0
	protoRouting  = 43
	protoFragment = 44
	protoAH       = 51
	protoDstOpts  = 60
	protoMobility = 135
)

// Header sizes.
const (
	IPv4HeaderLen = 20
	IPv6HeaderLen = 40
	TCPHeaderLen  = 20
)

// Errors returned by Decode. They describe why a packet is not a valid IP
// packet; the dataplane counts them as "malformed" drops.
var (
	ErrTruncated = errors.New("packet: truncated IP packet (shorter than its headers or length field)")
	ErrVersion   = errors.New("packet: IP version is neither 4 nor 6")
	ErrHeader    = errors.New("packet: invalid IP header length field")
)

// Parsed is the decoded view of one IP packet. The zero value is ready for
// Decode; all fields are overwritten by each call.
type Parsed struct {
	Version uint8 // 4 or 6
	// Proto is the transport protocol: for IPv6 the Next Header after any
	// Hop-by-Hop, Routing, Destination Options, Fragment and AH headers.
	Proto    uint8
	Src, Dst netip.Addr
	// Length is the packet length claimed by the IP header (IPv4 Total
	// Length, IPv6 40 + Payload Length). Decode checks it fits the buffer.
	Length int
	// L4Off is the offset of the transport header.
	L4Off int
	// Fragment is set for any fragment; NonFirstFragment when the
	// transport header is not present (fragment offset != 0).
	Fragment, NonFirstFragment bool
	// SrcPort and DstPort are set for TCP, UDP, UDP-Lite and SCTP when the
	// transport header is present; for ICMP/ICMPv6 SrcPort holds
	// type<<8|code, as IKEv2 traffic selectors encode them (RFC 4301,
	// Section 4.4.1.1). HasPorts says whether they are valid.
	SrcPort, DstPort uint16
	HasPorts         bool
	// TCPFlags is the TCP flags octet (0 when not TCP).
	TCPFlags uint8
}

// Version returns the IP version nibble of b, or 0 when b is empty.
func Version(b []byte) uint8 {
	if len(b) == 0 {
		return 0
	}
	return b[0] >> 4
}

// Decode parses the IP packet in b into p. It validates the header length
// fields against len(b); bytes after p.Length (for example ESP TFC padding,
// RFC 4303, Section 2.7) are allowed and ignored.
func (p *Parsed) Decode(b []byte) error {
	*p = Parsed{}
	if len(b) < 1 {
		return ErrTruncated
	}
	switch b[0] >> 4 {
	case 4:
		return p.decode4(b)
	case 6:
		return p.decode6(b)
	}
	return ErrVersion
}

// decode4 parses an IPv4 header (RFC 791, Section 3.1).
func (p *Parsed) decode4(b []byte) error {
	if len(b) < IPv4HeaderLen {
		return ErrTruncated
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < IPv4HeaderLen {
		return ErrHeader
	}
	total := int(binary.BigEndian.Uint16(b[2:4]))
	if total < ihl {
		return ErrHeader
	}
	if total > len(b) {
		return ErrTruncated
	}
	p.Version = 4
	p.Length = total
	p.Proto = b[9]
	p.Src = netip.AddrFrom4([4]byte(b[12:16]))
	p.Dst = netip.AddrFrom4([4]byte(b[16:20]))
	p.L4Off = ihl
	frag := binary.BigEndian.Uint16(b[6:8])
	p.Fragment = frag&0x3fff != 0 // MF or offset
	p.NonFirstFragment = frag&0x1fff != 0
	p.decodeL4(b[:total])
	return nil
}

// decode6 parses an IPv6 header (RFC 8200, Section 3) and walks the
// extension headers that may precede the transport header (Section 4).
func (p *Parsed) decode6(b []byte) error {
	if len(b) < IPv6HeaderLen {
		return ErrTruncated
	}
	total := IPv6HeaderLen + int(binary.BigEndian.Uint16(b[4:6]))
	if total > len(b) {
		return ErrTruncated
	}
	// A zero Payload Length with a Hop-by-Hop header announces a jumbogram
	// (RFC 2675); tunnels carry no such packets, so we treat it as 40 octets.
	p.Version = 6
	p.Length = total
	p.Src = netip.AddrFrom16([16]byte(b[8:24]))
	p.Dst = netip.AddrFrom16([16]byte(b[24:40]))
	b = b[:total]
	next := b[6]
	off := IPv6HeaderLen
	// Bound the walk: each iteration consumes at least 8 octets.
	for range 16 {
		switch next {
		case protoHopOpts, protoRouting, protoDstOpts, protoMobility:
			if off+8 > len(b) {
				return ErrTruncated
			}
			next = b[off]
			off += (int(b[off+1]) + 1) * 8
		case protoFragment:
			if off+8 > len(b) {
				return ErrTruncated
			}
			p.Fragment = true
			fo := binary.BigEndian.Uint16(b[off+2 : off+4])
			if fo&0xfff8 != 0 {
				p.NonFirstFragment = true
			}
			next = b[off]
			off += 8
		case protoAH:
			// RFC 4302, Section 2.2: Payload Len is in 4-octet units minus 2.
			if off+8 > len(b) {
				return ErrTruncated
			}
			next = b[off]
			off += (int(b[off+1]) + 2) * 4
		default:
			if off > len(b) {
				return ErrTruncated
			}
			p.Proto = next
			p.L4Off = off
			p.decodeL4(b)
			return nil
		}
	}
	return ErrHeader
}

// decodeL4 fills the port and flag fields when the transport header is
// present in b[p.L4Off:].
func (p *Parsed) decodeL4(b []byte) {
	if p.NonFirstFragment {
		return
	}
	l4 := b[p.L4Off:]
	switch p.Proto {
	case ProtoTCP:
		if len(l4) >= TCPHeaderLen {
			p.TCPFlags = l4[13]
		}
		fallthrough
	case ProtoUDP, ProtoUDPLite, ProtoSCTP:
		if len(l4) >= 4 {
			p.SrcPort = binary.BigEndian.Uint16(l4[0:2])
			p.DstPort = binary.BigEndian.Uint16(l4[2:4])
			p.HasPorts = true
		}
	case ProtoICMP, ProtoICMPv6:
		if len(l4) >= 2 {
			p.SrcPort = uint16(l4[0])<<8 | uint16(l4[1])
			p.HasPorts = true
		}
	}
}
