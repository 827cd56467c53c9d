package config

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cgwproject/cgw/ipsec"
)

// AuthMethod is how a tunnel authenticates to AWS.
type AuthMethod string

const (
	AuthPSK         AuthMethod = "psk"
	AuthCertificate AuthMethod = "certificate"
)

// Signature is how cgw signs with its certificate's key.
type Signature string

const (
	// SignatureAuto uses RFC 7427 (method 14, SHA-2) when the peer
	// supports it, else RSA (method 1) or ECDSA (9-11).
	SignatureAuto Signature = "auto"
	// SignaturePSS signs RSA keys with RSASSA-PSS (RFC 7427).
	SignaturePSS Signature = "pss"
	// SignatureClassic never uses RFC 7427: method 1 or 9-11.
	SignatureClassic Signature = "classic"
)

// Certificate is a tunnel's certificate authentication material, loaded
// and checked when the configuration is read.
type Certificate struct {
	CertFile, KeyFile, KeyPassphraseFile, CAFile, CRLFile string // absolute paths

	// Chain is ours: the end-entity certificate, then the rest of cert_file.
	Chain []*x509.Certificate
	Key   PrivateKey
	// Roots are ca_file's self-signed certificates (all of them if none
	// is), Intermediates the others.
	Roots, Intermediates []*x509.Certificate
	CRLs                 []*x509.RevocationList
	Signature            Signature
}

// PrivateKey holds a private key; it prints as "[private key]" so that no
// %v of a configuration can reveal it.
type PrivateKey struct{ crypto.Signer }

func (PrivateKey) String() string   { return "[private key]" }
func (PrivateKey) GoString() string { return "[private key]" }

// Fingerprint identifies the material (certificates, CAs, CRLs, the
// public key and options) so that a reload notices a renewed file. It
// holds no secret.
func (c *Certificate) Fingerprint() string {
	if c == nil {
		return ""
	}
	h := sha256.New()
	for _, s := range [][]*x509.Certificate{c.Chain, c.Roots, c.Intermediates} {
		for _, x := range s {
			h.Write(x.Raw)
		}
	}
	for _, l := range c.CRLs {
		h.Write(l.Raw)
	}
	if c.Key.Signer != nil {
		if der, err := x509.MarshalPKIXPublicKey(c.Key.Public()); err == nil {
			h.Write(der)
		}
	}
	h.Write([]byte(c.Signature))
	return hex.EncodeToString(h.Sum(nil))
}

type rawCertificate struct {
	CertFile          *string `yaml:"cert_file"`
	KeyFile           *string `yaml:"key_file"`
	KeyPassphraseFile *string `yaml:"key_passphrase_file"`
	CAFile            *string `yaml:"ca_file"`
	CRLFile           *string `yaml:"crl_file"`
	Signature         *string `yaml:"signature"`
}

// maxPEMFile bounds what is read from a certificate, key, CA or CRL file.
const maxPEMFile = 1 << 20

// expiryWarning is how long before expiry a certificate earns a warning.
const expiryWarning = 30 * 24 * time.Hour

// connAuth reads a connection's auth and certificate, the defaults of its
// tunnels.
func (c *checker) connAuth(path string, conn *Connection, auth *string, rc *rawCertificate) {
	conn.Auth = AuthMethod(c.enum(path+".auth", auth, string(AuthPSK), string(AuthPSK), string(AuthCertificate)))
	if rc != nil {
		conn.Cert = c.certificate(path+".certificate", rc)
	}
	if conn.Auth == AuthCertificate && rc == nil {
		c.errorf(path+".certificate", "add `certificate: {cert_file: ..., key_file: ..., ca_file: ...}` (the ACM export of the customer gateway's certificate)", "auth: certificate without a certificate section")
	}
}

