// Package message is the IKEv2 wire format (RFC 7296, Section 3): the header,
// one Go type per payload, the SK (and SKF, RFC 7383) envelope and the
// per-exchange payload rules.
//
// Decoding never panics: malformed input yields a *Error that carries the
// NOTIFY type to answer with (zero: drop silently, e.g. when the integrity
// check fails). Parse enforces the per-exchange payload rules of rules.go;
// payload order is preserved; unknown non-critical payloads are kept as
// *Unknown and critical ones rejected (RFC 7296, Section 2.5).
//
// Types are plain values; nothing here is safe for concurrent mutation. A
// Reassembler belongs to one goroutine (the IKE SA's owner).
package message

import (
	"net/netip"

	"github.com/cgwproject/cgw/ipsec"
)

// ExchangeType (RFC 7296, Section 3.1).
type ExchangeType uint8

const (
	IKESAInit     ExchangeType = 34
	IKEAuth       ExchangeType = 35
	CreateChildSA ExchangeType = 36
	Informational ExchangeType = 37
)

// Header flags (RFC 7296, Section 3.1).
const (
	FlagInitiator uint8 = 0x08
	FlagVersion   uint8 = 0x10
	FlagResponse  uint8 = 0x20
)

// HeaderLen is the fixed IKE header size.
const HeaderLen = 28

// Header is the fixed IKE header. NextPayload and Length are computed on
// Marshal and checked on Parse.
type Header struct {
	SPIi, SPIr   uint64
	NextPayload  PayloadType
	MajorVersion uint8 // 2
	MinorVersion uint8 // 0
	Exchange     ExchangeType
	Flags        uint8
	MessageID    uint32
	Length       uint32
}

func (h *Header) IsResponse() bool  { return h.Flags&FlagResponse != 0 }
func (h *Header) IsInitiator() bool { return h.Flags&FlagInitiator != 0 }

// PayloadType (RFC 7296, Section 3.2; RFC 7383 for SKF).
type PayloadType uint8

const (
	PayloadNone    PayloadType = 0
	PayloadSA      PayloadType = 33
	PayloadKE      PayloadType = 34
	PayloadIDi     PayloadType = 35
	PayloadIDr     PayloadType = 36
	PayloadCERT    PayloadType = 37
	PayloadCERTREQ PayloadType = 38
	PayloadAUTH    PayloadType = 39
	PayloadNonce   PayloadType = 40
	PayloadNotify  PayloadType = 41
	PayloadDelete  PayloadType = 42
	PayloadVendor  PayloadType = 43
	PayloadTSi     PayloadType = 44
	PayloadTSr     PayloadType = 45
	PayloadSK      PayloadType = 46
	PayloadCP      PayloadType = 47
	PayloadEAP     PayloadType = 48
	PayloadSKF     PayloadType = 53
)

// Payload is one decoded payload. Type returns its payload type; for the ID
// and TS payloads the concrete struct records which of the pair it is.
type Payload interface {
	Type() PayloadType
}

// Message is a whole IKE message. For an encrypted exchange Payloads holds
// the inner (decrypted) payloads; the codec wraps them in SK on Marshal and
// unwraps SK on Parse (given the keys).
type Message struct {
	Header   Header
	Payloads []Payload
	// Raw is the exact bytes the message was parsed from (or last marshalled
	// to). IKE_SA_INIT raw bytes are signed by AUTH (RFC 7296, Section 2.15).
	Raw []byte
}

// SA payload (RFC 7296, Section 3.3).
type SA struct {
	Proposals []Proposal
}

// Proposal substructure. Number starts at 1. SPI is empty in IKE_SA_INIT,
// 8 octets for an IKE SA rekey, 4 octets for ESP.
type Proposal struct {
	Number     uint8
	Protocol   ipsec.Protocol
	SPI        []byte
	Transforms []Transform
}

// Transform substructure. KeyLength is the Key Length attribute (type 14)
// in bits, 0 when absent.
type Transform struct {
	Type      ipsec.TransformType
	ID        uint16
	KeyLength uint16
}

// KE payload (RFC 7296, Section 3.4).
type KE struct {
	Group ipsec.DHGroup
	Data  []byte
}

// IDType (RFC 7296, Section 3.5).
type IDType uint8

const (
	IDIPv4Addr  IDType = 1
	IDFQDN      IDType = 2
	IDRFC822    IDType = 3
	IDIPv6Addr  IDType = 5
	IDDERASN1DN IDType = 9
	IDKeyID     IDType = 11
)

// ID payload, IDi or IDr (RFC 7296, Section 3.5). Data is the raw
// identification data; Responder selects IDr.
type ID struct {
	Responder bool
	IDType    IDType
	Data      []byte
}

// Addr returns the address of an ID_IPV4_ADDR or ID_IPV6_ADDR identity.
func (id *ID) Addr() (netip.Addr, bool) {
	if id.IDType != IDIPv4Addr && id.IDType != IDIPv6Addr {
		return netip.Addr{}, false
	}
	return netip.AddrFromSlice(id.Data)
}

// AuthMethod (RFC 7296, Section 3.8).
type AuthMethod uint8

const (
	AuthRSA AuthMethod = 1
	AuthPSK AuthMethod = 2
	AuthDSS AuthMethod = 3
	// ECDSA with SHA-256 on P-256, SHA-384 on P-384, SHA-512 on P-521
	// (RFC 4754).
	AuthECDSA256 AuthMethod = 9
	AuthECDSA384 AuthMethod = 10
	AuthECDSA521 AuthMethod = 11
	// AuthDigitalSignature is RFC 7427's generic method: the AUTH data
	// names its signature algorithm.
	AuthDigitalSignature AuthMethod = 14
)

