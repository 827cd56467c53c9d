package esp

import (
	"testing"

	"github.com/cgwproject/cgw/ipsec"
)

// TestMaxInnerForAWSTable reproduces AWS's MTU table for NAT-T (UDP
// encapsulated) tunnels on a 1500-octet path: 1500 - 20 (IPv4) - 8 (UDP).
func TestMaxInnerForAWSTable(t *testing.T) {
	const limit = 1500 - 20 - 8
	for _, tc := range []struct {
		alg  ipsec.Algorithms
		want int
	}{
		{ipsec.Algorithms{Encr: ipsec.EncrAESGCM16, KeyBits: 256}, 1438},
		{ipsec.Algorithms{Encr: ipsec.EncrAESCBC, KeyBits: 128, Integ: ipsec.IntegHMACSHA1_96}, 1422},
		{ipsec.Algorithms{Encr: ipsec.EncrAESCBC, KeyBits: 256, Integ: ipsec.IntegHMACSHA2_256_128}, 1422},
		{ipsec.Algorithms{Encr: ipsec.EncrAESCBC, KeyBits: 256, Integ: ipsec.IntegHMACSHA2_384_192}, 1422},
		{ipsec.Algorithms{Encr: ipsec.EncrAESCBC, KeyBits: 256, Integ: ipsec.IntegHMACSHA2_512_256}, 1406},
	} {
		got, err := MaxInnerFor(tc.alg, limit)
		if err != nil || got != tc.want {
			t.Errorf("MaxInnerFor(%+v) = %d, %v; want %d (AWS table)", tc.alg, got, err, tc.want)
		}
	}
	// The keyless figure must match an installed SA's for every algorithm.
	for _, ta := range testAlgs {
		o, _ := ta.pair(t, false)
		for _, l := range []int{limit, 1400, 1000, 100} {
			got, err := MaxInnerFor(ta.alg, l)
			if m := o.MaxInner(l); err != nil || m != got {
				t.Errorf("%s, limit %d: Outbound.MaxInner = %d, MaxInnerFor = %d, %v", ta.name, l, m, got, err)
			}
		}
	}
	if _, err := MaxInnerFor(ipsec.Algorithms{Encr: ipsec.EncrAESCBC, KeyBits: 128}, limit); err == nil {
		t.Error("CBC without integrity accepted")
	}
}
