package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync/atomic"

	"github.com/cgwproject/cgw/ipsec"
)

// Cipher protects the SK payload of one direction of an IKE SA. Its method
// set is identical to ike/message.Cipher, so values are assignable to it.
//
// The SK payload body is IV || ciphertext || ICV. aad is the message from
// the start of the IKE header through the SK generic payload header, with
// final lengths. Implementations are safe for concurrent use.
type Cipher interface {
	// BlockSize is what len(plaintext) must be a multiple of: 16 for
	// AES-CBC, 1 for the AEAD ciphers, which need no padding (RFC 5282
	// Section 3, RFC 7634 Section 4).
	BlockSize() int
	// Overhead is IV length plus ICV length.
	Overhead() int
	// Seal returns IV || ciphertext || ICV for plaintext (which already
	// carries its padding and Pad Length octet).
	Seal(aad, plaintext []byte) ([]byte, error)
	// Open verifies the ICV in constant time and returns the plaintext.
	Open(aad, body []byte) ([]byte, error)
}

// ErrAuthFailed is returned by Cipher.Open when the ICV does not verify;
// RFC 7296 Section 2.21.2 says to drop such a message silently.
var ErrAuthFailed = errors.New("ike/crypto: SK payload integrity check failed")

// NewIKECipher returns the SK payload cipher for one direction of an IKE SA:
// encKey is SK_ei or SK_er (for AES-GCM and ChaCha20-Poly1305 the key
// followed by the 4-octet salt), integKey is SK_ai or SK_ar (empty for AEAD
// ciphers). alg.PRF and alg.DH are ignored.
func NewIKECipher(alg ipsec.Algorithms, encKey, integKey []byte) (Cipher, error) {
	e := lookupEncr(alg.Encr, alg.KeyBits)
	if e == nil {
		return nil, errUnsupportedEncr(alg.Encr, alg.KeyBits)
	}
	if len(encKey) != e.keyLen+e.saltLen {
		return nil, fmt.Errorf("ike/crypto: %s needs a %d-octet encryption key, got %d octets", e.name, e.keyLen+e.saltLen, len(encKey))
	}
	if e.aead {
		if alg.Integ != ipsec.IntegNone || len(integKey) != 0 {
			return nil, fmt.Errorf("ike/crypto: %s is an AEAD cipher and takes no integrity algorithm or key (RFC 5282 Section 8)", e.name)
		}
		return newAEADCipher(e, encKey)
	}
	in := lookupInteg(alg.Integ)
	if in == nil {
		if alg.Integ == ipsec.IntegNone {
			return nil, fmt.Errorf("ike/crypto: %s needs an integrity algorithm", e.name)
		}
		_, err := IntegKeyLen(alg.Integ)
		return nil, err
	}
	if len(integKey) != in.keyLen {
		return nil, fmt.Errorf("ike/crypto: %s needs a %d-octet integrity key, got %d octets", in.name, in.keyLen, len(integKey))
	}
	b, err := aes.NewCipher(encKey)
	if err != nil {
		return nil, fmt.Errorf("ike/crypto: %s: %v", e.name, err)
	}
	return &cbcCipher{enc: e, integ: in, block: b, integKey: append([]byte(nil), integKey...), rand: rand.Reader}, nil
}

// cbcCipher is AES-CBC with a truncated HMAC over the whole message
// (RFC 7296 Section 3.14, RFC 3602 for the cipher, RFC 4868 for the MAC).
type cbcCipher struct {
	enc      *encrAlg
	integ    *integAlg
	block    cipher.Block // safe for concurrent use
	integKey []byte
	rand     io.Reader
}

func (c *cbcCipher) BlockSize() int { return cbcBlockSize }
func (c *cbcCipher) Overhead() int  { return cbcBlockSize + c.integ.icvLen }
func (c *cbcCipher) String() string { return c.enc.name + "/" + c.integ.name }

func (c *cbcCipher) mac(aad, ivct []byte) hash.Hash {
	m := hmac.New(c.integ.hash, c.integKey)
	m.Write(aad)
	m.Write(ivct)
	return m
}

// Seal draws a random IV per message (RFC 7296 Section 3.14: the IV MUST be
// unpredictable) and appends the ICV over aad || IV || ciphertext.
func (c *cbcCipher) Seal(aad, plaintext []byte) ([]byte, error) {
	if len(plaintext) == 0 || len(plaintext)%cbcBlockSize != 0 {
		return nil, fmt.Errorf("ike/crypto: %s plaintext is %d octets, must be a non-zero multiple of %d (pad it)", c.enc.name, len(plaintext), cbcBlockSize)
	}
	out := make([]byte, cbcBlockSize+len(plaintext), cbcBlockSize+len(plaintext)+c.integ.icvLen)
	iv := out[:cbcBlockSize]
	if _, err := io.ReadFull(c.rand, iv); err != nil {
		return nil, fmt.Errorf("ike/crypto: %s IV: %w", c.enc.name, err)
	}
	cipher.NewCBCEncrypter(c.block, iv).CryptBlocks(out[cbcBlockSize:], plaintext)
	sum := c.mac(aad, out).Sum(nil)
	return append(out, sum[:c.integ.icvLen]...), nil
}

