package ike_test

import (
	"crypto/ecdsa"
	"crypto/x509"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cgwproject/cgw/ike"
	"github.com/cgwproject/cgw/internal/certtest"
	"github.com/cgwproject/cgw/ipsec"
)

// certPKI is one customer's AWS Private CA: root, subordinate, the
// customer gateway's certificate and AWS's endpoint certificate.
type certPKI struct {
	pki      *certtest.PKI
	cgw, aws *certtest.Cert
}

func newCertPKI(t *testing.T, cgwKey, awsKey certtest.KeyType) *certPKI {
	t.Helper()
	pki, err := certtest.NewPKI("Example Corp")
	if err != nil {
		t.Fatal(err)
	}
	c := &certPKI{pki: pki}
	if c.cgw, err = pki.Leaf("cgw.example.com", certtest.Options{KeyType: cgwKey}); err != nil {
		t.Fatal(err)
	}
	if c.aws, err = pki.Leaf(certtest.EndpointCN("vpn-0123456789abcdef0", 0), certtest.Options{KeyType: awsKey}); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *certPKI) auth(leaf *certtest.Cert) *ike.CertAuth {
	return &ike.CertAuth{
		Chain: []*x509.Certificate{leaf.Cert, c.pki.Sub.Cert}, Key: leaf.Key,
		Roots: []*x509.Certificate{c.pki.Root.Cert}, Intermediates: []*x509.Certificate{c.pki.Sub.Cert},
	}
}

func certPair(t *testing.T, c *certPKI, edit func(cc, ac *ike.CertAuth, cgw, aws *ike.PeerConfig)) *pair {
	return newPair(t, func(cgw, aws *ike.PeerConfig) {
		cgw.PSK, aws.PSK = nil, nil
		cgw.Cert, aws.Cert = c.auth(c.cgw), c.auth(c.aws)
		cgw.RemoteID = ike.DNIdentity(c.aws.Cert.RawSubject)
		if edit != nil {
			edit(cgw.Cert, aws.Cert, cgw, aws)
		}
	})
}

func TestCertAuthKeyTypesAndMethods(t *testing.T) {
	cases := []struct {
		name             string
		cgwKey, awsKey   certtest.KeyType
		cgwOpt, awsOpt   func(*ike.CertAuth)
		wantCgw, wantAws string // the algorithm each side signed with
	}{
		{"rsa-digsig", certtest.RSA2048, certtest.RSA2048, nil, nil,
			"RFC 7427 RSA PKCS#1 v1.5 SHA-256 (method 14)", "RFC 7427 RSA PKCS#1 v1.5 SHA-256 (method 14)"},
		{"rsa-classic", certtest.RSA2048, certtest.RSA2048, func(a *ike.CertAuth) { a.Classic = true }, func(a *ike.CertAuth) { a.Classic = true },
			"RSA PKCS#1 v1.5 SHA-1 (method 1)", "RSA PKCS#1 v1.5 SHA-1 (method 1)"},
		{"rsa-pss", certtest.RSA2048, certtest.RSA2048, func(a *ike.CertAuth) { a.PSS = true }, func(a *ike.CertAuth) { a.PSS = true },
			"RFC 7427 RSASSA-PSS SHA-256 (method 14)", "RFC 7427 RSASSA-PSS SHA-256 (method 14)"},
		{"p256-classic-vs-rsa", certtest.ECDSA256, certtest.RSA2048, func(a *ike.CertAuth) { a.Classic = true }, nil,
			"ECDSA SHA-256 (method 9)", "RFC 7427 RSA PKCS#1 v1.5 SHA-256 (method 14)"},
		{"p384", certtest.ECDSA384, certtest.ECDSA384, func(a *ike.CertAuth) { a.Classic = true }, nil,
			"ECDSA SHA-384 (method 10)", "RFC 7427 ECDSA SHA-384 (method 14)"},
		{"p521", certtest.ECDSA521, certtest.ECDSA256, func(a *ike.CertAuth) { a.Classic = true }, func(a *ike.CertAuth) { a.Classic = true },
			"ECDSA SHA-512 (method 11)", "ECDSA SHA-256 (method 9)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCertPKI(t, tc.cgwKey, tc.awsKey)
			p := certPair(t, c, func(cc, ac *ike.CertAuth, _, _ *ike.PeerConfig) {
				if tc.cgwOpt != nil {
					tc.cgwOpt(cc)
				}
				if tc.awsOpt != nil {
					tc.awsOpt(ac)
				}
			})
			p.net.Deliver()
			cs := wantState(t, p.cgw, ike.StateEstablished, ike.StateEstablished)
			as := wantState(t, p.aws, ike.StateEstablished, ike.StateEstablished)
			checkChildPair(t, p.cgw, p.aws)
			if cs.Auth.Method != "certificate" || cs.Auth.LocalSig != tc.wantCgw || cs.Auth.PeerSig != tc.wantAws {
				t.Errorf("cgw auth %+v, want local %q peer %q", cs.Auth, tc.wantCgw, tc.wantAws)
			}
			if as.Auth.PeerSig != tc.wantCgw || as.Auth.LocalSig != tc.wantAws {
				t.Errorf("aws auth %+v", as.Auth)
			}
			if cs.Auth.LocalID != "CN=cgw.example.com" || cs.Auth.RemoteID != "CN=vpn-0123456789abcdef0.endpoint-0" {
				t.Errorf("identities %q / %q", cs.Auth.LocalID, cs.Auth.RemoteID)
			}
			if !cs.Auth.PeerCertNotAfter.Equal(c.aws.Cert.NotAfter) {
				t.Errorf("peer cert expiry %v, want %v", cs.Auth.PeerCertNotAfter, c.aws.Cert.NotAfter)
			}
		})
	}
}

