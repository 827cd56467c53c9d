// Package ipsec is the shared, dependency-free vocabulary of cgw: SPIs,
// directions, IANA transform identifiers, proposals, traffic selectors and
// the parameters of an installed Security Association.
//
// It imports no other project package and holds no state; every type is a
// plain value that is safe to copy and to share between goroutines once built.
package ipsec

import (
	"fmt"
	"net/netip"
	"time"
)

// SPI is an ESP Security Parameter Index (RFC 4303, Section 2.1).
type SPI uint32

func (s SPI) String() string { return fmt.Sprintf("%08x", uint32(s)) }

// Direction tells whether an SA protects traffic we receive or traffic we send.
type Direction uint8

const (
	Inbound Direction = iota + 1
	Outbound
)

func (d Direction) String() string {
	switch d {
	case Inbound:
		return "in"
	case Outbound:
		return "out"
	}
	return fmt.Sprintf("Direction(%d)", uint8(d))
}

// TransformType is the IKEv2 transform type (RFC 7296, Section 3.3.2).
type TransformType uint8

const (
	TransformENCR  TransformType = 1
	TransformPRF   TransformType = 2
	TransformINTEG TransformType = 3
	TransformDH    TransformType = 4 // "Key Exchange Method" in RFC 9370
	TransformESN   TransformType = 5
)

// EncrID is a Transform Type 1 identifier (IANA "IKEv2 Transform Type 1").
type EncrID uint16

const (
	EncrAESCBC           EncrID = 12
	EncrAESCTR           EncrID = 13
	EncrAESGCM8          EncrID = 18
	EncrAESGCM12         EncrID = 19
	EncrAESGCM16         EncrID = 20
	EncrChaCha20Poly1305 EncrID = 28
	EncrNullAuthAESGMAC  EncrID = 21
	Encr3DES             EncrID = 3
	EncrNull             EncrID = 11
)

// IsAEAD reports whether the cipher provides integrity itself (no INTEG transform).
func (e EncrID) IsAEAD() bool {
	switch e {
	case EncrAESGCM8, EncrAESGCM12, EncrAESGCM16, EncrChaCha20Poly1305, EncrNullAuthAESGMAC:
		return true
	}
	return false
}

// PRFID is a Transform Type 2 identifier.
type PRFID uint16

const (
	PRFHMACSHA1     PRFID = 2
	PRFHMACSHA2_256 PRFID = 5
	PRFHMACSHA2_384 PRFID = 6
	PRFHMACSHA2_512 PRFID = 7
)

// IntegID is a Transform Type 3 identifier.
type IntegID uint16

const (
	IntegNone             IntegID = 0
	IntegHMACSHA1_96      IntegID = 2
	IntegHMACSHA2_256_128 IntegID = 12
	IntegHMACSHA2_384_192 IntegID = 13
	IntegHMACSHA2_512_256 IntegID = 14
)

// DHGroup is a Transform Type 4 identifier (Diffie-Hellman group).
type DHGroup uint16

const (
	DHNone         DHGroup = 0
	DHMODP1024     DHGroup = 2
	DHMODP1536     DHGroup = 5
	DHMODP2048     DHGroup = 14
	DHMODP3072     DHGroup = 15
	DHMODP4096     DHGroup = 16
	DHMODP6144     DHGroup = 17
	DHMODP8192     DHGroup = 18
	DHECP256       DHGroup = 19
	DHECP384       DHGroup = 20
	DHECP521       DHGroup = 21
	DHMODP1024S160 DHGroup = 22
	DHMODP2048S224 DHGroup = 23
	DHMODP2048S256 DHGroup = 24
	DHCurve25519   DHGroup = 31
)

// ESNID is a Transform Type 5 identifier.
type ESNID uint16

const (
	ESNNo  ESNID = 0
	ESNYes ESNID = 1
)

// Algorithms is one fully chosen algorithm set: what a negotiated SA uses.
// For an IKE SA, PRF is set; for an ESP SA, PRF is zero. Integ is IntegNone
// with an AEAD cipher. DH is DHNone for a CHILD SA without PFS.
type Algorithms struct {
	Encr    EncrID
	KeyBits int // AES key length in bits (128/256); 0 where the cipher has a fixed key
	PRF     PRFID
	Integ   IntegID
	DH      DHGroup
	ESN     bool
}

