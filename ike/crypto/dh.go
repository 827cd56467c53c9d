package crypto

import (
	"crypto/ecdh"
	"crypto/rand"
	"fmt"
	"io"
	"math/big"
	"sync"

	"github.com/cgwproject/cgw/ipsec"
)

// DH is one side of an IKEv2 Diffie-Hellman exchange: a fresh private value
// and its public value in the KE payload encoding of the group. Shared
// validates the peer's public value before using it and returns g^ir in the
// encoding RFC 7296 uses for SKEYSEED and KEYMAT. A DH belongs to one
// exchange; it is not meant for concurrent use.
type DH interface {
	Group() ipsec.DHGroup
	// Public returns the Key Exchange Data of the KE payload (RFC 7296,
	// Section 3.4). The caller must not modify it.
	Public() []byte
	// Shared validates peerPublic and returns the shared secret g^ir.
	Shared(peerPublic []byte) ([]byte, error)
	// Destroy overwrites the private value where Go lets us (the MODP
	// exponent; crypto/ecdh keys are opaque, so for ECP and Curve25519 the
	// reference is dropped). The DH must not be used afterwards.
	Destroy()
}

// CheckPublic validates a peer's Key Exchange Data for group g without a
// private key and without any exponentiation or scalar multiplication, so
// a responder can refuse an unusable value before paying for
// Diffie-Hellman: the length (RFC 7296 Section 3.4), 1 < y < p-1 for MODP
// (RFC 6989 Section 2.1), a point on the curve for ECP (RFC 6989 Section
// 2.3). Curve25519 values are only checked for length here; Shared rejects
// the all-zero shared secret of a low-order value (RFC 8031 Section 2.3).
// An unsupported group is an error.
func CheckPublic(g ipsec.DHGroup, peer []byte) error {
	grp := lookupDH(g)
	if grp == nil {
		return errUnsupportedDH(g)
	}
	switch grp.kind {
	case dhMODP:
		mp := grp.params()
		if len(peer) != mp.byteLen {
			return fmt.Errorf("ike/crypto: %s: peer public value is %d octets, want %d", grp.name, len(peer), mp.byteLen)
		}
		y := new(big.Int).SetBytes(peer)
		if y.Cmp(big.NewInt(1)) <= 0 || y.Cmp(mp.pMinus1) >= 0 {
			return fmt.Errorf("ike/crypto: %s: peer public value is not in the range 1 < y < p-1 (RFC 6989 Section 2.1)", grp.name)
		}
	case dhECP:
		if len(peer) != 2*grp.coordLen {
			return fmt.Errorf("ike/crypto: %s: peer public value is %d octets, want %d (x || y)", grp.name, len(peer), 2*grp.coordLen)
		}
		enc := make([]byte, 1+len(peer))
		enc[0] = 4
		copy(enc[1:], peer)
		if _, err := grp.curve().NewPublicKey(enc); err != nil {
			return fmt.Errorf("ike/crypto: %s: peer public value is not a point on the curve", grp.name)
		}
	case dhX25519:
		if len(peer) != 32 {
			return fmt.Errorf("ike/crypto: %s: peer public value is %d octets, want 32", grp.name, len(peer))
		}
	}
	return nil
}

// dhKind tells how a group's values are encoded and computed.
type dhKind uint8

const (
	dhMODP dhKind = iota + 1
	dhECP
	dhX25519
)

// dhGroup is one Transform Type 4 entry.
type dhGroup struct {
	id   ipsec.DHGroup
	name string
	kind dhKind
	// MODP: p, g (and q for RFC 5114 groups) as hex; expBits is the private
	// exponent length for safe-prime groups (RFC 3526 Section 8 strength
	// estimates, doubled); RFC 5114 groups draw x from [1, q-1].
	p, g, q string
	expBits int
	// ECP and X25519. coordLen is the octets of one ECP coordinate.
	curve    func() ecdh.Curve
	coordLen int
	// params is parsed once on first use.
	params func() *modpParams
}

type modpParams struct {
	p, g, q  *big.Int // q nil for safe-prime groups
	pMinus1  *big.Int
	byteLen  int
	qMinus1  *big.Int
	expBytes int
}

