package esp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/cgwproject/cgw/ipsec"
)

// testAlg is one algorithm under test with its key lengths.
type testAlg struct {
	name     string
	alg      ipsec.Algorithms
	encLen   int
	integLen int
}

var testAlgs = []testAlg{
	{"aes128gcm16", ipsec.Algorithms{Encr: ipsec.EncrAESGCM16, KeyBits: 128}, 20, 0},
	{"aes256gcm16", ipsec.Algorithms{Encr: ipsec.EncrAESGCM16, KeyBits: 256}, 36, 0},
	{"chacha20poly1305", ipsec.Algorithms{Encr: ipsec.EncrChaCha20Poly1305}, 36, 0},
	{"aes128-sha1", ipsec.Algorithms{Encr: ipsec.EncrAESCBC, KeyBits: 128, Integ: ipsec.IntegHMACSHA1_96}, 16, 20},
	{"aes256-sha1", ipsec.Algorithms{Encr: ipsec.EncrAESCBC, KeyBits: 256, Integ: ipsec.IntegHMACSHA1_96}, 32, 20},
	{"aes128-sha256", ipsec.Algorithms{Encr: ipsec.EncrAESCBC, KeyBits: 128, Integ: ipsec.IntegHMACSHA2_256_128}, 16, 32},
	{"aes256-sha256", ipsec.Algorithms{Encr: ipsec.EncrAESCBC, KeyBits: 256, Integ: ipsec.IntegHMACSHA2_256_128}, 32, 32},
	{"aes256-sha384", ipsec.Algorithms{Encr: ipsec.EncrAESCBC, KeyBits: 256, Integ: ipsec.IntegHMACSHA2_384_192}, 32, 48},
	{"aes256-sha512", ipsec.Algorithms{Encr: ipsec.EncrAESCBC, KeyBits: 256, Integ: ipsec.IntegHMACSHA2_512_256}, 32, 64},
}

func seqBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

// params returns SAParams for ta with deterministic keys; esn toggles ESN.
func (ta testAlg) params(spi ipsec.SPI, esn bool) ipsec.SAParams {
	alg := ta.alg
	alg.ESN = esn
	p := ipsec.SAParams{SPI: spi, Alg: alg, EncKey: seqBytes(ta.encLen, 0x11), ReplayWindow: 1024}
	if ta.integLen > 0 {
		p.IntegKey = seqBytes(ta.integLen, 0x77)
	}
	return p
}

func (ta testAlg) pair(t testing.TB, esn bool) (*Outbound, *Inbound) {
	t.Helper()
	p := ta.params(0x01020304, esn)
	o, err := NewOutbound(p)
	if err != nil {
		t.Fatal(err)
	}
	in, err := NewInbound(p)
	if err != nil {
		t.Fatal(err)
	}
	return o, in
}

// ipv4Packet returns a syntactically plausible IPv4/UDP packet of n bytes.
func ipv4Packet(n int) []byte {
	b := seqBytes(n, 0x30)
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(n))
	b[9] = 17
	return b
}

// ipv6Packet returns a syntactically plausible IPv6/UDP packet of n bytes.
func ipv6Packet(n int) []byte {
	b := seqBytes(n, 0x60)
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(n-40))
	b[6] = 17
	return b
}

// seal copies inner into a fresh buffer with exactly HeadRoom/TailRoom and
// seals it, returning the ESP packet.
func seal(t testing.TB, o *Outbound, inner []byte, seq uint64) []byte {
	t.Helper()
	buf := make([]byte, o.HeadRoom()+len(inner)+o.TailRoom())
	copy(buf[o.HeadRoom():], inner)
	start, end, err := o.Seal(buf, o.HeadRoom(), len(inner), seq)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	if start != 0 {
		t.Fatalf("Seal start = %d, want 0", start)
	}
	if end-start != len(inner)+o.Overhead(len(inner)) {
		t.Fatalf("Seal length %d, Overhead says %d", end-start, len(inner)+o.Overhead(len(inner)))
	}
	return buf[start:end]
}

