package ike

import (
	"bytes"
	gocrypto "crypto"
	"crypto/sha1"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cgwproject/cgw/ike/crypto"
	"github.com/cgwproject/cgw/ike/message"
	"github.com/cgwproject/cgw/ipsec"
)

// CertAuth is certificate authentication (RFC 7296 Sections 2.15, 3.6,
// 3.7; RFC 4754; RFC 7427) for one peer. It replaces PeerConfig.PSK.
//
// Our identity, unless PeerConfig.LocalID says otherwise, is the subject
// DN of Chain[0] (ID_DER_ASN1_DN). The peer must send its end-entity
// certificate in a CERT payload; it is validated with crypto/x509 against
// Roots (intermediates from Intermediates and from the peer's other CERT
// payloads), with validity, key usage and extended key usage where
// present, the CRLs, and the peer's ID, which must name that certificate.
// Nothing is fetched from the network.
type CertAuth struct {
	// Chain is ours: the end-entity certificate first, then the CAs that
	// issued it (sent as CERT payloads, self-signed roots excepted).
	Chain []*x509.Certificate
	// Key is the private key of Chain[0]. It is never logged.
	Key gocrypto.Signer
	// Roots are the trust anchors, Intermediates further CAs of the
	// bundle; the CERTREQ names all of them.
	Roots, Intermediates []*x509.Certificate
	CRLs                 []*x509.RevocationList
	// Classic signs with method 1 (RSA, SHA-1) or 9-11 (ECDSA) even when
	// the peer supports RFC 7427; PSS signs RSA with RSASSA-PSS (needs
	// RFC 7427). Neither changes what we accept.
	Classic, PSS bool
}

// certReqHashes is the CERTREQ authority field: SHA-1 of each trusted CA's
// SubjectPublicKeyInfo (RFC 7296, Section 3.7).
func (c *CertAuth) certReq() *message.CertReq {
	var b []byte
	for _, ca := range append(append([]*x509.Certificate(nil), c.Roots...), c.Intermediates...) {
		h := sha1.Sum(ca.RawSubjectPublicKeyInfo)
		b = append(b, h[:]...)
	}
	return &message.CertReq{Encoding: message.CertX509Sig, Authority: b}
}

// certPayloads are the CERT payloads we send: our end-entity certificate
// first, then the CAs of our chain that are not self-signed roots.
func (c *CertAuth) certPayloads() []message.Payload {
	var out []message.Payload
	for i, crt := range c.Chain {
		if i > 0 && selfSigned(crt) {
			continue
		}
		out = append(out, &message.Cert{Encoding: message.CertX509Sig, Data: crt.Raw})
	}
	return out
}

func selfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil
}

// sigHashNotify is our SIGNATURE_HASH_ALGORITHMS (RFC 7427, Section 4).
func sigHashNotify() *message.Notify {
	var b []byte
	for _, h := range crypto.SupportedHashes {
		b = append(b, byte(h>>8), byte(h))
	}
	return &message.Notify{Kind: message.NotifySignatureHashAlgorithms, Data: b}
}

// noteSigHashes records the peer's SIGNATURE_HASH_ALGORITHMS from an
// IKE_SA_INIT message.
func (sa *ikeSA) noteSigHashes(m *message.Message) {
	n := m.Notify(message.NotifySignatureHashAlgorithms)
	if n == nil {
		return
	}
	sa.peerHashes = sa.peerHashes[:0]
	for d := n.Data; len(d) >= 2; d = d[2:] {
		sa.peerHashes = append(sa.peerHashes, uint16(d[0])<<8|uint16(d[1]))
	}
}

// DNIdentity returns the ID_DER_ASN1_DN identity of a distinguished name.
func DNIdentity(rawDN []byte) Identity {
	return Identity{Type: uint8(message.IDDERASN1DN), Data: append([]byte(nil), rawDN...)}
}

// sameDN compares two DER DNs by their attributes and values (so that a
// PrintableString and a UTF8String of the same text are equal).
func sameDN(a, b []byte) bool {
	return bytes.Equal(a, b) || ipsec.DNString(a) == ipsec.DNString(b)
}

// ekuIKE are the extended key usages that allow a certificate to
// authenticate IKE (RFC 4945, Section 5.1.3.12): serverAuth, clientAuth,
// anyExtendedKeyUsage, id-kp-ipsecIKE and the older IPsec ones.
var ekuIKEOIDs = []asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 17}, {1, 3, 6, 1, 5, 5, 7, 3, 5}, {1, 3, 6, 1, 5, 5, 7, 3, 6}, {1, 3, 6, 1, 5, 5, 7, 3, 7}}

func ekuAllowsIKE(c *x509.Certificate) bool {
	if len(c.ExtKeyUsage) == 0 && len(c.UnknownExtKeyUsage) == 0 {
		return true
	}
	for _, u := range c.ExtKeyUsage {
		if u == x509.ExtKeyUsageAny || u == x509.ExtKeyUsageServerAuth || u == x509.ExtKeyUsageClientAuth ||
			u == x509.ExtKeyUsageIPSECEndSystem || u == x509.ExtKeyUsageIPSECTunnel || u == x509.ExtKeyUsageIPSECUser {
			return true
		}
	}
	for _, o := range c.UnknownExtKeyUsage {
		for _, w := range ekuIKEOIDs {
			if o.Equal(w) {
				return true
			}
		}
	}
	return false
}

