package esp

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/cgwproject/cgw/ipsec"
)

func TestNextSeq(t *testing.T) {
	ta := testAlgs[0]
	o, _ := ta.pair(t, false)
	if seq, soft, err := o.NextSeq(); seq != 1 || soft || err != nil {
		t.Fatalf("first NextSeq = %d, %v, %v; want 1, false, nil", seq, soft, err)
	}
	o.seq.Store(SoftSeq32 - 2)
	if seq, soft, _ := o.NextSeq(); seq != SoftSeq32-1 || soft {
		t.Fatalf("before threshold: %d, soft %v", seq, soft)
	}
	if seq, soft, _ := o.NextSeq(); seq != SoftSeq32 || !soft {
		t.Fatalf("at threshold: %d, soft %v", seq, soft)
	}
	o.seq.Store(1<<32 - 2)
	if seq, _, err := o.NextSeq(); seq != 1<<32-1 || err != nil {
		t.Fatalf("last 32-bit seq: %d, %v", seq, err)
	}
	for range 3 {
		if _, _, err := o.NextSeq(); err != ErrSeqExhausted {
			t.Fatalf("after 2^32-1: err = %v, want ErrSeqExhausted", err)
		}
	}
	buf := make([]byte, 200)
	buf[o.HeadRoom()] = 0x45
	if _, _, err := o.Seal(buf, o.HeadRoom(), 20, 1<<32); err != ErrSeqExhausted {
		t.Fatalf("Seal(seq 2^32) without ESN: %v", err)
	}

	oe, _ := ta.pair(t, true)
	oe.seq.Store(1<<32 - 1)
	if seq, soft, err := oe.NextSeq(); seq != 1<<32 || soft || err != nil {
		t.Fatalf("ESN crossing 2^32: %d, %v, %v", seq, soft, err)
	}
	oe.seq.Store(1<<64 - 2)
	if seq, soft, err := oe.NextSeq(); seq != 1<<64-1 || !soft || err != nil {
		t.Fatalf("ESN last: %#x, %v, %v", seq, soft, err)
	}
	if _, _, err := oe.NextSeq(); err != ErrSeqExhausted {
		t.Fatalf("ESN after 2^64-1: %v", err)
	}
}

func TestNextSeqConcurrent(t *testing.T) {
	o, _ := testAlgs[0].pair(t, false)
	const workers, per = 4, 5000
	seen := make([][]uint64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range per {
				s, _, err := o.NextSeq()
				if err != nil {
					t.Error(err)
					return
				}
				seen[w] = append(seen[w], s)
			}
		})
	}
	wg.Wait()
	all := make(map[uint64]bool)
	for _, s := range seen {
		for _, v := range s {
			if all[v] {
				t.Fatalf("seq %d reserved twice", v)
			}
			all[v] = true
		}
	}
	for v := uint64(1); v <= workers*per; v++ {
		if !all[v] {
			t.Fatalf("seq %d never reserved", v)
		}
	}
}

func TestInferESN(t *testing.T) {
	const w = 1024
	for _, tc := range []struct {
		top  uint64
		lo   uint32
		want uint64
	}{
		{top: 0, lo: 1, want: 1},
		{top: 5000, lo: 4000, want: 4000},                   // case A, in window
		{top: 5000, lo: 6000, want: 6000},                   // case A, ahead
		{top: 5000, lo: 100, want: 1<<32 + 100},             // case A, far behind: next subspace
		{top: 1<<32 - 10, lo: 5, want: 1<<32 + 5},           // case A, wrapped forward
		{top: 1<<32 + 10, lo: 0xfffffff0, want: 1<<32 - 16}, // case B, behind across the wrap
		{top: 1<<32 + 10, lo: 20, want: 1<<32 + 20},         // case B, ahead
		{top: 1<<32 + 10, lo: 1 << 31, want: 1<<32 + 1<<31}, // case B, far ahead
		{top: 3<<32 + 5, lo: 0xffffff00, want: 3<<32 - 256}, // case B in a later subspace
		{top: 500, lo: 0xfffffff0, want: 0xfffffff0},        // case B with Th = 0: no underflow
	} {
		if got := inferESN(tc.top, w, tc.lo); got != tc.want {
			t.Errorf("inferESN(top %#x, lo %#x) = %#x, want %#x", tc.top, tc.lo, got, tc.want)
		}
	}
}

