package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"slices"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/cgwproject/cgw/ipsec"
)

// Specification constants.
const (
	cbcBlockSize = aes.BlockSize // RFC 3602: AES-CBC IV and block are 16 octets
	aeadSaltLen  = 4             // RFC 5282 Section 7.1, RFC 7634 Section 2: salt appended to the key
	aeadIVLen    = 8             // RFC 5282 Section 3, RFC 7634 Section 2: explicit IV
	aeadICVLen   = 16            // AES-GCM-16 and Poly1305 tags
	minNonceLen  = 16            // RFC 7296 Section 2.10: at least 128 bits
	maxNonceLen  = 256           // RFC 7296 Section 3.9: at most 256 octets
)

// encrAlg is one ENCR transform at one key length. The Key Length
// attribute (RFC 7296, Section 3.3.5) selects the row for AES; ciphers with a
// fixed key size carry no attribute (keyBits 0).
type encrAlg struct {
	id        ipsec.EncrID
	name      string
	keyBits   int // Key Length attribute value; 0 = fixed key, no attribute
	keyLen    int // cipher key octets, without salt
	saltLen   int // octets of KEYMAT after the key (RFC 5282 / RFC 4106 salt)
	aead      bool
	blockSize int // what the SK plaintext must be a multiple of
	ivLen     int
	icvLen    int // AEAD tag length; 0 for CBC (the INTEG transform supplies the ICV)
	// newAEAD builds the AEAD from the key without salt (AEAD rows only).
	newAEAD func(key []byte) (cipher.AEAD, error)
}

// encrAlgs lists every ENCR transform cgw implements, for IKE and ESP.
var encrAlgs = []encrAlg{
	{id: ipsec.EncrAESCBC, name: "AES-CBC-128", keyBits: 128, keyLen: 16, blockSize: cbcBlockSize, ivLen: cbcBlockSize},
	{id: ipsec.EncrAESCBC, name: "AES-CBC-256", keyBits: 256, keyLen: 32, blockSize: cbcBlockSize, ivLen: cbcBlockSize},
	{id: ipsec.EncrAESGCM16, name: "AES-GCM-16-128", keyBits: 128, keyLen: 16, saltLen: aeadSaltLen, aead: true, blockSize: 1, ivLen: aeadIVLen, icvLen: aeadICVLen, newAEAD: newAESGCM},
	{id: ipsec.EncrAESGCM16, name: "AES-GCM-16-256", keyBits: 256, keyLen: 32, saltLen: aeadSaltLen, aead: true, blockSize: 1, ivLen: aeadIVLen, icvLen: aeadICVLen, newAEAD: newAESGCM},
	{id: ipsec.EncrChaCha20Poly1305, name: "ChaCha20-Poly1305", keyBits: 0, keyLen: chacha20poly1305.KeySize, saltLen: aeadSaltLen, aead: true, blockSize: 1, ivLen: aeadIVLen, icvLen: chacha20poly1305.Overhead, newAEAD: chacha20poly1305.New},
}

func newAESGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b) // 12-octet nonce (salt || IV), 16-octet tag
}

// lookupEncr returns the row for e at keyBits. For fixed-key ciphers a
// keyBits equal to the fixed key size is accepted as well as 0.
func lookupEncr(e ipsec.EncrID, keyBits int) *encrAlg {
	for i := range encrAlgs {
		a := &encrAlgs[i]
		if a.id != e {
			continue
		}
		if a.keyBits == keyBits || (a.keyBits == 0 && keyBits == a.keyLen*8) {
			return a
		}
	}
	return nil
}

// integAlg is one INTEG transform (RFC 4868 for SHA-2, RFC 2404 for SHA-1).
type integAlg struct {
	id     ipsec.IntegID
	name   string
	hash   func() hash.Hash
	keyLen int // key octets = hash output (RFC 4868 Section 2.1.1)
	icvLen int // truncated output
}

var integAlgs = []integAlg{
	{id: ipsec.IntegHMACSHA1_96, name: "HMAC-SHA1-96", hash: sha1.New, keyLen: 20, icvLen: 12},
	{id: ipsec.IntegHMACSHA2_256_128, name: "HMAC-SHA2-256-128", hash: sha256.New, keyLen: 32, icvLen: 16},
	{id: ipsec.IntegHMACSHA2_384_192, name: "HMAC-SHA2-384-192", hash: sha512.New384, keyLen: 48, icvLen: 24},
	{id: ipsec.IntegHMACSHA2_512_256, name: "HMAC-SHA2-512-256", hash: sha512.New, keyLen: 64, icvLen: 32},
}

