package message

import (
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// Certificate and Certificate Request payloads (RFC 7296, Sections 3.6
// and 3.7):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Cert Encoding |                                               |
//	+-+-+-+-+-+-+-+-+                                               |
//	~       Certificate Data / Certification Authority              ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The codec checks only the framing; the certificate's DER is parsed by
// the engine, and a CERTREQ's authority field is split into 20-octet SHA-1
// hashes of SubjectPublicKeyInfo by CertReq.Hashes.

// CertEncoding (RFC 7296, Section 3.6; IANA "IKEv2 Certificate Encodings").
type CertEncoding uint8

// CertX509Sig is "X.509 Certificate - Signature", the DER of one
// certificate; the only encoding cgw sends or uses.
const CertX509Sig CertEncoding = 4

// Cert payload (RFC 7296, Section 3.6).
type Cert struct {
	Encoding CertEncoding
	Data     []byte
}

// CertReq payload (RFC 7296, Section 3.7). For CertX509Sig, Authority is a
// concatenation of SHA-1 hashes of trusted CAs' SubjectPublicKeyInfo.
type CertReq struct {
	Encoding  CertEncoding
	Authority []byte
}

func (*Cert) Type() PayloadType    { return PayloadCERT }
func (*CertReq) Type() PayloadType { return PayloadCERTREQ }

// certReqHashLen is the length of one CA hash in a CERTREQ (SHA-1).
const certReqHashLen = 20

// Hashes splits an X.509 CERTREQ's authority field into its 20-octet
// hashes. An encoding other than X.509 yields none.
func (c *CertReq) Hashes() [][]byte {
	if c.Encoding != CertX509Sig {
		return nil
	}
	var out [][]byte
	for a := c.Authority; len(a) >= certReqHashLen; a = a[certReqHashLen:] {
		out = append(out, a[:certReqHashLen])
	}
	return out
}

// readEncoded reads the Cert Encoding octet and the rest of a CERT or
// CERTREQ body.
func readEncoded(s *cryptobyte.String, what string) (CertEncoding, []byte, error) {
	var e uint8
	if !s.ReadUint8(&e) {
		return 0, nil, syntaxError(what + " payload: no Cert Encoding")
	}
	return CertEncoding(e), readRest(s), nil
}

func (c *Cert) marshal(b *cryptobyte.Builder) {
	b.AddUint8(uint8(c.Encoding))
	b.AddBytes(c.Data)
}

func (c *Cert) unmarshal(s *cryptobyte.String) (err error) {
	if c.Encoding, c.Data, err = readEncoded(s, "CERT"); err != nil {
		return err
	}
	if len(c.Data) == 0 {
		return syntaxError("CERT payload: empty Certificate Data")
	}
	return nil
}

func (c *CertReq) marshal(b *cryptobyte.Builder) {
	b.AddUint8(uint8(c.Encoding))
	b.AddBytes(c.Authority)
}

func (c *CertReq) unmarshal(s *cryptobyte.String) (err error) {
	if c.Encoding, c.Authority, err = readEncoded(s, "CERTREQ"); err != nil {
		return err
	}
	if c.Encoding == CertX509Sig && len(c.Authority)%certReqHashLen != 0 {
		return syntaxError(fmt.Sprintf("CERTREQ payload: %d octets of CA hashes is not a multiple of %d", len(c.Authority), certReqHashLen))
	}
	return nil
}
