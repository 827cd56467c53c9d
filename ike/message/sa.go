package message

import (
	"fmt"

	"github.com/cgwproject/cgw/ipsec"
	"golang.org/x/crypto/cryptobyte"
)

// Security Association payload (RFC 7296, Section 3.3):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                          <Proposals>                          ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Proposal substructure (Section 3.3.1):
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Last Substruc |   RESERVED    |         Proposal Length       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Proposal Num  |  Protocol ID  |    SPI Size   |Num  Transforms|
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                        SPI (variable)                         ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                        <Transforms>                           ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Transform substructure (Section 3.3.2):
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Last Substruc |   RESERVED    |        Transform Length       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Transform Type |   RESERVED    |          Transform ID         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                      Transform Attributes                     ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Data attribute (Section 3.3.5), TV format when A = 1:
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|A|       Attribute Type        |    AF=0  Attribute Length     |
//	|F|                             |    AF=1  Attribute Value      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                   AF=0  Attribute Value                       |
//	|                   AF=1  Not Transmitted                       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Unknown attributes: a transform carrying an attribute other than a
// TV-format Key Length (or carrying Key Length twice) cannot be used, so
// the decoder DROPS that transform from Proposal.Transforms: cgw must
// never select a transform whose attributes it does not understand (RFC
// 7296, Sections 3.3.5 and 3.3.6). The rest of the proposal and message
// still decodes; a proposal left without a needed transform type is then
// rejected by the normal proposal selection, and the proposal Number is
// kept so a reply names the right one.

const (
	lastSubstruc       = 0 // RFC 7296, Sections 3.3.1 and 3.3.2
	moreProposals      = 2
	moreTransforms     = 3
	proposalHeaderLen  = 8
	transformHeaderLen = 8
	attrFormatTV       = 0x8000
	attrKeyLength      = 14 // RFC 7296, Section 3.3.5
)

func (sa *SA) marshal(b *cryptobyte.Builder) {
	if len(sa.Proposals) == 0 {
		b.SetError(fmt.Errorf("SA payload has no proposals"))
		return
	}
	for i := range sa.Proposals {
		p := &sa.Proposals[i]
		body := sub(b, p.marshal)
		if len(body)+4 > maxPayloadLen {
			b.SetError(fmt.Errorf("proposal %d is too long", p.Number))
			return
		}
		more := uint8(moreProposals)
		if i == len(sa.Proposals)-1 {
			more = lastSubstruc
		}
		b.AddUint8(more)
		b.AddUint8(0)
		b.AddUint16(uint16(len(body) + 4))
		b.AddBytes(body)
	}
}

func (sa *SA) unmarshal(s *cryptobyte.String) error {
	sa.Proposals = nil
	for !s.Empty() {
		var last, reserved uint8
		var length uint16
		if !s.ReadUint8(&last) || !s.ReadUint8(&reserved) || !s.ReadUint16(&length) {
			return syntaxError("SA payload: proposal header truncated")
		}
		var body cryptobyte.String
		if length < proposalHeaderLen || !s.ReadBytes((*[]byte)(&body), int(length)-4) {
			return syntaxError(fmt.Sprintf("SA payload: proposal %d has bad Proposal Length %d", len(sa.Proposals)+1, length))
		}
		var p Proposal
		if err := p.unmarshal(&body); err != nil {
			return err
		}
		sa.Proposals = append(sa.Proposals, p)
		switch {
		case last == lastSubstruc && !s.Empty():
			return syntaxError(fmt.Sprintf("SA payload: proposal %d is marked last but more data follows", p.Number))
		case last == moreProposals && s.Empty():
			return syntaxError(fmt.Sprintf("SA payload: proposal %d announces more proposals but the payload ends", p.Number))
		case last != lastSubstruc && last != moreProposals:
			return syntaxError(fmt.Sprintf("SA payload: proposal %d has Last Substruc %d, want 0 or 2", p.Number, last))
		}
	}
	if len(sa.Proposals) == 0 {
		return syntaxError("SA payload has no proposals")
	}
	return nil
}

// marshal writes the proposal after its 4-octet Last/RESERVED/Length header.
func (p *Proposal) marshal(b *cryptobyte.Builder) {
	switch len(p.SPI) {
	case 0, 4, 8:
	default:
		b.SetError(fmt.Errorf("proposal %d: SPI of %d octets, want 0, 4 or 8", p.Number, len(p.SPI)))
		return
	}
	if len(p.Transforms) > 255 {
		b.SetError(fmt.Errorf("proposal %d: %d transforms, at most 255 fit", p.Number, len(p.Transforms)))
		return
	}
	b.AddUint8(p.Number)
	b.AddUint8(uint8(p.Protocol))
	b.AddUint8(uint8(len(p.SPI)))
	b.AddUint8(uint8(len(p.Transforms)))
	b.AddBytes(p.SPI)
	for i := range p.Transforms {
		t := &p.Transforms[i]
		body := sub(b, t.marshal)
		more := uint8(moreTransforms)
		if i == len(p.Transforms)-1 {
			more = lastSubstruc
		}
		b.AddUint8(more)
		b.AddUint8(0)
		b.AddUint16(uint16(len(body) + 4))
		b.AddBytes(body)
	}
}

