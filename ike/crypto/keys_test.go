package crypto

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"hash"
	"strings"
	"testing"

	"github.com/cgwproject/cgw/ipsec"
)

// The reference functions below restate RFC 7296 as literally as possible,
// independently of the package code, to cross-check it.

func refHash(p ipsec.PRFID) func() hash.Hash {
	return map[ipsec.PRFID]func() hash.Hash{
		ipsec.PRFHMACSHA1:     sha1.New,
		ipsec.PRFHMACSHA2_256: sha256.New,
		ipsec.PRFHMACSHA2_384: sha512.New384,
		ipsec.PRFHMACSHA2_512: sha512.New,
	}[p]
}

func refPRF(p ipsec.PRFID, key, data []byte) []byte {
	m := hmac.New(refHash(p), key)
	m.Write(data)
	return m.Sum(nil)
}

// refPlus builds T1 | T2 | ... by string concatenation, as Section 2.13 reads.
func refPlus(p ipsec.PRFID, k, s []byte, n int) []byte {
	var out, t []byte
	for i := byte(1); len(out) < n; i++ {
		in := append(append(append([]byte{}, t...), s...), i)
		t = refPRF(p, k, in)
		out = append(out, t...)
	}
	return out[:n]
}

func cat(b ...[]byte) []byte { return bytes.Join(b, nil) }

func seq(n int, start byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

func TestPlusMatchesReference(t *testing.T) {
	for _, p := range prfAlgs {
		prf, err := NewPRF(p.id)
		if err != nil {
			t.Fatal(err)
		}
		key, seed := seq(37, 1), seq(100, 7)
		for _, n := range []int{0, 1, p.size - 1, p.size, p.size + 1, 3*p.size + 5, 392} {
			if got, want := prf.Plus(key, seed, n), refPlus(p.id, key, seed, n); !bytes.Equal(got, want) {
				t.Errorf("%s: Plus(n=%d) mismatch", p.name, n)
			}
		}
		if prf.Plus(key, seed, 255*p.size) == nil {
			t.Errorf("%s: Plus refused 255 blocks", p.name)
		}
		if prf.Plus(key, seed, 255*p.size+1) != nil {
			t.Errorf("%s: Plus produced more than 255 blocks", p.name)
		}
	}
	if (PRF{}).Plus([]byte("k"), nil, 10) != nil || (PRF{}).Sum(nil, nil) != nil {
		t.Error("zero PRF produced output")
	}
}

func TestDeriveIKEKeysMatchesReference(t *testing.T) {
	ni, nr := seq(32, 0x10), seq(48, 0x80)
	shared := seq(256, 0x33)
	const spii, spir = 0x0102030405060708, 0x1112131415161718
	for _, tc := range []struct {
		alg                      ipsec.Algorithms
		prfLen, integLen, encLen int
	}{
		{ipsec.Algorithms{Encr: ipsec.EncrAESCBC, KeyBits: 128, PRF: ipsec.PRFHMACSHA1, Integ: ipsec.IntegHMACSHA1_96}, 20, 20, 16},
		{ipsec.Algorithms{Encr: ipsec.EncrAESCBC, KeyBits: 256, PRF: ipsec.PRFHMACSHA2_256, Integ: ipsec.IntegHMACSHA2_256_128}, 32, 32, 32},
		{ipsec.Algorithms{Encr: ipsec.EncrAESGCM16, KeyBits: 256, PRF: ipsec.PRFHMACSHA2_384}, 48, 0, 36},
		{ipsec.Algorithms{Encr: ipsec.EncrAESGCM16, KeyBits: 128, PRF: ipsec.PRFHMACSHA2_512}, 64, 0, 20},
		{ipsec.Algorithms{Encr: ipsec.EncrChaCha20Poly1305, PRF: ipsec.PRFHMACSHA2_256}, 32, 0, 36},
		{ipsec.Algorithms{Encr: ipsec.EncrAESCBC, KeyBits: 256, PRF: ipsec.PRFHMACSHA2_512, Integ: ipsec.IntegHMACSHA2_512_256}, 64, 64, 32},
	} {
		t.Run(fmt.Sprint(tc.alg), func(t *testing.T) {
			k, err := DeriveIKEKeys(tc.alg, ni, nr, shared, spii, spir)
			if err != nil {
				t.Fatal(err)
			}
			spis := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, spii), spir)
			skeyseed := refPRF(tc.alg.PRF, cat(ni, nr), shared)
			km := refPlus(tc.alg.PRF, skeyseed, cat(ni, nr, spis), 3*tc.prfLen+2*tc.integLen+2*tc.encLen)
			checkIKEKeys(t, k, km, tc.prfLen, tc.integLen, tc.encLen)

			// Rekey (Section 2.18): old PRF SHA-1 keyed with the old SK_d,
			// new keys with the new PRF.
			oldSKd := seq(20, 0xa0)
			nni, nnr := seq(16, 1), seq(16, 2)
			const nspii, nspir = 0xaaaa, 0xbbbb
			rk, err := DeriveRekeyedIKEKeys(tc.alg, ipsec.PRFHMACSHA1, oldSKd, shared, nni, nnr, nspii, nspir)
			if err != nil {
				t.Fatal(err)
			}
			nspis := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, nspii), nspir)
			skeyseed = refPRF(ipsec.PRFHMACSHA1, oldSKd, cat(shared, nni, nnr))
			km = refPlus(tc.alg.PRF, skeyseed, cat(nni, nnr, nspis), 3*tc.prfLen+2*tc.integLen+2*tc.encLen)
			checkIKEKeys(t, rk, km, tc.prfLen, tc.integLen, tc.encLen)
		})
	}
}

