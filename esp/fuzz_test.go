package esp

import (
	"bytes"
	"crypto/aes"
	"testing"
)

// FuzzOpen feeds arbitrary packets to Open for every algorithm, with and
// without ESN. Open must never panic, and must only authenticate packets
// that Seal produced (the seeds): a fuzzer-made forgery would be a bug.
// Some test SAs share an integrity key (aes128-sha256 and aes256-sha256),
// so a seed of one may authenticate on another: the good set is global.
func FuzzOpen(f *testing.F) {
	var sas []*Inbound
	good := map[string]bool{}
	for _, ta := range testAlgs {
		for _, esn := range []bool{false, true} {
			o, in := ta.pair(f, esn)
			// Fuzz workers rerun this setup; the CBC IV key must be the
			// same in each so the seeds match the good set.
			if o.t.ivCipher != nil {
				o.t.ivCipher, _ = aes.NewCipher(make([]byte, 16))
			}
			for i, inner := range [][]byte{ipv4Packet(20), ipv6Packet(77), ipv4Packet(300)} {
				pkt := seal(f, o, inner, uint64(i+1))
				good[string(pkt)] = true
				f.Add(uint8(len(sas)), bytes.Clone(pkt))
			}
			sas = append(sas, in)
		}
	}
	f.Add(uint8(0), []byte{})
	f.Add(uint8(3), []byte{1, 2, 3, 4, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, which uint8, pkt []byte) {
		in := sas[int(which)%len(sas)]
		orig := string(pkt)
		inner, _, seq, err := in.Open(pkt)
		if err == nil || err == ErrDummy || err == ErrPadding {
			// Authentic: only a packet Seal made can get here.
			if !good[orig] {
				t.Fatalf("Open authenticated a packet Seal never made: %x (err %v)", orig, err)
			}
			if seq == 0 {
				t.Fatal("authentic packet with seq 0")
			}
		}
		if err == nil && len(inner) > 0 {
			// inner must be a sub-slice of pkt (decrypted in place).
			k := cap(pkt) - cap(inner)
			if k < 0 || k >= len(pkt) || &pkt[k] != &inner[0] {
				t.Fatal("inner does not alias pkt")
			}
		}
	})
}

// FuzzSealOpen round-trips arbitrary inner packets.
func FuzzSealOpen(f *testing.F) {
	f.Add(uint8(0), false, []byte{0x45, 1, 2, 3})
	f.Add(uint8(4), true, bytes.Repeat([]byte{0x60}, 1500))
	f.Fuzz(func(t *testing.T, which uint8, esn bool, inner []byte) {
		if len(inner) == 0 || (inner[0]>>4 != 4 && inner[0]>>4 != 6) {
			return
		}
		o, in := testAlgs[int(which)%len(testAlgs)].pair(t, esn)
		pkt := seal(t, o, inner, 1)
		got, _, seq, err := in.Open(pkt)
		if err != nil || seq != 1 || !bytes.Equal(got, inner) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