// TestESNAcrossWrap sends a stream crossing 2^32 with reordering and
// checks that Open infers the high half and the window rejects replays.
func TestESNAcrossWrap(t *testing.T) {
	for _, ta := range []testAlg{testAlgs[1], testAlgs[6]} {
		t.Run(ta.name, func(t *testing.T) {
			o, in := ta.pair(t, true)
			start := uint64(1<<32 - 50)
			o.seq.Store(start)
			in.mu.win.Update(start)
			var pkts [][]byte
			var seqs []uint64
			for range 100 {
				seq, _, err := o.NextSeq()
				if err != nil {
					t.Fatal(err)
				}
				seqs = append(seqs, seq)
				pkts = append(pkts, seal(t, o, ipv4Packet(60), seq))
			}
			// Deliver in a shuffled but window-respecting order.
			order := []int{}
			for i := 0; i < len(pkts); i += 4 {
				for _, j := range []int{i + 3, i + 1, i, i + 2} {
					if j < len(pkts) {
						order = append(order, j)
					}
				}
			}
			for _, i := range order {
				_, _, seq, err := in.Open(bytes.Clone(pkts[i]))
				if err != nil || seq != seqs[i] {
					t.Fatalf("packet %d: seq %#x err %v, want seq %#x", i, seq, err, seqs[i])
				}
				if !in.Accept(seq) {
					t.Fatalf("Accept(%#x) = false", seq)
				}
			}
			for _, i := range []int{0, 49, 50, 99} {
				if _, _, _, err := in.Open(bytes.Clone(pkts[i])); err != ErrReplay {
					t.Fatalf("replay of packet %d: %v", i, err)
				}
			}
		})
	}
}

// sealRaw builds an AES-CBC/HMAC-SHA1 or AES-GCM packet with an arbitrary
// plaintext (payload, padding and trailer chosen by the test) so that
// Open's trailer checks can be exercised with authentic packets.
func sealRaw(t *testing.T, ta testAlg, p ipsec.SAParams, seq uint32, pt []byte) []byte {
	t.Helper()
	hdr := binary.BigEndian.AppendUint32(nil, uint32(p.SPI))
	hdr = binary.BigEndian.AppendUint32(hdr, seq)
	if ta.alg.Encr == ipsec.EncrAESGCM16 {
		b, _ := aes.NewCipher(p.EncKey[:len(p.EncKey)-4])
		g, _ := cipher.NewGCM(b)
		iv := binary.BigEndian.AppendUint64(nil, uint64(seq))
		nonce := append(append([]byte(nil), p.EncKey[len(p.EncKey)-4:]...), iv...)
		return g.Seal(append(hdr, iv...), nonce, pt, hdr)
	}
	b, _ := aes.NewCipher(p.EncKey)
	iv := bytes.Repeat([]byte{0x5a}, 16)
	ct := make([]byte, len(pt))
	cipher.NewCBCEncrypter(b, iv).CryptBlocks(ct, pt)
	out := append(append(hdr, iv...), ct...)
	mac := hmac.New(integSpecs[p.Alg.Integ].hash, p.IntegKey)
	mac.Write(out)
	return append(out, mac.Sum(nil)[:integSpecs[p.Alg.Integ].icvLen]...)
}

