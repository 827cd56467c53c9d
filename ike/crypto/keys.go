package crypto

import (
	"encoding/binary"
	"fmt"

	"github.com/cgwproject/cgw/ipsec"
)

// IKEKeys are the seven secrets of an IKE SA (RFC 7296, Section 2.14). With
// an AEAD cipher SKai and SKar are empty. String and GoString never print
// the key material.
type IKEKeys struct {
	SKd, SKai, SKar, SKei, SKer, SKpi, SKpr []byte
}

func (k IKEKeys) String() string {
	return fmt.Sprintf("IKEKeys{SK_d:%d SK_a:%d SK_e:%d SK_p:%d octets, redacted}", len(k.SKd), len(k.SKai), len(k.SKei), len(k.SKpi))
}
func (k IKEKeys) GoString() string { return k.String() }

// Zero overwrites every key (best effort: the SK ciphers made from them
// keep their own expanded copies until collected).
func (k *IKEKeys) Zero() {
	for _, b := range [][]byte{k.SKd, k.SKai, k.SKar, k.SKei, k.SKer, k.SKpi, k.SKpr} {
		clear(b)
	}
}

// ChildKeys are the KEYMAT of one CHILD SA (RFC 7296, Section 2.17). EncI
// and IntegI protect initiator-to-responder traffic, EncR and IntegR the
// other direction; "initiator" is the initiator of the exchange that
// created (or rekeyed) the CHILD SA. EncI/EncR include the 4-octet salt for
// AES-GCM and ChaCha20-Poly1305, as ipsec.SAParams.EncKey expects.
type ChildKeys struct {
	EncI, IntegI, EncR, IntegR []byte
}

func (k ChildKeys) String() string {
	return fmt.Sprintf("ChildKeys{enc:%d integ:%d octets, redacted}", len(k.EncI), len(k.IntegI))
}
func (k ChildKeys) GoString() string { return k.String() }

// DeriveIKEKeys computes the keys of a new IKE SA (RFC 7296, Section 2.14):
//
//	SKEYSEED = prf(Ni | Nr, g^ir)
//	{SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr}
//	                = prf+ (SKEYSEED, Ni | Nr | SPIi | SPIr)
//
// Ni and Nr are the nonce payload bodies, shared is g^ir from DH.Shared,
// spii/spir the IKE SA SPIs. For the HMAC PRFs the whole Ni | Nr is the key
// (only fixed-key PRFs such as AES-XCBC, unsupported here, split it).
func DeriveIKEKeys(alg ipsec.Algorithms, ni, nr, shared []byte, spii, spir uint64) (*IKEKeys, error) {
	if err := checkNonces(ni, nr); err != nil {
		return nil, err
	}
	return deriveIKEKeys(alg, ni, nr, shared, spii, spir)
}

// deriveIKEKeys is DeriveIKEKeys without the nonce length policy, so that
// known-answer tests with short nonces (NIST CAVS) can run through it.
func deriveIKEKeys(alg ipsec.Algorithms, ni, nr, shared []byte, spii, spir uint64) (*IKEKeys, error) {
	if err := CheckAlgorithms(alg, true); err != nil {
		return nil, err
	}
	if len(shared) == 0 {
		return nil, fmt.Errorf("ike/crypto: IKE key derivation needs the DH shared secret")
	}
	prf, _ := NewPRF(alg.PRF)
	skeyseed := prf.Sum(concat(ni, nr), shared)
	return expandIKEKeys(alg, prf, skeyseed, ni, nr, spii, spir)
}

// DeriveRekeyedIKEKeys computes the keys of the IKE SA created by an IKE SA
// rekey (RFC 7296, Section 2.18):
//
//	SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr)
//
// with the old SA's PRF (oldPRF) and SK_d (oldSKd); the seven keys then
// come from prf+ of the new SA's PRF (alg.PRF) as in Section 2.14. ni and
// nr are the nonces of the CREATE_CHILD_SA exchange (Ni from its
// initiator), spii/spir the new SA's SPIs.
func DeriveRekeyedIKEKeys(alg ipsec.Algorithms, oldPRF ipsec.PRFID, oldSKd, shared, ni, nr []byte, spii, spir uint64) (*IKEKeys, error) {
	old, err := NewPRF(oldPRF)
	if err != nil {
		return nil, err
	}
	if err := checkNonces(ni, nr); err != nil {
		return nil, err
	}
	return deriveRekeyedIKEKeys(alg, old, oldSKd, shared, ni, nr, spii, spir)
}

