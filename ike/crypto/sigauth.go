package crypto

import (
	gocrypto "crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	"github.com/cgwproject/cgw/ipsec"
)

// Signature authentication (RFC 7296 Section 2.15, RFC 4754, RFC 7427).
//
// The AUTH payload of methods 1 and 9-11 is the bare signature; method 14
// prefixes it with a one-octet length and the DER AlgorithmIdentifier of
// the signature algorithm (RFC 7427, Section 3):
//
//	| ASN.1 Length | AlgorithmIdentifier (DER) | Signature Value |
//
// Hashes for the SIGNATURE_HASH_ALGORITHMS notify (RFC 7427, Section 4;
// IANA "IKEv2 Hash Algorithms").
const (
	HashSHA1   uint16 = 1
	HashSHA256 uint16 = 2
	HashSHA384 uint16 = 3
	HashSHA512 uint16 = 4
)

// SupportedHashes is what cgw announces in SIGNATURE_HASH_ALGORITHMS.
var SupportedHashes = []uint16{HashSHA256, HashSHA384, HashSHA512}

// AUTH methods (RFC 7296 Section 3.8, RFC 4754, RFC 7427); the values of
// message.AuthMethod, repeated here because this package does not import
// ike/message.
const (
	MethodRSA      uint8 = 1
	MethodECDSA256 uint8 = 9
	MethodECDSA384 uint8 = 10
	MethodECDSA521 uint8 = 11
	MethodDigSig   uint8 = 14
)

// SigAlg is one way to sign the AUTH octets.
type SigAlg struct {
	Method uint8         // 1, 9, 10, 11 or 14
	Key    string        // "RSA", "ECDSA" or "Ed25519"
	Hash   gocrypto.Hash // 0 for Ed25519
	PSS    bool          // RSASSA-PSS (method 14 only)
	Salt   int           // PSS salt length
}

// String names the algorithm for logs and status, e.g. "RFC 7427
// RSASSA-PSS SHA-256 (method 14)".
func (a SigAlg) String() string {
	var s string
	switch {
	case a.Key == "Ed25519":
		s = "Ed25519"
	case a.PSS:
		s = "RSASSA-PSS " + hashName(a.Hash)
	case a.Key == "RSA":
		s = "RSA PKCS#1 v1.5 " + hashName(a.Hash)
	default:
		s = "ECDSA " + hashName(a.Hash)
	}
	if a.Method == MethodDigSig {
		return fmt.Sprintf("RFC 7427 %s (method 14)", s)
	}
	return fmt.Sprintf("%s (method %d)", s, a.Method)
}

func hashName(h gocrypto.Hash) string {
	switch h {
	case gocrypto.SHA1:
		return "SHA-1"
	case gocrypto.SHA256:
		return "SHA-256"
	case gocrypto.SHA384:
		return "SHA-384"
	case gocrypto.SHA512:
		return "SHA-512"
	}
	return h.String()
}

// SignedOctets returns the octets a signature covers (RFC 7296, Section
// 2.15): RealMessage | Nonce | prf(SK_p, RestOfIDPayload).
func SignedOctets(prf ipsec.PRFID, realMessage, nonce, skp, idBody []byte) ([]byte, error) {
	p, err := NewPRF(prf)
	if err != nil {
		return nil, fmt.Errorf("ike/crypto: signature authentication: %w", err)
	}
	return concat(realMessage, nonce, p.Sum(skp, idBody)), nil
}

