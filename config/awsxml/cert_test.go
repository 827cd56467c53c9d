package awsxml

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cgwproject/cgw/config"
	"github.com/cgwproject/cgw/internal/certtest"
)

func TestGenerateCertificate(t *testing.T) {
	pki, err := certtest.NewPKI("Example Corp")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := pki.Leaf("cgw.example.com", certtest.Options{KeyType: certtest.ECDSA256})
	if err != nil {
		t.Fatal(err)
	}
	f, err := pki.WriteFiles(t.TempDir(), "cgw", leaf)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join("..", "testdata", "vgw-bgp.xml"))
	if err != nil {
		t.Fatal(err)
	}
	// A certificate-based connection carries no pre-shared keys.
	noPSK := regexp.MustCompile(`<pre_shared_key>[^<]*</pre_shared_key>`).ReplaceAll(data, []byte("<pre_shared_key></pre_shared_key>"))
	v, err := Parse(noPSK)
	if err != nil {
		t.Fatal(err)
	}
	opt := Options{Advertise: prefixes("10.1.0.0/16")}
	if _, _, err := Generate(v, opt); err == nil || !strings.Contains(err.Error(), "--cert") {
		t.Errorf("no PSK and no certificate: %v", err)
	}
	opt.Cert = &CertFiles{Cert: f.Cert, Key: f.Key, CA: f.CA}
	out, _, err := Generate(v, opt)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	cfg, _, err := config.Parse(out, "generated")
	if err != nil {
		t.Fatalf("generated config does not parse: %v\n%s", err, out)
	}
	c := cfg.Connections[0]
	for i, tn := range c.Tunnels {
		if tn.Auth != config.AuthCertificate || tn.Cert == nil || len(tn.PSK) != 0 {
			t.Errorf("tunnel %d: auth %s, cert %v", i, tn.Auth, tn.Cert != nil)
		}
	}
	for _, want := range []string{"auth: certificate", f.Cert, `peer_id: "CN=` + v.ID + `.endpoint-0"`, `peer_id: "CN=` + v.ID + `.endpoint-1"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "psk:") || strings.Contains(string(out), "local_id") {
		t.Errorf("certificate config has psk or local_id:\n%s", out)
	}
}