func TestRoundTrip(t *testing.T) {
	for _, ta := range testAlgs {
		for _, esn := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/esn=%v", ta.name, esn), func(t *testing.T) {
				o, in := ta.pair(t, esn)
				for _, tc := range []struct {
					inner []byte
					nh    byte
				}{
					{ipv4Packet(20), NextHeaderIPv4},
					{ipv4Packet(84), NextHeaderIPv4},
					{ipv4Packet(1400), NextHeaderIPv4},
					{ipv6Packet(40), NextHeaderIPv6},
					{ipv6Packet(41), NextHeaderIPv6},
					{ipv6Packet(1280), NextHeaderIPv6},
				} {
					for n := len(tc.inner); n < len(tc.inner)+17; n++ {
						inner := append(append([]byte(nil), tc.inner...), seqBytes(n-len(tc.inner), 1)...)
						seq, soft, err := o.NextSeq()
						if err != nil || soft {
							t.Fatalf("NextSeq = %d, %v, %v", seq, soft, err)
						}
						pkt := seal(t, o, inner, seq)
						if spi, ok := ParseSPI(pkt); !ok || spi != in.SPI() {
							t.Fatalf("ParseSPI = %v, %v", spi, ok)
						}
						if ctLen := len(pkt) - o.HeadRoom() - o.t.icvLen; ctLen%o.t.align != 0 {
							t.Fatalf("ciphertext length %d not aligned to %d", ctLen, o.t.align)
						}
						got, nh, gotSeq, err := in.Open(pkt)
						if err != nil {
							t.Fatalf("Open(len %d): %v", n, err)
						}
						if !bytes.Equal(got, inner) || nh != tc.nh || gotSeq != seq {
							t.Fatalf("Open = %x nh %d seq %d; want %x nh %d seq %d", got, nh, gotSeq, inner, tc.nh, seq)
						}
						if !in.Accept(gotSeq) {
							t.Fatalf("Accept(%d) = false", gotSeq)
						}
					}
				}
			})
		}
	}
}

func TestTamper(t *testing.T) {
	for _, ta := range testAlgs {
		t.Run(ta.name, func(t *testing.T) {
			o, in := ta.pair(t, false)
			orig := seal(t, o, ipv4Packet(100), 7)
			for i := 4; i < len(orig); i++ { // byte 0..3 = SPI: ErrMalformed, tested below
				pkt := bytes.Clone(orig)
				pkt[i] ^= 0x01
				if _, _, _, err := in.Open(pkt); err != ErrAuth {
					t.Fatalf("flip byte %d: err = %v, want ErrAuth", i, err)
				}
			}
			pkt := bytes.Clone(orig)
			pkt[0] ^= 0x80
			if _, _, _, err := in.Open(pkt); err != ErrMalformed {
				t.Fatalf("other SPI: err = %v, want ErrMalformed", err)
			}
			for n := 0; n < len(orig); n++ {
				if _, _, _, err := in.Open(bytes.Clone(orig[:n])); err == nil {
					t.Fatalf("truncated to %d: no error", n)
				}
			}
			if _, _, _, err := in.Open(append(bytes.Clone(orig), 0)); err == nil {
				t.Fatal("extended packet: no error")
			}
			// Still opens intact, then is a replay once accepted.
			_, _, seq, err := in.Open(bytes.Clone(orig))
			if err != nil || !in.Accept(seq) {
				t.Fatalf("intact packet: %v", err)
			}
			if _, _, _, err := in.Open(bytes.Clone(orig)); err != ErrReplay {
				t.Fatalf("replayed packet: err = %v, want ErrReplay", err)
			}
			if in.Accept(seq) {
				t.Fatal("Accept of a replay returned true")
			}
		})
	}
}

func TestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	for _, ta := range testAlgs {
		for _, esn := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/esn=%v", ta.name, esn), func(t *testing.T) {
				o, in := ta.pair(t, esn)
				inner := ipv4Packet(1400)
				buf := make([]byte, o.HeadRoom()+len(inner)+o.TailRoom())
				pkt := make([]byte, len(buf))
				var seq uint64
				var start, end int
				sealAllocs := testing.AllocsPerRun(200, func() {
					copy(buf[o.HeadRoom():], inner)
					var err error
					seq, _, err = o.NextSeq()
					if err != nil {
						t.Fatal(err)
					}
					if start, end, err = o.Seal(buf, o.HeadRoom(), len(inner), seq); err != nil {
						t.Fatal(err)
					}
				})
				if sealAllocs != 0 {
					t.Errorf("Seal: %v allocs/op, want 0", sealAllocs)
				}
				pkt = pkt[:end-start]
				copy(pkt, buf[start:end])
				sealed := bytes.Clone(pkt)
				openAllocs := testing.AllocsPerRun(200, func() {
					copy(pkt, sealed)
					if _, _, _, err := in.Open(pkt); err != nil {
						t.Fatal(err)
					}
				})
				if openAllocs != 0 {
					t.Errorf("Open: %v allocs/op, want 0", openAllocs)
				}
				acceptAllocs := testing.AllocsPerRun(200, func() {
					seq++
					in.Accept(seq)
				})
				if acceptAllocs != 0 {
					t.Errorf("Accept: %v allocs/op, want 0", acceptAllocs)
				}
			})
		}
	}
}

func TestErrorsAreDistinct(t *testing.T) {
	all := []error{ErrAuth, ErrReplay, ErrMalformed, ErrPadding, ErrSeqExhausted, ErrDummy, ErrBufferTooSmall}
	for i, a := range all {
		for j, b := range all {
			if i != j && errors.Is(a, b) {
				t.Errorf("%v is %v", a, b)
			}
		}
		if a.Error()[:5] != "esp: " {
			t.Errorf("%q lacks the esp: prefix", a)
		}
	}
}
