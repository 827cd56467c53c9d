package daemon

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cgwproject/cgw/config"
	"github.com/cgwproject/cgw/ike"
	"github.com/cgwproject/cgw/internal/certtest"
)

func certTunnel(t *testing.T) (*config.Connection, *config.Tunnel) {
	t.Helper()
	pki, err := certtest.NewPKI("Example Corp")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := pki.Leaf("cgw.example.com", certtest.Options{KeyType: certtest.ECDSA256, NotAfter: time.Now().Add(20 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	f, err := pki.WriteFiles(t.TempDir(), "cgw", leaf)
	if err != nil {
		t.Fatal(err)
	}
	yml := `version: 1
connections:
  - name: vpn-0a1b2c3d
    routing: static
    static: {remote_prefixes: [10.0.0.0/16]}
    auth: certificate
    certificate: {cert_file: ` + f.Cert + `, key_file: ` + f.Key + `, ca_file: ` + f.CA + `}
    tunnels:
      - peer_address: 198.51.100.10
        peer_id: "CN=vpn-0a1b2c3d.endpoint-0"
        inside_cidr: 169.254.15.192/30
`
	cfg, _, err := config.Parse([]byte(yml), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return &cfg.Connections[0], &cfg.Connections[0].Tunnels[0]
}

func TestCertTunnelToIKEAndStatus(t *testing.T) {
	c, tn := certTunnel(t)
	pc := peerConfig(c, tn)
	if pc.Cert == nil || len(pc.PSK) != 0 || pc.Cert.Key == nil || len(pc.Cert.Roots) != 1 || pc.LocalID.Type != 0 {
		t.Fatalf("peer config: cert %v psk %d local id %+v", pc.Cert != nil, len(pc.PSK), pc.LocalID)
	}
	if pc.RemoteID.Type != 9 {
		t.Errorf("remote id %+v, want ID_DER_ASN1_DN", pc.RemoteID)
	}
	a := authStatus(tn, ike.AuthStatus{}, time.Now())
	if a.Method != "certificate" || a.LocalID != "CN=cgw.example.com" || a.ExpiresInDays < 19 || a.ExpiresInDays > 20 {
		t.Errorf("auth status %+v", a)
	}
	doc := tunnelDoc(tn)
	b, _ := json.Marshal(doc)
	s := string(b)
	for _, want := range []string{`"auth":"certificate"`, `"peer_id":"CN=vpn-0a1b2c3d.endpoint-0"`, `"key_file":"` + tn.Cert.KeyFile} {
		if !strings.Contains(s, want) {
			t.Errorf("config doc lacks %s: %s", want, s)
		}
	}
	if strings.Contains(s, `"psk"`) || strings.Contains(s, "PRIVATE KEY") {
		t.Errorf("config doc: %s", s)
	}
}