func TestTrailerChecks(t *testing.T) {
	for _, ta := range []testAlg{testAlgs[0], testAlgs[3]} {
		t.Run(ta.name, func(t *testing.T) {
			p := ta.params(0x99, false)
			in, err := NewInbound(p)
			if err != nil {
				t.Fatal(err)
			}
			inner := ipv4Packet(26)
			for _, tc := range []struct {
				name string
				pt   []byte
				err  error
				nh   byte
			}{
				{"good", append(bytes.Clone(inner), 1, 2, 3, 4, 4, 4), nil, 4},
				{"bad pad byte", append(bytes.Clone(inner), 1, 2, 9, 4, 4, 4), ErrPadding, 0},
				{"pad length past payload", append(bytes.Clone(inner), 1, 2, 3, 4, 200, 4), ErrPadding, 0},
				{"pad length = whole", append(bytes.Clone(inner[:14]), 14, 4), ErrPadding, 0},
				{"dummy", append(bytes.Clone(inner), 1, 2, 3, 4, 4, 59), ErrDummy, 59},
				{"other next header", append(bytes.Clone(inner), 1, 2, 3, 4, 4, 17), nil, 17},
				{"empty payload", []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 14, 4}, nil, 4},
			} {
				pkt := sealRaw(t, ta, p, 10, tc.pt)
				got, nh, seq, err := in.Open(pkt)
				if err != tc.err {
					t.Errorf("%s: err = %v, want %v", tc.name, err, tc.err)
					continue
				}
				if seq != 10 && (err == nil || err == ErrDummy) {
					t.Errorf("%s: seq = %d", tc.name, seq)
				}
				if tc.nh != 0 && nh != tc.nh {
					t.Errorf("%s: next header %d, want %d", tc.name, nh, tc.nh)
				}
				if err == nil && tc.name == "good" && !bytes.Equal(got, inner) {
					t.Errorf("%s: inner %x", tc.name, got)
				}
			}
		})
	}
}

func TestSealErrors(t *testing.T) {
	o, _ := testAlgs[3].pair(t, false)
	hr, tr := o.HeadRoom(), o.TailRoom()
	if hr != 24 || tr != 15+2+12 {
		t.Fatalf("CBC/SHA1 HeadRoom %d TailRoom %d", hr, tr)
	}
	g, _ := testAlgs[0].pair(t, false)
	if g.HeadRoom() != 16 || g.TailRoom() != 3+2+16 {
		t.Fatalf("GCM HeadRoom %d TailRoom %d", g.HeadRoom(), g.TailRoom())
	}
	inner := ipv4Packet(100)
	buf := make([]byte, hr+len(inner)+tr)
	copy(buf[hr:], inner)
	for _, tc := range []struct {
		name   string
		buf    []byte
		off, n int
		err    error
	}{
		{"no headroom", buf, hr - 1, len(inner), ErrBufferTooSmall},
		{"negative offset", buf, -1, len(inner), ErrBufferTooSmall},
		{"empty", buf, hr, 0, ErrBufferTooSmall},
		{"negative length", buf, hr, -5, ErrBufferTooSmall},
		{"past end", buf, hr, len(buf), ErrBufferTooSmall},
		{"no tailroom", buf[:hr+len(inner)+2], hr, len(inner), ErrBufferTooSmall},
		{"not IP", append(make([]byte, hr), make([]byte, 100+tr)...), hr, 100, ErrMalformed},
		{"ok", buf, hr, len(inner), nil},
	} {
		if _, _, err := o.Seal(tc.buf, tc.off, tc.n, 1); err != tc.err {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.err)
		}
	}
	copy(buf[hr:], inner) // the "ok" case sealed buf in place
	if _, _, err := o.Seal(buf, hr, len(inner), 0); err != ErrSeqExhausted {
		t.Errorf("seq 0: %v", err)
	}
}

