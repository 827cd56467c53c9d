package message

import (
	"golang.org/x/crypto/cryptobyte"
)

// Configuration payload (RFC 7296, Section 3.15):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C| RESERVED    |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   CFG Type    |                    RESERVED                   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                   Configuration Attributes                    ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The attributes are kept opaque in Data: cgw does not use CP.

func (cp *CP) marshal(b *cryptobyte.Builder) {
	b.AddUint8(cp.CfgType)
	b.AddBytes([]byte{0, 0, 0})
	b.AddBytes(cp.Data)
}

func (cp *CP) unmarshal(s *cryptobyte.String) error {
	if !s.ReadUint8(&cp.CfgType) || !s.Skip(3) {
		return syntaxError("CP payload: shorter than its 4-octet header")
	}
	cp.Data = readRest(s)
	return nil
}
