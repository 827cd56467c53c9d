package message

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
)

// Test Ciphers built from the standard library. The real ones live in
// ike/crypto; these only have to agree with the Cipher contract.

// cbcHMAC is AES-CBC with HMAC-SHA256-128 (RFC 7296 Section 3.14, RFC 4868).
type cbcHMAC struct {
	block cipher.Block
	mac   []byte
}

func newCBCHMAC(encKey, macKey []byte) *cbcHMAC {
	b, err := aes.NewCipher(encKey)
	if err != nil {
		panic(err)
	}
	return &cbcHMAC{block: b, mac: macKey}
}

func (c *cbcHMAC) BlockSize() int { return aes.BlockSize }
func (c *cbcHMAC) Overhead() int  { return aes.BlockSize + 16 }

func (c *cbcHMAC) icv(aad, ivct []byte) []byte {
	h := hmac.New(sha256.New, c.mac)
	h.Write(aad)
	h.Write(ivct)
	return h.Sum(nil)[:16]
}

func (c *cbcHMAC) Seal(aad, pt []byte) ([]byte, error) {
	if len(pt)%aes.BlockSize != 0 {
		return nil, errors.New("plaintext not block aligned")
	}
	out := make([]byte, aes.BlockSize+len(pt), aes.BlockSize+len(pt)+16)
	if _, err := rand.Read(out[:aes.BlockSize]); err != nil {
		return nil, err
	}
	cipher.NewCBCEncrypter(c.block, out[:aes.BlockSize]).CryptBlocks(out[aes.BlockSize:], pt)
	return append(out, c.icv(aad, out)...), nil
}

func (c *cbcHMAC) Open(aad, body []byte) ([]byte, error) {
	if len(body) < c.Overhead() || (len(body)-c.Overhead())%aes.BlockSize != 0 {
		return nil, errors.New("bad length")
	}
	ivct, tag := body[:len(body)-16], body[len(body)-16:]
	if !hmac.Equal(tag, c.icv(aad, ivct)) {
		return nil, errors.New("ICV mismatch")
	}
	pt := make([]byte, len(ivct)-aes.BlockSize)
	cipher.NewCBCDecrypter(c.block, ivct[:aes.BlockSize]).CryptBlocks(pt, ivct[aes.BlockSize:])
	return pt, nil
}

// gcm16 is AES-GCM with a 16-octet ICV and 8-octet explicit IV (RFC 5282).
type gcm16 struct {
	aead cipher.AEAD
	salt [4]byte
	ctr  uint64
}

func newGCM(key []byte) *gcm16 {
	b, err := aes.NewCipher(key[:len(key)-4])
	if err != nil {
		panic(err)
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		panic(err)
	}
	g := &gcm16{aead: a}
	copy(g.salt[:], key[len(key)-4:])
	return g
}

func (g *gcm16) BlockSize() int { return 1 }
func (g *gcm16) Overhead() int  { return 8 + 16 }

func (g *gcm16) Seal(aad, pt []byte) ([]byte, error) {
	g.ctr++
	var nonce [12]byte
	copy(nonce[:4], g.salt[:])
	binary.BigEndian.PutUint64(nonce[4:], g.ctr)
	out := append([]byte(nil), nonce[4:]...)
	return g.aead.Seal(out, nonce[:], pt, aad), nil
}

func (g *gcm16) Open(aad, body []byte) ([]byte, error) {
	if len(body) < g.Overhead() {
		return nil, errors.New("short")
	}
	var nonce [12]byte
	copy(nonce[:4], g.salt[:])
	copy(nonce[4:], body[:8])
	return g.aead.Open(nil, nonce[:], body[8:], aad)
}

var (
	testKey16 = []byte("0123456789abcdef")
	testKey32 = []byte("0123456789abcdef0123456789abcdef")
)

func testCiphers() map[string]func() Cipher {
	return map[string]func() Cipher{
		"aes-cbc-hmac-sha256": func() Cipher { return newCBCHMAC(testKey16, testKey32) },
		"aes-gcm-16":          func() Cipher { return newGCM(append(append([]byte{}, testKey16...), 1, 2, 3, 4)) },
	}
}