func checkIKEKeys(t *testing.T, k *IKEKeys, km []byte, prfLen, integLen, encLen int) {
	t.Helper()
	want := [][]byte{}
	for _, n := range []int{prfLen, integLen, integLen, encLen, encLen, prfLen, prfLen} {
		want = append(want, km[:n])
		km = km[n:]
	}
	got := [][]byte{k.SKd, k.SKai, k.SKar, k.SKei, k.SKer, k.SKpi, k.SKpr}
	names := []string{"SK_d", "SK_ai", "SK_ar", "SK_ei", "SK_er", "SK_pi", "SK_pr"}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) || len(got[i]) != len(want[i]) {
			t.Errorf("%s mismatch: got %d octets, want %d", names[i], len(got[i]), len(want[i]))
		}
	}
}

func TestDeriveChildKeysMatchesReference(t *testing.T) {
	skd := seq(32, 0x51)
	ni, nr := seq(32, 0x10), seq(32, 0x90)
	for _, tc := range []struct {
		esp              ipsec.Algorithms
		encLen, integLen int
	}{
		{ipsec.Algorithms{Encr: ipsec.EncrAESGCM16, KeyBits: 256}, 36, 0},
		{ipsec.Algorithms{Encr: ipsec.EncrAESCBC, KeyBits: 128, Integ: ipsec.IntegHMACSHA1_96}, 16, 20},
		{ipsec.Algorithms{Encr: ipsec.EncrAESCBC, KeyBits: 256, Integ: ipsec.IntegHMACSHA2_384_192}, 32, 48},
		{ipsec.Algorithms{Encr: ipsec.EncrChaCha20Poly1305}, 36, 0},
	} {
		for _, shared := range [][]byte{nil, seq(97, 3)} {
			k, err := DeriveChildKeys(ipsec.PRFHMACSHA2_256, skd, tc.esp, shared, ni, nr)
			if err != nil {
				t.Fatal(err)
			}
			km := refPlus(ipsec.PRFHMACSHA2_256, skd, cat(shared, ni, nr), 2*tc.encLen+2*tc.integLen)
			want := [][]byte{km[:tc.encLen], km[tc.encLen : tc.encLen+tc.integLen], km[tc.encLen+tc.integLen : 2*tc.encLen+tc.integLen], km[2*tc.encLen+tc.integLen:]}
			got := [][]byte{k.EncI, k.IntegI, k.EncR, k.IntegR}
			for i := range got {
				if !bytes.Equal(got[i], want[i]) || len(got[i]) != len(want[i]) {
					t.Errorf("%v pfs=%v: key %d mismatch", tc.esp, shared != nil, i)
				}
			}
		}
	}
}

func TestDeriveRejects(t *testing.T) {
	good := ipsec.Algorithms{Encr: ipsec.EncrAESGCM16, KeyBits: 256, PRF: ipsec.PRFHMACSHA2_256}
	n := seq(16, 0)
	for name, f := range map[string]func() error{
		"no PRF": func() error {
			_, err := DeriveIKEKeys(ipsec.Algorithms{Encr: ipsec.EncrAESGCM16, KeyBits: 256}, n, n, n, 1, 2)
			return err
		},
		"short nonce": func() error { _, err := DeriveIKEKeys(good, n[:15], n, n, 1, 2); return err },
		"long nonce":  func() error { _, err := DeriveIKEKeys(good, n, make([]byte, 257), n, 1, 2); return err },
		"no shared":   func() error { _, err := DeriveIKEKeys(good, n, n, nil, 1, 2); return err },
		"rekey bad old PRF": func() error {
			_, err := DeriveRekeyedIKEKeys(good, 99, n, n, n, n, 1, 2)
			return err
		},
		"rekey no SK_d": func() error { _, err := DeriveRekeyedIKEKeys(good, ipsec.PRFHMACSHA1, nil, n, n, n, 1, 2); return err },
		"child CBC no integ": func() error {
			_, err := DeriveChildKeys(ipsec.PRFHMACSHA1, n, ipsec.Algorithms{Encr: ipsec.EncrAESCBC, KeyBits: 128}, nil, n, n)
			return err
		},
		"child no SK_d": func() error {
			_, err := DeriveChildKeys(ipsec.PRFHMACSHA1, nil, ipsec.Algorithms{Encr: ipsec.EncrAESGCM16, KeyBits: 128}, nil, n, n)
			return err
		},
	} {
		err := f()
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.HasPrefix(err.Error(), "ike/crypto: ") {
			t.Errorf("%s: error %q lacks the package prefix", name, err)
		}
	}
}

func TestKeysRedacted(t *testing.T) {
	secret := []byte("SECRETSECRETSECRET")
	k := &IKEKeys{SKd: secret, SKei: secret}
	c := &ChildKeys{EncI: secret}
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s", k, k, k, k), fmt.Sprintf("%v %#v", c, c)} {
		if strings.Contains(s, "SECRET") || strings.Contains(s, fmt.Sprintf("%x", secret)) || strings.Contains(s, "83 69 67") {
			t.Errorf("key material printed: %s", s)
		}
	}
}
