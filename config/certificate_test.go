package config

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cgwproject/cgw/internal/certtest"
)

const testPassphrase = "correct horse battery"

// The testdata keys were encrypted by `openssl pkcs8 -topk8 -v2 <cipher>
// -v2prf <prf>`, the PBES2 form ACM exports.
func TestDecryptPKCS8OpenSSLVectors(t *testing.T) {
	for _, c := range []struct{ enc, plain string }{
		{"enc-p256-aes256-sha256.pem", "plain-p256.pem"},
		{"enc-rsa-aes256-sha256.pem", "plain-rsa.pem"},
		{"enc-p256-aes128-sha1.pem", "plain-p256.pem"},
	} {
		enc := readPEMBlock(t, c.enc, "ENCRYPTED PRIVATE KEY")
		plain := readPEMBlock(t, c.plain, "PRIVATE KEY")
		got, err := decryptPKCS8(enc, []byte(testPassphrase))
		if err != nil {
			t.Fatalf("%s: %v", c.enc, err)
		}
		want, _ := x509.ParsePKCS8PrivateKey(plain)
		if !got.(interface{ Equal(crypto.PrivateKey) bool }).Equal(want) {
			t.Errorf("%s: decrypted key differs from %s", c.enc, c.plain)
		}
		if _, err := decryptPKCS8(enc, []byte("wrong passphrase")); err == nil || !strings.Contains(err.Error(), "passphrase") {
			t.Errorf("%s with a wrong passphrase: %v", c.enc, err)
		}
	}
	if _, err := decryptPKCS8(readPEMBlock(t, "enc-p256-pbes1.pem", "ENCRYPTED PRIVATE KEY"), []byte(testPassphrase)); err == nil || !strings.Contains(err.Error(), "only PBES2") {
		t.Errorf("PBES1 key: %v", err)
	}
	if _, err := decryptPKCS8([]byte{0x30, 0x03, 1, 2, 3}, nil); err == nil {
		t.Error("garbage accepted")
	}
}

func readPEMBlock(t *testing.T, name, typ string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "pkcs8", name))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != typ {
		t.Fatalf("%s: no %s block", name, typ)
	}
	return b.Bytes
}

// certFiles writes a customer gateway certificate issued by a fresh PKI.
func certFiles(t *testing.T, o certtest.Options) (*certtest.PKI, certtest.Files) {
	t.Helper()
	pki, err := certtest.NewPKI("Example Corp")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := pki.Leaf("cgw.example.com", o)
	if err != nil {
		t.Fatal(err)
	}
	f, err := pki.WriteFiles(t.TempDir(), "cgw", leaf)
	if err != nil {
		t.Fatal(err)
	}
	return pki, f
}

func certConfig(f certtest.Files, extra ...string) string {
	lines := []string{"auth: certificate", "certificate:", "  cert_file: " + f.Cert, "  key_file: " + f.Key, "  ca_file: " + f.CA}
	for _, e := range extra {
		lines = append(lines, "  "+e)
	}
	yml := conn(lines...)
	yml = strings.Replace(yml, "        psk: EXAMPLEpsk1_abcdefghij.klmnopqrs\n", "        peer_id: CN=vpn-0123456789abcdef0.endpoint-0\n", 1)
	return strings.Replace(yml, "        psk: EXAMPLEpsk2_abcdefghij.klmnopqrs\n", "        peer_id: CN=vpn-0123456789abcdef0.endpoint-1\n", 1)
}

func TestCertificateConfig(t *testing.T) {
	pki, f := certFiles(t, certtest.Options{KeyType: certtest.ECDSA256})
	cfg, warns := mustParse(t, certConfig(f))
	if len(warns) != 0 {
		t.Errorf("warnings: %v", warns)
	}
	tun := cfg.Connections[0].Tunnels[1]
	if tun.Auth != AuthCertificate || tun.Cert == nil || len(tun.Cert.Chain) != 2 || tun.Cert.Key.Signer == nil {
		t.Fatalf("tunnel: %+v", tun)
	}
	if len(tun.Cert.Roots) != 1 || !tun.Cert.Roots[0].Equal(pki.Root.Cert) || len(tun.Cert.Intermediates) != 1 {
		t.Errorf("roots %d intermediates %d", len(tun.Cert.Roots), len(tun.Cert.Intermediates))
	}
	if tun.PeerDN == nil || tun.PSK != nil {
		t.Errorf("peer DN %x, psk set %v", tun.PeerDN, tun.PSK != nil)
	}
	// The key never prints.
	s := fmt.Sprintf("%+v %#v %v", *tun.Cert, *tun.Cert, tun.Cert.Key)
	d := tun.Cert.Key.Signer.(*ecdsa.PrivateKey).D
	if !strings.Contains(s, "[private key]") || strings.Contains(s, d.String()) || strings.Contains(s, d.Text(16)) {
		t.Errorf("key printed: %.300s", s)
	}

	// An encrypted PKCS#8 key with its passphrase file.
	enc := filepath.Join("testdata", "pkcs8", "enc-p256-aes256-sha256.pem")
	key, err := decryptPKCS8(readPEMBlock(t, "enc-p256-aes256-sha256.pem", "ENCRYPTED PRIVATE KEY"), []byte(testPassphrase))
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := pki.Leaf("cgw2.example.com", certtest.Options{Key: key.(crypto.Signer)})
	if err != nil {
		t.Fatal(err)
	}
	f2, err := pki.WriteFiles(t.TempDir(), "cgw2", leaf)
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(enc)
	f2.Key = abs
	pass := filepath.Join(t.TempDir(), "pass")
	os.WriteFile(pass, []byte(testPassphrase+"\n"), 0o600)
	cfg, _ = mustParse(t, certConfig(f2, "key_passphrase_file: "+pass))
	if k := cfg.Connections[0].Tunnels[0].Cert.Key; k.Signer == nil || !publicKeysEqual(k.Public(), leaf.Cert.PublicKey) {
		t.Error("encrypted key not loaded")
	}
	if _, _, err := Parse([]byte(certConfig(f2)), "test.yaml"); err == nil || !strings.Contains(err.Error(), "no key_passphrase_file") {
		t.Errorf("encrypted key without passphrase: %v", err)
	}
}

