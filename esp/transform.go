package esp

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"hash"
	"sync"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/cgwproject/cgw/ipsec"
)

// encrSpec describes one ENCR transform as used by ESP.
type encrSpec struct {
	name     string
	keyBits  []int // allowed key lengths in bits; nil = fixed key (keyLen)
	keyLen   int   // fixed key length in octets, when keyBits is nil
	saltLen  int   // octets of salt at the end of KEYMAT (RFC 4106 Section 8.1, RFC 7634 Section 2)
	ivLen    int   // explicit IV octets on the wire
	align    int   // padding alignment of payload+pad+2 (RFC 4303 Section 2.4)
	icvLen   int   // ICV octets for AEAD ciphers; 0 for ciphers needing INTEG
	newAEAD  func(key []byte) (cipher.AEAD, error)
	cbcBlock bool // AES-CBC: needs an INTEG transform
}

// encrSpecs is the table of supported ENCR transforms, keyed by IANA ID.
var encrSpecs = map[ipsec.EncrID]encrSpec{
	ipsec.EncrAESGCM16: {
		name:    "AES-GCM-16",
		keyBits: []int{128, 192, 256},
		saltLen: 4,  // RFC 4106, Section 8.1
		ivLen:   8,  // RFC 4106, Section 3.1
		align:   4,  // RFC 4106, Section 3.2: no block alignment beyond 4 octets
		icvLen:  16, // ENCR_AES_GCM_16
		newAEAD: func(key []byte) (cipher.AEAD, error) {
			b, err := aes.NewCipher(key)
			if err != nil {
				return nil, err
			}
			return cipher.NewGCM(b)
		},
	},
	ipsec.EncrChaCha20Poly1305: {
		name:    "ChaCha20-Poly1305",
		keyLen:  chacha20poly1305.KeySize,
		saltLen: 4, // RFC 7634, Section 2
		ivLen:   8,
		align:   4, // RFC 7634, Section 2.1 (stream cipher: 4-octet alignment only)
		icvLen:  chacha20poly1305.Overhead,
		newAEAD: chacha20poly1305.New,
	},
	ipsec.EncrAESCBC: {
		name:     "AES-CBC",
		keyBits:  []int{128, 192, 256},
		ivLen:    aes.BlockSize, // RFC 3602, Section 3
		align:    aes.BlockSize,
		cbcBlock: true,
	},
}

// integSpec describes one INTEG transform: HMAC truncated to icvLen.
type integSpec struct {
	name   string
	keyLen int // RFC 2404 Section 3, RFC 4868 Section 2.1.1: key = hash output length
	icvLen int
	hash   func() hash.Hash
}

var integSpecs = map[ipsec.IntegID]integSpec{
	ipsec.IntegHMACSHA1_96:      {name: "HMAC-SHA1-96", keyLen: 20, icvLen: 12, hash: sha1.New},
	ipsec.IntegHMACSHA2_256_128: {name: "HMAC-SHA2-256-128", keyLen: 32, icvLen: 16, hash: sha256.New},
	ipsec.IntegHMACSHA2_384_192: {name: "HMAC-SHA2-384-192", keyLen: 48, icvLen: 24, hash: sha512.New384},
	ipsec.IntegHMACSHA2_512_256: {name: "HMAC-SHA2-512-256", keyLen: 64, icvLen: 32, hash: sha512.New},
}

// Supported reports whether esp implements alg for ESP.
func Supported(alg ipsec.Algorithms) bool {
	_, err := checkAlg(alg, nil, nil, false)
	return err == nil
}

// cbcMode is the CBC BlockMode of crypto/cipher for AES, which can be
// re-pointed at a new IV without allocating (the same interface crypto/tls
// relies on).
type cbcMode interface {
	cipher.BlockMode
	SetIV([]byte)
}

// transform is the keyed crypto state of one SA direction, shared by all
// goroutines using the SA. Everything in it is immutable after newTransform;
// per-call mutable state lives in scratch values from pool.
type transform struct {
	esn    bool
	ivLen  int
	icvLen int
	align  int

	// AEAD transforms.
	aead cipher.AEAD // safe for concurrent use
	salt [4]byte

	// AES-CBC + HMAC transforms.
	block    cipher.Block // AES with the SA key; safe for concurrent use
	ivCipher cipher.Block // outbound only: AES with a random per-SA IV key, see cbcIV
	integ    integSpec
	integKey []byte

	pool sync.Pool // *scratch
}

