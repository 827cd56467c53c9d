package message

import (
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// Identification payloads, IDi and IDr (RFC 7296, Section 3.5):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   ID Type     |                 RESERVED                      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                   Identification Data                         ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Identification Data is kept as raw octets for every type (FQDN and
// RFC822 are ASCII without terminator, DER_ASN1_DN and KEY_ID are opaque).
// ID_IPV4_ADDR and ID_IPV6_ADDR must be 4 and 16 octets.

func (id *ID) marshal(b *cryptobyte.Builder) {
	if err := id.check(); err != nil {
		b.SetError(err)
		return
	}
	b.AddBytes(id.Body())
}

func (id *ID) unmarshal(s *cryptobyte.String) error {
	var t uint8
	if !s.ReadUint8(&t) || !s.Skip(3) {
		return syntaxError(fmt.Sprintf("%s payload: shorter than its 4-octet header", id.Type()))
	}
	id.IDType = IDType(t)
	id.Data = readRest(s)
	if err := id.check(); err != nil {
		return syntaxError(fmt.Sprintf("%s payload: %v", id.Type(), err))
	}
	return nil
}

func (id *ID) check() error {
	switch {
	case id.IDType == IDIPv4Addr && len(id.Data) != 4:
		return fmt.Errorf("%s of %d octets, want 4", id.IDType, len(id.Data))
	case id.IDType == IDIPv6Addr && len(id.Data) != 16:
		return fmt.Errorf("%s of %d octets, want 16", id.IDType, len(id.Data))
	}
	return nil
}

// Body returns ID Type || three RESERVED octets || Identification Data,
// the "RestOfInitIDPayload"/"RestOfRespIDPayload" that AUTH signs
// (RFC 7296, Section 2.15).
func (id *ID) Body() []byte {
	out := make([]byte, 4, 4+len(id.Data))
	out[0] = uint8(id.IDType)
	return append(out, id.Data...)
}

// String renders the identity for logs: addresses in text form, FQDN and
// RFC822 as text, other types in hex.
func (id *ID) String() string {
	switch id.IDType {
	case IDIPv4Addr, IDIPv6Addr:
		if a, ok := id.Addr(); ok {
			return a.String()
		}
	case IDFQDN, IDRFC822:
		return fmt.Sprintf("%q", id.Data)
	}
	return fmt.Sprintf("%s:%x", id.IDType, id.Data)
}