// dhGroups lists every DH group cgw implements (IANA "Transform Type 4").
var dhGroups = []dhGroup{
	// RFC 2409 Section 6.2 and RFC 3526: safe primes, generator 2.
	{id: ipsec.DHMODP1024, name: "MODP-1024 (2)", kind: dhMODP, p: modp1024P, g: "02", expBits: 256},
	{id: ipsec.DHMODP1536, name: "MODP-1536 (5)", kind: dhMODP, p: modp1536P, g: "02", expBits: 256},
	{id: ipsec.DHMODP2048, name: "MODP-2048 (14)", kind: dhMODP, p: modp2048P, g: "02", expBits: 384},
	{id: ipsec.DHMODP3072, name: "MODP-3072 (15)", kind: dhMODP, p: modp3072P, g: "02", expBits: 384},
	{id: ipsec.DHMODP4096, name: "MODP-4096 (16)", kind: dhMODP, p: modp4096P, g: "02", expBits: 512},
	{id: ipsec.DHMODP6144, name: "MODP-6144 (17)", kind: dhMODP, p: modp6144P, g: "02", expBits: 512},
	{id: ipsec.DHMODP8192, name: "MODP-8192 (18)", kind: dhMODP, p: modp8192P, g: "02", expBits: 512},
	// RFC 5114 Sections 2.1-2.3: prime-order subgroups with their own generators.
	{id: ipsec.DHMODP1024S160, name: "MODP-1024-160 (22)", kind: dhMODP, p: modp1024s160P, g: modp1024s160G, q: modp1024s160Q},
	{id: ipsec.DHMODP2048S224, name: "MODP-2048-224 (23)", kind: dhMODP, p: modp2048s224P, g: modp2048s224G, q: modp2048s224Q},
	{id: ipsec.DHMODP2048S256, name: "MODP-2048-256 (24)", kind: dhMODP, p: modp2048s256P, g: modp2048s256G, q: modp2048s256Q},
	// RFC 5903: NIST curves, KE data x || y, shared secret x.
	{id: ipsec.DHECP256, name: "ECP-256 (19)", kind: dhECP, curve: ecdh.P256, coordLen: 32},
	{id: ipsec.DHECP384, name: "ECP-384 (20)", kind: dhECP, curve: ecdh.P384, coordLen: 48},
	{id: ipsec.DHECP521, name: "ECP-521 (21)", kind: dhECP, curve: ecdh.P521, coordLen: 66},
	// RFC 8031.
	{id: ipsec.DHCurve25519, name: "Curve25519 (31)", kind: dhX25519, curve: ecdh.X25519},
}

func init() {
	for i := range dhGroups {
		g := &dhGroups[i]
		if g.kind == dhMODP {
			g.params = sync.OnceValue(g.parse)
		}
	}
}

func (g *dhGroup) parse() *modpParams {
	mp := &modpParams{p: mustHex(g.p), g: mustHex(g.g)}
	mp.pMinus1 = new(big.Int).Sub(mp.p, big.NewInt(1))
	mp.byteLen = (mp.p.BitLen() + 7) / 8
	if g.q != "" {
		mp.q = mustHex(g.q)
		mp.qMinus1 = new(big.Int).Sub(mp.q, big.NewInt(1))
	}
	mp.expBytes = g.expBits / 8
	return mp
}

// mustHex parses a compile-time constant of this package.
func mustHex(s string) *big.Int {
	v, ok := new(big.Int).SetString(s, 16)
	if !ok {
		panic("ike/crypto: bad built-in group constant")
	}
	return v
}

func lookupDH(id ipsec.DHGroup) *dhGroup {
	for i := range dhGroups {
		if dhGroups[i].id == id {
			return &dhGroups[i]
		}
	}
	return nil
}

// KELen returns the length of the Key Exchange Data of group g (RFC 7296
// Section 3.4, RFC 5903 Section 7, RFC 8031 Section 2), or 0 if unsupported.
func KELen(g ipsec.DHGroup) int {
	grp := lookupDH(g)
	if grp == nil {
		return 0
	}
	switch grp.kind {
	case dhMODP:
		return grp.params().byteLen
	case dhECP:
		return 2 * grp.coordLen
	case dhX25519:
		return 32
	}
	return 0
}