// Auth payload (RFC 7296, Section 3.8).
type Auth struct {
	Method AuthMethod
	Data   []byte
}

// Nonce payload (RFC 7296, Section 3.9): 16..256 octets.
type Nonce struct {
	Data []byte
}

// NotifyType (RFC 7296, Section 3.10.1 and IANA). Values below 16384 are errors.
type NotifyType uint16

const (
	NotifyUnsupportedCriticalPayload NotifyType = 1
	NotifyInvalidIKESPI              NotifyType = 4
	NotifyInvalidMajorVersion        NotifyType = 5
	NotifyInvalidSyntax              NotifyType = 7
	NotifyInvalidMessageID           NotifyType = 9
	NotifyInvalidSPI                 NotifyType = 11
	NotifyNoProposalChosen           NotifyType = 14
	NotifyInvalidKEPayload           NotifyType = 17
	NotifyAuthenticationFailed       NotifyType = 24
	NotifySinglePairRequired         NotifyType = 34
	NotifyNoAdditionalSAs            NotifyType = 35
	NotifyInternalAddressFailure     NotifyType = 36
	NotifyFailedCPRequired           NotifyType = 37
	NotifyTSUnacceptable             NotifyType = 38
	NotifyInvalidSelectors           NotifyType = 39
	NotifyTemporaryFailure           NotifyType = 43
	NotifyChildSANotFound            NotifyType = 44

	NotifyInitialContact              NotifyType = 16384
	NotifySetWindowSize               NotifyType = 16385
	NotifyAdditionalTSPossible        NotifyType = 16386
	NotifyIPCompSupported             NotifyType = 16387
	NotifyNATDetectionSourceIP        NotifyType = 16388
	NotifyNATDetectionDestIP          NotifyType = 16389
	NotifyCookie                      NotifyType = 16390
	NotifyUseTransportMode            NotifyType = 16391
	NotifyHTTPCertLookupSupported     NotifyType = 16392
	NotifyRekeySA                     NotifyType = 16393
	NotifyESPTFCPaddingNotSupported   NotifyType = 16394
	NotifyNonFirstFragmentsAlso       NotifyType = 16395
	NotifyMobikeSupported             NotifyType = 16396
	NotifyMultipleAuthSupported       NotifyType = 16404
	NotifyRedirectSupported           NotifyType = 16406
	NotifyIKEv2FragmentationSupported NotifyType = 16430
	NotifySignatureHashAlgorithms     NotifyType = 16431
	NotifyChildlessIKEv2Supported     NotifyType = 16418
)

// IsError reports whether n is an error notify (type below 16384).
func (n NotifyType) IsError() bool { return n < 16384 }

// Notify payload (RFC 7296, Section 3.10). Protocol and SPI are set when the
// notify concerns a CHILD SA (e.g. REKEY_SA).
type Notify struct {
	Protocol ipsec.Protocol
	SPI      []byte
	Kind     NotifyType
	Data     []byte
}

// Delete payload (RFC 7296, Section 3.11). For ProtoIKE, SPIs is empty.
type Delete struct {
	Protocol ipsec.Protocol
	SPIs     []ipsec.SPI
}

// VendorID payload (RFC 7296, Section 3.12).
type VendorID struct {
	Data []byte
}

// TS payload, TSi or TSr (RFC 7296, Section 3.13).
type TS struct {
	Responder bool
	Selectors []ipsec.TrafficSelector
}

// CP payload (RFC 7296, Section 3.15), kept opaque: cgw does not use it.
type CP struct {
	CfgType uint8
	Data    []byte
}

// Unknown is a payload cgw does not understand. Critical unknown payloads
// make the message fail with UNSUPPORTED_CRITICAL_PAYLOAD (RFC 7296, 2.5).
type Unknown struct {
	PayloadType PayloadType
	Critical    bool
	Data        []byte
}

func (*SA) Type() PayloadType        { return PayloadSA }
func (*KE) Type() PayloadType        { return PayloadKE }
func (*Auth) Type() PayloadType      { return PayloadAUTH }
func (*Nonce) Type() PayloadType     { return PayloadNonce }
func (*Notify) Type() PayloadType    { return PayloadNotify }
func (*Delete) Type() PayloadType    { return PayloadDelete }
func (*VendorID) Type() PayloadType  { return PayloadVendor }
func (*CP) Type() PayloadType        { return PayloadCP }
func (u *Unknown) Type() PayloadType { return u.PayloadType }
func (id *ID) Type() PayloadType {
	if id.Responder {
		return PayloadIDr
	}
	return PayloadIDi
}
func (ts *TS) Type() PayloadType {
	if ts.Responder {
		return PayloadTSr
	}
	return PayloadTSi
}

// Cipher protects the SK payload of one direction of an IKE SA. It is
// implemented by ike/crypto (AEAD per RFC 5282, or CBC plus HMAC per RFC 7296
// Section 3.14); the codec only calls it.
//
// The SK payload body is IV || ciphertext || ICV, where the plaintext is
// inner payloads || padding || Pad Length octet. aad is the message from the
// start of the IKE header to the end of the SK generic payload header, with
// final lengths. A non-AEAD Cipher computes its ICV over aad || IV ||
// ciphertext, which is exactly RFC 7296's "whole message" checksum.
type Cipher interface {
	// BlockSize is what len(plaintext) must be a multiple of (16 for CBC,
	// 1 for GCM, where no padding is needed).
	BlockSize() int
	// Overhead is IV length plus ICV length.
	Overhead() int
	// Seal returns IV || ciphertext || ICV. The IV comes from the Cipher
	// (random for CBC, a counter for GCM).
	Seal(aad, plaintext []byte) ([]byte, error)
	// Open verifies the ICV in constant time and returns the plaintext.
	Open(aad, body []byte) ([]byte, error)
}
