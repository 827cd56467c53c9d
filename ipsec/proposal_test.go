package ipsec

import (
	"reflect"
	"strings"
	"testing"
)

var (
	aes128    = EncrKey{ID: EncrAESCBC, KeyBits: 128}
	aes256    = EncrKey{ID: EncrAESCBC, KeyBits: 256}
	aes128gcm = EncrKey{ID: EncrAESGCM16, KeyBits: 128}
	aes256gcm = EncrKey{ID: EncrAESGCM16, KeyBits: 256}
	chacha    = EncrKey{ID: EncrChaCha20Poly1305}
)

func TestParseProposalValid(t *testing.T) {
	tests := []struct {
		in   string
		ike  bool
		want Proposal
		str  string // canonical String(); "" = same as in
	}{
		{
			in: "aes128-sha1-modp1024", ike: true,
			want: Proposal{Encrs: []EncrKey{aes128}, Integs: []IntegID{IntegHMACSHA1_96}, PRFs: []PRFID{PRFHMACSHA1}, DHGroups: []DHGroup{DHMODP1024}},
		},
		{
			// Any order, several of each type; PRFs derived from the integs in order.
			in: "modp2048-sha256-aes256-aes128-sha1-ecp256", ike: true,
			want: Proposal{
				Encrs:    []EncrKey{aes256, aes128},
				Integs:   []IntegID{IntegHMACSHA2_256_128, IntegHMACSHA1_96},
				PRFs:     []PRFID{PRFHMACSHA2_256, PRFHMACSHA1},
				DHGroups: []DHGroup{DHMODP2048, DHECP256},
			},
			str: "aes256-aes128-sha256-sha1-modp2048-ecp256",
		},
		{
			// Explicit PRF overrides the derived one.
			in: "aes256-sha256-prfsha512-modp2048", ike: true,
			want: Proposal{Encrs: []EncrKey{aes256}, Integs: []IntegID{IntegHMACSHA2_256_128}, PRFs: []PRFID{PRFHMACSHA2_512}, DHGroups: []DHGroup{DHMODP2048}},
		},
		{
			in: "aes256gcm16-prfsha384-ecp384", ike: true,
			want: Proposal{Encrs: []EncrKey{aes256gcm}, PRFs: []PRFID{PRFHMACSHA2_384}, DHGroups: []DHGroup{DHECP384}},
		},
		{
			// strongSwan: integrity keywords with AEAD in IKE are PRFs.
			in: "aes128gcm16-sha256-ecp256", ike: true,
			want: Proposal{Encrs: []EncrKey{aes128gcm}, PRFs: []PRFID{PRFHMACSHA2_256}, DHGroups: []DHGroup{DHECP256}},
			str:  "aes128gcm16-prfsha256-ecp256",
		},
		{
			in: "chacha20poly1305-prfsha256-x25519", ike: true,
			want: Proposal{Encrs: []EncrKey{chacha}, PRFs: []PRFID{PRFHMACSHA2_256}, DHGroups: []DHGroup{DHCurve25519}},
			str:  "chacha20poly1305-prfsha256-curve25519",
		},
		{
			in: "AES256-SHA512-MODP8192-sha512", ike: true,
			want: Proposal{Encrs: []EncrKey{aes256}, Integs: []IntegID{IntegHMACSHA2_512_256}, PRFs: []PRFID{PRFHMACSHA2_512}, DHGroups: []DHGroup{DHMODP8192}},
			str:  "aes256-sha512-modp8192",
		},
		{
			in: "aes128-sha384-modp1024s160-modp2048s224-modp2048s256-ecp521", ike: true,
			want: Proposal{Encrs: []EncrKey{aes128}, Integs: []IntegID{IntegHMACSHA2_384_192}, PRFs: []PRFID{PRFHMACSHA2_384},
				DHGroups: []DHGroup{DHMODP1024S160, DHMODP2048S224, DHMODP2048S256, DHECP521}},
		},
		{
			in:   "aes128-sha1-modp1024",
			want: Proposal{Encrs: []EncrKey{aes128}, Integs: []IntegID{IntegHMACSHA1_96}, DHGroups: []DHGroup{DHMODP1024}},
		},
		{
			// ESP without PFS.
			in:   "aes256-sha256",
			want: Proposal{Encrs: []EncrKey{aes256}, Integs: []IntegID{IntegHMACSHA2_256_128}},
		},
		{
			in:   "aes256gcm16-aes128gcm16-ecp384-modp1536-esn-noesn",
			want: Proposal{Encrs: []EncrKey{aes256gcm, aes128gcm}, DHGroups: []DHGroup{DHECP384, DHMODP1536}, ESN: []bool{true, false}},
		},
		{
			in:   "aes256gcm16-noesn",
			want: Proposal{Encrs: []EncrKey{aes256gcm}, ESN: []bool{false}},
		},
		{
			// Duplicates are ignored.
			in: "aes128-aes128-sha1-sha1-modp2048-modp2048", ike: true,
			want: Proposal{Encrs: []EncrKey{aes128}, Integs: []IntegID{IntegHMACSHA1_96}, PRFs: []PRFID{PRFHMACSHA1}, DHGroups: []DHGroup{DHMODP2048}},
			str:  "aes128-sha1-modp2048",
		},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseProposal(tt.in, tt.ike)
			if err != nil {
				t.Fatalf("ParseProposal: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
			want := tt.str
			if want == "" {
				want = tt.in
			}
			if s := got.String(); s != want {
				t.Errorf("String() = %q, want %q", s, want)
			}
			again, err := ParseProposal(got.String(), tt.ike)
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Errorf("round trip of %q: %+v, %v", got.String(), again, err)
			}
			if got.IsIKE() != tt.ike {
				t.Errorf("IsIKE() = %v", got.IsIKE())
			}
		})
	}
}

