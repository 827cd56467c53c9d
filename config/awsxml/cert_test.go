package awsxml

import (
	"encoding/json"
	"errors"
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
	if out, _, err := Generate(v, opt); err != nil || !strings.Contains(string(out), `cert_file: "<`) {
		t.Errorf("no PSK and no certificate: want placeholders; %v\n%s", err, out)
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

// certDescribeJSON is describe-vpn-connections output for a connection
// whose customer gateway has a certificate: CustomerGatewayConfiguration
// without pre-shared keys, and VgwTelemetry naming each tunnel
// endpoint's certificate (CertificateArn), as the EC2 API documents.
func certDescribeJSON(t *testing.T) ([]byte, *VPNConnection) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", "vgw-bgp.xml"))
	if err != nil {
		t.Fatal(err)
	}
	xmlText := regexp.MustCompile(`\s*<pre_shared_key>[^<]*</pre_shared_key>`).ReplaceAll(data, nil)
	v, err := Parse(xmlText)
	if err != nil {
		t.Fatal(err)
	}
	conn := map[string]any{
		"VpnConnectionId": v.ID, "State": "available", "Type": "ipsec.1", "CustomerGatewayId": v.CustomerGatewayID,
		"CustomerGatewayConfiguration": string(xmlText),
		"VgwTelemetry": []map[string]any{
			{"OutsideIpAddress": v.Tunnels[0].AWS.OutsideAddress, "Status": "DOWN", "CertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/0b6fae5b-0000-4000-8000-000000000001"},
			{"OutsideIpAddress": v.Tunnels[1].AWS.OutsideAddress, "Status": "DOWN", "CertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/0b6fae5b-0000-4000-8000-000000000002"},
		},
	}
	out, err := json.MarshalIndent(map[string]any{"VpnConnections": []any{conn}}, "", "    ")
	if err != nil {
		t.Fatal(err)
	}
	return out, v
}

// TestImportCertificatePlaceholders: a certificate-based connection
// imported without --cert/--key/--ca (the describe JSON, and the Generic
// download saying "Authentication Method: Certificate") becomes auth:
// certificate with placeholders and the ACM export steps; config.Parse
// (what cgwd and `cgwctl config check` run) refuses it, naming each file to
// provide; once the placeholders are replaced by real files it loads.
func TestImportCertificatePlaceholders(t *testing.T) {
	js, v := certDescribeJSON(t)
	format, conns, err := Read(js)
	if err != nil || format != FormatJSON || len(conns) != 1 || !conns[0].Doc.Certificate {
		t.Fatalf("Read: format %v, %d connections, err %v", format, len(conns), err)
	}
	out, warns, err := GenerateAll(conns, Options{Advertise: prefixes("10.1.0.0/16")})
	if err != nil {
		t.Fatalf("GenerateAll: %v", err)
	}
	text := string(out)
	warned := false
	for _, w := range warns {
		warned = warned || strings.Contains(w.Msg, "placeholders") && strings.Contains(w.Msg, "--cert")
	}
	if !warned {
		t.Errorf("no warning about the placeholders: %v", warns)
	}
	for _, want := range []string{"auth: certificate", "aws acm export-certificate --certificate-arn", "jq -r .PrivateKey export.json", "--customer-gateway-ids " + v.CustomerGatewayID,
		`cert_file: "<certificate.pem:`, `key_file: "<private-key.pem:`, `key_passphrase_file: "<passphrase.txt:`, `ca_file: "<ca.pem:`,
		`peer_id: "CN=` + v.ID + `.endpoint-0"`, `peer_id: "CN=` + v.ID + `.endpoint-1"`} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "psk:") || strings.Contains(text, "local_id") {
		t.Errorf("certificate config has psk or local_id:\n%s", text)
	}

	// cgwd refuses it, one error per file, each naming the export step.
	_, _, err = config.Parse(out, "cgw.yaml")
	if err == nil || !config.OnlyPlaceholders(err) {
		t.Fatalf("config.Parse of the placeholder configuration: %v", err)
	}
	for field, step := range map[string]string{"cert_file": ".Certificate, .CertificateChain", "key_file": ".PrivateKey",
		"key_passphrase_file": "passphrase.txt", "ca_file": ".CertificateChain export.json > ca.pem"} {
		found := false
		for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
			var fe *config.FieldError
			if errors.As(e, &fe) && strings.HasSuffix(fe.Path, "certificate."+field) {
				found = true
				if !strings.Contains(fe.Msg, "placeholder") || !strings.Contains(fe.Fix, step) || !strings.Contains(fe.Fix, "aws acm export-certificate") || !strings.Contains(fe.Fix, "set "+field) || fe.Line == 0 {
					t.Errorf("%s: %v", field, fe)
				}
			}
		}
		if !found {
			t.Errorf("no error for %s in:\n%v", field, err)
		}
	}

	// Replaced by the files of an ACM export, it loads.
	pki, err := certtest.NewPKI("Example Corp")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := pki.Leaf("cgw.example.com", certtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := pki.WriteFiles(t.TempDir(), "cgw", leaf)
	if err != nil {
		t.Fatal(err)
	}
	filled := regexp.MustCompile(`(?m)^\s*key_passphrase_file: .*\n`).ReplaceAllString(text, "")
	for field, path := range map[string]string{"cert_file": f.Cert, "key_file": f.Key, "ca_file": f.CA} {
		filled = regexp.MustCompile(`(?m)^(\s*`+field+`: )"<[^"]*>"`).ReplaceAllString(filled, "${1}"+path)
	}
	cfg, _, err := config.Parse([]byte(filled), "cgw.yaml")
	if err != nil {
		t.Fatalf("the configuration with the files filled in: %v\n%s", err, filled)
	}
	if tn := cfg.Connections[0].Tunnels[0]; tn.Auth != config.AuthCertificate || tn.Cert == nil || tn.Cert.Key.Signer == nil {
		t.Errorf("tunnel 1: auth %s, certificate %v", tn.Auth, tn.Cert != nil)
	}

	// The Generic download of a certificate connection.
	generic, err := os.ReadFile(filepath.Join("..", "testdata", "aws-samples", "generic-bgp.txt"))
	if err != nil {
		t.Fatal(err)
	}
	cert := strings.Replace(string(generic), "Pre-Shared Key \n", "Certificate \n", 1)
	if cert == string(generic) {
		t.Fatal("the Generic sample has no authentication method line to change")
	}
	_, conns, err = Read([]byte(cert))
	if err != nil || !conns[0].Doc.Certificate {
		t.Fatalf("Read Generic certificate download: %v", err)
	}
	out, _, err = GenerateAll(conns, Options{Advertise: prefixes("10.1.0.0/16")})
	if err != nil || !strings.Contains(string(out), "auth: certificate") || !strings.Contains(string(out), `cert_file: "<`) {
		t.Errorf("Generic certificate download: %v\n%s", err, out)
	}
}