func TestCertificateErrors(t *testing.T) {
	_, good := certFiles(t, certtest.Options{})
	other, _ := certFiles(t, certtest.Options{})
	otherCA := filepath.Join(t.TempDir(), "other-ca.crt")
	os.WriteFile(otherCA, certtest.PEM(other.Root.Cert, other.Sub.Cert), 0o644)
	_, expired := certFiles(t, certtest.Options{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	_, future := certFiles(t, certtest.Options{NotBefore: time.Now().Add(48 * time.Hour)})
	_, weak := certFiles(t, certtest.Options{KeyType: certtest.RSA1024})
	_, p521 := certFiles(t, certtest.Options{KeyType: certtest.ECDSA521})
	_, soon := certFiles(t, certtest.Options{NotAfter: time.Now().Add(10 * 24 * time.Hour)})
	_, mismatch := certFiles(t, certtest.Options{})
	mismatch.Key = good.Key

	cases := []struct {
		name  string
		f     certtest.Files
		field string
		want  string
	}{
		{"missing file", certtest.Files{Cert: "/nonexistent/cgw.crt", Key: good.Key, CA: good.CA}, "cert_file", "no such file"},
		{"wrong CA", certtest.Files{Cert: good.Cert, Key: good.Key, CA: otherCA}, "ca_file", "is not signed by any CA in"},
		{"key mismatch", mismatch, "key_file", "does not match"},
		{"expired", expired, "cert_file", "expired at"},
		{"not yet valid", future, "cert_file", "is not valid until"},
		{"RSA-1024", weak, "cert_file", "too small"},
		{"P-521", p521, "cert_file", "not accepted by AWS"},
	}
	for _, c := range cases {
		_, _, err := Parse([]byte(certConfig(c.f)), "test.yaml")
		found := false
		for _, fe := range fieldErrors(t, err) {
			if strings.HasSuffix(fe.Path, "certificate."+c.field) && strings.Contains(fe.Msg, c.want) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: want an error on %s containing %q, got %v", c.name, c.field, c.want, err)
		}
	}
	_, warns := mustParse(t, certConfig(soon))
	if len(warns) != 1 || !strings.Contains(warns[0].Msg, "expires in") {
		t.Errorf("expiring soon: %v", warns)
	}
	// psk with auth: certificate is an error.
	yml := strings.Replace(certConfig(good), "        peer_id: CN=vpn-0123456789abcdef0.endpoint-0\n", "        psk: EXAMPLEpsk1_abcdefghij.klmnopqrs\n", 1)
	if _, _, err := Parse([]byte(yml), "test.yaml"); err == nil || !strings.Contains(err.Error(), "pre-shared key with auth: certificate") {
		t.Errorf("psk with certificate: %v", err)
	}
}

// A renewed certificate file is a change of the tunnels: reload restarts
// them with the new certificate.
func TestCertificateReload(t *testing.T) {
	_, f1 := certFiles(t, certtest.Options{})
	_, f2 := certFiles(t, certtest.Options{})
	a, _ := mustParse(t, certConfig(f1))
	b, _ := mustParse(t, certConfig(f2))
	if d := Diff(a, b); len(d) == 0 {
		t.Error("a new certificate is not a change")
	}
	c, _ := mustParse(t, certConfig(f1))
	if d := Diff(a, c); len(d) != 0 {
		t.Errorf("the same files reported as changed: %v", d)
	}
}

func TestCertificateCRLFile(t *testing.T) {
	pki, f := certFiles(t, certtest.Options{KeyType: certtest.ECDSA256})
	crl, err := pki.CRL(24*time.Hour, pki.Sub.Cert)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pemFile, derFile, stale := filepath.Join(dir, "ca.crl"), filepath.Join(dir, "ca.der"), filepath.Join(dir, "stale.crl")
	os.WriteFile(pemFile, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crl.Raw}), 0o644)
	os.WriteFile(derFile, crl.Raw, 0o644)
	old, _ := pki.CRL(-time.Minute)
	os.WriteFile(stale, old.Raw, 0o644)
	for _, name := range []string{pemFile, derFile} {
		cfg, _ := mustParse(t, certConfig(f, "crl_file: "+name))
		if crls := cfg.Connections[0].Tunnels[0].Cert.CRLs; len(crls) != 1 || len(crls[0].RevokedCertificateEntries) != 1 {
			t.Errorf("%s: CRLs %v", name, crls)
		}
	}
	if _, warns := mustParse(t, certConfig(f, "crl_file: "+stale)); len(warns) != 1 || !strings.Contains(warns[0].Msg, "due for renewal") {
		t.Errorf("stale CRL: %v", warns)
	}
	bad := filepath.Join(dir, "bad.crl")
	os.WriteFile(bad, []byte("not a CRL"), 0o644)
	if _, _, err := Parse([]byte(certConfig(f, "crl_file: "+bad)), "test.yaml"); err == nil || !strings.Contains(err.Error(), "CRL does not parse") {
		t.Errorf("bad CRL: %v", err)
	}
}