// ChooseSigAlg picks how we sign with pub's key type. With method 14
// allowed (the peer sent SIGNATURE_HASH_ALGORITHMS, peerHashes) it uses
// the strongest hash both support that suits the key (SHA-256 for RSA and
// P-256, SHA-384 for P-384, SHA-512 for P-521), RSASSA-PSS for RSA when
// pss is set. Otherwise, or when classic is set, it uses method 1 (RSA
// with SHA-1) or 9-11 (ECDSA by curve).
func ChooseSigAlg(pub gocrypto.PublicKey, peerHashes []uint16, classic, pss bool) (SigAlg, error) {
	has := func(h uint16) bool {
		for _, x := range peerHashes {
			if x == h {
				return true
			}
		}
		return false
	}
	pick := func(pref ...uint16) (gocrypto.Hash, bool) {
		for _, h := range pref {
			if has(h) {
				return hashFromID(h), true
			}
		}
		return 0, false
	}
	digsig := !classic && len(peerHashes) > 0
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if digsig {
			if h, ok := pick(HashSHA256, HashSHA384, HashSHA512); ok {
				a := SigAlg{Method: MethodDigSig, Key: "RSA", Hash: h, PSS: pss}
				if pss {
					a.Salt = h.Size()
				}
				return a, nil
			}
		}
		if pss {
			return SigAlg{}, errors.New("ike/crypto: RSASSA-PSS needs RFC 7427 signature authentication, which the peer did not offer (no SHA-2 hash in its SIGNATURE_HASH_ALGORITHMS)")
		}
		return SigAlg{Method: MethodRSA, Key: "RSA", Hash: gocrypto.SHA1}, nil
	case *ecdsa.PublicKey:
		var method uint8
		var h gocrypto.Hash
		var pref []uint16
		switch k.Curve {
		case elliptic.P256():
			method, h, pref = MethodECDSA256, gocrypto.SHA256, []uint16{HashSHA256, HashSHA384, HashSHA512}
		case elliptic.P384():
			method, h, pref = MethodECDSA384, gocrypto.SHA384, []uint16{HashSHA384, HashSHA512, HashSHA256}
		case elliptic.P521():
			method, h, pref = MethodECDSA521, gocrypto.SHA512, []uint16{HashSHA512, HashSHA384, HashSHA256}
		default:
			return SigAlg{}, fmt.Errorf("ike/crypto: ECDSA curve %s is not supported for IKE authentication", k.Curve.Params().Name)
		}
		if digsig {
			if dh, ok := pick(pref...); ok {
				return SigAlg{Method: MethodDigSig, Key: "ECDSA", Hash: dh}, nil
			}
		}
		return SigAlg{Method: method, Key: "ECDSA", Hash: h}, nil
	case ed25519.PublicKey:
		if !digsig {
			return SigAlg{}, errors.New("ike/crypto: Ed25519 needs RFC 7427 signature authentication, which the peer did not offer")
		}
		return SigAlg{Method: MethodDigSig, Key: "Ed25519"}, nil
	}
	return SigAlg{}, fmt.Errorf("ike/crypto: key type %T cannot sign IKE AUTH", pub)
}

func hashFromID(id uint16) gocrypto.Hash {
	switch id {
	case HashSHA1:
		return gocrypto.SHA1
	case HashSHA256:
		return gocrypto.SHA256
	case HashSHA384:
		return gocrypto.SHA384
	case HashSHA512:
		return gocrypto.SHA512
	}
	return 0
}

// OIDs of RFC 7427 Appendix A.
var (
	oidRSASSAPSS = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10}
	oidMGF1      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 8}
	oidSHA1      = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256    = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384    = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512    = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
)

var asn1Null = asn1.RawValue{Tag: asn1.TagNull}

// sigOIDs are the signature algorithms without parameters (RSASSA-PSS has
// its own encoding); RSA PKCS#1 v1.5 takes a NULL parameter.
var sigOIDs = []struct {
	key  string
	hash gocrypto.Hash
	oid  asn1.ObjectIdentifier
}{
	{"RSA", gocrypto.SHA1, asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 5}},
	{"RSA", gocrypto.SHA256, asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}},
	{"RSA", gocrypto.SHA384, asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}},
	{"RSA", gocrypto.SHA512, asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}},
	{"ECDSA", gocrypto.SHA256, asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}},
	{"ECDSA", gocrypto.SHA384, asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}},
	{"ECDSA", gocrypto.SHA512, asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}},
	{"Ed25519", 0, asn1.ObjectIdentifier{1, 3, 101, 112}},
}

// pssParams is RSASSA-PSS-params (RFC 4055, Section 3.1); the trailer
// field is always 1 and omitted.
type pssParams struct {
	Hash       pkix.AlgorithmIdentifier `asn1:"explicit,tag:0,optional"`
	MGF        pkix.AlgorithmIdentifier `asn1:"explicit,tag:1,optional"`
	SaltLength int                      `asn1:"explicit,tag:2,optional,default:20"`
	Trailer    int                      `asn1:"explicit,tag:3,optional,default:1"`
}

func hashOID(h gocrypto.Hash) asn1.ObjectIdentifier {
	switch h {
	case gocrypto.SHA1:
		return oidSHA1
	case gocrypto.SHA256:
		return oidSHA256
	case gocrypto.SHA384:
		return oidSHA384
	case gocrypto.SHA512:
		return oidSHA512
	}
	return nil
}

func hashFromOID(o asn1.ObjectIdentifier) gocrypto.Hash {
	for _, h := range []gocrypto.Hash{gocrypto.SHA1, gocrypto.SHA256, gocrypto.SHA384, gocrypto.SHA512} {
		if o.Equal(hashOID(h)) {
			return h
		}
	}
	return 0
}