// Proposal is one configured IKE or ESP proposal: the acceptable
// transforms of each type, in preference order. IKE proposals have PRFs; ESP
// proposals do not. Integs is empty with AEAD ciphers. For ESP, DHGroups
// empty means no PFS. ESN empty means "no ESN" only.
type Proposal struct {
	Encrs    []EncrKey
	PRFs     []PRFID
	Integs   []IntegID
	DHGroups []DHGroup
	ESN      []bool
}

// EncrKey is a cipher plus its key length in bits (0 for fixed-key ciphers).
type EncrKey struct {
	ID      EncrID
	KeyBits int
}

// Protocol is the IKEv2 Security Protocol ID (RFC 7296, Section 3.3.1).
type Protocol uint8

const (
	ProtoIKE Protocol = 1
	ProtoAH  Protocol = 2
	ProtoESP Protocol = 3
)

// TrafficSelector is one IKEv2 traffic selector (RFC 7296, Section 3.13.1):
// an inclusive address range, an IP protocol (0 = any) and an inclusive
// port range (0-65535 = any).
type TrafficSelector struct {
	Start, End         netip.Addr
	IPProto            uint8
	StartPort, EndPort uint16
}

// TSFromPrefix returns the selector covering p for any protocol and port.
func TSFromPrefix(p netip.Prefix) TrafficSelector {
	p = p.Masked()
	start := p.Addr()
	end := start
	b := end.AsSlice()
	bits := p.Bits()
	for i := bits; i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	end, _ = netip.AddrFromSlice(b)
	if start.Is4() {
		end = end.Unmap()
	}
	return TrafficSelector{Start: start, End: end, StartPort: 0, EndPort: 65535}
}

// Contains reports whether the address a lies in the selector's address range.
func (ts TrafficSelector) Contains(a netip.Addr) bool {
	return ts.Start.Compare(a) <= 0 && a.Compare(ts.End) <= 0
}

func (ts TrafficSelector) String() string {
	s := ts.Start.String() + "-" + ts.End.String()
	if p, ok := ts.prefix(); ok {
		s = p.String()
	}
	if ts.IPProto != 0 {
		s += fmt.Sprintf("[proto %d]", ts.IPProto)
	}
	if ts.StartPort != 0 || ts.EndPort != 65535 {
		s += fmt.Sprintf("[ports %d-%d]", ts.StartPort, ts.EndPort)
	}
	return s
}

func (ts TrafficSelector) prefix() (netip.Prefix, bool) {
	for bits := 0; bits <= ts.Start.BitLen(); bits++ {
		p := netip.PrefixFrom(ts.Start, bits)
		if p.Masked().Addr() != ts.Start {
			continue
		}
		if TSFromPrefix(p).End == ts.End {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// SAParams is everything the dataplane needs to install one direction of an
// ESP SA in tunnel mode, UDP-encapsulated per RFC 3948 when Encap is set.
type SAParams struct {
	Tunnel string // tunnel name; the dataplane maps it to a TUN device
	SPI    SPI
	Dir    Direction
	Alg    Algorithms
	// EncKey is the cipher key; for AES-GCM it is the AES key followed by
	// the 4-octet salt (RFC 4106, Section 8.1), as KEYMAT yields it.
	EncKey   []byte
	IntegKey []byte
	// Outer endpoints: Local is our outside address and port, Remote the
	// peer's. With Encap, ESP travels in UDP between them.
	Local, Remote netip.AddrPort
	Encap         bool
	ReplayWindow  int // inbound only; 0 disables anti-replay
	// Selectors negotiated for the CHILD SA (local = ours).
	TSLocal, TSRemote []TrafficSelector
	// Lifetime limits enforced by the dataplane (0 = none).
	SoftBytes, HardBytes uint64
}

// SAStats are the use counters of one installed SA.
type SAStats struct {
	Bytes, Packets uint64
	LastUsed       time.Time // zero if never used
}
