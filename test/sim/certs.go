package sim

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cgwproject/cgw/internal/certtest"
)

// CertOptions switch the simulation to certificate authentication as AWS
// lays it out: a root CA and a subordinate CA (the customer's AWS Private
// CA), the subordinate issuing the customer gateway's certificate and the
// two endpoint certificates CN=<connection id>.endpoint-0/1. The AWS
// endpoints authenticate with their certificate (pubkey), send it, and
// accept any customer certificate issued under the CA.
type CertOptions struct {
	// CustKey and AWSKey are the key types; default RSA-2048.
	CustKey, AWSKey certtest.KeyType
	// AWSAuth is the strongSwan `auth` of AWS's own authentication:
	// pubkey (default: RFC 7427 when the peer supports it), or a
	// constrained form such as rsa/pss-sha256 or ecdsa-sha384.
	AWSAuth string
	// AWSClassic turns RFC 7427 off on the AWS side
	// (charon.signature_authentication = no): it signs with method 1
	// (RSA) or 9-11 (ECDSA).
	AWSClassic bool
	// AnyCustomerAddress lets the AWS endpoints accept the customer from
	// any address (a customer gateway without a static IP).
	AnyCustomerAddress bool
}

// CertPaths are the files of the simulation's PKI.
type CertPaths struct {
	Dir               string
	Root, Sub, CA     string // CA = root + subordinate
	CustCert, CustKey string // CustCert = leaf + subordinate
	AWSCert, AWSKey   [2]string
	PKI               *certtest.PKI `json:"-"`
}

func (s *Sim) certDir() string { return s.path("pki") }

// makePKI generates and writes the simulation's certificates.
func (s *Sim) makePKI() error {
	c := s.opts.Cert
	dir := s.certDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	pki, err := certtest.NewPKI("Example Corp " + s.id)
	if err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	cust, err := pki.Leaf("cgw."+s.id+".example.com", certtest.Options{KeyType: c.CustKey})
	if err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	if _, err := pki.WriteFiles(dir, "cust", cust); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	for i := range 2 {
		aws, err := pki.Leaf(certtest.EndpointCN(s.ConnectionID(), i), certtest.Options{KeyType: c.AWSKey})
		if err != nil {
			return fmt.Errorf("sim: %w", err)
		}
		if _, err := pki.WriteFiles(dir, fmt.Sprintf("aws%d", i+1), aws); err != nil {
			return fmt.Errorf("sim: %w", err)
		}
		// swanctl loads private keys from private/ next to swanctl.conf.
		key, err := certtest.KeyPEM(aws.Key)
		if err == nil {
			err = os.MkdirAll(filepath.Dir(s.Certs().AWSKey[i]), 0o700)
		}
		if err == nil {
			err = os.WriteFile(s.Certs().AWSKey[i], key, 0o600)
		}
		if err != nil {
			return fmt.Errorf("sim: %w", err)
		}
	}
	for name, data := range map[string][]byte{"root.crt": certtest.PEM(pki.Root.Cert), "sub.crt": certtest.PEM(pki.Sub.Cert)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return fmt.Errorf("sim: %w", err)
		}
	}
	s.mu.Lock()
	s.pki = pki
	s.mu.Unlock()
	s.logf("certificate mode: PKI in %s (customer %s, AWS %s)", dir, orDefault(string(c.CustKey), "rsa2048"), orDefault(string(c.AWSKey), "rsa2048"))
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Certs returns the paths of the simulation's PKI (certificate mode only).
func (s *Sim) Certs() CertPaths {
	d := s.certDir()
	s.mu.Lock()
	pki := s.pki
	s.mu.Unlock()
	return CertPaths{Dir: d, Root: filepath.Join(d, "root.crt"), Sub: filepath.Join(d, "sub.crt"), CA: filepath.Join(d, "cust-ca.crt"),
		CustCert: filepath.Join(d, "cust.crt"), CustKey: filepath.Join(d, "cust.key"),
		AWSCert: [2]string{filepath.Join(d, "aws1.crt"), filepath.Join(d, "aws2.crt")},
		AWSKey:  [2]string{s.path(string(AWS1), "private", "aws.key"), s.path(string(AWS2), "private", "aws.key")},
		PKI:     pki}
}

// EndpointDN is the IKE identity of AWS endpoint i (1 or 2) in certificate
// mode: CN=<connection id>.endpoint-<i-1>.
func (s *Sim) EndpointDN(i int) string {
	return "CN=" + certtest.EndpointCN(s.ConnectionID(), i-1)
}

// awsCertAuth is the local/remote part of AWS endpoint i's connection in
// certificate mode, and its secrets section.
func (s *Sim) awsCertAuth(i int) (auth, secrets string) {
	c, p := s.opts.Cert, s.Certs()
	a := c.AWSAuth
	if a == "" {
		a = "pubkey"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "    send_certreq = yes\n    send_cert = always\n")
	fmt.Fprintf(&b, "    local {\n      auth = %s\n      certs = %s\n      id = \"%s\"\n    }\n", a, p.AWSCert[i], s.EndpointDN(i+1))
	fmt.Fprintf(&b, "    remote {\n      auth = pubkey\n      cacerts = %s,%s\n      id = %%any\n    }\n", p.Root, p.Sub)
	return b.String(), ""
}

// certCharonConf is appended to an AWS charon's strongswan.conf.
func (s *Sim) certCharonConf(aws bool) string {
	if !aws || s.opts.Cert == nil || !s.opts.Cert.AWSClassic {
		return ""
	}
	return "charon {\n  signature_authentication = no\n}\n"
}

// CgwdCert overrides the certificate section CgwdConfig writes in
// certificate mode (empty fields: the simulation's files).
type CgwdCert struct {
	CertFile, KeyFile, CAFile, PassphraseFile string
	// PeerIDs override peer_id of tunnels 1 and 2 ("-": none).
	PeerIDs   [2]string
	Signature string
}

// cgwdCertYAML is the connection's certificate section.
func (s *Sim) cgwdCertYAML(o *CgwdCert) string {
	p := s.Certs()
	var c CgwdCert
	if o != nil {
		c = *o
	}
	var b strings.Builder
	fmt.Fprintf(&b, "    auth: certificate\n    certificate:\n      cert_file: %s\n      key_file: %s\n      ca_file: %s\n",
		orDefault(c.CertFile, p.CustCert), orDefault(c.KeyFile, p.CustKey), orDefault(c.CAFile, p.CA))
	if c.PassphraseFile != "" {
		fmt.Fprintf(&b, "      key_passphrase_file: %s\n", c.PassphraseFile)
	}
	if c.Signature != "" {
		fmt.Fprintf(&b, "      signature: %s\n", c.Signature)
	}
	return b.String()
}

// cgwdPeerID is tunnel i's peer_id line in certificate mode.
func (s *Sim) cgwdPeerID(o *CgwdCert, i int) string {
	id := s.EndpointDN(i)
	if o != nil && o.PeerIDs[i-1] != "" {
		id = o.PeerIDs[i-1]
	}
	if id == "-" {
		return ""
	}
	return fmt.Sprintf("        peer_id: \"%s\"\n", id)
}
