package message

import (
	"fmt"
	"net/netip"

	"github.com/cgwproject/cgw/ipsec"
	"golang.org/x/crypto/cryptobyte"
)

// Traffic Selector payloads, TSi and TSr (RFC 7296, Section 3.13):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Number of TSs |                 RESERVED                      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                       <Traffic Selectors>                     ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Traffic Selector substructure (Section 3.13.1):
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   TS Type     |IP Protocol ID*|       Selector Length         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|           Start Port*         |           End Port*           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                         Starting Address*                     ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                         Ending Address*                       ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Only TS_IPV4_ADDR_RANGE (7) and TS_IPV6_ADDR_RANGE (8) are decoded; any
// other TS Type is an INVALID_SYNTAX error naming the type (cgw cannot
// narrow or honour a selector it does not understand). IPv4-mapped IPv6
// addresses are encoded as TS_IPV6_ADDR_RANGE.

// TS Types (RFC 7296, Section 3.13.1).
const (
	tsIPv4AddrRange = 7
	tsIPv6AddrRange = 8
	tsHeaderLen     = 8
)

func (ts *TS) marshal(b *cryptobyte.Builder) {
	if len(ts.Selectors) == 0 || len(ts.Selectors) > 255 {
		b.SetError(fmt.Errorf("%s payload with %d selectors, want 1..255", ts.Type(), len(ts.Selectors)))
		return
	}
	b.AddUint8(uint8(len(ts.Selectors)))
	b.AddBytes([]byte{0, 0, 0})
	for i, sel := range ts.Selectors {
		var typ uint8
		switch {
		case sel.Start.Is4() && sel.End.Is4():
			typ = tsIPv4AddrRange
		case sel.Start.Is6() && sel.End.Is6():
			typ = tsIPv6AddrRange
		default:
			b.SetError(fmt.Errorf("%s selector %d: start %v and end %v are not both IPv4 or both IPv6", ts.Type(), i, sel.Start, sel.End))
			return
		}
		start, end := sel.Start.AsSlice(), sel.End.AsSlice()
		b.AddUint8(typ)
		b.AddUint8(sel.IPProto)
		b.AddUint16(uint16(tsHeaderLen + len(start) + len(end)))
		b.AddUint16(sel.StartPort)
		b.AddUint16(sel.EndPort)
		b.AddBytes(start)
		b.AddBytes(end)
	}
}

func (ts *TS) unmarshal(s *cryptobyte.String) error {
	var n uint8
	if !s.ReadUint8(&n) || !s.Skip(3) {
		return syntaxError(fmt.Sprintf("%s payload: shorter than its 4-octet header", ts.Type()))
	}
	ts.Selectors = make([]ipsec.TrafficSelector, 0, n)
	for i := 0; i < int(n); i++ {
		var typ, proto uint8
		var length uint16
		var sel ipsec.TrafficSelector
		if !s.ReadUint8(&typ) || !s.ReadUint8(&proto) || !s.ReadUint16(&length) ||
			!s.ReadUint16(&sel.StartPort) || !s.ReadUint16(&sel.EndPort) {
			return syntaxError(fmt.Sprintf("%s payload: selector %d truncated (Number of TSs is %d)", ts.Type(), i+1, n))
		}
		var alen int
		switch typ {
		case tsIPv4AddrRange:
			alen = 4
		case tsIPv6AddrRange:
			alen = 16
		default:
			return syntaxError(fmt.Sprintf("%s payload: selector %d has TS Type %d, only TS_IPV4_ADDR_RANGE (7) and TS_IPV6_ADDR_RANGE (8) are supported", ts.Type(), i+1, typ))
		}
		if int(length) != tsHeaderLen+2*alen {
			return syntaxError(fmt.Sprintf("%s payload: selector %d of TS Type %d has Selector Length %d, want %d", ts.Type(), i+1, typ, length, tsHeaderLen+2*alen))
		}
		var start, end []byte
		if !s.ReadBytes(&start, alen) || !s.ReadBytes(&end, alen) {
			return syntaxError(fmt.Sprintf("%s payload: selector %d addresses truncated", ts.Type(), i+1))
		}
		sel.IPProto = proto
		sel.Start, _ = netip.AddrFromSlice(start)
		sel.End, _ = netip.AddrFromSlice(end)
		ts.Selectors = append(ts.Selectors, sel)
	}
	if n == 0 {
		return syntaxError(fmt.Sprintf("%s payload: Number of TSs is 0", ts.Type()))
	}
	if !s.Empty() {
		return syntaxError(fmt.Sprintf("%s payload: %d octets after the %d announced selectors", ts.Type(), len(*s), n))
	}
	return nil
}