// unmarshal reads a proposal body (after Last/RESERVED/Length).
func (p *Proposal) unmarshal(s *cryptobyte.String) error {
	var proto, spiSize, numTransforms uint8
	if !s.ReadUint8(&p.Number) || !s.ReadUint8(&proto) || !s.ReadUint8(&spiSize) || !s.ReadUint8(&numTransforms) {
		return syntaxError("SA payload: proposal header truncated")
	}
	p.Protocol = ipsec.Protocol(proto)
	switch spiSize {
	case 0, 4, 8:
	default:
		return syntaxError(fmt.Sprintf("SA payload: proposal %d has SPI Size %d, want 0, 4 or 8", p.Number, spiSize))
	}
	p.SPI = nil
	if spiSize > 0 {
		var spi []byte
		if !s.ReadBytes(&spi, int(spiSize)) {
			return syntaxError(fmt.Sprintf("SA payload: proposal %d SPI truncated", p.Number))
		}
		p.SPI = append([]byte(nil), spi...)
	}
	p.Transforms = nil
	seen := 0
	for !s.Empty() {
		var last, reserved uint8
		var length uint16
		if !s.ReadUint8(&last) || !s.ReadUint8(&reserved) || !s.ReadUint16(&length) {
			return syntaxError(fmt.Sprintf("SA payload: proposal %d: transform header truncated", p.Number))
		}
		var body cryptobyte.String
		if length < transformHeaderLen || !s.ReadBytes((*[]byte)(&body), int(length)-4) {
			return syntaxError(fmt.Sprintf("SA payload: proposal %d: transform %d has bad Transform Length %d", p.Number, seen+1, length))
		}
		seen++
		var t Transform
		usable, err := t.unmarshal(&body)
		if err != nil {
			return err
		}
		if usable {
			p.Transforms = append(p.Transforms, t)
		}
		switch {
		case last == lastSubstruc && !s.Empty():
			return syntaxError(fmt.Sprintf("SA payload: proposal %d: transform %d is marked last but more data follows", p.Number, seen))
		case last == moreTransforms && s.Empty():
			return syntaxError(fmt.Sprintf("SA payload: proposal %d: transform %d announces more transforms but the proposal ends", p.Number, seen))
		case last != lastSubstruc && last != moreTransforms:
			return syntaxError(fmt.Sprintf("SA payload: proposal %d: transform %d has Last Substruc %d, want 0 or 3", p.Number, seen, last))
		}
	}
	if seen != int(numTransforms) {
		return syntaxError(fmt.Sprintf("SA payload: proposal %d says %d transforms but carries %d", p.Number, numTransforms, seen))
	}
	return nil
}

// marshal writes a transform after its Last/RESERVED/Length header.
func (t *Transform) marshal(b *cryptobyte.Builder) {
	b.AddUint8(uint8(t.Type))
	b.AddUint8(0)
	b.AddUint16(t.ID)
	if t.KeyLength != 0 {
		b.AddUint16(attrFormatTV | attrKeyLength)
		b.AddUint16(t.KeyLength)
	}
}

// unmarshal reads a transform body. usable is false when the transform
// carries an attribute this package does not understand (see the comment
// at the top of this file); malformed attribute encoding is an error.
func (t *Transform) unmarshal(s *cryptobyte.String) (usable bool, err error) {
	var typ, reserved uint8
	if !s.ReadUint8(&typ) || !s.ReadUint8(&reserved) || !s.ReadUint16(&t.ID) {
		return false, syntaxError("SA payload: transform header truncated")
	}
	t.Type = ipsec.TransformType(typ)
	usable = true
	haveKeyLen := false
	for !s.Empty() {
		var at, val uint16
		if !s.ReadUint16(&at) || !s.ReadUint16(&val) {
			return false, syntaxError(fmt.Sprintf("SA payload: transform type %d id %d: attribute header truncated", typ, t.ID))
		}
		if at&attrFormatTV == 0 {
			// TLV format: val is the length of the value that follows.
			if !s.Skip(int(val)) {
				return false, syntaxError(fmt.Sprintf("SA payload: transform type %d id %d: attribute %d length %d exceeds the transform", typ, t.ID, at, val))
			}
			usable = false
			continue
		}
		if at&^attrFormatTV != attrKeyLength || haveKeyLen {
			usable = false
			continue
		}
		haveKeyLen = true
		t.KeyLength = val
	}
	return usable, nil
}