// CertSubject names a certificate for operators: its subject, issuer and
// serial.
func CertSubject(c *x509.Certificate) string {
	return fmt.Sprintf("%q (issuer %q, serial %s)", ipsec.DNString(c.RawSubject), ipsec.DNString(c.RawIssuer), c.SerialNumber.Text(16))
}

// verifyPeerCert validates the peer's certificates and that its identity
// names the end-entity certificate. It returns that certificate. Every
// error is one sentence: which certificate, which check, which fix.
func (c *CertAuth) verifyPeerCert(certs []*message.Cert, id *message.ID, now time.Time) (*x509.Certificate, error) {
	var parsed []*x509.Certificate
	for i, p := range certs {
		if p.Encoding != message.CertX509Sig {
			continue
		}
		crt, err := x509.ParseCertificate(p.Data)
		if err != nil {
			return nil, fmt.Errorf("the peer's CERT payload %d is not a valid X.509 certificate: %v", i+1, err)
		}
		parsed = append(parsed, crt)
	}
	if len(parsed) == 0 {
		return nil, errors.New("the peer sent no X.509 certificate (CERT payload) although we asked with CERTREQ; configure it to send its certificate (strongSwan: send_cert = always)")
	}
	leaf := parsed[0]
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	for _, r := range c.Roots {
		roots.AddCert(r)
	}
	for _, r := range c.Intermediates {
		inter.AddCert(r)
	}
	for _, r := range parsed[1:] {
		inter.AddCert(r)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		var ua x509.UnknownAuthorityError
		var inv x509.CertificateInvalidError
		switch {
		case errors.As(err, &ua):
			return nil, fmt.Errorf("the peer's certificate %s is not signed by any CA in ca_file: put the root and subordinate CA certificates of your AWS Private CA in ca_file", CertSubject(leaf))
		case errors.As(err, &inv) && inv.Reason == x509.Expired:
			return nil, fmt.Errorf("the peer's certificate chain is outside its validity period (%s): certificate %s is valid %s to %s; check the clocks and renew the expired certificate",
				inv.Detail, CertSubject(inv.Cert), inv.Cert.NotBefore.UTC().Format(time.RFC3339), inv.Cert.NotAfter.UTC().Format(time.RFC3339))
		}
		return nil, fmt.Errorf("the peer's certificate %s does not validate against ca_file: %v", CertSubject(leaf), err)
	}
	if leaf.KeyUsage != 0 && leaf.KeyUsage&(x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment) == 0 {
		return nil, fmt.Errorf("the peer's certificate %s has a key usage without digitalSignature, so it may not sign IKE authentication; reissue it with digitalSignature", CertSubject(leaf))
	}
	if !ekuAllowsIKE(leaf) {
		return nil, fmt.Errorf("the peer's certificate %s has extended key usages that exclude IKE (it needs serverAuth, clientAuth or ipsecIKE); reissue it", CertSubject(leaf))
	}
	if err := checkRevoked(chains[0], c.CRLs, now); err != nil {
		return nil, err
	}
	if err := idMatchesCert(id, leaf); err != nil {
		return nil, err
	}
	return leaf, nil
}

// checkRevoked looks each certificate of chain (but the root) up in the
// CRLs issued, and signed, by its issuer.
func checkRevoked(chain []*x509.Certificate, crls []*x509.RevocationList, now time.Time) error {
	for i := 0; i+1 < len(chain); i++ {
		crt, issuer := chain[i], chain[i+1]
		for _, crl := range crls {
			if !bytes.Equal(crl.RawIssuer, issuer.RawSubject) || crl.CheckSignatureFrom(issuer) != nil {
				continue
			}
			for _, r := range crl.RevokedCertificateEntries {
				if r.SerialNumber.Cmp(crt.SerialNumber) == 0 {
					return fmt.Errorf("the peer's certificate %s is revoked by the CRL of %q (since %s); the peer needs a new certificate",
						CertSubject(crt), ipsec.DNString(issuer.RawSubject), r.RevocationTime.UTC().Format(time.RFC3339))
				}
			}
		}
	}
	return nil
}

// idMatchesCert checks that the peer's IKE identity names its certificate:
// a DN equals the subject, an FQDN, e-mail or address is among its
// subject alternative names (RFC 4945, Section 3.1).
func idMatchesCert(id *message.ID, leaf *x509.Certificate) error {
	ok := false
	switch id.IDType {
	case message.IDDERASN1DN:
		ok = sameDN(id.Data, leaf.RawSubject)
	case message.IDFQDN:
		ok = leaf.VerifyHostname(string(id.Data)) == nil
	case message.IDRFC822:
		for _, e := range leaf.EmailAddresses {
			ok = ok || strings.EqualFold(e, string(id.Data))
		}
	case message.IDIPv4Addr, message.IDIPv6Addr:
		if a, good := id.Addr(); good {
			for _, ip := range leaf.IPAddresses {
				ok = ok || ip.Equal(a.AsSlice())
			}
		}
	}
	if !ok {
		return fmt.Errorf("the peer's identity %s does not name its certificate %s (an ID_DER_ASN1_DN must equal the certificate subject)",
			identityString(id.IDType, id.Data), CertSubject(leaf))
	}
	return nil
}

// String names the certificate, never the key, so that printing a
// PeerConfig cannot reveal it.
func (c *CertAuth) String() string {
	if c == nil || len(c.Chain) == 0 {
		return "certificate auth (no certificate)"
	}
	return "certificate auth with " + CertSubject(c.Chain[0])
}

// GoString is String, for %#v.
func (c *CertAuth) GoString() string { return c.String() }