func lookupInteg(i ipsec.IntegID) *integAlg {
	for k := range integAlgs {
		if integAlgs[k].id == i {
			return &integAlgs[k]
		}
	}
	return nil
}

// prfAlg is one PRF transform. HMAC PRFs take keys of any length; their
// preferred key size (for SK_d, SK_pi, SK_pr) is the hash output size
// (RFC 7296 Section 2.14, RFC 4868 Section 2.1.2).
type prfAlg struct {
	id   ipsec.PRFID
	name string
	hash func() hash.Hash
	size int // output octets = preferred key octets
}

var prfAlgs = []prfAlg{
	{id: ipsec.PRFHMACSHA1, name: "PRF-HMAC-SHA1", hash: sha1.New, size: sha1.Size},
	{id: ipsec.PRFHMACSHA2_256, name: "PRF-HMAC-SHA2-256", hash: sha256.New, size: sha256.Size},
	{id: ipsec.PRFHMACSHA2_384, name: "PRF-HMAC-SHA2-384", hash: sha512.New384, size: sha512.Size384},
	{id: ipsec.PRFHMACSHA2_512, name: "PRF-HMAC-SHA2-512", hash: sha512.New, size: sha512.Size},
}

func lookupPRF(p ipsec.PRFID) *prfAlg {
	for k := range prfAlgs {
		if prfAlgs[k].id == p {
			return &prfAlgs[k]
		}
	}
	return nil
}

// Preference orders, strongest and fastest first. They list only entries
// of the tables above.
var (
	encrPreference = []ipsec.EncrKey{
		{ID: ipsec.EncrAESGCM16, KeyBits: 256},
		{ID: ipsec.EncrAESGCM16, KeyBits: 128},
		{ID: ipsec.EncrChaCha20Poly1305},
		{ID: ipsec.EncrAESCBC, KeyBits: 256},
		{ID: ipsec.EncrAESCBC, KeyBits: 128},
	}
	prfPreference = []ipsec.PRFID{
		ipsec.PRFHMACSHA2_384, ipsec.PRFHMACSHA2_256, ipsec.PRFHMACSHA2_512, ipsec.PRFHMACSHA1,
	}
	integPreference = []ipsec.IntegID{
		ipsec.IntegHMACSHA2_256_128, ipsec.IntegHMACSHA2_384_192, ipsec.IntegHMACSHA2_512_256, ipsec.IntegHMACSHA1_96,
	}
	dhPreference = []ipsec.DHGroup{
		ipsec.DHECP384, ipsec.DHCurve25519, ipsec.DHECP256, ipsec.DHECP521,
		ipsec.DHMODP3072, ipsec.DHMODP2048, ipsec.DHMODP4096, ipsec.DHMODP2048S256,
		ipsec.DHMODP6144, ipsec.DHMODP8192, ipsec.DHMODP2048S224, ipsec.DHMODP1536,
		ipsec.DHMODP1024, ipsec.DHMODP1024S160,
	}
)

// PreferredEncrs returns the supported ciphers in cgw's preference order.
// The caller owns the returned slice.
func PreferredEncrs() []ipsec.EncrKey { return slices.Clone(encrPreference) }

// PreferredPRFs returns the supported PRFs in preference order.
func PreferredPRFs() []ipsec.PRFID { return slices.Clone(prfPreference) }

// PreferredIntegs returns the supported integrity algorithms in preference order.
func PreferredIntegs() []ipsec.IntegID { return slices.Clone(integPreference) }

// PreferredDHGroups returns the supported DH groups in preference order.
func PreferredDHGroups() []ipsec.DHGroup { return slices.Clone(dhPreference) }