// tunnelAuth reads a tunnel's auth (defaulting to its connection's),
// certificate, peer_id and PSK. It returns false for PSK tunnels, whose
// peer_id and psk the caller reads.
func (c *checker) tunnelAuth(path string, conn Connection, t *Tunnel, r *rawTunnel) bool {
	def := conn.Auth
	if def == "" {
		def = AuthPSK
	}
	t.Auth = AuthMethod(c.enum(path+".auth", r.Auth, string(def), string(AuthPSK), string(AuthCertificate)))
	t.Cert = conn.Cert
	if r.Certificate != nil {
		t.Cert = c.certificate(path+".certificate", r.Certificate)
	}
	if t.Auth != AuthCertificate {
		if r.Certificate != nil {
			c.warnf(path+".certificate", "the certificate section is unused: the tunnel has auth: psk")
		}
		return false
	}
	if t.Cert == nil && conn.Auth != AuthCertificate {
		c.errorf(path+".certificate", "add `certificate: {cert_file: ..., key_file: ..., ca_file: ...}` here or in the connection", "auth: certificate without a certificate section")
	}
	if r.PSK != nil || r.PSKFile != nil {
		c.errorf(path+".psk", "remove psk/psk_file, or set `auth: psk`", "a pre-shared key with auth: certificate")
	}
	if r.PeerID == nil {
		c.warnf(path+".peer_id", "without peer_id any certificate issued by your CA is accepted as AWS's, including your own gateways'; set peer_id to the tunnel endpoint's DN, e.g. CN=vpn-0123456789abcdef0.endpoint-%d (cgwctl import-aws writes it)", len(conn.Tunnels))
		return true
	}
	if strings.Contains(*r.PeerID, "=") {
		der, err := ipsec.ParseDN(*r.PeerID)
		if err != nil {
			c.errorf(path+".peer_id", "write AWS's tunnel endpoint DN, e.g. CN=vpn-0123456789abcdef0.endpoint-0", "invalid DN: %v", err)
		}
		t.PeerDN = der
		return true
	}
	t.PeerID = c.optAddr(path+".peer_id", r.PeerID, "write AWS's tunnel endpoint DN, e.g. CN=vpn-0123456789abcdef0.endpoint-0, or an address")
	return true
}

// certificate loads and checks one certificate section. Every error names
// the file, the check and the fix; none includes key material.
func (c *checker) certificate(path string, r *rawCertificate) *Certificate {
	out := &Certificate{Signature: Signature(c.enum(path+".signature", r.Signature, string(SignatureAuto),
		string(SignatureAuto), string(SignaturePSS), string(SignatureClassic)))}
	need := func(field string, v *string, fix string) (string, bool) {
		if v == nil || *v == "" {
			c.errorf(path+"."+field, fix, "missing %s", field)
			return "", false
		}
		if c.placeholder(path+"."+field, field, *v) {
			return "", false
		}
		name := *v
		if !filepath.IsAbs(name) {
			name = filepath.Join(c.dir, name)
		}
		return name, true
	}
	certName, ok1 := need("cert_file", r.CertFile, "write the path of the certificate exported from ACM, with its chain (Certificate + CertificateChain)")
	keyName, ok2 := need("key_file", r.KeyFile, "write the path of the private key exported from ACM (PEM)")
	caName, ok3 := need("ca_file", r.CAFile, "write the path of a PEM file with your AWS Private CA's root and subordinate CA certificates")
	out.CertFile, out.KeyFile, out.CAFile = certName, keyName, caName
	if ok1 {
		out.Chain = c.pemCerts(path+".cert_file", certName)
	}
	if ok3 {
		cas := c.pemCerts(path+".ca_file", caName)
		for _, ca := range cas {
			if !ca.IsCA {
				c.errorf(path+".ca_file", "put only CA certificates (root and subordinate) in ca_file", "%s is not a CA certificate (basic constraints CA:FALSE or absent)", describeCert(ca))
			}
			if bytes.Equal(ca.RawIssuer, ca.RawSubject) && ca.CheckSignatureFrom(ca) == nil {
				out.Roots = append(out.Roots, ca)
			} else {
				out.Intermediates = append(out.Intermediates, ca)
			}
		}
		if len(out.Roots) == 0 {
			// Only a subordinate CA: it is the trust anchor.
			out.Roots, out.Intermediates = out.Intermediates, nil
		}
	}
	var passphrase []byte
	if r.KeyPassphraseFile != nil && c.placeholder(path+".key_passphrase_file", "key_passphrase_file", *r.KeyPassphraseFile) {
		ok2 = false
	} else if r.KeyPassphraseFile != nil {
		var ok bool
		passphrase, out.KeyPassphraseFile, ok = c.secretFile(path+".key_passphrase_file", *r.KeyPassphraseFile)
		if !ok {
			ok2 = false
		}
	}
	if ok2 {
		out.Key.Signer = c.privateKey(path, keyName, passphrase, r.KeyPassphraseFile != nil)
	}
	if r.CRLFile != nil {
		name, ok := need("crl_file", r.CRLFile, "write the path of the CRL (PEM or DER) of your CA, or remove the key")
		if ok {
			out.CRLFile = name
			out.CRLs = c.crls(path+".crl_file", name)
		}
	}
	c.checkOurCert(path, out)
	return out
}

// readPEMFile reads a file for the field at path.
func (c *checker) readPEMFile(path, name, fix string) ([]byte, bool) {
	data, err := readSmall(name, maxPEMFile)
	if err != nil {
		c.errorf(path, fix, "cannot read %s: %v", name, stripPathErr(err))
		return nil, false
	}
	if len(data) > maxPEMFile {
		c.errorf(path, "point it at the right file", "%s is larger than %d bytes", name, maxPEMFile)
		return nil, false
	}
	return data, true
}

