package esp

import (
	"testing"
)

// BenchmarkSeal and BenchmarkOpen measure one 1400-byte inner packet per
// operation for every algorithm; b.SetBytes makes `go test -bench` report
// MB/s of inner packet data.
func BenchmarkSeal(b *testing.B) {
	for _, ta := range testAlgs {
		b.Run(ta.name, func(b *testing.B) {
			o, _ := ta.pair(b, false)
			inner := ipv4Packet(1400)
			buf := make([]byte, o.HeadRoom()+len(inner)+o.TailRoom())
			copy(buf[o.HeadRoom():], inner)
			b.SetBytes(int64(len(inner)))
			b.ReportAllocs()
			for b.Loop() {
				buf[o.HeadRoom()] = 0x45 // Seal encrypted the previous packet in place
				seq, _, err := o.NextSeq()
				if err != nil {
					b.Fatal(err)
				}
				if _, _, err := o.Seal(buf, o.HeadRoom(), len(inner), seq); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkOpen(b *testing.B) {
	for _, ta := range testAlgs {
		b.Run(ta.name, func(b *testing.B) {
			o, in := ta.pair(b, false)
			inner := ipv4Packet(1400)
			sealed := seal(b, o, inner, 1)
			pkt := make([]byte, len(sealed))
			b.SetBytes(int64(len(inner)))
			b.ReportAllocs()
			for b.Loop() {
				copy(pkt, sealed)
				if _, _, _, err := in.Open(pkt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
