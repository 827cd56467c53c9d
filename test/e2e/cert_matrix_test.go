//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/cgwproject/cgw/internal/certtest"
	"github.com/cgwproject/cgw/test/sim"
)

// TestCertMatrix authenticates cgwd against strongSwan (the AWS side)
// with each key type and AUTH method: RFC 7427 (method 14) with RSA
// PKCS#1 v1.5, RSASSA-PSS and ECDSA, and the classic methods 1 (RSA),
// 9, 10 (ECDSA P-256/P-384 from both sides) and 11 (AWS's P-521, which cgw
// verifies; its own P-521 keys are refused because AWS does not accept
// them). Each row checks the signature each side used, as cgwd's status
// reports it.
func TestCertMatrix(t *testing.T) {
	rows := []struct {
		name             string
		cust, aws        certtest.KeyType
		signature        string // cgwd's certificate.signature
		awsAuth          string // strongSwan's local auth
		awsClassic       bool
		wantOur, wantAWS string
	}{
		{"rsa-digsig", certtest.RSA2048, certtest.RSA2048, "", "", false,
			"RFC 7427 RSA PKCS#1 v1.5 SHA-256 (method 14)", "RFC 7427 RSA PKCS#1 v1.5 SHA-256 (method 14)"},
		{"rsa-pss", certtest.RSA2048, certtest.RSA2048, "pss", "rsa/pss-sha384", false,
			"RFC 7427 RSASSA-PSS SHA-256 (method 14)", "RFC 7427 RSASSA-PSS SHA-384 (method 14)"},
		{"rsa-method1", certtest.RSA2048, certtest.RSA2048, "classic", "", true,
			"RSA PKCS#1 v1.5 SHA-1 (method 1)", "RSA PKCS#1 v1.5 SHA-1 (method 1)"},
		{"p256-digsig", certtest.ECDSA256, certtest.ECDSA256, "", "", false,
			"RFC 7427 ECDSA SHA-256 (method 14)", "RFC 7427 ECDSA SHA-256 (method 14)"},
		{"p256-method9", certtest.ECDSA256, certtest.ECDSA256, "classic", "", true,
			"ECDSA SHA-256 (method 9)", "ECDSA SHA-256 (method 9)"},
		{"p384-method10", certtest.ECDSA384, certtest.ECDSA384, "classic", "", true,
			"ECDSA SHA-384 (method 10)", "ECDSA SHA-384 (method 10)"},
		{"p384-digsig-vs-rsa", certtest.ECDSA384, certtest.RSA2048, "", "", false,
			"RFC 7427 ECDSA SHA-384 (method 14)", "RFC 7427 RSA PKCS#1 v1.5 SHA-256 (method 14)"},
		{"aws-p521-method11", certtest.ECDSA256, certtest.ECDSA521, "classic", "", true,
			"ECDSA SHA-256 (method 9)", "ECDSA SHA-512 (method 11)"},
	}
	var results []string
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			s := NewSim(t, sim.Options{Tunnels: 1, Routing: sim.RoutingStatic,
				Cert: &sim.CertOptions{CustKey: r.cust, AWSKey: r.aws, AWSAuth: r.awsAuth, AWSClassic: r.awsClassic}})
			start := time.Now()
			d := StartCgwd(t, s, sim.CgwdOptions{Cert: &sim.CgwdCert{Signature: r.signature}})
			st := d.waitStatus(t, 60*time.Second, childrenUp)
			a := certAuthOf(st)[0]
			if a.LocalSignature != r.wantOur || a.PeerSignature != r.wantAWS {
				t.Errorf("signatures: ours %q, AWS %q; want %q, %q", a.LocalSignature, a.PeerSignature, r.wantOur, r.wantAWS)
			}
			if err := swanUp(s, 1); err != nil {
				t.Error(err)
			}
			results = append(results, strings.Join([]string{r.name, string(r.cust), string(r.aws), a.LocalSignature, a.PeerSignature, time.Since(start).Round(10 * time.Millisecond).String()}, " | "))
		})
	}
	t.Logf("e2e cert matrix (row | cgw key | AWS key | cgw signed | AWS signed | start to CHILD up):\n%s", strings.Join(results, "\n"))
}
