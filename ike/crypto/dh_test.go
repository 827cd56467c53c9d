package crypto

import (
	"bytes"
	"crypto/rand"
	"math/big"
	"strings"
	"testing"

	"github.com/cgwproject/cgw/ipsec"
)

// TestDHAgreeAllGroups runs both sides of every group and checks that they
// agree, that the public value has the KE payload length and that a bad
// public value length is rejected.
func TestDHAgreeAllGroups(t *testing.T) {
	for _, g := range dhGroups {
		t.Run(g.name, func(t *testing.T) {
			a, err := NewDH(g.id, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, err := NewDH(g.id, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			if a.Group() != g.id {
				t.Errorf("Group() = %d, want %d", a.Group(), g.id)
			}
			if len(a.Public()) != KELen(g.id) {
				t.Errorf("len(Public()) = %d, want KELen %d", len(a.Public()), KELen(g.id))
			}
			if bytes.Equal(a.Public(), b.Public()) {
				t.Fatal("two fresh keys have the same public value")
			}
			za, err := a.Shared(b.Public())
			if err != nil {
				t.Fatal(err)
			}
			zb, err := b.Shared(a.Public())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(za, zb) {
				t.Fatal("the two sides computed different shared secrets")
			}
			wantZ := KELen(g.id)
			if g.kind == dhECP {
				wantZ /= 2 // x coordinate only (RFC 5903 errata)
			}
			if len(za) != wantZ {
				t.Errorf("len(shared) = %d, want %d", len(za), wantZ)
			}
			for _, bad := range [][]byte{nil, a.Public()[1:], append(bytes.Clone(a.Public()), 0)} {
				if _, err := a.Shared(bad); err == nil {
					t.Errorf("Shared accepted a %d-octet public value", len(bad))
				} else if !strings.Contains(err.Error(), g.name) {
					t.Errorf("error %q does not name the group", err)
				}
			}
		})
	}
}

func TestMODPRejectsBadPublicValues(t *testing.T) {
	for _, g := range dhGroups {
		if g.kind != dhMODP {
			continue
		}
		t.Run(g.name, func(t *testing.T) {
			d, err := NewDH(g.id, nil)
			if err != nil {
				t.Fatal(err)
			}
			mp := g.params()
			enc := func(v *big.Int) []byte { return v.FillBytes(make([]byte, mp.byteLen)) }
			bad := map[string]*big.Int{
				"0":   big.NewInt(0),
				"1":   big.NewInt(1),
				"p-1": mp.pMinus1,
				"p":   mp.p,
			}
			if mp.q != nil {
				// 2 is not in the order-q subgroup of the RFC 5114 groups
				// (their generators are not 2), so y^q != 1.
				bad["outside subgroup"] = big.NewInt(2)
			}
			for name, v := range bad {
				if _, err := d.Shared(enc(v)); err == nil {
					t.Errorf("accepted y = %s", name)
				} else if !strings.Contains(err.Error(), g.name) {
					t.Errorf("y = %s: error %q does not name the group", name, err)
				}
			}
			all := bytes.Repeat([]byte{0xff}, mp.byteLen) // > p
			if _, err := d.Shared(all); err == nil {
				t.Error("accepted y > p")
			}
		})
	}
}

// TestMODPParams checks the generated constants independently: the safe
// primes against their definition from the binary expansion of pi
// (RFC 2409 Section 6.2, RFC 3526), the RFC 5114 groups for q | p-1,
// g^q = 1 and primality.
func TestMODPParams(t *testing.T) {
	offsets := map[ipsec.DHGroup]struct {
		bits int
		c    int64
	}{
		ipsec.DHMODP1024: {1024, 129093},
		ipsec.DHMODP1536: {1536, 741804},
		ipsec.DHMODP2048: {2048, 124476},
		ipsec.DHMODP3072: {3072, 1690314},
		ipsec.DHMODP4096: {4096, 240904},
		ipsec.DHMODP6144: {6144, 929484},
		ipsec.DHMODP8192: {8192, 4743158},
	}
	pi := piFixed(8192)
	one := big.NewInt(1)
	for _, g := range dhGroups {
		if g.kind != dhMODP {
			continue
		}
		mp := g.params()
		if o, ok := offsets[g.id]; ok {
			// p = 2^n - 2^(n-64) - 1 + 2^64 * ( [2^(n-130) pi] + c )
			n := o.bits
			want := new(big.Int).Lsh(one, uint(n))
			want.Sub(want, new(big.Int).Lsh(one, uint(n-64)))
			want.Sub(want, one)
			floor := new(big.Int).Rsh(pi, uint(8192-(n-130))) // pi is scaled by 2^8192
			floor.Add(floor, big.NewInt(o.c))
			want.Add(want, floor.Lsh(floor, 64))
			if mp.p.Cmp(want) != 0 {
				t.Errorf("%s: prime does not match its pi-based definition", g.name)
			}
			if mp.g.Cmp(big.NewInt(2)) != 0 {
				t.Errorf("%s: generator is not 2", g.name)
			}
			continue
		}
		if new(big.Int).Mod(mp.pMinus1, mp.q).Sign() != 0 {
			t.Errorf("%s: q does not divide p-1", g.name)
		}
		if new(big.Int).Exp(mp.g, mp.q, mp.p).Cmp(one) != 0 {
			t.Errorf("%s: g^q mod p != 1", g.name)
		}
		if !mp.q.ProbablyPrime(8) || !mp.p.ProbablyPrime(2) {
			t.Errorf("%s: p or q is not prime", g.name)
		}
	}
	// Spot checks against the RFC 5114 text.
	for _, c := range []struct{ got, prefix string }{
		{modp1024s160P, "B10B8F96A080E01DDE92DE5EAE5D54EC"},
		{modp1024s160Q, "F518AA8781A8DF278ABA4E7D64B7CB9D49462353"},
		{modp2048s224P, "AD107E1E9123A9D0D660FAA79559C51F"},
		{modp2048s224Q, "801C0D34C58D93FE997177101F80535A4738CEBCBF389A99B36371EB"},
		{modp2048s256G, "3FB32C9B73134D0B2E77506660EDBD48"},
		{modp2048s256Q, "8CF83642A709A097B447997640129DA299B1A47D1EB3750BA308B0FE64F5FBD3"},
	} {
		if !strings.HasPrefix(c.got, c.prefix) {
			t.Errorf("constant %.16s... does not start with %s", c.got, c.prefix)
		}
	}
}

// piFixed returns floor(pi * 2^bits), computed with Machin's formula
// pi = 16 atan(1/5) - 4 atan(1/239) in fixed point with guard bits.
func piFixed(bits uint) *big.Int {
	const guard = 64
	scale := new(big.Int).Lsh(big.NewInt(1), bits+guard)
	atanInv := func(x int64) *big.Int {
		// atan(1/x) = sum (-1)^k / ((2k+1) x^(2k+1))
		sum := new(big.Int)
		xx := big.NewInt(x * x)
		term := new(big.Int).Div(scale, big.NewInt(x))
		for k := int64(0); term.Sign() != 0; k++ {
			t := new(big.Int).Div(term, big.NewInt(2*k+1))
			if k%2 == 0 {
				sum.Add(sum, t)
			} else {
				sum.Sub(sum, t)
			}
			term.Div(term, xx)
		}
		return sum
	}
	pi := new(big.Int).Mul(big.NewInt(16), atanInv(5))
	pi.Sub(pi, new(big.Int).Mul(big.NewInt(4), atanInv(239)))
	return pi.Rsh(pi, guard)
}

// fixedReader returns its bytes, then fails.
type fixedReader struct{ b []byte }

func (r *fixedReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, errEOFTest
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

type testErr string

func (e testErr) Error() string { return string(e) }

const errEOFTest = testErr("fixedReader exhausted")

func TestNewDHUsesRand(t *testing.T) {
	seed := bytes.Repeat([]byte{0x42}, 64)
	for _, g := range dhGroups {
		a, err := NewDH(g.id, &fixedReader{b: bytes.Repeat(seed, 4)})
		if err != nil {
			t.Fatalf("%s: %v", g.name, err)
		}
		b, err := NewDH(g.id, &fixedReader{b: bytes.Repeat(seed, 4)})
		if err != nil {
			t.Fatalf("%s: %v", g.name, err)
		}
		if !bytes.Equal(a.Public(), b.Public()) {
			t.Errorf("%s: same random input gave different public values", g.name)
		}
		if _, err := NewDH(g.id, &fixedReader{}); err == nil {
			t.Errorf("%s: NewDH succeeded with a failing random source", g.name)
		}
	}
	if _, err := NewDH(ipsec.DHGroup(1), nil); err == nil {
		t.Error("NewDH accepted the unsupported group 1")
	}
}

// TestCheckPublic: a valid public value of every group passes; wrong
// lengths, MODP values outside 1 < y < p-1 and ECP points off the curve are
// refused without a private key.
func TestCheckPublic(t *testing.T) {
	for _, g := range dhGroups {
		t.Run(g.name, func(t *testing.T) {
			d, err := NewDH(g.id, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := CheckPublic(g.id, d.Public()); err != nil {
				t.Fatalf("refused a valid public value: %v", err)
			}
			bad := [][]byte{nil, d.Public()[1:], append(bytes.Clone(d.Public()), 0)}
			switch g.kind {
			case dhMODP:
				mp := g.params()
				for _, v := range []*big.Int{big.NewInt(0), big.NewInt(1), mp.pMinus1, mp.p} {
					bad = append(bad, v.FillBytes(make([]byte, mp.byteLen)))
				}
			case dhECP:
				off := bytes.Clone(d.Public())
				off[len(off)-1] ^= 1 // y changed: off the curve
				bad = append(bad, off, make([]byte, len(off)))
			}
			for i, b := range bad {
				if err := CheckPublic(g.id, b); err == nil {
					t.Errorf("bad value %d (%d octets) accepted", i, len(b))
				} else if !strings.Contains(err.Error(), g.name) {
					t.Errorf("error %q does not name the group", err)
				}
			}
			d.Destroy()
		})
	}
	if err := CheckPublic(ipsec.DHGroup(9999), []byte{1}); err == nil {
		t.Error("unsupported group accepted")
	}
}