// AlgorithmIdentifier returns the DER AlgorithmIdentifier of a method 14
// algorithm, as RFC 7427 Appendix A lists them.
func (a SigAlg) AlgorithmIdentifier() ([]byte, error) {
	var ai pkix.AlgorithmIdentifier
	if a.PSS {
		hashAI := pkix.AlgorithmIdentifier{Algorithm: hashOID(a.Hash), Parameters: asn1Null}
		mgfParams, err := asn1.Marshal(hashAI)
		if err != nil {
			return nil, err
		}
		params, err := asn1.Marshal(pssParams{
			Hash:       hashAI,
			MGF:        pkix.AlgorithmIdentifier{Algorithm: oidMGF1, Parameters: asn1.RawValue{FullBytes: mgfParams}},
			SaltLength: a.Salt,
			Trailer:    1,
		})
		if err != nil {
			return nil, err
		}
		ai = pkix.AlgorithmIdentifier{Algorithm: oidRSASSAPSS, Parameters: asn1.RawValue{FullBytes: params}}
	}
	for _, e := range sigOIDs {
		if !a.PSS && e.key == a.Key && e.hash == a.Hash {
			ai.Algorithm = e.oid
			if e.key == "RSA" {
				ai.Parameters = asn1Null
			}
		}
	}
	if ai.Algorithm == nil {
		return nil, fmt.Errorf("ike/crypto: no RFC 7427 algorithm identifier for %s", a)
	}
	return asn1.Marshal(ai)
}

// parseAlgorithmIdentifier is the inverse of AlgorithmIdentifier.
func parseAlgorithmIdentifier(der []byte) (SigAlg, error) {
	var ai pkix.AlgorithmIdentifier
	rest, err := asn1.Unmarshal(der, &ai)
	if err != nil || len(rest) != 0 {
		return SigAlg{}, errors.New("ike/crypto: malformed AlgorithmIdentifier in RFC 7427 AUTH data")
	}
	a := SigAlg{Method: MethodDigSig}
	o := ai.Algorithm
	for _, e := range sigOIDs {
		if o.Equal(e.oid) {
			a.Key, a.Hash = e.key, e.hash
			return a, nil
		}
	}
	switch {
	case o.Equal(oidRSASSAPSS):
		a.Key, a.PSS = "RSA", true
		p := pssParams{SaltLength: 20, Trailer: 1}
		if len(ai.Parameters.FullBytes) > 0 {
			if rest, err := asn1.Unmarshal(ai.Parameters.FullBytes, &p); err != nil || len(rest) != 0 {
				return SigAlg{}, errors.New("ike/crypto: malformed RSASSA-PSS parameters in RFC 7427 AUTH data")
			}
		}
		a.Hash = gocrypto.SHA1
		if p.Hash.Algorithm != nil {
			a.Hash = hashFromOID(p.Hash.Algorithm)
		}
		mgfHash := gocrypto.SHA1
		if p.MGF.Algorithm != nil {
			var h pkix.AlgorithmIdentifier
			if !p.MGF.Algorithm.Equal(oidMGF1) {
				return SigAlg{}, fmt.Errorf("ike/crypto: RSASSA-PSS mask generation function %v is not MGF1", p.MGF.Algorithm)
			}
			if _, err := asn1.Unmarshal(p.MGF.Parameters.FullBytes, &h); err != nil {
				return SigAlg{}, errors.New("ike/crypto: malformed MGF1 parameters in RFC 7427 AUTH data")
			}
			mgfHash = hashFromOID(h.Algorithm)
		}
		if a.Hash == 0 || mgfHash != a.Hash {
			return SigAlg{}, errors.New("ike/crypto: RSASSA-PSS with an unsupported hash, or an MGF1 hash different from the message hash")
		}
		if p.SaltLength < 0 || p.SaltLength > 512 || p.Trailer != 1 {
			return SigAlg{}, fmt.Errorf("ike/crypto: RSASSA-PSS salt length %d or trailer %d not supported", p.SaltLength, p.Trailer)
		}
		a.Salt = p.SaltLength
	default:
		return SigAlg{}, fmt.Errorf("ike/crypto: RFC 7427 signature algorithm %v is not supported", o)
	}
	return a, nil
}

