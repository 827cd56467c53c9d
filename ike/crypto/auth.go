package crypto

import (
	"crypto/sha1"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/cgwproject/cgw/ipsec"
)

// keyPad is the fixed string of RFC 7296 Section 2.15 (17 ASCII octets, no
// terminator).
const keyPad = "Key Pad for IKEv2"

// PSKAuth returns the AUTH payload data for shared-key authentication
// (RFC 7296, Section 2.15):
//
//	AUTH = prf( prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>)
//	SignedOctets = RealMessage | Nonce | prf(SK_p, RestOfIDPayload)
//
// For the initiator's AUTH, realMessage is its IKE_SA_INIT request, nonce
// the responder's Nr, skp SK_pi and idBody the IDi payload body; for the
// responder's AUTH, its IKE_SA_INIT response, Ni, SK_pr and the IDr body.
// To verify a received AUTH, use VerifyPSKAuth. An unsupported prf is an
// error: authentication fails closed, never with an empty value that an
// empty AUTH payload would match.
func PSKAuth(prf ipsec.PRFID, psk, realMessage, nonce, skp, idBody []byte) ([]byte, error) {
	p, err := NewPRF(prf)
	if err != nil {
		return nil, fmt.Errorf("ike/crypto: PSK authentication: %w", err)
	}
	macedID := p.Sum(skp, idBody)
	signed := concat(realMessage, nonce, macedID)
	return p.Sum(p.Sum(psk, []byte(keyPad)), signed), nil
}

// VerifyPSKAuth reports whether got is the AUTH data PSKAuth computes, in
// constant time. It is false whenever PSKAuth fails or got is empty.
func VerifyPSKAuth(prf ipsec.PRFID, psk, realMessage, nonce, skp, idBody, got []byte) bool {
	want, err := PSKAuth(prf, psk, realMessage, nonce, skp, idBody)
	if err != nil || len(want) == 0 {
		return false
	}
	return subtle.ConstantTimeCompare(want, got) == 1
}

// NATDetectionHash returns the data of a NAT_DETECTION_SOURCE_IP or
// NAT_DETECTION_DESTINATION_IP notification (RFC 7296, Section 2.23):
// SHA-1(SPIi | SPIr | IP | Port), with SPIr zero in the IKE_SA_INIT request,
// the address in 4 or 16 octets (IPv4-mapped IPv6 addresses are hashed as
// IPv4) and the port in network order.
func NATDetectionHash(spii, spir uint64, ap netip.AddrPort) []byte {
	var b [8 + 8 + 16 + 2]byte
	binary.BigEndian.PutUint64(b[0:], spii)
	binary.BigEndian.PutUint64(b[8:], spir)
	addr := ap.Addr().Unmap()
	n := 16
	if addr.Is4() {
		a4 := addr.As4()
		copy(b[n:], a4[:])
		n += 4
	} else {
		a16 := addr.As16()
		copy(b[n:], a16[:])
		n += 16
	}
	binary.BigEndian.PutUint16(b[n:], ap.Port())
	n += 2
	sum := sha1.Sum(b[:n])
	return sum[:]
}