// NewDH creates a fresh private value for group g, drawing randomness from
// rand (crypto/rand.Reader when nil). The private value is derived from rand
// directly, so a deterministic reader yields a deterministic key (tests).
func NewDH(g ipsec.DHGroup, rand io.Reader) (DH, error) {
	grp := lookupDH(g)
	if grp == nil {
		return nil, errUnsupportedDH(g)
	}
	if rand == nil {
		rand = defaultRand
	}
	switch grp.kind {
	case dhMODP:
		return newMODP(grp, rand)
	case dhECP:
		return newECP(grp, rand)
	case dhX25519:
		return newX25519(grp, rand)
	}
	return nil, errUnsupportedDH(g)
}

var defaultRand io.Reader = rand.Reader

// --- MODP (RFC 2409, RFC 3526, RFC 5114) ---
//
// The exponentiations use math/big, which is not constant time. The private
// values are ephemeral (one per exchange), which bounds what a timing
// observer could learn; prefer the ECP and Curve25519 groups, whose
// crypto/ecdh implementations are constant time.

type modpDH struct {
	grp *dhGroup
	mp  *modpParams
	x   *big.Int
	pub []byte
}

func newMODP(grp *dhGroup, r io.Reader) (DH, error) {
	mp := grp.params()
	var x *big.Int
	if mp.q != nil {
		// RFC 5114 groups: x uniform in [1, q-1] (NIST SP 800-56A 5.6.1.1).
		v, err := rand.Int(r, mp.qMinus1)
		if err != nil {
			return nil, fmt.Errorf("ike/crypto: %s private value: %w", grp.name, err)
		}
		x = v.Add(v, big.NewInt(1))
	} else {
		// Safe-prime groups: a short exponent of twice the group's
		// strength with its top bit set, so it is never small.
		b := make([]byte, mp.expBytes)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, fmt.Errorf("ike/crypto: %s private value: %w", grp.name, err)
		}
		b[0] |= 0x80
		x = new(big.Int).SetBytes(b)
	}
	y := new(big.Int).Exp(mp.g, x, mp.p)
	return &modpDH{grp: grp, mp: mp, x: x, pub: y.FillBytes(make([]byte, mp.byteLen))}, nil
}

func (d *modpDH) Group() ipsec.DHGroup { return d.grp.id }

func (d *modpDH) Destroy() {
	if d.x != nil {
		w := d.x.Bits()
		clear(w)
		d.x = nil
	}
}
func (d *modpDH) Public() []byte { return d.pub }

// Shared checks the peer value per RFC 7296 Section 3.4 (length equal to
// the prime's), RFC 6989 Section 2.1 (1 < y < p-1) and, for the RFC 5114
// groups, RFC 6989 Section 2.2 (y^q = 1 mod p), then returns y^x mod p
// left-padded to the prime's length (RFC 7296 Section 2.14).
func (d *modpDH) Shared(peer []byte) ([]byte, error) {
	if len(peer) != d.mp.byteLen {
		return nil, fmt.Errorf("ike/crypto: %s: peer public value is %d octets, want %d", d.grp.name, len(peer), d.mp.byteLen)
	}
	y := new(big.Int).SetBytes(peer)
	if y.Cmp(big.NewInt(1)) <= 0 || y.Cmp(d.mp.pMinus1) >= 0 {
		return nil, fmt.Errorf("ike/crypto: %s: peer public value is not in the range 1 < y < p-1 (RFC 6989 Section 2.1)", d.grp.name)
	}
	if d.mp.q != nil {
		if new(big.Int).Exp(y, d.mp.q, d.mp.p).Cmp(big.NewInt(1)) != 0 {
			return nil, fmt.Errorf("ike/crypto: %s: peer public value is not in the prime-order subgroup (y^q mod p != 1, RFC 6989 Section 2.2)", d.grp.name)
		}
	}
	z := new(big.Int).Exp(y, d.x, d.mp.p)
	if z.Cmp(big.NewInt(1)) == 0 {
		return nil, fmt.Errorf("ike/crypto: %s: shared secret is 1, peer public value has small order", d.grp.name)
	}
	return z.FillBytes(make([]byte, d.mp.byteLen)), nil
}

// --- ECP (RFC 5903) ---

type ecpDH struct {
	grp  *dhGroup
	priv *ecdh.PrivateKey
	pub  []byte
}

