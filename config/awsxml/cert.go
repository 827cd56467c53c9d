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
	placeholders                  bool // import-aws placeholders, see certFiles
}

// certHowTo is what a user with a certificate-based connection does.
const certHowTo = "export the customer gateway's certificate from ACM (aws acm export-certificate --certificate-arn ARN --passphrase fileb://pass.txt: Certificate + CertificateChain to one file, PrivateKey to another, CertificateChain, the CAs of the AWS Private CA, to a third) and pass --cert, --key, --key-passphrase-file and --ca, or replace the placeholders in the configuration"

// certFiles returns the certificate a connection authenticates with: the
// options' files, or for a certificate-based connection (the document says
// so, or carries no pre-shared key) imported without them, placeholders
// naming the ACM export steps, with a warning: cgwd refuses the
// configuration until they are replaced. Nil for a PSK connection.
func certFiles(v *VPNConnection, tvs []tunnelValues, opt Options) (*CertFiles, *config.Warning) {
	if opt.Cert != nil {
		return opt.Cert, nil
	}
	cert := v.Certificate
	for i, tv := range tvs {
		cert = cert || (tv.psk == "" && v.Tunnels[i].IKE.PreSharedKey == "")
	}
	if !cert {
		return nil, nil
	}
	w := &config.Warning{File: GeneratedFile, Path: v.ID, Msg: "the connection authenticates with a certificate, and no --cert/--key/--ca were given: " +
		"the configuration has placeholders <...> for the four files, and cgwd refuses it until they are replaced; " + certHowTo}
	return &CertFiles{
		Cert:           config.FilePlaceholder("certificate.pem: ACM export Certificate + CertificateChain"),
		Key:            config.FilePlaceholder("private-key.pem: ACM export PrivateKey"),
		PassphraseFile: config.FilePlaceholder("passphrase.txt: the export passphrase"),
		CA:             config.FilePlaceholder("ca.pem: ACM export CertificateChain (root and subordinate CA)"),
		placeholders:   true,
	}, w
}

func renderCert(w func(string, ...any), q func(string) string, c *CertFiles, cgwID string) {
	w("    # Certificate authentication: the customer gateway's certificate from\n")
	w("    # ACM. Our IKE identity is its subject; no static address is needed.\n")
	if c.placeholders {
		w("    # AWS lists no pre-shared key: replace each <...> below (cgwd refuses\n")
		w("    # to start until then), or import again with --cert, --key,\n")
		w("    # --key-passphrase-file and --ca. From ACM:\n")
		w("    #   aws ec2 describe-customer-gateways --customer-gateway-ids %s --query 'CustomerGateways[0].CertificateArn'\n", oneLine(orDash(cgwID)))
		w("    #   %s\n", config.ACMExportCommand)
		for _, f := range []string{"key_passphrase_file", "cert_file", "key_file", "ca_file"} {
			w("    #   %s: %s\n", f, config.ACMFileStep(f))
		}
	}
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
