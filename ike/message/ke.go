package message

import (
	"github.com/cgwproject/cgw/ipsec"
	"golang.org/x/crypto/cryptobyte"
)

// Key Exchange payload (RFC 7296, Section 3.4):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   Diffie-Hellman Group Num    |           RESERVED            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                       Key Exchange Data                       ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The length of Key Exchange Data is checked against the group by
// ike/crypto (DH.Shared), not here.

func (ke *KE) marshal(b *cryptobyte.Builder) {
	b.AddUint16(uint16(ke.Group))
	b.AddUint16(0)
	b.AddBytes(ke.Data)
}

func (ke *KE) unmarshal(s *cryptobyte.String) error {
	var g, reserved uint16
	if !s.ReadUint16(&g) || !s.ReadUint16(&reserved) {
		return syntaxError("KE payload: shorter than its 4-octet header")
	}
	ke.Group = ipsec.DHGroup(g)
	ke.Data = readRest(s)
	return nil
}