// maxScalarTries bounds rejection sampling of ECP private scalars; for the
// NIST curves one try fails with probability below 2^-32 (P-256) or much
// less, so hitting the bound means the reader is broken.
const maxScalarTries = 64

func newECP(grp *dhGroup, r io.Reader) (DH, error) {
	c := grp.curve()
	b := make([]byte, grp.coordLen)
	for range maxScalarTries {
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, fmt.Errorf("ike/crypto: %s private value: %w", grp.name, err)
		}
		if grp.coordLen == 66 {
			b[0] &= 0x01 // P-521: the group order has 521 bits
		}
		priv, err := c.NewPrivateKey(b) // rejects 0 and values >= the order
		if err != nil {
			continue
		}
		// RFC 5903 Section 7: KE data is x || y, without the SEC1 0x04 prefix.
		return &ecpDH{grp: grp, priv: priv, pub: priv.PublicKey().Bytes()[1:]}, nil
	}
	return nil, fmt.Errorf("ike/crypto: %s private value: random source yields no valid scalar", grp.name)
}

func (d *ecpDH) Group() ipsec.DHGroup { return d.grp.id }
func (d *ecpDH) Destroy()             { d.priv = nil }
func (d *ecpDH) Public() []byte       { return d.pub }

// Shared checks that the peer's x || y is a point on the curve (crypto/ecdh
// rejects off-curve points and the point at infinity, RFC 6989 Section 2.3)
// and returns the x coordinate of the shared point (RFC 5903 Section 7 as
// corrected by its errata: the shared secret is x only).
func (d *ecpDH) Shared(peer []byte) ([]byte, error) {
	if len(peer) != len(d.pub) {
		return nil, fmt.Errorf("ike/crypto: %s: peer public value is %d octets, want %d (x || y)", d.grp.name, len(peer), len(d.pub))
	}
	enc := make([]byte, 1+len(peer))
	enc[0] = 4
	copy(enc[1:], peer)
	pub, err := d.grp.curve().NewPublicKey(enc)
	if err != nil {
		return nil, fmt.Errorf("ike/crypto: %s: peer public value is not a point on the curve", d.grp.name)
	}
	z, err := d.priv.ECDH(pub)
	if err != nil {
		return nil, fmt.Errorf("ike/crypto: %s: key agreement failed: %v", d.grp.name, err)
	}
	return z, nil
}

// --- Curve25519 (RFC 8031) ---

type x25519DH struct {
	grp  *dhGroup
	priv *ecdh.PrivateKey
	pub  []byte
}

func newX25519(grp *dhGroup, r io.Reader) (DH, error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("ike/crypto: %s private value: %w", grp.name, err)
	}
	priv, err := ecdh.X25519().NewPrivateKey(b) // RFC 7748 clamping is applied inside
	if err != nil {
		return nil, fmt.Errorf("ike/crypto: %s private value: %v", grp.name, err)
	}
	return &x25519DH{grp: grp, priv: priv, pub: priv.PublicKey().Bytes()}, nil
}

func (d *x25519DH) Group() ipsec.DHGroup { return d.grp.id }
func (d *x25519DH) Destroy()             { d.priv = nil }
func (d *x25519DH) Public() []byte       { return d.pub }

// Shared returns X25519(k, peer) and rejects the all-zero output of a
// low-order peer value (RFC 8031 Section 2.3, RFC 7748 Section 6.1).
func (d *x25519DH) Shared(peer []byte) ([]byte, error) {
	if len(peer) != 32 {
		return nil, fmt.Errorf("ike/crypto: %s: peer public value is %d octets, want 32", d.grp.name, len(peer))
	}
	pub, err := ecdh.X25519().NewPublicKey(peer)
	if err != nil {
		return nil, fmt.Errorf("ike/crypto: %s: bad peer public value", d.grp.name)
	}
	z, err := d.priv.ECDH(pub)
	if err != nil || isZero(z) {
		return nil, fmt.Errorf("ike/crypto: %s: peer public value has low order (all-zero shared secret, RFC 8031 Section 2.3)", d.grp.name)
	}
	return z, nil
}

func isZero(b []byte) bool {
	var acc byte
	for _, v := range b {
		acc |= v
	}
	return acc == 0
}
