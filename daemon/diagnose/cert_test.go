package diagnose

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/cgwproject/cgw/config"
	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/internal/certtest"
	"github.com/cgwproject/cgw/ipsec"
)

func certInput(t *testing.T, notAfter time.Time) Input {
	t.Helper()
	pki, err := certtest.NewPKI("Example Corp")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := pki.Leaf("cgw.example.com", certtest.Options{KeyType: certtest.ECDSA256, NotBefore: diagNow.Add(-300 * 24 * time.Hour), NotAfter: notAfter})
	if err != nil {
		t.Fatal(err)
	}
	in := healthyInput(t)
	in.Tunnel.Auth = config.AuthCertificate
	in.Tunnel.PSK = nil
	in.Tunnel.PeerDN, _ = ipsec.ParseDN("CN=vpn-0a1b2c3d.endpoint-0")
	in.Tunnel.Cert = &config.Certificate{CertFile: "/etc/cgw/cgw.crt", KeyFile: "/etc/cgw/cgw.key", CAFile: "/etc/cgw/ca.crt",
		Chain: []*x509.Certificate{leaf.Cert, pki.Sub.Cert}, Roots: []*x509.Certificate{pki.Root.Cert}, Intermediates: []*x509.Certificate{pki.Sub.Cert}}
	return in
}

func TestDiagnoseCertificateExpiry(t *testing.T) {
	cases := []struct {
		left time.Duration
		sev  control.Severity
		want string
	}{
		{200 * 24 * time.Hour, control.SeverityOK, "valid for 200 more days"},
		{10 * 24 * time.Hour, control.SeverityWarn, "expires in 10 days"},
		{-2 * time.Hour, control.SeverityError, "expired"},
	}
	for _, c := range cases {
		fs := findingsOf(Tunnel(certInput(t, diagNow.Add(c.left))), "certificate")
		if len(fs) != 1 || fs[0].Severity != c.sev || !strings.Contains(fs[0].Summary, c.want) {
			t.Errorf("%v left: %+v", c.left, fs)
			continue
		}
		if txt := findingText(fs[0]); !strings.Contains(txt, "CN=vpn-0a1b2c3d.endpoint-0") || !strings.Contains(txt, "/etc/cgw/ca.crt") {
			t.Errorf("evidence lacks peer_id or ca_file: %s", txt)
		}
		if c.sev != control.SeverityOK && !strings.Contains(fs[0].Fix, "cgwctl reload") {
			t.Errorf("fix: %s", fs[0].Fix)
		}
	}
	// A PSK tunnel has no certificate finding.
	if fs := findingsOf(Tunnel(healthyInput(t)), "certificate"); len(fs) != 0 {
		t.Errorf("PSK tunnel: %+v", fs)
	}
}

func TestDiagnoseCertificateAuthFailed(t *testing.T) {
	cases := []struct{ sentence, summary, fix string }{
		{"ike: peer 198.51.100.10: certificate authentication failed: the peer's certificate \"CN=x\" is not signed by any CA in ca_file: put ...",
			"not issued by any CA in our ca_file", "subordinate CA"},
		{"ike: peer 198.51.100.10: certificate authentication failed: the peer's certificate chain is outside its validity period ...",
			"expired or not yet valid", "clock"},
		{"ike: peer 198.51.100.10 identified as CN=vpn-0a1b2c3d.endpoint-1 but remote_id is CN=vpn-0a1b2c3d.endpoint-0; fix peer_id in the tunnel config",
			"does not match peer_id", "endpoint-1"},
		{"ike: peer 198.51.100.10 rejected our certificate authentication (we identified as CN=cgw.example.com ...)",
			"AWS rejected our certificate", "same subordinate CA"},
	}
	for _, c := range cases {
		in := certInput(t, diagNow.Add(100*24*time.Hour))
		down(&in)
		failed(&in, "AUTHENTICATION_FAILED", c.sentence)
		fs := findingsOf(Tunnel(in), "ike-failure")
		if len(fs) != 1 || fs[0].Severity != control.SeverityError || !strings.Contains(fs[0].Summary, c.summary) || !strings.Contains(fs[0].Fix, c.fix) {
			t.Errorf("%q: %+v", c.sentence, fs)
		}
		if strings.Contains(findingText(fs[0]), "pre-shared key") {
			t.Errorf("certificate failure explained as a PSK problem: %s", findingText(fs[0]))
		}
	}
}