func TestParseProposalInvalid(t *testing.T) {
	tests := []struct {
		in   string
		ike  bool
		want []string // substrings of the error
	}{
		{"", true, []string{"empty"}},
		{"3des-sha1-modp1024", true, []string{`"3des"`, "3DES is not accepted by AWS", "encryption: aes128, aes256"}},
		{"aes128-md5-modp1024", true, []string{`"md5"`, "MD5", "integrity: sha1, sha256"}},
		{"aes128-sha1-modp768", false, []string{"modp768", "DH group: modp1024"}},
		{"aes192-sha1-modp2048", true, []string{"AES-192"}},
		{"aes-sha1-modp2048", true, []string{"aes128 or aes256"}},
		{"aes128-sha1-bogus", true, []string{"unknown keyword \"bogus\"", "PRF: prfsha1"}},
		{"aes128--sha1-modp2048", true, []string{"empty keyword"}},
		{"aes128-sha1-modp2048-", true, []string{"empty keyword"}},
		{"sha1-modp2048", true, []string{"no encryption algorithm"}},
		{"aes128-sha1", true, []string{"no DH group"}},
		{"aes128-modp2048", true, []string{"no integrity algorithm"}},
		{"aes128gcm16-modp2048", true, []string{"without a PRF", "prfsha256"}},
		{"aes128-aes128gcm16-sha1-modp2048", true, []string{"mixes AEAD", "two proposals"}},
		{"aes128-sha1-modp2048-esn", true, []string{`"esn"`, "ESP proposals only"}},
		{"aes128-sha1-prfsha1", false, []string{"PRF keyword", "only IKE"}},
		{"aes128gcm16-sha256-modp2048", false, []string{"AEAD", "remove the integrity"}},
		{"aes128-modp2048", false, []string{"no integrity algorithm"}},
		{"aes128gcm8-modp2048", false, []string{"16-octet ICV"}},
		{"3des-sha1", false, []string{"ESP proposal", "ESN: esn, noesn"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseProposal(tt.in, tt.ike)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "ipsec: ") {
				t.Errorf("error %q does not start with the package name", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
}

func TestAWSProposals(t *testing.T) {
	for _, ike := range []bool{true, false} {
		ps := AWSProposals(ike)
		if len(ps) != 2 {
			t.Fatalf("ike=%v: %d proposals", ike, len(ps))
		}
		for _, p := range ps {
			again, err := ParseProposal(p.String(), ike)
			if err != nil || !reflect.DeepEqual(again, p) {
				t.Errorf("ike=%v: %q does not round-trip: %v", ike, p.String(), err)
			}
		}
	}
	// Group 5 is phase 2 only.
	hasGroup := func(ps []Proposal, g DHGroup) bool {
		for _, p := range ps {
			for _, d := range p.DHGroups {
				if d == g {
					return true
				}
			}
		}
		return false
	}
	if hasGroup(AWSProposals(true), DHMODP1536) || !hasGroup(AWSProposals(false), DHMODP1536) {
		t.Error("modp1536 must be in phase 2 only")
	}
	if hasGroup(AWSProposals(true), DHCurve25519) {
		t.Error("AWS does not accept curve25519")
	}
	// Mutating a result must not affect the next call.
	AWSProposals(true)[0].DHGroups[0] = DHCurve25519
	if AWSProposals(true)[0].DHGroups[0] == DHCurve25519 {
		t.Error("AWSProposals shares its backing arrays")
	}
}

func TestOverlaps(t *testing.T) {
	mustIKE := func(s string) Proposal {
		p, err := ParseProposal(s, true)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	mustESP := func(s string) Proposal {
		p, err := ParseProposal(s, false)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	aws := AWSProposals(true)
	awsESP := AWSProposals(false)
	anyOverlap := func(p Proposal, set []Proposal) bool {
		for _, q := range set {
			if Overlaps(p, q) {
				return true
			}
		}
		return false
	}
	for _, tt := range []struct {
		p    Proposal
		set  []Proposal
		want bool
	}{
		{mustIKE("aes128-sha1-modp1024"), aws, true},
		{mustIKE("aes256gcm16-prfsha384-ecp384"), aws, true},
		{mustIKE("chacha20poly1305-prfsha256-curve25519"), aws, false},
		{mustIKE("aes256gcm16-prfsha384-curve25519"), aws, false},
		{mustIKE("aes256-sha256-modp1536"), aws, false},
		{mustESP("aes256-sha256-modp1536"), awsESP, true},
		{mustESP("aes256gcm16-ecp384"), awsESP, true},
		{mustESP("aes256gcm16"), awsESP, false},
		{mustESP("aes256gcm16-ecp384-esn"), awsESP, false},
		{mustESP("aes256gcm16-ecp384-esn-noesn"), awsESP, true},
	} {
		if got := anyOverlap(tt.p, tt.set); got != tt.want {
			t.Errorf("overlap(%s) = %v, want %v", tt.p, got, tt.want)
		}
	}
}

func TestKeywordUnknownIDs(t *testing.T) {
	p := Proposal{Encrs: []EncrKey{{ID: Encr3DES}}, Integs: []IntegID{99}, PRFs: []PRFID{PRFHMACSHA1}, DHGroups: []DHGroup{1}}
	if got, want := p.String(), "encr(3)-integ(99)-prfsha1-dh(1)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// FuzzParseProposal: no panics, and every accepted proposal round-trips
// through String.
func FuzzParseProposal(f *testing.F) {
	for _, s := range []string{"aes128-sha1-modp1024", "aes256gcm16-prfsha384-ecp384", "aes128gcm16-sha256-x25519-esn-noesn", "3des-md5", "--"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, s string, ike bool) {
		p, err := ParseProposal(s, ike)
		if err != nil {
			return
		}
		q, err := ParseProposal(p.String(), ike)
		if err != nil || !reflect.DeepEqual(p, q) {
			t.Errorf("%q -> %q does not round-trip: %v", s, p.String(), err)
		}
	})
}

func TestAlgorithmsString(t *testing.T) {
	for _, tc := range []struct {
		a    Algorithms
		want string
	}{
		{Algorithms{}, ""},
		{Algorithms{Encr: EncrAESCBC, KeyBits: 128, Integ: IntegHMACSHA1_96, PRF: PRFHMACSHA1, DH: DHMODP1024}, "aes128-sha1-modp1024"},
		{Algorithms{Encr: EncrAESCBC, KeyBits: 256, Integ: IntegHMACSHA2_256_128, PRF: PRFHMACSHA2_384, DH: DHMODP2048}, "aes256-sha256-prfsha384-modp2048"},
		{Algorithms{Encr: EncrAESGCM16, KeyBits: 256, PRF: PRFHMACSHA2_384, DH: DHECP384}, "aes256gcm16-prfsha384-ecp384"},
		{Algorithms{Encr: EncrAESGCM16, KeyBits: 128, DH: DHECP256, ESN: true}, "aes128gcm16-ecp256-esn"},
		{Algorithms{Encr: EncrAESCBC, KeyBits: 128, Integ: IntegHMACSHA1_96}, "aes128-sha1"},
		{Algorithms{Encr: Encr3DES, Integ: IntegHMACSHA1_96, DH: DHGroup(1)}, "encr(3)-sha1-dh(1)"},
	} {
		if got := tc.a.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.a, got, tc.want)
		}
	}
	if got := ProposalsString([]Proposal{{Encrs: []EncrKey{{ID: EncrAESGCM16, KeyBits: 256}}, DHGroups: []DHGroup{DHECP384}}, {}}); got != "[aes256gcm16-ecp384, ]" {
		t.Errorf("ProposalsString = %q", got)
	}
	if DHGroup(99).Name() != "dh(99)" || DHECP384.Name() != "ecp384" {
		t.Errorf("DHGroup.Name: %q %q", DHGroup(99).Name(), DHECP384.Name())
	}
}
