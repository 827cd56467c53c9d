package diagnose

import (
	"fmt"
	"strings"
	"time"

	"github.com/cgwproject/cgw/config"
	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/ipsec"
)

// certWarn is how long before expiry our certificate is a warning.
const certWarn = 30 * 24 * time.Hour

// certificate: with auth: certificate, is our certificate valid, and for
// how long; which identities and signatures were used.
func (d *diagnoser) certificate() {
	tc := d.in.Tunnel
	if tc.Auth != config.AuthCertificate || tc.Cert == nil || len(tc.Cert.Chain) == 0 {
		return
	}
	leaf := tc.Cert.Chain[0]
	name := ipsec.DNString(leaf.RawSubject)
	ev := []string{
		fmt.Sprintf("our certificate %q from %s, issued by %q, valid %s to %s", name, tc.Cert.CertFile, ipsec.DNString(leaf.RawIssuer),
			leaf.NotBefore.UTC().Format(time.DateOnly), leaf.NotAfter.UTC().Format(time.DateOnly)),
		fmt.Sprintf("trusted CAs from %s: %d root, %d subordinate", tc.Cert.CAFile, len(tc.Cert.Roots), len(tc.Cert.Intermediates)),
	}
	if tc.PeerDN != nil {
		ev = append(ev, "peer_id (AWS's identity we require): "+ipsec.DNString(tc.PeerDN))
	} else {
		ev = append(ev, "peer_id not set: any certificate of the CA is accepted as AWS's")
	}
	if a := d.t.Auth; a != nil {
		if a.PeerSignature != "" {
			ev = append(ev, fmt.Sprintf("last authentication: we signed with %s, AWS with %s", a.LocalSignature, a.PeerSignature))
		}
		if a.PeerCertificate != "" {
			ev = append(ev, fmt.Sprintf("AWS's certificate %s expires %s (AWS renews it itself)", a.PeerCertificate, a.PeerCertExpires.UTC().Format(time.DateOnly)))
		}
	}
	left := leaf.NotAfter.Sub(d.now)
	renew := fmt.Sprintf("Renew the certificate in ACM (or issue a new one from the same subordinate CA), export it with its chain and key, replace %s and %s, and run `cgwctl reload`. AWS accepts any certificate of the same CA, so no change is needed on the AWS side.", tc.Cert.CertFile, tc.Cert.KeyFile)
	switch {
	case left <= 0:
		d.add(checkCert, control.SeverityError, fmt.Sprintf("Our certificate %q expired %s: AWS rejects it and the tunnel cannot come up.", name, d.ago(leaf.NotAfter)), ev, renew)
	case d.now.Before(leaf.NotBefore):
		d.add(checkCert, control.SeverityError, fmt.Sprintf("Our certificate %q is not valid until %s.", name, leaf.NotBefore.UTC().Format(time.RFC3339)), ev,
			"Check this host's clock (NTP); otherwise wait, or use a certificate that is already valid.")
	case left < certWarn:
		d.add(checkCert, control.SeverityWarn, fmt.Sprintf("Our certificate %q expires in %d days (%s).", name, int(left.Hours()/24), leaf.NotAfter.UTC().Format(time.DateOnly)), ev, renew)
	default:
		d.add(checkCert, control.SeverityOK, fmt.Sprintf("Our certificate %q is valid for %d more days.", name, int(left.Hours()/24)), ev, "")
	}
}

// explainCertAuthFailed is AUTHENTICATION_FAILED with certificates: which
// side refused, which check, which fix.
func explainCertAuthFailed(d *diagnoser) (string, []string, string) {
	tc := d.in.Tunnel
	f := d.failure()
	var ev []string
	if tc.Cert != nil {
		ev = append(ev, "ca_file: "+tc.Cert.CAFile, "cert_file: "+tc.Cert.CertFile)
	}
	switch {
	case strings.Contains(f, "not signed by any CA in ca_file"):
		return "AWS's certificate is not issued by any CA in our ca_file, so cgw refused it.", ev,
			"AWS issues its endpoint certificates from the subordinate CA named on the customer gateway. Put that subordinate CA and its root in ca_file (PEM), the same CAs that issued our own certificate."
	case strings.Contains(f, "outside its validity period"):
		return "A certificate of AWS's chain is expired or not yet valid, so cgw refused it.", ev,
			"Check this host's clock first (NTP). AWS renews its endpoint certificates itself; an expired CA certificate must be renewed in AWS Private CA and put in ca_file."
	case strings.Contains(f, "peer_id") || strings.Contains(f, "does not name its certificate"):
		return "AWS's identity does not match peer_id, or its IKE identity does not name its certificate.", ev,
			"Set peer_id to the endpoint's DN: CN=vpn-<id>.endpoint-0 for the first tunnel of the VPN connection and CN=vpn-<id>.endpoint-1 for the second (`cgwctl import-aws` writes them), or remove peer_id to accept any certificate of the CA."
	case strings.Contains(f, "revoked"):
		return "AWS's certificate is revoked by the CRL in crl_file.", ev, "Fetch a current CRL; if it still lists the certificate, ask AWS support."
	case strings.Contains(f, "rejected our certificate"):
		return "AWS rejected our certificate authentication (AUTHENTICATION_FAILED).", ev,
			"Check that the customer gateway in AWS was created with a certificate of the same subordinate CA as cert_file, that our certificate is valid (see the certificate check), and that peer_id names this tunnel's endpoint (AWS refuses a request for another endpoint's identity)."
	}
	return "Certificate authentication failed (AUTHENTICATION_FAILED).", ev, "Read the last failure above: it names the certificate, the check and the fix."
}