func (c *checker) pemCerts(path, name string) []*x509.Certificate {
	data, ok := c.readPEMFile(path, name, "export the certificate from ACM (aws acm export-certificate) and write it there")
	if !ok {
		return nil
	}
	var out []*x509.Certificate
	for n := 1; ; n++ {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			if strings.Contains(b.Type, "PRIVATE KEY") {
				c.errorf(path, "keep the private key in key_file only", "%s holds a private key (PEM block %d)", name, n)
				return nil
			}
			continue
		}
		crt, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			c.errorf(path, "export the certificate again; the file is damaged", "%s: certificate %d does not parse: %v", name, n, err)
			return nil
		}
		out = append(out, crt)
	}
	if len(out) == 0 {
		c.errorf(path, "write PEM certificates (-----BEGIN CERTIFICATE-----) there", "%s holds no PEM certificate", name)
	}
	return out
}

func (c *checker) privateKey(path, name string, passphrase []byte, havePass bool) crypto.Signer {
	kpath := path + ".key_file"
	fi, err := os.Stat(name)
	if err == nil && fi.Mode().Perm()&0o077 != 0 {
		c.warnf(kpath, "key file %s is accessible by group or others (mode %04o): run chmod 600 %s", name, fi.Mode().Perm(), name)
	}
	data, ok := c.readPEMFile(kpath, name, "write the private key exported from ACM there, readable by cgwd only (chmod 600)")
	if !ok {
		return nil
	}
	b, _ := pem.Decode(data)
	for b != nil && !strings.Contains(b.Type, "PRIVATE KEY") {
		b, data = pem.Decode(data)
	}
	if b == nil {
		c.errorf(kpath, "write the PEM private key (-----BEGIN ENCRYPTED PRIVATE KEY----- or -----BEGIN PRIVATE KEY-----) there", "%s holds no PEM private key", name)
		return nil
	}
	var key any
	switch {
	case b.Type == "ENCRYPTED PRIVATE KEY":
		if !havePass {
			c.errorf(path+".key_passphrase_file", "write the passphrase you gave to ACM's export-certificate in a file (chmod 600) and name it here", "%s is encrypted but no key_passphrase_file is set", name)
			return nil
		}
		key, err = decryptPKCS8(b.Bytes, passphrase)
		if err != nil {
			c.errorf(kpath, "check key_passphrase_file holds the export passphrase", "%s: %v", name, err)
			return nil
		}
	case b.Headers["Proc-Type"] != "":
		c.errorf(kpath, "convert it to encrypted PKCS#8: openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf hmacWithSHA256 -in old.key -out new.key", "%s uses legacy PEM encryption, which cgw does not read", name)
		return nil
	case b.Type == "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	case b.Type == "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(b.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	}
	if err != nil {
		c.errorf(kpath, "export the private key again; the file is damaged", "%s: the private key does not parse (%s)", name, firstWords(err))
		return nil
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		c.errorf(kpath, "use an RSA or ECDSA key", "%s: a %T key cannot sign", name, key)
		return nil
	}
	if havePass && b.Type != "ENCRYPTED PRIVATE KEY" {
		c.warnf(path+".key_passphrase_file", "%s is not encrypted, so the passphrase is unused", name)
	}
	return s
}

// firstWords keeps an x509 parse error short and free of key bytes.
func firstWords(err error) string {
	s := err.Error()
	if i := strings.IndexAny(s, ":\n"); i > 0 {
		s = s[:i]
	}
	return s
}

func (c *checker) crls(path, name string) []*x509.RevocationList {
	data, ok := c.readPEMFile(path, name, "write the CRL of your CA (PEM or DER) there, or remove crl_file")
	if !ok {
		return nil
	}
	var ders [][]byte
	if bytes.Contains(data, []byte("-----BEGIN")) {
		for {
			var b *pem.Block
			b, data = pem.Decode(data)
			if b == nil {
				break
			}
			if b.Type == "X509 CRL" {
				ders = append(ders, b.Bytes)
			}
		}
	} else {
		ders = append(ders, data)
	}
	var out []*x509.RevocationList
	for _, d := range ders {
		l, err := x509.ParseRevocationList(d)
		if err != nil {
			c.errorf(path, "download the CRL again from your CA's S3 bucket", "%s: CRL does not parse: %v", name, err)
			return nil
		}
		if !l.NextUpdate.IsZero() && time.Now().After(l.NextUpdate) {
			c.warnf(path, "the CRL in %s was due for renewal at %s; fetch a fresh one", name, l.NextUpdate.UTC().Format(time.RFC3339))
		}
		out = append(out, l)
	}
	if len(out) == 0 {
		c.errorf(path, "write a PEM (-----BEGIN X509 CRL-----) or DER CRL there", "%s holds no CRL", name)
	}
	return out
}

func describeCert(x *x509.Certificate) string {
	return fmt.Sprintf("certificate %q (serial %s)", ipsec.DNString(x.RawSubject), x.SerialNumber.Text(16))
}

// checkOurCert applies AWS's and IKE's rules to our certificate: the key
// matches it, AWS accepts its key type, it is valid now, carries the
// extensions AWS requires, and the CA bundle signs it.
func (c *checker) checkOurCert(path string, out *Certificate) {
	if len(out.Chain) == 0 {
		return
	}
	leaf := out.Chain[0]
	cp := path + ".cert_file"
	if leaf.IsCA {
		c.errorf(cp, "put the customer gateway's certificate first in cert_file, then its chain", "the first certificate of %s, %s, is a CA certificate", out.CertFile, describeCert(leaf))
		return
	}
	if out.Key.Signer != nil && !publicKeysEqual(out.Key.Public(), leaf.PublicKey) {
		c.errorf(path+".key_file", "use the private key exported together with this certificate", "the key in %s does not match %s in %s", out.KeyFile, describeCert(leaf), out.CertFile)
	}
	if msg := keyTypeProblem(leaf.PublicKey); msg != "" {
		c.errorf(cp, "issue the certificate with an RSA-2048 (or larger), ECDSA P-256 or ECDSA P-384 key", "%s: %s", describeCert(leaf), msg)
	}
	now := time.Now()
	switch {
	case now.Before(leaf.NotBefore):
		c.errorf(cp, "wait until it is valid, or check the clock of this host", "%s is not valid until %s", describeCert(leaf), leaf.NotBefore.UTC().Format(time.RFC3339))
	case now.After(leaf.NotAfter):
		c.errorf(cp, "renew the certificate in ACM, export it again and reload", "%s expired at %s", describeCert(leaf), leaf.NotAfter.UTC().Format(time.RFC3339))
	case leaf.NotAfter.Sub(now) < expiryWarning:
		c.warnf(cp, "%s expires in %d days (%s): renew it in ACM and export it again", describeCert(leaf), int(leaf.NotAfter.Sub(now).Hours()/24), leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if len(leaf.SubjectKeyId) == 0 || len(leaf.AuthorityKeyId) == 0 || !leaf.BasicConstraintsValid {
		c.warnf(cp, "%s lacks Subject Key Identifier, Authority Key Identifier or Basic Constraints, which AWS requires; ACM's private certificates have them", describeCert(leaf))
	}
	if len(out.Roots) == 0 {
		return
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	for _, r := range out.Roots {
		roots.AddCert(r)
	}
	for _, r := range append(append([]*x509.Certificate(nil), out.Intermediates...), out.Chain[1:]...) {
		inter.AddCert(r)
	}
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	var ua x509.UnknownAuthorityError
	var inv x509.CertificateInvalidError
	switch {
	case err == nil:
	case errors.As(err, &ua):
		c.errorf(path+".ca_file", "put the root and subordinate CA of the AWS Private CA that issued the certificate in ca_file", "%s in %s is not signed by any CA in %s", describeCert(leaf), out.CertFile, out.CAFile)
	case errors.As(err, &inv) && inv.Reason == x509.Expired:
		c.errorf(path+".ca_file", "renew the expired CA certificate", "%s in the chain is outside its validity period", describeCert(inv.Cert))
	default:
		if !now.After(leaf.NotAfter) && !now.Before(leaf.NotBefore) {
			c.errorf(path+".ca_file", "check that ca_file holds the CAs that issued the certificate", "%s does not validate against %s: %v", describeCert(leaf), out.CAFile, err)
		}
	}
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	type eq interface{ Equal(crypto.PublicKey) bool }
	k, ok := a.(eq)
	return ok && k.Equal(b)
}

// keyTypeProblem says why AWS would reject the key type, or "".
// ACM private certificates use RSA-2048, EC P-256 or EC P-384.
func keyTypeProblem(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return fmt.Sprintf("an RSA key of %d bits is too small; AWS needs at least 2048", k.N.BitLen())
		}
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return fmt.Sprintf("ECDSA curve %s is not accepted by AWS (use P-256 or P-384)", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
		return "Ed25519 keys are not accepted by AWS"
	default:
		return fmt.Sprintf("a %T key is not accepted by AWS", pub)
	}
	return ""
}