// Open checks the ICV in constant time before decrypting.
func (c *cbcCipher) Open(aad, body []byte) ([]byte, error) {
	icvLen := c.integ.icvLen
	ctLen := len(body) - cbcBlockSize - icvLen
	if ctLen < cbcBlockSize || ctLen%cbcBlockSize != 0 {
		return nil, fmt.Errorf("ike/crypto: %s SK payload body is %d octets; want IV (16) + a non-zero multiple of 16 + ICV (%d)", c.enc.name, len(body), icvLen)
	}
	ivct, icv := body[:len(body)-icvLen], body[len(body)-icvLen:]
	sum := c.mac(aad, ivct).Sum(nil)
	if !hmac.Equal(sum[:icvLen], icv) {
		return nil, ErrAuthFailed
	}
	pt := make([]byte, ctLen)
	cipher.NewCBCDecrypter(c.block, ivct[:cbcBlockSize]).CryptBlocks(pt, ivct[cbcBlockSize:])
	return pt, nil
}

// aeadCipher is AES-GCM-16 (RFC 5282) or ChaCha20-Poly1305 (RFC 7634): the
// nonce is salt || IV, the 8-octet IV travels in the payload, and the AAD is
// the message up to the end of the SK payload header (RFC 5282 Section 5.1).
type aeadCipher struct {
	enc  *encrAlg
	aead cipher.AEAD
	salt [aeadSaltLen]byte
	// The IV is base + n, with n counting messages sealed under this key,
	// so it never repeats for the key (RFC 5282 Section 3: the IV MUST NOT
	// repeat for a given key). base is random so two SAs whose keys
	// collided would still not share (key, IV) pairs in practice.
	base uint64
	n    atomic.Uint64
}

func newAEADCipher(e *encrAlg, keymat []byte) (*aeadCipher, error) {
	a, err := e.newAEAD(keymat[:e.keyLen])
	if err != nil {
		return nil, fmt.Errorf("ike/crypto: %s: %v", e.name, err)
	}
	c := &aeadCipher{enc: e, aead: a}
	copy(c.salt[:], keymat[e.keyLen:])
	var b [8]byte
	if _, err := io.ReadFull(rand.Reader, b[:]); err != nil {
		return nil, fmt.Errorf("ike/crypto: %s IV base: %w", e.name, err)
	}
	c.base = binary.BigEndian.Uint64(b[:])
	return c, nil
}

func (c *aeadCipher) BlockSize() int { return 1 }
func (c *aeadCipher) Overhead() int  { return aeadIVLen + c.enc.icvLen }
func (c *aeadCipher) String() string { return c.enc.name }

func (c *aeadCipher) Seal(aad, plaintext []byte) ([]byte, error) {
	n := c.n.Add(1)
	if n == 0 {
		c.n.Store(^uint64(0)) // stay exhausted
		return nil, fmt.Errorf("ike/crypto: %s IV space exhausted; rekey the IKE SA", c.enc.name)
	}
	var nonce [aeadSaltLen + aeadIVLen]byte
	copy(nonce[:], c.salt[:])
	binary.BigEndian.PutUint64(nonce[aeadSaltLen:], c.base+n)
	out := make([]byte, aeadIVLen, aeadIVLen+len(plaintext)+c.enc.icvLen)
	copy(out, nonce[aeadSaltLen:])
	return c.aead.Seal(out, nonce[:], plaintext, aad), nil
}

func (c *aeadCipher) Open(aad, body []byte) ([]byte, error) {
	if len(body) < aeadIVLen+c.enc.icvLen {
		return nil, fmt.Errorf("ike/crypto: %s SK payload body is %d octets, shorter than IV (%d) + ICV (%d)", c.enc.name, len(body), aeadIVLen, c.enc.icvLen)
	}
	var nonce [aeadSaltLen + aeadIVLen]byte
	copy(nonce[:], c.salt[:])
	copy(nonce[aeadSaltLen:], body[:aeadIVLen])
	pt, err := c.aead.Open(nil, nonce[:], body[aeadIVLen:], aad) // tag compared in constant time
	if err != nil {
		return nil, ErrAuthFailed
	}
	return pt, nil
}