func TestCertAuthFailures(t *testing.T) {
	cases := []struct {
		name string
		edit func(t *testing.T, c *certPKI, cc, ac *ike.CertAuth, cgw, aws *ike.PeerConfig)
		// which side sees the failure, and a phrase of its reason
		cgwWant, awsWant string
	}{
		{"wrong CA at cgw", func(t *testing.T, c *certPKI, cc, _ *ike.CertAuth, _, _ *ike.PeerConfig) {
			other := newCertPKI(t, certtest.RSA2048, certtest.RSA2048)
			cc.Roots, cc.Intermediates = []*x509.Certificate{other.pki.Root.Cert}, []*x509.Certificate{other.pki.Sub.Cert}
		}, "not signed by any CA in ca_file", "rejected our certificate"},
		{"expired AWS certificate", func(t *testing.T, c *certPKI, _, ac *ike.CertAuth, _, _ *ike.PeerConfig) {
			old, err := c.pki.Leaf(certtest.EndpointCN("vpn-0123456789abcdef0", 0), certtest.Options{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			ac.Chain[0], ac.Key = old.Cert, old.Key
		}, "outside its validity period", ""},
		{"peer_id mismatch", func(t *testing.T, c *certPKI, _, _ *ike.CertAuth, cgw, _ *ike.PeerConfig) {
			der, err := ipsec.ParseDN("CN=vpn-0123456789abcdef0.endpoint-1")
			if err != nil {
				t.Fatal(err)
			}
			cgw.RemoteID = ike.Identity{Type: 9, Data: der}
		}, "fix peer_id", ""},
		{"ID does not name the certificate", func(t *testing.T, c *certPKI, _, _ *ike.CertAuth, cgw, aws *ike.PeerConfig) {
			der, _ := ipsec.ParseDN("CN=someone-else")
			aws.LocalID = ike.Identity{Type: 9, Data: der}
			cgw.RemoteID = aws.LocalID
		}, "does not name its certificate", ""},
		{"PSK against certificate", func(t *testing.T, c *certPKI, _, _ *ike.CertAuth, cgw, aws *ike.PeerConfig) {
			cgw.Cert, cgw.PSK, cgw.RemoteID = nil, []byte(testPSK), ike.Identity{}
		}, "", "pre-shared key but this tunnel has auth: certificate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCertPKI(t, certtest.RSA2048, certtest.RSA2048)
			p := certPair(t, c, func(cc, ac *ike.CertAuth, cgw, aws *ike.PeerConfig) { tc.edit(t, c, cc, ac, cgw, aws) })
			p.net.Deliver()
			cs, as := status(t, p.cgw), status(t, p.aws)
			if cs.ChildState == ike.StateEstablished || as.ChildState == ike.StateEstablished {
				t.Fatalf("tunnel came up: cgw %s/%s aws %s/%s", cs.State, cs.ChildState, as.State, as.ChildState)
			}
			if !strings.Contains(cs.LastFailure, tc.cgwWant) {
				t.Errorf("cgw failure %q, want it to contain %q", cs.LastFailure, tc.cgwWant)
			}
			if !strings.Contains(as.LastFailure, tc.awsWant) {
				t.Errorf("aws failure %q, want it to contain %q", as.LastFailure, tc.awsWant)
			}
		})
	}
}

// Printing a configuration never shows the private key.
func TestCertAuthPrintsNoKey(t *testing.T) {
	c := newCertPKI(t, certtest.ECDSA256, certtest.ECDSA256)
	pc := ike.PeerConfig{Name: "t", Cert: c.auth(c.cgw)}
	d := c.cgw.Key.(*ecdsa.PrivateKey).D
	for _, s := range []string{fmt.Sprintf("%v", pc), fmt.Sprintf("%+v", pc), fmt.Sprintf("%#v", pc), fmt.Sprint(pc.Cert)} {
		if strings.Contains(s, d.String()) || strings.Contains(s, d.Text(16)) || !strings.Contains(s, "cgw.example.com") {
			t.Errorf("printed: %.400s", s)
		}
	}
}

// A CRL of the subordinate CA that lists AWS's certificate keeps the
// tunnel down; one that does not list it changes nothing.
func TestCertAuthCRL(t *testing.T) {
	c := newCertPKI(t, certtest.ECDSA256, certtest.ECDSA256)
	other, err := c.pki.Leaf("someone-else", certtest.Options{KeyType: certtest.ECDSA256})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		revoked *x509.Certificate
		up      bool
	}{{c.aws.Cert, false}, {other.Cert, true}} {
		crl, err := c.pki.CRL(24*time.Hour, tc.revoked)
		if err != nil {
			t.Fatal(err)
		}
		p := certPair(t, c, func(cc, _ *ike.CertAuth, _, _ *ike.PeerConfig) { cc.CRLs = []*x509.RevocationList{crl} })
		p.net.Deliver()
		st := status(t, p.cgw)
		if up := st.ChildState == ike.StateEstablished; up != tc.up {
			t.Errorf("revoking %s: up %v, want %v (last failure %q)", tc.revoked.Subject.CommonName, up, tc.up, st.LastFailure)
		}
		if !tc.up && !strings.Contains(st.LastFailure, "is revoked by the CRL") {
			t.Errorf("failure %q does not say revoked", st.LastFailure)
		}
	}
}