// String keeps key material out of fmt output.
func (t *transform) String() string { return "esp.transform" }

// scratch is the per-call mutable state. hash.Hash from crypto/hmac and the
// CBC modes are not safe for concurrent use, and arrays passed through
// interface calls escape to the heap, so each Seal/Open borrows one scratch
// from the pool instead of allocating.
type scratch struct {
	nonce [12]byte // AEAD nonce: salt || IV
	aad   [12]byte // AEAD AAD: SPI || [seq hi ||] seq lo
	block [16]byte // CBC IV derivation input
	sum   [64]byte // HMAC output
	seqHi [4]byte  // ESN high bits appended to the HMAC input
	mac   hash.Hash
	enc   cbcMode
	dec   cbcMode
}

// checkAlg validates alg and, when withKeys is set, the key lengths. Its
// errors lack the "esp: " prefix; callers add it with the SA's SPI.
func checkAlg(alg ipsec.Algorithms, encKey, integKey []byte, withKeys bool) (encrSpec, error) {
	es, ok := encrSpecs[alg.Encr]
	if !ok {
		return encrSpec{}, fmt.Errorf("unsupported encryption transform %d; use AES-GCM-16 (20), AES-CBC (12) or ChaCha20-Poly1305 (28)", alg.Encr)
	}
	keyLen := es.keyLen
	if es.keyBits != nil {
		bits := alg.KeyBits
		if bits == 0 && withKeys {
			bits = (len(encKey) - es.saltLen) * 8
		}
		valid := false
		for _, b := range es.keyBits {
			valid = valid || b == bits
		}
		if !valid {
			return encrSpec{}, fmt.Errorf("%s key length %d bits is not supported; use 128, 192 or 256", es.name, bits)
		}
		keyLen = bits / 8
	} else if alg.KeyBits != 0 && alg.KeyBits != keyLen*8 {
		return encrSpec{}, fmt.Errorf("%s has a fixed %d-bit key; Algorithms.KeyBits is %d", es.name, keyLen*8, alg.KeyBits)
	}
	if withKeys && len(encKey) != keyLen+es.saltLen {
		if es.saltLen > 0 {
			return encrSpec{}, fmt.Errorf("%s needs an encryption key of %d octets (%d-octet key + %d-octet salt), got %d", es.name, keyLen+es.saltLen, keyLen, es.saltLen, len(encKey))
		}
		return encrSpec{}, fmt.Errorf("%s needs an encryption key of %d octets, got %d", es.name, keyLen, len(encKey))
	}
	if !es.cbcBlock {
		if alg.Integ != ipsec.IntegNone {
			return encrSpec{}, fmt.Errorf("%s is an AEAD cipher and takes no integrity transform, got %d", es.name, alg.Integ)
		}
		if withKeys && len(integKey) != 0 {
			return encrSpec{}, fmt.Errorf("%s is an AEAD cipher; IntegKey must be empty, got %d octets", es.name, len(integKey))
		}
		return es, nil
	}
	is, ok := integSpecs[alg.Integ]
	if !ok {
		return encrSpec{}, fmt.Errorf("%s needs a supported integrity transform (HMAC-SHA1-96, HMAC-SHA2-256/384/512), got %d", es.name, alg.Integ)
	}
	if withKeys && len(integKey) != is.keyLen {
		return encrSpec{}, fmt.Errorf("%s needs an integrity key of %d octets, got %d", is.name, is.keyLen, len(integKey))
	}
	return es, nil
}

