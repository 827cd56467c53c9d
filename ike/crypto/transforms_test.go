package crypto

import (
	"testing"

	"github.com/cgwproject/cgw/ipsec"
)

func TestKeyLengths(t *testing.T) {
	for _, tc := range []struct {
		e       ipsec.EncrID
		keyBits int
		want    int
	}{
		{ipsec.EncrAESCBC, 128, 16},
		{ipsec.EncrAESCBC, 256, 32},
		{ipsec.EncrAESGCM16, 128, 20}, // key + 4-octet salt (RFC 5282 Section 7.1)
		{ipsec.EncrAESGCM16, 256, 36},
		{ipsec.EncrChaCha20Poly1305, 0, 36}, // RFC 7634 Section 2
		{ipsec.EncrChaCha20Poly1305, 256, 36},
	} {
		if got, err := EncrKeyLen(tc.e, tc.keyBits); err != nil || got != tc.want {
			t.Errorf("EncrKeyLen(%d, %d) = %d, %v; want %d", tc.e, tc.keyBits, got, err, tc.want)
		}
	}
	for _, bad := range []struct {
		e       ipsec.EncrID
		keyBits int
	}{{ipsec.EncrAESCBC, 0}, {ipsec.EncrAESCBC, 192}, {ipsec.EncrAESGCM8, 128}, {ipsec.EncrChaCha20Poly1305, 128}, {ipsec.Encr3DES, 0}} {
		if _, err := EncrKeyLen(bad.e, bad.keyBits); err == nil {
			t.Errorf("EncrKeyLen(%d, %d) succeeded", bad.e, bad.keyBits)
		}
	}
	// RFC 4868 Section 2.1.1 (SHA-2), RFC 2404 (SHA-1).
	for id, want := range map[ipsec.IntegID]int{
		ipsec.IntegNone: 0, ipsec.IntegHMACSHA1_96: 20, ipsec.IntegHMACSHA2_256_128: 32,
		ipsec.IntegHMACSHA2_384_192: 48, ipsec.IntegHMACSHA2_512_256: 64,
	} {
		if got, err := IntegKeyLen(id); err != nil || got != want {
			t.Errorf("IntegKeyLen(%d) = %d, %v; want %d", id, got, err, want)
		}
	}
	if _, err := IntegKeyLen(1); err == nil {
		t.Error("IntegKeyLen accepted HMAC-MD5-96")
	}
	for _, a := range integAlgs {
		if a.icvLen*2 != a.keyLen && a.id != ipsec.IntegHMACSHA1_96 {
			t.Errorf("%s: ICV %d is not half the key length %d (RFC 4868)", a.name, a.icvLen, a.keyLen)
		}
	}
}

func TestSupported(t *testing.T) {
	yes := []struct {
		t       ipsec.TransformType
		id      uint16
		keyBits int
	}{
		{ipsec.TransformENCR, 12, 128}, {ipsec.TransformENCR, 12, 256}, {ipsec.TransformENCR, 20, 256},
		{ipsec.TransformENCR, 28, 0}, {ipsec.TransformPRF, 2, 0}, {ipsec.TransformPRF, 7, 0},
		{ipsec.TransformINTEG, 0, 0}, {ipsec.TransformINTEG, 14, 0}, {ipsec.TransformDH, 0, 0},
		{ipsec.TransformDH, 31, 0}, {ipsec.TransformDH, 24, 0}, {ipsec.TransformESN, 0, 0}, {ipsec.TransformESN, 1, 0},
	}
	no := []struct {
		t       ipsec.TransformType
		id      uint16
		keyBits int
	}{
		{ipsec.TransformENCR, 12, 0}, {ipsec.TransformENCR, 3, 0}, {ipsec.TransformENCR, 18, 128},
		{ipsec.TransformPRF, 4, 0}, {ipsec.TransformPRF, 5, 128}, {ipsec.TransformINTEG, 5, 0},
		{ipsec.TransformDH, 1, 0}, {ipsec.TransformDH, 25, 0}, {ipsec.TransformESN, 2, 0}, {9, 1, 0},
	}
	for _, c := range yes {
		if !Supported(c.t, c.id, c.keyBits) {
			t.Errorf("Supported(%d, %d, %d) = false", c.t, c.id, c.keyBits)
		}
	}
	for _, c := range no {
		if Supported(c.t, c.id, c.keyBits) {
			t.Errorf("Supported(%d, %d, %d) = true", c.t, c.id, c.keyBits)
		}
	}
}

