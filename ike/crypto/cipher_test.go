package crypto

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/cgwproject/cgw/ike/message"
	"github.com/cgwproject/cgw/ipsec"
)

// NewIKECipher's result must satisfy the codec's interface.
var _ message.Cipher = Cipher(nil)

func TestNewIKECipherAssignable(t *testing.T) {
	var c message.Cipher
	c, err := NewIKECipher(ipsec.Algorithms{Encr: ipsec.EncrAESGCM16, KeyBits: 128}, make([]byte, 20), nil)
	if err != nil || c == nil {
		t.Fatal(err)
	}
}

type cipherCase struct {
	name string
	alg  ipsec.Algorithms
}

var cipherCases = []cipherCase{
	{"aes128-sha1", ipsec.Algorithms{Encr: ipsec.EncrAESCBC, KeyBits: 128, Integ: ipsec.IntegHMACSHA1_96}},
	{"aes256-sha256", ipsec.Algorithms{Encr: ipsec.EncrAESCBC, KeyBits: 256, Integ: ipsec.IntegHMACSHA2_256_128}},
	{"aes256-sha384", ipsec.Algorithms{Encr: ipsec.EncrAESCBC, KeyBits: 256, Integ: ipsec.IntegHMACSHA2_384_192}},
	{"aes128-sha512", ipsec.Algorithms{Encr: ipsec.EncrAESCBC, KeyBits: 128, Integ: ipsec.IntegHMACSHA2_512_256}},
	{"aes128gcm16", ipsec.Algorithms{Encr: ipsec.EncrAESGCM16, KeyBits: 128}},
	{"aes256gcm16", ipsec.Algorithms{Encr: ipsec.EncrAESGCM16, KeyBits: 256}},
	{"chacha20poly1305", ipsec.Algorithms{Encr: ipsec.EncrChaCha20Poly1305}},
}

func newTestCipher(t *testing.T, alg ipsec.Algorithms) Cipher {
	t.Helper()
	el, err := EncrKeyLen(alg.Encr, alg.KeyBits)
	if err != nil {
		t.Fatal(err)
	}
	il, err := IntegKeyLen(alg.Integ)
	if err != nil {
		t.Fatal(err)
	}
	ek := make([]byte, el)
	ik := make([]byte, il)
	rand.Read(ek)
	rand.Read(ik)
	if il == 0 {
		ik = nil
	}
	c, err := NewIKECipher(alg, ek, ik)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCipherRoundTripAndTamper(t *testing.T) {
	for _, tc := range cipherCases {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCipher(t, tc.alg)
			aad := []byte("IKE header || SK generic payload header (32 octets)")
			pt := bytes.Repeat([]byte("payloads"), 8) // 64: a multiple of every block size
			body, err := c.Seal(aad, pt)
			if err != nil {
				t.Fatal(err)
			}
			if len(body) != len(pt)+c.Overhead() {
				t.Fatalf("len(body) = %d, want %d + Overhead %d", len(body), len(pt), c.Overhead())
			}
			got, err := c.Open(aad, body)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, pt) {
				t.Fatal("round trip changed the plaintext")
			}
			// Two seals of the same plaintext must use different IVs.
			body2, _ := c.Seal(aad, pt)
			ivLen := c.Overhead() - icvLenOf(tc.alg)
			if bytes.Equal(body[:ivLen], body2[:ivLen]) {
				t.Error("IV repeated")
			}
			// Flip each octet in turn: IV, ciphertext and ICV must all be covered.
			for i := range body {
				bad := bytes.Clone(body)
				bad[i] ^= 0x01
				if _, err := c.Open(aad, bad); !errors.Is(err, ErrAuthFailed) {
					t.Fatalf("tampered octet %d of %d: err = %v, want ErrAuthFailed", i, len(body), err)
				}
			}
			badAAD := bytes.Clone(aad)
			badAAD[3] ^= 0x80
			if _, err := c.Open(badAAD, body); !errors.Is(err, ErrAuthFailed) {
				t.Errorf("tampered aad: err = %v, want ErrAuthFailed", err)
			}
			// Every truncation is rejected without panicking.
			for n := range len(body) {
				if _, err := c.Open(aad, body[:n]); err == nil {
					t.Fatalf("truncated body (%d octets) accepted", n)
				}
			}
			// A different key must not open it.
			if _, err := newTestCipher(t, tc.alg).Open(aad, body); err == nil {
				t.Error("opened with a different key")
			}
		})
	}
}

func icvLenOf(alg ipsec.Algorithms) int {
	if alg.Encr.IsAEAD() {
		return aeadICVLen
	}
	return lookupInteg(alg.Integ).icvLen
}