func deriveRekeyedIKEKeys(alg ipsec.Algorithms, old PRF, oldSKd, shared, ni, nr []byte, spii, spir uint64) (*IKEKeys, error) {
	if err := CheckAlgorithms(alg, true); err != nil {
		return nil, err
	}
	if len(oldSKd) == 0 {
		return nil, fmt.Errorf("ike/crypto: IKE SA rekey needs SK_d of the old IKE SA")
	}
	if len(shared) == 0 {
		return nil, fmt.Errorf("ike/crypto: IKE SA rekey needs the DH shared secret of the new exchange")
	}
	skeyseed := old.Sum(oldSKd, concat(shared, ni, nr))
	prf, _ := NewPRF(alg.PRF)
	return expandIKEKeys(alg, prf, skeyseed, ni, nr, spii, spir)
}

func expandIKEKeys(alg ipsec.Algorithms, prf PRF, skeyseed, ni, nr []byte, spii, spir uint64) (*IKEKeys, error) {
	encLen, err := EncrKeyLen(alg.Encr, alg.KeyBits)
	if err != nil {
		return nil, err
	}
	integLen, err := IntegKeyLen(alg.Integ)
	if err != nil {
		return nil, err
	}
	prfLen := prf.Size()
	var spis [16]byte
	binary.BigEndian.PutUint64(spis[:8], spii)
	binary.BigEndian.PutUint64(spis[8:], spir)
	total := 3*prfLen + 2*integLen + 2*encLen
	km := prf.Plus(skeyseed, concat(ni, nr, spis[:]), total)
	if len(km) != total {
		return nil, errShortKey
	}
	s := splitter{b: km}
	k := &IKEKeys{
		SKd:  s.next(prfLen),
		SKai: s.next(integLen),
		SKar: s.next(integLen),
		SKei: s.next(encLen),
		SKer: s.next(encLen),
		SKpi: s.next(prfLen),
		SKpr: s.next(prfLen),
	}
	return k, nil
}

// DeriveChildKeys computes the KEYMAT of a CHILD SA (RFC 7296, Section 2.17):
//
//	KEYMAT = prf+(SK_d, Ni | Nr)                 without PFS (shared nil)
//	KEYMAT = prf+(SK_d, g^ir (new) | Ni | Nr)    with PFS
//
// taken in the order encryption key I->R, integrity key I->R, encryption
// key R->I, integrity key R->I. prf is the IKE SA's PRF, esp the CHILD SA's
// algorithms; for the first CHILD SA ni and nr are the IKE_SA_INIT nonces.
func DeriveChildKeys(prf ipsec.PRFID, skd []byte, esp ipsec.Algorithms, shared, ni, nr []byte) (*ChildKeys, error) {
	p, err := NewPRF(prf)
	if err != nil {
		return nil, err
	}
	if err := CheckAlgorithms(esp, false); err != nil {
		return nil, err
	}
	if len(skd) == 0 {
		return nil, fmt.Errorf("ike/crypto: CHILD SA key derivation needs SK_d")
	}
	if err := checkNonces(ni, nr); err != nil {
		return nil, err
	}
	return deriveChildKeys(p, skd, esp, shared, ni, nr)
}

func deriveChildKeys(p PRF, skd []byte, esp ipsec.Algorithms, shared, ni, nr []byte) (*ChildKeys, error) {
	encLen, err := EncrKeyLen(esp.Encr, esp.KeyBits)
	if err != nil {
		return nil, err
	}
	integLen, err := IntegKeyLen(esp.Integ)
	if err != nil {
		return nil, err
	}
	total := 2*encLen + 2*integLen
	km := p.Plus(skd, concat(shared, ni, nr), total)
	if len(km) != total {
		return nil, errShortKey
	}
	s := splitter{b: km}
	return &ChildKeys{
		EncI:   s.next(encLen),
		IntegI: s.next(integLen),
		EncR:   s.next(encLen),
		IntegR: s.next(integLen),
	}, nil
}

// checkNonces enforces RFC 7296 Section 3.9: nonces are 16 to 256 octets.
func checkNonces(ni, nr []byte) error {
	for _, n := range []struct {
		name string
		b    []byte
	}{{"Ni", ni}, {"Nr", nr}} {
		if len(n.b) < minNonceLen || len(n.b) > maxNonceLen {
			return fmt.Errorf("ike/crypto: nonce %s is %d octets; RFC 7296 Section 3.9 requires 16 to 256", n.name, len(n.b))
		}
	}
	return nil
}

// splitter hands out consecutive, non-overlapping slices of b; zero-length
// keys come out as nil.
type splitter struct{ b []byte }

func (s *splitter) next(n int) []byte {
	if n == 0 {
		return nil
	}
	k := s.b[:n:n]
	s.b = s.b[n:]
	return k
}

func concat(parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	out := make([]byte, 0, n)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