func TestParams(t *testing.T) {
	good := testAlgs[3].params(0x100, false)
	gcm := testAlgs[1].params(0x100, false)
	for _, tc := range []struct {
		name string
		mod  func(p *ipsec.SAParams)
		base ipsec.SAParams
		in   string // substring of the error
	}{
		{"zero SPI", func(p *ipsec.SAParams) { p.SPI = 0 }, good, "SPI 0"},
		{"unknown encr", func(p *ipsec.SAParams) { p.Alg.Encr = ipsec.Encr3DES }, good, "unsupported encryption"},
		{"bad key bits", func(p *ipsec.SAParams) { p.Alg.KeyBits = 100 }, good, "key length 100"},
		{"short key", func(p *ipsec.SAParams) { p.EncKey = p.EncKey[:15] }, good, "16 octets"},
		{"missing salt", func(p *ipsec.SAParams) { p.EncKey = p.EncKey[:32] }, gcm, "salt"},
		{"no integ", func(p *ipsec.SAParams) { p.Alg.Integ = ipsec.IntegNone }, good, "integrity transform"},
		{"integ key", func(p *ipsec.SAParams) { p.IntegKey = p.IntegKey[:19] }, good, "20 octets"},
		{"aead with integ", func(p *ipsec.SAParams) { p.Alg.Integ = ipsec.IntegHMACSHA1_96 }, gcm, "AEAD"},
		{"aead with integ key", func(p *ipsec.SAParams) { p.IntegKey = []byte{1} }, gcm, "IntegKey"},
		{"negative window", func(p *ipsec.SAParams) { p.ReplayWindow = -1 }, good, "replay window"},
	} {
		p := tc.base
		p.EncKey = bytes.Clone(p.EncKey)
		p.IntegKey = bytes.Clone(p.IntegKey)
		tc.mod(&p)
		_, errIn := NewInbound(p)
		if errIn == nil || !strings.Contains(errIn.Error(), tc.in) || !strings.HasPrefix(errIn.Error(), "esp: ") {
			t.Errorf("%s: NewInbound err = %v, want it to mention %q", tc.name, errIn, tc.in)
		}
		if tc.name == "negative window" {
			continue
		}
		_, errOut := NewOutbound(p)
		if errOut == nil || !strings.Contains(errOut.Error(), tc.in) {
			t.Errorf("%s: NewOutbound err = %v", tc.name, errOut)
		}
		// Keys never appear in errors.
		for _, k := range [][]byte{p.EncKey, p.IntegKey} {
			if len(k) > 4 && (strings.Contains(errIn.Error(), string(k)) || strings.Contains(errIn.Error(), hexs(k))) {
				t.Errorf("%s: error leaks key material", tc.name)
			}
		}
	}
	p := good
	p.Dir = ipsec.Inbound
	if _, err := NewOutbound(p); err == nil {
		t.Error("NewOutbound accepted an inbound SA")
	}
	p.Dir = ipsec.Outbound
	if _, err := NewInbound(p); err == nil {
		t.Error("NewInbound accepted an outbound SA")
	}
	// KeyBits 0 is inferred from the key length.
	p = gcm
	p.Alg.KeyBits = 0
	if _, err := NewInbound(p); err != nil {
		t.Errorf("KeyBits 0: %v", err)
	}
	for _, ta := range testAlgs {
		if !Supported(ta.alg) {
			t.Errorf("Supported(%s) = false", ta.name)
		}
	}
	if Supported(ipsec.Algorithms{Encr: ipsec.EncrAESGCM8, KeyBits: 128}) {
		t.Error("Supported(AES-GCM-8) = true")
	}
}

func hexs(b []byte) string {
	const digits = "0123456789abcdef"
	s := make([]byte, 0, 2*len(b))
	for _, c := range b {
		s = append(s, digits[c>>4], digits[c&15])
	}
	return string(s)
}

func TestReplayDisabled(t *testing.T) {
	p := testAlgs[0].params(0x55, false)
	p.ReplayWindow = 0
	o, _ := NewOutbound(p)
	in, err := NewInbound(p)
	if err != nil {
		t.Fatal(err)
	}
	if in.ReplayWindow() != 0 {
		t.Fatalf("ReplayWindow() = %d", in.ReplayWindow())
	}
	pkt := seal(t, o, ipv4Packet(40), 3)
	for range 3 {
		_, _, seq, err := in.Open(bytes.Clone(pkt))
		if err != nil || !in.Accept(seq) {
			t.Fatalf("replay with anti-replay disabled: %v", err)
		}
	}
}

func TestParseSPI(t *testing.T) {
	if _, ok := ParseSPI([]byte{0, 0, 0, 0, 1, 2, 3, 4}); ok {
		t.Error("SPI 0 (non-ESP marker) parsed as ESP")
	}
	if _, ok := ParseSPI([]byte{1, 2, 3, 4, 5, 6, 7}); ok {
		t.Error("7-byte packet parsed")
	}
	if spi, ok := ParseSPI([]byte{0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 1}); !ok || spi != 0xdeadbeef {
		t.Errorf("ParseSPI = %v, %v", spi, ok)
	}
}

// TestConcurrent runs Seal and Open from several goroutines on one SA
// pair; run with -race to check that per-call state is not shared.
func TestConcurrent(t *testing.T) {
	for _, ta := range []testAlg{testAlgs[0], testAlgs[5]} {
		o, in := ta.pair(t, false)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for i := range 300 {
					inner := ipv4Packet(64 + i%50)
					seq, _, err := o.NextSeq()
					if err != nil {
						t.Error(err)
						return
					}
					pkt := seal(t, o, inner, seq)
					got, _, gotSeq, err := in.Open(pkt)
					if err != nil || gotSeq != seq || !bytes.Equal(got, inner) {
						t.Errorf("%s: concurrent round trip failed: %v", ta.name, err)
						return
					}
					if !in.Accept(gotSeq) {
						t.Errorf("%s: Accept(%d) = false", ta.name, gotSeq)
						return
					}
				}
			})
		}
		wg.Wait()
	}
}

