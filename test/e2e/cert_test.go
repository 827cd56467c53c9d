//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/internal/certtest"
	"github.com/cgwproject/cgw/test/sim"
)

// certAuthOf returns the auth status of every tunnel.
func certAuthOf(st *control.Status) []*control.Auth {
	var out []*control.Auth
	for _, c := range st.Connections {
		for _, t := range c.Tunnels {
			out = append(out, t.Auth)
		}
	}
	return out
}

// TestCertBothTunnels: the simulator in certificate mode (AWS Private CA
// layout, endpoint certificates CN=vpn-<id>.endpoint-0/1) with RSA-2048
// and ECDSA P-256 customer certificates: both tunnels come up with BGP
// and traffic, and status shows the method, identities, signatures and
// expiry.
func TestCertBothTunnels(t *testing.T) {
	for _, kt := range []certtest.KeyType{certtest.RSA2048, certtest.ECDSA256} {
		t.Run(string(kt), func(t *testing.T) {
			s := NewSim(t, sim.Options{Cert: &sim.CertOptions{CustKey: kt}})
			start := time.Now()
			d := StartCgwd(t, s, sim.CgwdOptions{})
			d.waitStatus(t, 90*time.Second, childrenUp)
			st := d.waitStatus(t, 90*time.Second, tunnelsUp)
			t.Logf("e2e: cgwd start to both BGP sessions up with certificates (%s): %v", kt, time.Since(start).Round(time.Millisecond))
			for i := 1; i <= 2; i++ {
				if err := swanUp(s, i); err != nil {
					t.Error(err)
				}
			}
			for i, a := range certAuthOf(st) {
				wantPeer := s.EndpointDN(i + 1)
				if a == nil || a.Method != "certificate" || a.RemoteID != wantPeer || !strings.HasPrefix(a.LocalID, "CN=cgw.") ||
					a.PeerSignature == "" || a.LocalSignature == "" || a.ExpiresInDays < 300 || a.PeerCertExpires.IsZero() {
					t.Errorf("tunnel %d auth status: %+v (want peer %s)", i+1, a, wantPeer)
				}
			}
			if err := s.WaitPing(sim.LAN, sim.VPCHostAddr, 20*time.Second); err != nil {
				t.Fatalf("LAN host cannot reach the VPC host: %v", err)
			}
			out, _ := d.Ctl("status")
			if !strings.Contains(out, "auth") || !strings.Contains(out, "our certificate") {
				t.Errorf("status text lacks the auth lines:\n%s", out)
			}
			t.Logf("status:\n%s", out)
		})
	}
}

// TestCertResponder: AWS initiates (startup_action start), cgwd responds
// with its certificate.
func TestCertResponder(t *testing.T) {
	o := sim.Options{Tunnels: 1, Cert: &sim.CertOptions{CustKey: certtest.ECDSA256, AWSKey: certtest.ECDSA384}}
	o.Endpoint[0].StartAction = "start"
	s := NewSim(t, o)
	d := StartCgwd(t, s, sim.CgwdOptions{StartupAction: "respond"})
	st := d.waitStatus(t, 90*time.Second, childrenUp)
	a := certAuthOf(st)[0]
	tn := st.Connections[0].Tunnels[0]
	if tn.IKE == nil || tn.IKE.Initiator {
		t.Errorf("cgwd should be the responder: %+v", tn.IKE)
	}
	if a.Method != "certificate" || !strings.Contains(a.PeerSignature, "ECDSA SHA-384") {
		t.Errorf("auth %+v: want AWS's P-384 ECDSA signature", a)
	}
	t.Logf("responder: we signed with %s, AWS with %s", a.LocalSignature, a.PeerSignature)
}

// TestCertFailuresAndRecovery: AWS presenting a certificate from another
// CA, an expired certificate, and a peer_id that names the other endpoint
// each keep the tunnel down with a clear error in status and diagnose;
// fixing the last by reload brings the tunnel up at once.
func TestCertFailuresAndRecovery(t *testing.T) {
	s := NewSim(t, sim.Options{Tunnels: 1, Routing: sim.RoutingStatic, Cert: &sim.CertOptions{}})
	p := s.Certs()
	cn := strings.TrimPrefix(s.EndpointDN(1), "CN=")
	// setAWSCert makes AWS endpoint 1 present leaf (issued by pki).
	setAWSCert := func(pki *certtest.PKI, o certtest.Options) {
		t.Helper()
		leaf, err := pki.Leaf(cn, o)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, p.AWSCert[0], certtest.PEM(leaf.Cert, pki.Sub.Cert))
		key, _ := certtest.KeyPEM(leaf.Key)
		writeFile(t, p.AWSKey[0], key)
		if out, err := s.Swanctl(sim.AWS1, "--load-all", "--noprompt", "--file", filepath.Join(s.Dir(), "aws1", "swanctl.conf")); err != nil {
			t.Fatalf("reload AWS credentials: %v\n%s", err, out)
		}
	}
	yaml := func(c *sim.CgwdCert) string {
		y, err := s.CgwdConfig(sim.CgwdOptions{Cert: c})
		if err != nil {
			t.Fatal(err)
		}
		return y
	}
	waitError := func(d *Cgwd, name, want, diag string) {
		t.Helper()
		st := d.waitStatus(t, 90*time.Second, func(st *control.Status) error {
			tn := st.Connections[0].Tunnels[0]
			if !strings.Contains(tn.LastError, want) {
				return fmt.Errorf("%s: last error %q, want %q", name, tn.LastError, want)
			}
			return nil
		})
		tn := st.Connections[0].Tunnels[0]
		if tn.ChildState == "Established" {
			t.Errorf("%s: tunnel is up", name)
		}
		out, _ := d.Ctl("diagnose")
		if !strings.Contains(out, diag) {
			t.Errorf("%s: diagnose does not say %q:\n%s", name, diag, out)
		}
		t.Logf("%s: status: %s", name, tn.LastError)
	}

	other, err := certtest.NewPKI("Someone Else")
	if err != nil {
		t.Fatal(err)
	}
	setAWSCert(other, certtest.Options{})
	d := StartCgwdYAML(t, s, sim.Cust, yaml(nil))
	waitError(d, "wrong CA", "not signed by any CA in ca_file", "ca_file")

	setAWSCert(p.PKI, certtest.Options{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	waitError(d, "expired", "outside its validity period", "expired")

	setAWSCert(p.PKI, certtest.Options{})
	reloadYAML(t, d, yaml(&sim.CgwdCert{PeerIDs: [2]string{"CN=" + certtest.EndpointCN(s.ConnectionID(), 1)}}))
	waitError(d, "peer_id mismatch", "that peer_id CN=", "peer_id")

	start := time.Now()
	reloadYAML(t, d, yaml(nil))
	d.waitStatus(t, 60*time.Second, childrenUp)
	t.Logf("e2e: up %v after the reload that fixed peer_id", time.Since(start).Round(time.Millisecond))
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// reloadYAML replaces cgwd's configuration file and reloads it.
func reloadYAML(t testing.TB, d *Cgwd, yaml string) {
	t.Helper()
	writeFile(t, d.Config, []byte(yaml))
	if out, err := d.Ctl("reload"); err != nil {
		t.Fatalf("cgwctl reload: %v\n%s", err, out)
	}
}
