package message

import "golang.org/x/crypto/cryptobyte"

// Vendor ID payload (RFC 7296, Section 3.12):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                        Vendor ID (VID)                        ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

func (v *VendorID) marshal(b *cryptobyte.Builder) { b.AddBytes(v.Data) }

func (v *VendorID) unmarshal(s *cryptobyte.String) error {
	v.Data = readRest(s)
	return nil
}
