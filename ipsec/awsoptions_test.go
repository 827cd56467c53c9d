package ipsec

import (
	"strings"
	"testing"
)

func TestNarrowDefaults(t *testing.T) {
	for _, tt := range []struct {
		ike           bool
		encrs, integs []string
		groups        []int
		want, wantErr string
	}{
		{true, nil, nil, nil, strings.Join(DefaultIKEProposals, " "), ""},
		{false, nil, nil, nil, strings.Join(DefaultESPProposals, " "), ""},
		{true, []string{"AES256"}, []string{"SHA2-512"}, []int{16}, "aes256-sha512-modp4096", ""},
		{true, []string{"aes256-gcm-16"}, []string{"SHA1"}, []int{24, 2}, "aes256gcm16-prfsha1-modp2048s256-modp1024", ""},
		{false, []string{"AES128-GCM-16"}, []string{"SHA1"}, []int{5}, "aes128gcm16-modp1536", ""},
		{true, nil, nil, []int{5}, "", "DH group 5 is not one AWS accepts in phase 1"},
		{true, []string{"3DES"}, nil, nil, "", "unknown encryption algorithm"},
		{false, nil, []string{"MD5"}, nil, "", "unknown integrity algorithm"},
	} {
		got, err := NarrowDefaults(AWSOptionsPhase{tt.encrs, tt.integs, tt.groups}, tt.ike)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%v %v %v: error %v, want %q", tt.encrs, tt.integs, tt.groups, err, tt.wantErr)
			}
			continue
		}
		if err != nil || strings.Join(got, " ") != tt.want {
			t.Errorf("%v %v %v: %q %v, want %q", tt.encrs, tt.integs, tt.groups, got, err, tt.want)
		}
	}
}

// AWSAllowed is AWSProposals narrowed: what a proposal must overlap to be
// chosen by a tunnel with these options.
func TestAWSAllowed(t *testing.T) {
	strict := AWSOptionsPhase{Encryption: []string{"AES256"}, Integrity: []string{"SHA2-512"}, DHGroups: []int{16}}
	for _, tt := range []struct {
		o    AWSOptionsPhase
		ike  bool
		prop string
		want bool
	}{
		{strict, true, "aes256-sha512-modp4096", true},
		{strict, true, "aes128-sha256-modp2048", false},
		{strict, true, DefaultIKEProposals[1], true},
		{strict, true, DefaultIKEProposals[0], false}, // GCM only: the tunnel allows CBC
		{strict, false, "aes256-sha512-modp4096", true},
		{strict, false, "aes256-sha512-modp2048", false}, // PFS group outside the options
		{AWSOptionsPhase{}, false, "aes128-sha1-modp1536", true},
		{AWSOptionsPhase{}, true, "aes128-sha1-modp1536", false}, // group 5 is phase 2 only
		{AWSOptionsPhase{Encryption: []string{"AES128-GCM-16"}}, true, "aes128gcm16-prfsha256-ecp256", true},
	} {
		allowed, err := AWSAllowed(tt.o, tt.ike)
		if err != nil {
			t.Fatalf("%v: %v", tt.o, err)
		}
		p, err := ParseProposal(tt.prop, tt.ike)
		if err != nil {
			t.Fatal(err)
		}
		got := false
		for _, a := range allowed {
			got = got || Overlaps(p, a)
		}
		if got != tt.want {
			t.Errorf("options %s, proposal %s: meets = %v, want %v", tt.o, tt.prop, got, tt.want)
		}
	}
	if _, err := AWSAllowed(AWSOptionsPhase{DHGroups: []int{1}}, true); err == nil || !strings.Contains(err.Error(), "DH group 1") {
		t.Errorf("group 1: %v", err)
	}
	if s := strict.String(); s != "AES256, SHA2-512, DH 16" {
		t.Errorf("String() = %q", s)
	}
}