func newTransform(p ipsec.SAParams, outbound bool) (*transform, error) {
	es, err := checkAlg(p.Alg, p.EncKey, p.IntegKey, true)
	if err != nil {
		return nil, fmt.Errorf("esp: SA %s: %w", p.SPI, err)
	}
	t := &transform{esn: p.Alg.ESN, ivLen: es.ivLen, align: es.align}
	keyLen := len(p.EncKey) - es.saltLen
	if !es.cbcBlock {
		t.aead, err = es.newAEAD(p.EncKey[:keyLen])
		if err != nil {
			return nil, fmt.Errorf("esp: SA %s: %s: %v", p.SPI, es.name, err)
		}
		copy(t.salt[:], p.EncKey[keyLen:])
		t.icvLen = es.icvLen
		t.pool.New = func() any { return new(scratch) }
		return t, nil
	}

	t.block, err = aes.NewCipher(p.EncKey)
	if err != nil {
		return nil, fmt.Errorf("esp: SA %s: AES-CBC: %v", p.SPI, err)
	}
	if _, ok := cipher.NewCBCEncrypter(t.block, make([]byte, aes.BlockSize)).(cbcMode); !ok {
		return nil, fmt.Errorf("esp: SA %s: AES-CBC implementation cannot reset its IV; this Go version is unsupported", p.SPI)
	}
	t.integ = integSpecs[p.Alg.Integ]
	t.integKey = append([]byte(nil), p.IntegKey...)
	t.icvLen = t.integ.icvLen
	if outbound {
		// CBC IVs must be unpredictable (RFC 3602, Section 2.3; RFC 4303,
		// Section 3.3.2). cbcIV encrypts the unique sequence number under
		// an independent random AES-128 key drawn once per SA here: AES is
		// a pseudorandom permutation, so for distinct inputs under a secret
		// key the outputs are indistinguishable from random to anyone not
		// holding the key (NIST SP 800-38A, Appendix C, first method, with
		// a separate key so no IV can coincide with a ciphertext block
		// produced under the SA key). This costs one AES block per packet
		// instead of a getrandom syscall.
		var ivKey [16]byte
		if _, err := rand.Read(ivKey[:]); err != nil {
			return nil, fmt.Errorf("esp: SA %s: drawing the CBC IV key: %v", p.SPI, err)
		}
		t.ivCipher, _ = aes.NewCipher(ivKey[:])
	}
	t.pool.New = func() any {
		zero := make([]byte, aes.BlockSize)
		return &scratch{
			mac: hmac.New(t.integ.hash, t.integKey),
			enc: cipher.NewCBCEncrypter(t.block, zero).(cbcMode),
			dec: cipher.NewCBCDecrypter(t.block, zero).(cbcMode),
		}
	}
	return t, nil
}

// cbcIV writes the IV for sequence number seq into iv (16 octets): the AES
// encryption, under the per-SA IV key, of the block 0^64 || seq.
func (t *transform) cbcIV(s *scratch, iv []byte, seq uint64) {
	clear(s.block[:8])
	binary.BigEndian.PutUint64(s.block[8:], seq)
	t.ivCipher.Encrypt(iv, s.block[:])
}

// aeadParams fills the nonce and AAD for an AEAD packet and returns the AAD.
// pkt starts at the SPI; the IV follows the 8-octet header. RFC 4106,
// Sections 4 and 5 (identical in RFC 7634, Sections 2 and 3):
//
//	nonce = salt(4) || IV(8)
//	AAD   = SPI || seq            (32-bit sequence numbers)
//	AAD   = SPI || seq_hi || seq_lo (ESN)
func (t *transform) aeadParams(s *scratch, pkt []byte, seq uint64) []byte {
	copy(s.nonce[:4], t.salt[:])
	copy(s.nonce[4:], pkt[headerLen:headerLen+8])
	copy(s.aad[:4], pkt[:4])
	if t.esn {
		binary.BigEndian.PutUint64(s.aad[4:], seq)
		return s.aad[:12]
	}
	copy(s.aad[4:8], pkt[4:8])
	return s.aad[:8]
}

// icv computes the truncated HMAC over pkt (SPI through Next Header) and,
// with ESN, the high-order 32 bits of the sequence number appended
// (RFC 4303, Sections 2.2.1 and 3.3.4). The result aliases s.sum.
func (t *transform) icv(s *scratch, pkt []byte, seq uint64) []byte {
	s.mac.Reset()
	s.mac.Write(pkt)
	if t.esn {
		binary.BigEndian.PutUint32(s.seqHi[:], uint32(seq>>32))
		s.mac.Write(s.seqHi[:])
	}
	return s.mac.Sum(s.sum[:0])[:t.icvLen]
}

func (t *transform) verifyICV(s *scratch, pkt []byte, seq uint64) bool {
	n := len(pkt) - t.icvLen
	return subtle.ConstantTimeCompare(t.icv(s, pkt[:n], seq), pkt[n:]) == 1
}

// wipe zeroes the key material the transform holds in its own memory: the
// AEAD salt and the HMAC key. The cipher objects from crypto/aes and
// crypto/cipher keep their expanded keys out of reach of this package;
// dropping the SA leaves those to the garbage collector (best effort).
// After wipe, Seal produces packets the peer rejects and Open fails
// authentication: a late caller gets a drop, never a panic.
func (t *transform) wipe() {
	clear(t.salt[:])
	clear(t.integKey)
}
