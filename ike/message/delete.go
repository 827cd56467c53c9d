package message

import (
	"fmt"

	"github.com/cgwproject/cgw/ipsec"
	"golang.org/x/crypto/cryptobyte"
)

// Delete payload (RFC 7296, Section 3.11):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Protocol ID   |   SPI Size    |          Num of SPIs          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~               Security Parameter Index(es) (SPI)              ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Deleting the IKE SA uses Protocol ID 1 with SPI Size 0 and no SPIs; AH
// and ESP use four-octet SPIs.

func (d *Delete) marshal(b *cryptobyte.Builder) {
	switch d.Protocol {
	case ipsec.ProtoIKE:
		if len(d.SPIs) != 0 {
			b.SetError(fmt.Errorf("IKE SA Delete payload must not list SPIs"))
			return
		}
		b.AddUint8(uint8(d.Protocol))
		b.AddUint8(0)
		b.AddUint16(0)
	case ipsec.ProtoAH, ipsec.ProtoESP:
		if len(d.SPIs) == 0 || len(d.SPIs) > 0xffff {
			b.SetError(fmt.Errorf("Delete payload for protocol %d lists %d SPIs, want 1..65535", d.Protocol, len(d.SPIs)))
			return
		}
		b.AddUint8(uint8(d.Protocol))
		b.AddUint8(4)
		b.AddUint16(uint16(len(d.SPIs)))
		for _, spi := range d.SPIs {
			b.AddUint32(uint32(spi))
		}
	default:
		b.SetError(fmt.Errorf("Delete payload: unknown Protocol ID %d", d.Protocol))
	}
}

func (d *Delete) unmarshal(s *cryptobyte.String) error {
	var proto, spiSize uint8
	var num uint16
	if !s.ReadUint8(&proto) || !s.ReadUint8(&spiSize) || !s.ReadUint16(&num) {
		return syntaxError("Delete payload: shorter than its 4-octet header")
	}
	d.Protocol = ipsec.Protocol(proto)
	d.SPIs = nil
	switch d.Protocol {
	case ipsec.ProtoIKE:
		if spiSize != 0 || num != 0 {
			return syntaxError(fmt.Sprintf("Delete payload for the IKE SA has SPI Size %d and %d SPIs, want 0 and 0", spiSize, num))
		}
	case ipsec.ProtoAH, ipsec.ProtoESP:
		if spiSize != 4 {
			return syntaxError(fmt.Sprintf("Delete payload for protocol %d has SPI Size %d, want 4", proto, spiSize))
		}
		if len(*s) != 4*int(num) {
			return syntaxError(fmt.Sprintf("Delete payload announces %d SPIs but carries %d octets of SPIs", num, len(*s)))
		}
		d.SPIs = make([]ipsec.SPI, num)
		for i := range d.SPIs {
			var v uint32
			s.ReadUint32(&v) // length checked above
			d.SPIs[i] = ipsec.SPI(v)
		}
	default:
		return syntaxError(fmt.Sprintf("Delete payload: unknown Protocol ID %d", proto))
	}
	return nil
}
