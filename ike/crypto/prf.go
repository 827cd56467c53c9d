package crypto

import (
	"crypto/hmac"

	"github.com/cgwproject/cgw/ipsec"
)

// PRF is a negotiated IKEv2 pseudorandom function (RFC 7296, Section 2.13).
// Obtain one from NewPRF; the zero value has no algorithm and its methods
// return nil. A PRF is an immutable value, safe for concurrent use.
type PRF struct {
	alg *prfAlg
}

// NewPRF returns the PRF for id, or an error if cgw does not implement it.
func NewPRF(id ipsec.PRFID) (PRF, error) {
	a := lookupPRF(id)
	if a == nil {
		return PRF{}, errUnsupportedPRF(id)
	}
	return PRF{alg: a}, nil
}

// ID returns the transform identifier (0 for the zero PRF).
func (p PRF) ID() ipsec.PRFID {
	if p.alg == nil {
		return 0
	}
	return p.alg.id
}

// Size returns the output length in octets, which is also the preferred key
// length used for SK_d, SK_pi and SK_pr (RFC 7296, Section 2.14).
func (p PRF) Size() int {
	if p.alg == nil {
		return 0
	}
	return p.alg.size
}

func (p PRF) String() string {
	if p.alg == nil {
		return "PRF(none)"
	}
	return p.alg.name
}

// Sum returns prf(key, data). HMAC PRFs accept keys of any length
// (RFC 2104 hashes keys longer than the block size), which is what
// RFC 7296 Section 2.14 relies on for prf(Ni | Nr, g^ir).
func (p PRF) Sum(key, data []byte) []byte {
	if p.alg == nil {
		return nil
	}
	m := hmac.New(p.alg.hash, key)
	m.Write(data)
	return m.Sum(nil)
}

// maxPlusIterations is the limit of prf+: the counter octet runs 0x01..0xff
// (RFC 7296, Section 2.13).
const maxPlusIterations = 255

// Plus returns the first n octets of prf+(key, seed) (RFC 7296, Section 2.13):
//
//	prf+ (K,S) = T1 | T2 | T3 | T4 | ...
//	T1 = prf (K, S | 0x01)
//	T2 = prf (K, T1 | S | 0x02)
//	Tn = prf (K, T(n-1) | S | n)
//
// It returns nil when n exceeds 255 PRF outputs (the counter would wrap) or
// for the zero PRF.
func (p PRF) Plus(key, seed []byte, n int) []byte {
	if p.alg == nil || n < 0 || n > maxPlusIterations*p.alg.size {
		return nil
	}
	out := make([]byte, 0, n+p.alg.size)
	m := hmac.New(p.alg.hash, key)
	var t []byte
	for i := 1; len(out) < n; i++ {
		m.Reset()
		m.Write(t)
		m.Write(seed)
		m.Write([]byte{byte(i)})
		t = m.Sum(t[:0])
		out = append(out, t...)
	}
	return out[:n:n]
}