// TestMaxInner checks MaxInner against the inner MTUs AWS documents for a
// 1500-byte path (aws-vpn-facts.md, "Per algorithm (MTU, MSS IPv4)").
func TestMaxInner(t *testing.T) {
	for _, tc := range []struct {
		alg        int // index into testAlgs
		plain, nat int
	}{
		{0, 1446, 1438}, // AES-GCM
		{1, 1446, 1438},
		{3, 1438, 1422}, // AES-CBC + SHA1
		{5, 1438, 1422}, // AES-CBC + SHA2-256
		{7, 1422, 1422}, // AES-CBC + SHA2-384
		{8, 1422, 1406}, // AES-CBC + SHA2-512
	} {
		o, _ := testAlgs[tc.alg].pair(t, false)
		if got := o.MaxInner(1500 - 20); got != tc.plain {
			t.Errorf("%s: MaxInner(1480) = %d, want %d", testAlgs[tc.alg].name, got, tc.plain)
		}
		if got := o.MaxInner(1500 - 28); got != tc.nat {
			t.Errorf("%s: MaxInner(1472) = %d, want %d", testAlgs[tc.alg].name, got, tc.nat)
		}
		for limit := 0; limit < 1600; limit++ {
			n := o.MaxInner(limit)
			if n > 0 && n+o.Overhead(n) > limit {
				t.Fatalf("%s: MaxInner(%d) = %d overflows (overhead %d)", testAlgs[tc.alg].name, limit, n, o.Overhead(n))
			}
			if n+1+o.Overhead(n+1) <= limit {
				t.Fatalf("%s: MaxInner(%d) = %d but %d fits", testAlgs[tc.alg].name, limit, n, n+1)
			}
		}
	}
}

func TestInboundWindow(t *testing.T) {
	p := testAlgs[0].params(0x66, false)
	p.ReplayWindow = 64
	o, _ := NewOutbound(p)
	in, _ := NewInbound(p)
	if in.ReplayWindow() != 64 {
		t.Fatalf("ReplayWindow() = %d", in.ReplayWindow())
	}
	open := func(seq uint64) error {
		_, _, got, err := in.Open(seal(t, o, ipv4Packet(30), seq))
		if err == nil && !in.Accept(got) {
			return ErrReplay
		}
		return err
	}
	for _, tc := range []struct {
		seq uint64
		err error
	}{
		{200, nil}, {136, ErrReplay}, {137, nil}, {137, ErrReplay}, {199, nil}, {201, nil}, {137, ErrReplay}, {138, nil},
	} {
		if err := open(tc.seq); err != tc.err {
			t.Fatalf("seq %d: %v, want %v", tc.seq, err, tc.err)
		}
	}
	// A packet opened twice concurrently: both Opens pass the pre-check,
	// only the first Accept wins.
	pkt := seal(t, o, ipv4Packet(30), 300)
	_, _, s1, err1 := in.Open(bytes.Clone(pkt))
	_, _, s2, err2 := in.Open(bytes.Clone(pkt))
	if err1 != nil || err2 != nil || !in.Accept(s1) || in.Accept(s2) {
		t.Fatal("duplicate in flight: want exactly one Accept")
	}
}

func TestNoKeysInString(t *testing.T) {
	for _, ta := range testAlgs {
		o, in := ta.pair(t, false)
		p := ta.params(0x01020304, false)
		s := fmt.Sprintf("%v %+v %s %v %+v %s", o, o, o, in, in, in)
		for _, k := range [][]byte{p.EncKey, p.IntegKey} {
			if len(k) > 0 && (strings.Contains(s, hexs(k[:8])) || strings.Contains(s, fmt.Sprint(k[:8]))) {
				t.Fatalf("%s: key material in %q", ta.name, s)
			}
		}
		if !strings.Contains(s, "01020304") {
			t.Fatalf("String lacks the SPI: %q", s)
		}
	}
}