// TestPreferenceOrders checks that the preference lists and the tables
// describe the same set of transforms.
func TestPreferenceOrders(t *testing.T) {
	if len(PreferredEncrs()) != len(encrAlgs) {
		t.Errorf("%d preferred ciphers, %d in the table", len(PreferredEncrs()), len(encrAlgs))
	}
	for _, e := range PreferredEncrs() {
		if !Supported(ipsec.TransformENCR, uint16(e.ID), e.KeyBits) {
			t.Errorf("preferred cipher %v unsupported", e)
		}
	}
	if len(PreferredPRFs()) != len(prfAlgs) || len(PreferredIntegs()) != len(integAlgs) || len(PreferredDHGroups()) != len(dhGroups) {
		t.Error("a preference list and its table differ in length")
	}
	for _, p := range PreferredPRFs() {
		if lookupPRF(p) == nil {
			t.Errorf("preferred PRF %d unsupported", p)
		}
	}
	for _, i := range PreferredIntegs() {
		if lookupInteg(i) == nil {
			t.Errorf("preferred integ %d unsupported", i)
		}
	}
	seen := map[ipsec.DHGroup]bool{}
	for _, g := range PreferredDHGroups() {
		if lookupDH(g) == nil || seen[g] {
			t.Errorf("preferred DH group %d unsupported or repeated", g)
		}
		seen[g] = true
	}
	// The returned slices are copies.
	p := PreferredDHGroups()
	p[0] = 0
	if PreferredDHGroups()[0] == 0 {
		t.Error("PreferredDHGroups returned the package's slice")
	}
}

func TestCheckAlgorithms(t *testing.T) {
	ok := []struct {
		alg ipsec.Algorithms
		ike bool
	}{
		{ipsec.Algorithms{Encr: ipsec.EncrAESGCM16, KeyBits: 256, PRF: ipsec.PRFHMACSHA2_384, DH: ipsec.DHECP384}, true},
		{ipsec.Algorithms{Encr: ipsec.EncrAESCBC, KeyBits: 128, PRF: ipsec.PRFHMACSHA1, Integ: ipsec.IntegHMACSHA1_96, DH: ipsec.DHMODP1024}, true},
		{ipsec.Algorithms{Encr: ipsec.EncrAESGCM16, KeyBits: 128}, false},
		{ipsec.Algorithms{Encr: ipsec.EncrChaCha20Poly1305, DH: ipsec.DHCurve25519}, false},
	}
	for _, c := range ok {
		if err := CheckAlgorithms(c.alg, c.ike); err != nil {
			t.Errorf("%+v: %v", c.alg, err)
		}
	}
	bad := []struct {
		alg ipsec.Algorithms
		ike bool
	}{
		{ipsec.Algorithms{Encr: ipsec.EncrAESGCM16, KeyBits: 256}, true},                                      // IKE without PRF
		{ipsec.Algorithms{Encr: ipsec.EncrAESGCM16, KeyBits: 256, Integ: ipsec.IntegHMACSHA2_256_128}, false}, // AEAD + integ
		{ipsec.Algorithms{Encr: ipsec.EncrAESCBC, KeyBits: 256}, false},                                       // CBC without integ
		{ipsec.Algorithms{Encr: ipsec.EncrAESCBC, KeyBits: 256, Integ: 1}, false},                             // MD5
		{ipsec.Algorithms{Encr: ipsec.EncrAESGCM16, KeyBits: 256, DH: 1}, false},                              // MODP-768
		{ipsec.Algorithms{Encr: ipsec.EncrNull, Integ: ipsec.IntegHMACSHA1_96}, false},                        // NULL encryption
		{ipsec.Algorithms{Encr: ipsec.EncrAESCBC, KeyBits: 128, PRF: 1, Integ: ipsec.IntegHMACSHA1_96}, true}, // PRF-HMAC-MD5
	}
	for _, c := range bad {
		if err := CheckAlgorithms(c.alg, c.ike); err == nil {
			t.Errorf("%+v accepted", c.alg)
		}
	}
}
