package crypto

import (
	gocrypto "crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"strings"
	"testing"
)

// The AlgorithmIdentifier blobs of RFC 7427 Appendix A.
func TestAlgorithmIdentifierRFC7427Vectors(t *testing.T) {
	cases := []struct {
		alg SigAlg
		hex string
	}{
		// A.1.1 sha1WithRSAEncryption
		{SigAlg{Key: "RSA", Hash: gocrypto.SHA1}, "300d06092a864886f70d0101050500"},
		// A.1.2 sha256WithRSAEncryption
		{SigAlg{Key: "RSA", Hash: gocrypto.SHA256}, "300d06092a864886f70d01010b0500"},
		// A.1.3, A.1.4 sha384/sha512WithRSAEncryption
		{SigAlg{Key: "RSA", Hash: gocrypto.SHA384}, "300d06092a864886f70d01010c0500"},
		{SigAlg{Key: "RSA", Hash: gocrypto.SHA512}, "300d06092a864886f70d01010d0500"},
		// A.3.1-A.3.3 ecdsa-with-sha256/384/512
		{SigAlg{Key: "ECDSA", Hash: gocrypto.SHA256}, "300a06082a8648ce3d040302"},
		{SigAlg{Key: "ECDSA", Hash: gocrypto.SHA384}, "300a06082a8648ce3d040303"},
		{SigAlg{Key: "ECDSA", Hash: gocrypto.SHA512}, "300a06082a8648ce3d040304"},
		// A.4.3 RSASSA-PSS with SHA-256 (MGF1 SHA-256, salt 32)
		{SigAlg{Key: "RSA", PSS: true, Hash: gocrypto.SHA256, Salt: 32},
			"304106092a864886f70d01010a3034a00f300d06096086480165030402010500a11c301a06092a864886f70d010108300d06096086480165030402010500a203020120"},
		// Ed25519 (RFC 8420)
		{SigAlg{Key: "Ed25519"}, "300506032b6570"},
	}
	for _, c := range cases {
		c.alg.Method = MethodDigSig
		got, err := c.alg.AlgorithmIdentifier()
		if err != nil {
			t.Fatalf("%s: %v", c.alg, err)
		}
		if hex.EncodeToString(got) != c.hex {
			t.Errorf("%s: got %x, want %s", c.alg, got, c.hex)
		}
		back, err := parseAlgorithmIdentifier(got)
		if err != nil || back != c.alg {
			t.Errorf("%s: parsed back as %+v, %v", c.alg, back, err)
		}
	}
	// A.4.1: RSASSA-PSS with empty parameters means SHA-1, MGF1-SHA-1, salt 20.
	der, _ := hex.DecodeString("300d06092a864886f70d01010a3000")
	a, err := parseAlgorithmIdentifier(der)
	if err != nil || !a.PSS || a.Hash != gocrypto.SHA1 || a.Salt != 20 {
		t.Errorf("PSS defaults: %+v, %v", a, err)
	}
}

func TestSignVerifyEveryMethod(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	octets := []byte("IKE_SA_INIT | Nr | prf(SK_pi, IDi)")
	all := []uint16{HashSHA256, HashSHA384, HashSHA512}
	cases := []struct {
		key     gocrypto.Signer
		hashes  []uint16
		classic bool
		pss     bool
		want    string
	}{
		{rsaKey, nil, false, false, "RSA PKCS#1 v1.5 SHA-1 (method 1)"},
		{rsaKey, all, true, false, "RSA PKCS#1 v1.5 SHA-1 (method 1)"},
		{rsaKey, all, false, false, "RFC 7427 RSA PKCS#1 v1.5 SHA-256 (method 14)"},
		{rsaKey, []uint16{HashSHA512}, false, false, "RFC 7427 RSA PKCS#1 v1.5 SHA-512 (method 14)"},
		{rsaKey, all, false, true, "RFC 7427 RSASSA-PSS SHA-256 (method 14)"},
		{rsaKey, []uint16{HashSHA384}, false, true, "RFC 7427 RSASSA-PSS SHA-384 (method 14)"},
		{p256, nil, false, false, "ECDSA SHA-256 (method 9)"},
		{p384, nil, false, false, "ECDSA SHA-384 (method 10)"},
		{p521, nil, false, false, "ECDSA SHA-512 (method 11)"},
		{p256, all, false, false, "RFC 7427 ECDSA SHA-256 (method 14)"},
		{p384, all, false, false, "RFC 7427 ECDSA SHA-384 (method 14)"},
		{p521, all, false, false, "RFC 7427 ECDSA SHA-512 (method 14)"},
		{ed, all, false, false, "RFC 7427 Ed25519 (method 14)"},
	}
	for _, c := range cases {
		alg, err := ChooseSigAlg(c.key.Public(), c.hashes, c.classic, c.pss)
		if err != nil {
			t.Fatalf("%s: %v", c.want, err)
		}
		if alg.String() != c.want {
			t.Errorf("chose %s, want %s", alg, c.want)
		}
		data, err := SignAuth(c.key, alg, octets)
		if err != nil {
			t.Fatalf("%s: sign: %v", alg, err)
		}
		got, err := VerifyAuth(c.key.Public(), alg.Method, data, octets)
		if err != nil || got.String() != c.want {
			t.Errorf("%s: verify: %s, %v", alg, got, err)
		}
		if _, err := VerifyAuth(c.key.Public(), alg.Method, data, append([]byte("x"), octets...)); err == nil {
			t.Errorf("%s: a signature over other octets verified", alg)
		}
		tampered := append([]byte(nil), data...)
		tampered[len(tampered)-1] ^= 1
		if _, err := VerifyAuth(c.key.Public(), alg.Method, tampered, octets); err == nil {
			t.Errorf("%s: a tampered signature verified", alg)
		}
	}
	// A signature checked against the wrong key type fails with a reason.
	data, _ := SignAuth(p256, SigAlg{Method: MethodECDSA256, Key: "ECDSA", Hash: gocrypto.SHA256}, octets)
	if _, err := VerifyAuth(rsaKey.Public(), MethodECDSA256, data, octets); err == nil || !strings.Contains(err.Error(), "RSA key") {
		t.Errorf("ECDSA signature against RSA key: %v", err)
	}
	if _, err := VerifyAuth(p256.Public(), 2, data, octets); err == nil {
		t.Error("method 2 accepted as a signature")
	}
	if _, err := VerifyAuth(p256.Public(), MethodDigSig, []byte{200, 1, 2}, octets); err == nil {
		t.Error("truncated RFC 7427 data accepted")
	}
}
