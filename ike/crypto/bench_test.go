package crypto

import (
	"testing"

	"github.com/cgwproject/cgw/ipsec"
)

// BenchmarkDH measures one side of an exchange: key generation plus the
// shared secret. MODP-8192 takes tens of milliseconds per op; run it with
// -benchtime=10x rather than the default.
func BenchmarkDH(b *testing.B) {
	for _, g := range dhGroups {
		peer, err := NewDH(g.id, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(g.name, func(b *testing.B) {
			for b.Loop() {
				d, err := NewDH(g.id, nil)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := d.Shared(peer.Public()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkCipherSeal(b *testing.B) {
	pt := make([]byte, 1024)
	aad := make([]byte, 32)
	for _, tc := range cipherCases {
		b.Run(tc.name, func(b *testing.B) {
			el, _ := EncrKeyLen(tc.alg.Encr, tc.alg.KeyBits)
			il, _ := IntegKeyLen(tc.alg.Integ)
			var ik []byte
			if il > 0 {
				ik = make([]byte, il)
			}
			c, err := NewIKECipher(tc.alg, make([]byte, el), ik)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(pt)))
			for b.Loop() {
				if _, err := c.Seal(aad, pt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDeriveIKEKeys(b *testing.B) {
	alg := ipsec.Algorithms{Encr: ipsec.EncrAESGCM16, KeyBits: 256, PRF: ipsec.PRFHMACSHA2_384}
	n := make([]byte, 32)
	shared := make([]byte, 96)
	for b.Loop() {
		if _, err := DeriveIKEKeys(alg, n, n, shared, 1, 2); err != nil {
			b.Fatal(err)
		}
	}
}
