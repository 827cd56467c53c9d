package packet

import "encoding/binary"

// The Internet checksum (RFC 1071): OnesSum for a whole header or payload,
// csumUpdate for one changed word (RFC 1624).

// OnesSum adds b to the one's complement sum s (RFC 1071), unfinalised.
func OnesSum(s uint16, b []byte) uint16 {
	acc := uint32(s)
	for len(b) >= 2 {
		acc += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint32(b[0]) << 8
	}
	for acc > 0xffff {
		acc = (acc & 0xffff) + (acc >> 16)
	}
	return uint16(acc)
}

func add16(s, v uint16) uint16 {
	acc := uint32(s) + uint32(v)
	return uint16((acc & 0xffff) + (acc >> 16))
}

// csumUpdate returns the Internet checksum hc after one 16-bit word of the
// covered data changed from m to mNew: HC' = ~(~HC + ~m + m') (RFC 1624,
// Section 3, eqn. 3), in one's complement arithmetic.
func csumUpdate(hc, m, mNew uint16) uint16 {
	s := uint32(^hc) + uint32(^m) + uint32(mNew)
	s = (s & 0xffff) + (s >> 16)
	s = (s & 0xffff) + (s >> 16)
	return ^uint16(s)
}
