package message

import (
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// Nonce payload, Ni and Nr (RFC 7296, Section 3.9):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                            Nonce Data                         ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// "The size of the Nonce Data MUST be between 16 and 256 octets,
// inclusive" (Section 3.9); both directions enforce it.

const (
	MinNonceLen = 16
	MaxNonceLen = 256
)

func (n *Nonce) marshal(b *cryptobyte.Builder) {
	if len(n.Data) < MinNonceLen || len(n.Data) > MaxNonceLen {
		b.SetError(fmt.Errorf("nonce of %d octets, want %d..%d", len(n.Data), MinNonceLen, MaxNonceLen))
		return
	}
	b.AddBytes(n.Data)
}

func (n *Nonce) unmarshal(s *cryptobyte.String) error {
	if len(*s) < MinNonceLen || len(*s) > MaxNonceLen {
		return syntaxError(fmt.Sprintf("Nonce payload: %d octets of Nonce Data, want %d..%d", len(*s), MinNonceLen, MaxNonceLen))
	}
	n.Data = readRest(s)
	return nil
}
