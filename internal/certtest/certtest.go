// Package certtest makes X.509 certificates for tests laid out as AWS
// Private CA issues them: a root CA, a subordinate CA under it, and
// end-entity certificates (the customer gateway's, and AWS's tunnel
// endpoints' CN=vpn-<id>.endpoint-0/1) issued by the subordinate, every
// one with Authority Key Identifier, Subject Key Identifier and Basic
// Constraints, as AWS requires.
package certtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// KeyType is the key of a certificate.
type KeyType string

const (
	RSA2048  KeyType = "rsa2048"
	RSA1024  KeyType = "rsa1024" // too weak for AWS; for negative tests
	ECDSA256 KeyType = "p256"
	ECDSA384 KeyType = "p384"
	ECDSA521 KeyType = "p521"
)

// NewKey generates a key of type kt.
func NewKey(kt KeyType) (crypto.Signer, error) {
	switch kt {
	case RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case RSA1024:
		return rsa.GenerateKey(rand.Reader, 1024)
	case ECDSA256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case ECDSA384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case ECDSA521:
		return ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	}
	return nil, fmt.Errorf("certtest: unknown key type %q", kt)
}

// Cert is a certificate and its key.
type Cert struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// Options change an issued certificate.
type Options struct {
	NotBefore, NotAfter time.Time     // zero: an hour ago, a year from now
	KeyType             KeyType       // zero: RSA2048
	Key                 crypto.Signer // a given key instead of a new one
}

var serial int64 = time.Now().UnixNano()

// Issue makes a certificate for subject signed by issuer (nil: self-signed).
func Issue(issuer *Cert, subject pkix.Name, isCA bool, o Options) (*Cert, error) {
	if o.KeyType == "" {
		o.KeyType = RSA2048
	}
	key := o.Key
	if key == nil {
		var err error
		if key, err = NewKey(o.KeyType); err != nil {
			return nil, err
		}
	}
	if o.NotBefore.IsZero() {
		o.NotBefore = time.Now().Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = time.Now().Add(365 * 24 * time.Hour)
	}
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, err
	}
	ski := sha1.Sum(spki)
	serial++
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               subject,
		NotBefore:             o.NotBefore,
		NotAfter:              o.NotAfter,
		SubjectKeyId:          ski[:],
		BasicConstraintsValid: true,
		IsCA:                  isCA,
	}
	if isCA {
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	parent, signer := tmpl, key
	if issuer != nil {
		parent, signer = issuer.Cert, issuer.Key
		tmpl.AuthorityKeyId = issuer.Cert.SubjectKeyId
	} else {
		tmpl.AuthorityKeyId = ski[:]
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Cert{Cert: c, Key: key}, nil
}

// PKI is a root CA, a subordinate CA and the certificates it issued.
type PKI struct {
	Root, Sub *Cert
}

// NewPKI makes a root and a subordinate CA (RSA-2048, as AWS Private CA
// commonly is) named after name.
func NewPKI(name string) (*PKI, error) {
	root, err := Issue(nil, pkix.Name{Organization: []string{name}, CommonName: name + " Root CA"}, true, Options{})
	if err != nil {
		return nil, err
	}
	sub, err := Issue(root, pkix.Name{Organization: []string{name}, CommonName: name + " Subordinate CA"}, true, Options{})
	if err != nil {
		return nil, err
	}
	return &PKI{Root: root, Sub: sub}, nil
}

// Leaf issues an end-entity certificate with the subordinate CA.
func (p *PKI) Leaf(cn string, o Options) (*Cert, error) {
	return Issue(p.Sub, pkix.Name{CommonName: cn}, false, o)
}

// EndpointCN is the subject CN of AWS's certificate for tunnel endpoint
// i (0 or 1) of VPN connection vpnID.
func EndpointCN(vpnID string, i int) string { return fmt.Sprintf("%s.endpoint-%d", vpnID, i) }

// PEM encodes certificates.
func PEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// KeyPEM encodes a private key as unencrypted PKCS#8.
func KeyPEM(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// Files are the paths WriteFiles wrote.
type Files struct {
	Cert, Key, CA string
}

// WriteFiles writes leaf with its chain (leaf, subordinate), its key
// (mode 0600) and the CA bundle (root, subordinate) to dir, named after
// name.
func (p *PKI) WriteFiles(dir, name string, leaf *Cert) (Files, error) {
	f := Files{Cert: filepath.Join(dir, name+".crt"), Key: filepath.Join(dir, name+".key"), CA: filepath.Join(dir, name+"-ca.crt")}
	key, err := KeyPEM(leaf.Key)
	if err != nil {
		return f, err
	}
	for _, w := range []struct {
		path string
		data []byte
	}{{f.Cert, PEM(leaf.Cert, p.Sub.Cert)}, {f.Key, key}, {f.CA, PEM(p.Root.Cert, p.Sub.Cert)}} {
		if err := os.WriteFile(w.path, w.data, 0o600); err != nil {
			return f, err
		}
	}
	return f, nil
}

// CRL returns a CRL of the subordinate CA revoking the given
// certificates, valid from an hour ago for nextUpdate.
func (p *PKI) CRL(nextUpdate time.Duration, revoked ...*x509.Certificate) (*x509.RevocationList, error) {
	var entries []x509.RevocationListEntry
	for _, c := range revoked {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: time.Now().Add(-time.Minute)})
	}
	serial++
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(serial), ThisUpdate: time.Now().Add(-time.Hour), NextUpdate: time.Now().Add(nextUpdate),
		RevokedCertificateEntries: entries,
	}, p.Sub.Cert, p.Sub.Key)
	if err != nil {
		return nil, err
	}
	return x509.ParseRevocationList(der)
}
