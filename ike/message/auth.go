package message

import (
	"golang.org/x/crypto/cryptobyte"
)

// Authentication payload (RFC 7296, Section 3.8):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Auth Method   |                RESERVED                       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                      Authentication Data                      ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

func (a *Auth) marshal(b *cryptobyte.Builder) {
	b.AddUint8(uint8(a.Method))
	b.AddBytes([]byte{0, 0, 0})
	b.AddBytes(a.Data)
}

func (a *Auth) unmarshal(s *cryptobyte.String) error {
	var m uint8
	if !s.ReadUint8(&m) || !s.Skip(3) {
		return syntaxError("AUTH payload: shorter than its 4-octet header")
	}
	a.Method = AuthMethod(m)
	a.Data = readRest(s)
	if len(a.Data) == 0 {
		return syntaxError("AUTH payload: empty Authentication Data")
	}
	return nil
}