// SignAuth returns the AUTH payload data for octets signed with key as alg
// says.
func SignAuth(key gocrypto.Signer, alg SigAlg, octets []byte) ([]byte, error) {
	var sig []byte
	var err error
	digest := func() []byte {
		h := alg.Hash.New()
		h.Write(octets)
		return h.Sum(nil)
	}
	switch {
	case alg.Key == "Ed25519":
		sig, err = key.Sign(rand.Reader, octets, gocrypto.Hash(0))
	case alg.PSS:
		sig, err = key.Sign(rand.Reader, digest(), &rsa.PSSOptions{SaltLength: alg.Salt, Hash: alg.Hash})
	case alg.Key == "RSA":
		sig, err = key.Sign(rand.Reader, digest(), alg.Hash)
	case alg.Key == "ECDSA":
		sig, err = key.Sign(rand.Reader, digest(), alg.Hash) // ASN.1 ECDSA-Sig-Value
		if err == nil && alg.Method != MethodDigSig {
			sig, err = ecdsaRaw(key.Public(), sig)
		}
	default:
		return nil, fmt.Errorf("ike/crypto: cannot sign with %s", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("ike/crypto: signing AUTH with %s: %w", alg, err)
	}
	if alg.Method != MethodDigSig {
		return sig, nil
	}
	ai, err := alg.AlgorithmIdentifier()
	if err != nil {
		return nil, err
	}
	return concat([]byte{byte(len(ai))}, ai, sig), nil
}

// ecdsaSig is ECDSA-Sig-Value (RFC 3279).
type ecdsaSig struct{ R, S *big.Int }

// ecdsaRaw converts an ASN.1 signature to RFC 4754's r | s, each padded to
// the curve's size.
func ecdsaRaw(pub gocrypto.PublicKey, der []byte) ([]byte, error) {
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, errors.New("not an ECDSA key")
	}
	var s ecdsaSig
	if _, err := asn1.Unmarshal(der, &s); err != nil {
		return nil, err
	}
	n := (k.Curve.Params().BitSize + 7) / 8
	out := make([]byte, 2*n)
	s.R.FillBytes(out[:n])
	s.S.FillBytes(out[n:])
	return out, nil
}

// VerifyAuth checks AUTH data of the given method over octets with the
// peer's public key, and returns the algorithm the peer used.
func VerifyAuth(pub gocrypto.PublicKey, method uint8, data, octets []byte) (SigAlg, error) {
	var alg SigAlg
	sig := data
	switch method {
	case MethodRSA:
		alg = SigAlg{Method: MethodRSA, Key: "RSA", Hash: gocrypto.SHA1}
	case MethodECDSA256:
		alg = SigAlg{Method: method, Key: "ECDSA", Hash: gocrypto.SHA256}
	case MethodECDSA384:
		alg = SigAlg{Method: method, Key: "ECDSA", Hash: gocrypto.SHA384}
	case MethodECDSA521:
		alg = SigAlg{Method: method, Key: "ECDSA", Hash: gocrypto.SHA512}
	case MethodDigSig:
		if len(data) < 1 || len(data) < 1+int(data[0]) {
			return SigAlg{}, errors.New("ike/crypto: RFC 7427 AUTH data shorter than its AlgorithmIdentifier")
		}
		a, err := parseAlgorithmIdentifier(data[1 : 1+int(data[0])])
		if err != nil {
			return SigAlg{}, err
		}
		alg, sig = a, data[1+int(data[0]):]
	default:
		return SigAlg{}, fmt.Errorf("ike/crypto: AUTH method %d is not a signature method cgw supports (1, 9, 10, 11, 14)", method)
	}
	var digest []byte
	if alg.Hash != 0 {
		h := alg.Hash.New()
		h.Write(octets)
		digest = h.Sum(nil)
	}
	bad := fmt.Errorf("ike/crypto: the peer's %s signature does not verify with the public key of its certificate", alg)
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if alg.Key != "RSA" {
			return alg, fmt.Errorf("ike/crypto: the peer signed with %s but its certificate holds an RSA key", alg)
		}
		var err error
		if alg.PSS {
			err = rsa.VerifyPSS(k, alg.Hash, digest, sig, &rsa.PSSOptions{SaltLength: alg.Salt, Hash: alg.Hash})
		} else {
			err = rsa.VerifyPKCS1v15(k, alg.Hash, digest, sig)
		}
		if err != nil {
			return alg, bad
		}
	case *ecdsa.PublicKey:
		if alg.Key != "ECDSA" {
			return alg, fmt.Errorf("ike/crypto: the peer signed with %s but its certificate holds an ECDSA key", alg)
		}
		if alg.Method == MethodDigSig {
			if !ecdsa.VerifyASN1(k, digest, sig) {
				return alg, bad
			}
			break
		}
		want := map[uint8]elliptic.Curve{MethodECDSA256: elliptic.P256(), MethodECDSA384: elliptic.P384(), MethodECDSA521: elliptic.P521()}[alg.Method]
		n := (k.Curve.Params().BitSize + 7) / 8
		if k.Curve != want {
			return alg, fmt.Errorf("ike/crypto: the peer used %s but its certificate's key is on %s", alg, k.Curve.Params().Name)
		}
		if len(sig) != 2*n {
			return alg, bad
		}
		r, s := new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:])
		if !ecdsa.Verify(k, digest, r, s) {
			return alg, bad
		}
	case ed25519.PublicKey:
		if alg.Key != "Ed25519" || !ed25519.Verify(k, octets, sig) {
			return alg, bad
		}
	default:
		return alg, fmt.Errorf("ike/crypto: the peer's certificate holds a %T key, which cgw cannot verify", pub)
	}
	return alg, nil
}
