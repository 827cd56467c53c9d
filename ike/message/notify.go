package message

import (
	"fmt"

	"github.com/cgwproject/cgw/ipsec"
	"golang.org/x/crypto/cryptobyte"
)

// Notify payload (RFC 7296, Section 3.10):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Protocol ID  |   SPI Size    |      Notify Message Type      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                Security Parameter Index (SPI)                 ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                       Notification Data                       ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Protocol ID and SPI are carried as sent: when the SPI is empty the
// Protocol ID "MUST be sent as zero and MUST be ignored on receipt".

func (n *Notify) marshal(b *cryptobyte.Builder) {
	if len(n.SPI) > 255 {
		b.SetError(fmt.Errorf("%s notify: SPI of %d octets", n.Kind, len(n.SPI)))
		return
	}
	proto := n.Protocol
	if len(n.SPI) == 0 {
		proto = 0
	}
	b.AddUint8(uint8(proto))
	b.AddUint8(uint8(len(n.SPI)))
	b.AddUint16(uint16(n.Kind))
	b.AddBytes(n.SPI)
	b.AddBytes(n.Data)
}

func (n *Notify) unmarshal(s *cryptobyte.String) error {
	var proto, spiSize uint8
	var kind uint16
	if !s.ReadUint8(&proto) || !s.ReadUint8(&spiSize) || !s.ReadUint16(&kind) {
		return syntaxError("Notify payload: shorter than its 4-octet header")
	}
	n.Protocol = ipsec.Protocol(proto)
	n.Kind = NotifyType(kind)
	n.SPI = nil
	if spiSize > 0 {
		var spi []byte
		if !s.ReadBytes(&spi, int(spiSize)) {
			return syntaxError(fmt.Sprintf("Notify payload %s: SPI Size %d exceeds the payload", n.Kind, spiSize))
		}
		n.SPI = append([]byte(nil), spi...)
	} else {
		n.Protocol = 0
	}
	n.Data = readRest(s)
	return nil
}

func (n *Notify) String() string {
	if len(n.SPI) > 0 {
		return fmt.Sprintf("N(%s spi=%x)", n.Kind, n.SPI)
	}
	return fmt.Sprintf("N(%s)", n.Kind)
}
