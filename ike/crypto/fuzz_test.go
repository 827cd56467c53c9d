package crypto

import (
	"testing"

	"github.com/cgwproject/cgw/ipsec"
)

// FuzzCipherOpen feeds arbitrary SK bodies to every cipher: Open must
// return an error (never panic) for anything it did not seal.
func FuzzCipherOpen(f *testing.F) {
	f.Add([]byte("aad"), []byte{})
	f.Add([]byte{}, make([]byte, 24))
	f.Add([]byte{1}, make([]byte, 48))
	f.Add([]byte{2}, make([]byte, 60))
	ciphers := make([]Cipher, 0, len(cipherCases))
	for _, tc := range cipherCases {
		el, _ := EncrKeyLen(tc.alg.Encr, tc.alg.KeyBits)
		il, _ := IntegKeyLen(tc.alg.Integ)
		var ik []byte
		if il > 0 {
			ik = make([]byte, il)
		}
		c, err := NewIKECipher(tc.alg, make([]byte, el), ik)
		if err != nil {
			f.Fatal(err)
		}
		ciphers = append(ciphers, c)
	}
	f.Fuzz(func(t *testing.T, aad, body []byte) {
		for _, c := range ciphers {
			if _, err := c.Open(aad, body); err == nil {
				t.Fatalf("%v opened a forged body of %d octets", c, len(body))
			}
		}
	})
}

// FuzzDHShared feeds arbitrary peer values to one key of every group:
// Shared must never panic, and must reject what is not a valid value.
func FuzzDHShared(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, 32))
	f.Add(make([]byte, 64))
	f.Add(make([]byte, 128))
	keys := make([]DH, 0, len(dhGroups))
	for _, g := range dhGroups {
		if g.id == ipsec.DHMODP8192 || g.id == ipsec.DHMODP6144 {
			continue // too slow per input
		}
		d, err := NewDH(g.id, nil)
		if err != nil {
			f.Fatal(err)
		}
		keys = append(keys, d)
	}
	f.Fuzz(func(t *testing.T, peer []byte) {
		for _, d := range keys {
			z, err := d.Shared(peer)
			if err == nil && len(z) == 0 {
				t.Fatalf("group %d: empty shared secret without error", d.Group())
			}
		}
	})
}