func TestCipherSizes(t *testing.T) {
	want := map[string][2]int{ // BlockSize, Overhead
		"aes128-sha1":      {16, 16 + 12},
		"aes256-sha256":    {16, 16 + 16},
		"aes256-sha384":    {16, 16 + 24},
		"aes128-sha512":    {16, 16 + 32},
		"aes128gcm16":      {1, 8 + 16},
		"aes256gcm16":      {1, 8 + 16},
		"chacha20poly1305": {1, 8 + 16},
	}
	for _, tc := range cipherCases {
		c := newTestCipher(t, tc.alg)
		if got := [2]int{c.BlockSize(), c.Overhead()}; got != want[tc.name] {
			t.Errorf("%s: BlockSize, Overhead = %v, want %v", tc.name, got, want[tc.name])
		}
	}
	// CBC refuses unpadded plaintext; AEAD takes any length.
	cbc := newTestCipher(t, cipherCases[0].alg)
	if _, err := cbc.Seal(nil, make([]byte, 15)); err == nil {
		t.Error("CBC sealed a 15-octet plaintext")
	}
	gcm := newTestCipher(t, cipherCases[4].alg)
	if b, err := gcm.Seal(nil, make([]byte, 15)); err != nil || len(b) != 15+24 {
		t.Errorf("GCM Seal(15 octets) = %d octets, %v", len(b), err)
	}
}

// TestCBCConstruction checks the CBC cipher against a direct construction
// from the RFC: body = IV || AES-CBC(IV, pt) || HMAC(aad || IV || ct)[:16].
func TestCBCConstruction(t *testing.T) {
	ek := bytes.Repeat([]byte{1}, 32)
	ik := bytes.Repeat([]byte{2}, 32)
	c, err := NewIKECipher(ipsec.Algorithms{Encr: ipsec.EncrAESCBC, KeyBits: 256, Integ: ipsec.IntegHMACSHA2_256_128}, ek, ik)
	if err != nil {
		t.Fatal(err)
	}
	aad := []byte("header")
	pt := bytes.Repeat([]byte{3}, 32)
	body, err := c.Seal(aad, pt)
	if err != nil {
		t.Fatal(err)
	}
	iv := body[:16]
	b, _ := aes.NewCipher(ek)
	ct := make([]byte, 32)
	cipher.NewCBCEncrypter(b, iv).CryptBlocks(ct, pt)
	m := hmac.New(sha256.New, ik)
	m.Write(aad)
	m.Write(iv)
	m.Write(ct)
	want := append(append(bytes.Clone(iv), ct...), m.Sum(nil)[:16]...)
	if !bytes.Equal(body, want) {
		t.Fatalf("body mismatch\n got %x\nwant %x", body, want)
	}
}

// TestAEADConstruction checks the nonce (salt || IV) and AAD use of AES-GCM
// against crypto/cipher directly (RFC 5282 Sections 4 and 5.1).
func TestAEADConstruction(t *testing.T) {
	keymat := make([]byte, 36)
	for i := range keymat {
		keymat[i] = byte(i)
	}
	c, err := NewIKECipher(ipsec.Algorithms{Encr: ipsec.EncrAESGCM16, KeyBits: 256}, keymat, nil)
	if err != nil {
		t.Fatal(err)
	}
	aad, pt := []byte("ike header"), []byte("inner payloads")
	body, err := c.Seal(aad, pt)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := aes.NewCipher(keymat[:32])
	g, _ := cipher.NewGCM(b)
	nonce := append(bytes.Clone(keymat[32:]), body[:8]...)
	want := append(bytes.Clone(body[:8]), g.Seal(nil, nonce, pt, aad)...)
	if !bytes.Equal(body, want) {
		t.Fatalf("body mismatch\n got %x\nwant %x", body, want)
	}
}

func TestNewIKECipherRejects(t *testing.T) {
	for _, tc := range []struct {
		name   string
		alg    ipsec.Algorithms
		ek, ik int
	}{
		{"short enc key", ipsec.Algorithms{Encr: ipsec.EncrAESCBC, KeyBits: 128, Integ: ipsec.IntegHMACSHA1_96}, 15, 20},
		{"short integ key", ipsec.Algorithms{Encr: ipsec.EncrAESCBC, KeyBits: 128, Integ: ipsec.IntegHMACSHA1_96}, 16, 19},
		{"CBC without integ", ipsec.Algorithms{Encr: ipsec.EncrAESCBC, KeyBits: 128}, 16, 0},
		{"GCM with integ", ipsec.Algorithms{Encr: ipsec.EncrAESGCM16, KeyBits: 128, Integ: ipsec.IntegHMACSHA1_96}, 20, 20},
		{"GCM without salt", ipsec.Algorithms{Encr: ipsec.EncrAESGCM16, KeyBits: 128}, 16, 0},
		{"AES-192", ipsec.Algorithms{Encr: ipsec.EncrAESCBC, KeyBits: 192, Integ: ipsec.IntegHMACSHA1_96}, 24, 20},
		{"3DES", ipsec.Algorithms{Encr: ipsec.Encr3DES, Integ: ipsec.IntegHMACSHA1_96}, 24, 20},
	} {
		if _, err := NewIKECipher(tc.alg, make([]byte, tc.ek), make([]byte, tc.ik)); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}

func TestAEADConcurrentIVsUnique(t *testing.T) {
	c := newTestCipher(t, cipherCases[4].alg)
	const workers, per = 4, 200
	ivs := make(chan string, workers*per)
	done := make(chan struct{})
	for range workers {
		go func() {
			for range per {
				b, err := c.Seal(nil, []byte("x"))
				if err != nil {
					t.Error(err)
				}
				ivs <- string(b[:8])
			}
			done <- struct{}{}
		}()
	}
	for range workers {
		<-done
	}
	close(ivs)
	seen := map[string]bool{}
	for iv := range ivs {
		if seen[iv] {
			t.Fatal("IV repeated across concurrent Seal calls")
		}
		seen[iv] = true
	}
}
