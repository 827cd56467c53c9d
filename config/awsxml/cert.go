package awsxml

import (
	"fmt"

	"github.com/cgwproject/cgw/config"
)

// CertFiles are the files of a customer gateway certificate exported from
// ACM (aws acm export-certificate): the certificate with its chain, the
// private key (encrypted PKCS#8 with the export passphrase in
// PassphraseFile, or plain), and the CA bundle (root and subordinate CA of
// the AWS Private CA).
type CertFiles struct {
	Cert, Key, PassphraseFile, CA string
}

// certHowTo is what a user with a certificate-based connection does.
const certHowTo = "export the customer gateway's certificate from ACM (aws acm export-certificate --certificate-arn ARN --passphrase fileb://pass.txt: Certificate + CertificateChain to one file, PrivateKey to another), put the root and subordinate CA certificates of the AWS Private CA in a third, and pass --cert, --key, --key-passphrase-file and --ca"

// checkAuth: a connection without pre-shared keys uses a certificate,
// which the options must name.
func checkAuth(v *VPNConnection, tvs []tunnelValues, opt Options) error {
	if opt.Cert != nil {
		return nil
	}
	for i, tv := range tvs {
		if tv.psk == "" && v.Tunnels[i].IKE.PreSharedKey == "" {
			return fmt.Errorf("awsxml: %s: the document has no pre-shared key, so the connection authenticates with a certificate: %s", v.ID, certHowTo)
		}
	}
	return nil
}

func renderCert(w func(string, ...any), q func(string) string, c *CertFiles) {
	w("    # Certificate authentication: the customer gateway's certificate from\n")
	w("    # ACM. Our IKE identity is its subject; no static address is needed.\n")
	w("    auth: %s\n", config.AuthCertificate)
	w("    certificate:\n")
	w("      cert_file: %s  # certificate + chain (ACM Certificate, CertificateChain)\n", q(c.Cert))
	w("      key_file: %s  # ACM PrivateKey (chmod 600)\n", q(c.Key))
	if c.PassphraseFile != "" {
		w("      key_passphrase_file: %s  # the export passphrase\n", q(c.PassphraseFile))
	}
	w("      ca_file: %s  # root and subordinate CA of the AWS Private CA\n", q(c.CA))
}

// renderPeerDN writes AWS's identity for tunnel i: its endpoint
// certificate's subject, CN=<vpn id>.endpoint-<i>.
func renderPeerDN(w func(string, ...any), q func(string) string, vpnID string, i int) {
	w("        peer_id: %s  # AWS's endpoint certificate; if diagnose reports a peer_id mismatch, swap -0 and -1 between the tunnels\n",
		q(fmt.Sprintf("CN=%s.endpoint-%d", vpnID, i)))
}