// Supported reports whether cgw implements the transform of type t with
// identifier id and Key Length attribute keyBits (0 when absent). keyBits
// must be 0 for every type but ENCR; AES needs 128 or 256, ChaCha20-Poly1305
// takes no attribute (256 is tolerated).
//
// INTEG NONE (0) and DH NONE (0) are reported as supported: they are the
// valid wire values for an AEAD proposal and a CHILD SA without PFS. Whether
// a combination is coherent is CheckAlgorithms' job.
func Supported(t ipsec.TransformType, id uint16, keyBits int) bool {
	if t != ipsec.TransformENCR && keyBits != 0 {
		return false
	}
	switch t {
	case ipsec.TransformENCR:
		return lookupEncr(ipsec.EncrID(id), keyBits) != nil
	case ipsec.TransformPRF:
		return lookupPRF(ipsec.PRFID(id)) != nil
	case ipsec.TransformINTEG:
		return ipsec.IntegID(id) == ipsec.IntegNone || lookupInteg(ipsec.IntegID(id)) != nil
	case ipsec.TransformDH:
		return ipsec.DHGroup(id) == ipsec.DHNone || lookupDH(ipsec.DHGroup(id)) != nil
	case ipsec.TransformESN:
		return ipsec.ESNID(id) == ipsec.ESNNo || ipsec.ESNID(id) == ipsec.ESNYes
	}
	return false
}

// EncrKeyLen returns the KEYMAT octets the cipher consumes: the key plus,
// for AES-GCM (RFC 5282 Section 7.1, RFC 4106 Section 8.1) and
// ChaCha20-Poly1305 (RFC 7634 Section 2), the 4-octet salt.
func EncrKeyLen(e ipsec.EncrID, keyBits int) (int, error) {
	a := lookupEncr(e, keyBits)
	if a == nil {
		return 0, errUnsupportedEncr(e, keyBits)
	}
	return a.keyLen + a.saltLen, nil
}

// IntegKeyLen returns the key octets of an integrity algorithm (RFC 4868
// Section 2.1.1: the full hash output size). IntegNone has length 0.
func IntegKeyLen(i ipsec.IntegID) (int, error) {
	if i == ipsec.IntegNone {
		return 0, nil
	}
	a := lookupInteg(i)
	if a == nil {
		return 0, fmt.Errorf("ike/crypto: unsupported integrity algorithm %d; use HMAC-SHA1-96 (2) or HMAC-SHA2-256/384/512 (12/13/14)", i)
	}
	return a.keyLen, nil
}

// CheckAlgorithms reports whether alg is a complete, coherent set that cgw
// implements: for an IKE SA (ike = true) a PRF is required; an AEAD cipher
// must come with IntegNone and any other cipher with an INTEG transform
// (RFC 5282 Section 8). The DH group, when set, must be supported.
func CheckAlgorithms(alg ipsec.Algorithms, ike bool) error {
	e := lookupEncr(alg.Encr, alg.KeyBits)
	if e == nil {
		return errUnsupportedEncr(alg.Encr, alg.KeyBits)
	}
	if ike {
		if lookupPRF(alg.PRF) == nil {
			return errUnsupportedPRF(alg.PRF)
		}
	}
	if e.aead {
		if alg.Integ != ipsec.IntegNone {
			return fmt.Errorf("ike/crypto: %s is an AEAD cipher and takes no integrity algorithm, got %d (RFC 5282 Section 8)", e.name, alg.Integ)
		}
	} else {
		if alg.Integ == ipsec.IntegNone {
			return fmt.Errorf("ike/crypto: %s needs an integrity algorithm", e.name)
		}
		if lookupInteg(alg.Integ) == nil {
			_, err := IntegKeyLen(alg.Integ)
			return err
		}
	}
	if alg.DH != ipsec.DHNone && lookupDH(alg.DH) == nil {
		return errUnsupportedDH(alg.DH)
	}
	return nil
}

func errUnsupportedEncr(e ipsec.EncrID, keyBits int) error {
	return fmt.Errorf("ike/crypto: unsupported encryption algorithm %d with key length %d; use AES-CBC (12) or AES-GCM-16 (20) with 128/256 bits, or ChaCha20-Poly1305 (28) without key length", e, keyBits)
}

func errUnsupportedPRF(p ipsec.PRFID) error {
	return fmt.Errorf("ike/crypto: unsupported PRF %d; use HMAC-SHA1 (2) or HMAC-SHA2-256/384/512 (5/6/7)", p)
}

func errUnsupportedDH(g ipsec.DHGroup) error {
	return fmt.Errorf("ike/crypto: unsupported DH group %d; use MODP 2/5/14-18, RFC 5114 22-24, ECP 19-21 or Curve25519 (31)", g)
}

var errShortKey = errors.New("ike/crypto: key derivation produced too little key material")
