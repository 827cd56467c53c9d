package config

import (
	"strings"
	"testing"
	"time"
)

// strictAWS is a tunnel whose AWS options a security review narrowed to
// AES-256, SHA2-512 and DH 16 in both phases.
var strictAWS = []string{
	"aws_tunnel_options:",
	"  phase1: {encryption: [AES256], integrity: [SHA2-512], dh_groups: [16], lifetime: 4h}",
	"  phase2: {encryption: [AES256], integrity: [SHA2-512], dh_groups: [16], lifetime: 30m}",
	"  rekey_margin: 540s",
	"  dpd_timeout: 30s",
	"  dpd_timeout_action: restart",
	"  startup_action: add",
}

func TestAWSTunnelOptionsRecorded(t *testing.T) {
	cfg, warns := mustParse(t, t1(strictAWS...))
	if len(warns) != 0 {
		t.Errorf("defaults against narrowed options: warnings %v", warns)
	}
	o := cfg.Connections[0].Tunnels[0].AWS
	if o == nil {
		t.Fatal("aws_tunnel_options not recorded")
	}
	if o.Phase1.String() != "AES256, SHA2-512, DH 16" || o.Phase1.Lifetime != 4*time.Hour || o.Phase2.Lifetime != 30*time.Minute ||
		o.RekeyMargin != 540*time.Second || o.DPDTimeout != 30*time.Second || o.DPDTimeoutAction != "restart" || o.StartupAction != "add" {
		t.Errorf("recorded %+v", *o)
	}
	if cfg.Connections[0].Tunnels[1].AWS != nil {
		t.Errorf("tunnel 2 has no aws_tunnel_options but got %+v", cfg.Connections[0].Tunnels[1].AWS)
	}
	// Exactly the narrowed proposals, as import writes them: no warning.
	_, warns = mustParse(t, t1(append([]string{"ike_proposals: [aes256-sha512-modp4096]", "esp_proposals: [aes256-sha512-modp4096]"}, strictAWS...)...))
	if len(warns) != 0 {
		t.Errorf("exact proposals: warnings %v", warns)
	}
}

func TestAWSTunnelOptionsChecks(t *testing.T) {
	tests := []struct {
		name       string
		yml        string
		errPath    string
		errHas     []string
		warnPath   string
		warnHas    []string
		noErrors   bool
		noWarnings bool
	}{
		{name: "ike proposals cannot meet",
			yml:     t1(append([]string{"ike_proposals: [aes128-sha256-modp2048, aes128gcm16-prfsha256-ecp256]"}, strictAWS...)...),
			errPath: "connections[0].tunnels[0].ike_proposals",
			errHas:  []string{"no proposal can meet the AWS tunnel options", "phase1 (AES256, SHA2-512, DH 16)", "never comes up", "remove ike_proposals", "aes256-sha512-modp4096", "re-import"}},
		{name: "esp pfs group outside",
			yml:     t1(append([]string{"esp_proposals: [aes256-sha512-modp2048]"}, strictAWS...)...),
			errPath: "connections[0].tunnels[0].esp_proposals",
			errHas:  []string{"phase2 (AES256, SHA2-512, DH 16)", "first rekey"}},
		{name: "one proposal never chosen",
			yml:      t1(append([]string{"ike_proposals: [aes256-sha512-modp4096, aes128-sha1-modp1024]"}, strictAWS...)...),
			noErrors: true, warnPath: "connections[0].tunnels[0].ike_proposals",
			warnHas: []string{`proposal "aes128-sha1-modp1024" is outside the AWS tunnel options`, "never choose it"}},
		{name: "nobody starts",
			yml:     t1(append([]string{"startup_action: respond"}, strictAWS...)...),
			errPath: "connections[0].tunnels[0].startup_action",
			errHas:  []string{"AWS tunnel's startup action is add", "never comes up", "startup_action: initiate"}},
		{name: "nobody restarts",
			yml:      t1("startup_action: respond", "aws_tunnel_options: {startup_action: start, dpd_timeout_action: clear}"),
			noErrors: true, warnPath: "connections[0].tunnels[0].aws_tunnel_options.dpd_timeout_action",
			warnHas: []string{"stays down"}},
		{name: "unknown algorithm",
			yml:     t1("aws_tunnel_options: {phase1: {encryption: [3DES]}}"),
			errPath: "connections[0].tunnels[0].aws_tunnel_options.phase1",
			errHas:  []string{`unknown encryption algorithm "3DES"`, "Phase1EncryptionAlgorithms"}},
		{name: "group 5 in phase 1",
			yml:     t1("aws_tunnel_options: {phase1: {dh_groups: [5]}}"),
			errPath: "connections[0].tunnels[0].aws_tunnel_options.phase1",
			errHas:  []string{"DH group 5 is not one AWS accepts in phase 1"}},
		{name: "lifetime range",
			yml:     t1("aws_tunnel_options: {phase2: {lifetime: 2h}}"),
			errPath: "connections[0].tunnels[0].aws_tunnel_options.phase2.lifetime",
			errHas:  []string{"out of range", "Phase2LifetimeSeconds"}},
		{name: "unknown key",
			yml:     t1("aws_tunnel_options: {phase3: {}}"),
			errPath: "connections[0].tunnels[0].aws_tunnel_options.phase3",
			errHas:  []string{"unknown"}},
		{name: "defaults meet anything",
			yml:      t1("aws_tunnel_options: {phase1: {encryption: [AES128-GCM-16], dh_groups: [21]}, phase2: {encryption: [AES256-GCM-16], dh_groups: [5]}}"),
			noErrors: true, noWarnings: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, warns, err := Parse([]byte(tt.yml), "test.yaml")
			if tt.noErrors && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.errPath != "" {
				found := false
				for _, fe := range fieldErrors(t, err) {
					if fe.Path != tt.errPath {
						continue
					}
					found = true
					text := fe.Error()
					for _, w := range tt.errHas {
						if !strings.Contains(text, w) {
							t.Errorf("error lacks %q: %s", w, text)
						}
					}
				}
				if !found {
					t.Errorf("no error at %s: %v", tt.errPath, err)
				}
			}
			if tt.noWarnings && len(warns) != 0 {
				t.Errorf("warnings %v", warns)
			}
			if tt.warnPath != "" {
				found := false
				for _, w := range warns {
					if w.Path == tt.warnPath && hasAll(w.Msg, tt.warnHas) {
						found = true
					}
				}
				if !found {
					t.Errorf("no warning at %s with %q: %v", tt.warnPath, tt.warnHas, warns)
				}
			}
		})
	}
}

func hasAll(s string, subs []string) bool {
	for _, w := range subs {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}
