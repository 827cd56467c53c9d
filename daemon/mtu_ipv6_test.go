package daemon

import (
	"net/netip"
	"testing"

	"github.com/cgwproject/cgw/config"
	"github.com/cgwproject/cgw/dataplane/packet"
	"github.com/cgwproject/cgw/esp"
	"github.com/cgwproject/cgw/ipsec"
)

// TestTunnelMTUOuterFamily checks the tunnel MTU and the MSS that follows
// from it for every ESP algorithm cgw supports, over IPv4 and IPv6 outer
// headers. The NAT-T columns are what cgw uses (it always encapsulates in
// UDP); the raw-ESP columns reproduce AWS's published table for an IPv4
// outer header and extend it to IPv6 (AWS publishes no IPv6-outer figures,
// docs/ipv6.md). MSS: MTU - 40 for IPv4 inner packets, MTU - 60 for IPv6
// (AWS: the IPv6 MSS is 20 below the IPv4 one), both capped at AWS's
// largest MSS (1406, 1386 for IPv6).
func TestTunnelMTUOuterFamily(t *testing.T) {
	v4peer := netip.MustParseAddr("198.51.100.10")
	v6peer := netip.MustParseAddr("2001:db8:51::10")
	for _, tc := range []struct {
		name               string
		alg                ipsec.Algorithms
		nattV4, nattV6     int // UDP-encapsulated: cgw's MTU
		rawV4, rawV6       int // raw ESP (IP protocol 50): AWS's "no NAT-T" column
		awsNATT, awsNoNATT int // AWS's own table (IPv4 outer), 0 = not in it
	}{
		{"aes128gcm16", ipsec.Algorithms{Encr: ipsec.EncrAESGCM16, KeyBits: 128}, 1438, 1418, 1446, 1426, 1438, 1446},
		{"aes256gcm16", ipsec.Algorithms{Encr: ipsec.EncrAESGCM16, KeyBits: 256}, 1438, 1418, 1446, 1426, 1438, 1446},
		{"chacha20poly1305", ipsec.Algorithms{Encr: ipsec.EncrChaCha20Poly1305}, 1438, 1418, 1446, 1426, 0, 0},
		{"aes128-sha1", ipsec.Algorithms{Encr: ipsec.EncrAESCBC, KeyBits: 128, Integ: ipsec.IntegHMACSHA1_96}, 1422, 1406, 1438, 1422, 1422, 1438},
		{"aes256-sha256", ipsec.Algorithms{Encr: ipsec.EncrAESCBC, KeyBits: 256, Integ: ipsec.IntegHMACSHA2_256_128}, 1422, 1406, 1438, 1406, 1422, 1438},
		{"aes256-sha384", ipsec.Algorithms{Encr: ipsec.EncrAESCBC, KeyBits: 256, Integ: ipsec.IntegHMACSHA2_384_192}, 1422, 1390, 1422, 1406, 1422, 1422},
		{"aes256-sha512", ipsec.Algorithms{Encr: ipsec.EncrAESCBC, KeyBits: 256, Integ: ipsec.IntegHMACSHA2_512_256}, 1406, 1390, 1422, 1390, 1406, 1422},
	} {
		// cgw's tunnel MTU, as the daemon derives it from the peer address.
		for _, c := range []struct {
			peer  netip.Addr
			encap bool
			want  int
		}{{v4peer, true, tc.nattV4}, {v6peer, true, tc.nattV6}, {v4peer, false, tc.rawV4}, {v6peer, false, tc.rawV6}} {
			if got := negotiatedMTU(&config.Tunnel{PeerAddress: c.peer}, tc.alg, c.encap); got != c.want {
				t.Errorf("%s to %v, encap %v: MTU %d, want %d", tc.name, c.peer, c.encap, got, c.want)
			}
		}
		// Raw ESP: 20 (IPv4) or 40 (IPv6) octets of outer header, no UDP.
		for _, c := range []struct {
			outer, want int
		}{{20, tc.rawV4}, {40, tc.rawV6}} {
			got, err := esp.MaxInnerFor(tc.alg, outsideMTU-c.outer)
			if err != nil || min(got, awsMaxMTU) != c.want {
				t.Errorf("%s raw ESP, outer header %d: MTU %d, %v; want %d", tc.name, c.outer, got, err, c.want)
			}
		}
		if tc.awsNATT != 0 && (tc.nattV4 != tc.awsNATT || tc.rawV4 != tc.awsNoNATT) {
			t.Errorf("%s: IPv4 MTU %d/%d differs from AWS's table %d/%d", tc.name, tc.nattV4, tc.rawV4, tc.awsNATT, tc.awsNoNATT)
		}
		// MSS for IPv4 and IPv6 inner packets at the largest clamp.
		for _, mtu := range []int{tc.nattV4, tc.nattV6, tc.rawV4, tc.rawV6} {
			mss4, mss6 := innerMSS(1406, mtu)
			if mss4 != mtu-40 || mss6 != mtu-60 {
				t.Errorf("%s MTU %d: MSS %d/%d, want %d/%d", tc.name, mtu, mss4, mss6, mtu-40, mtu-60)
			}
		}
	}
	// AWS's headline figures: AES-GCM without NAT-T, MSS 1406 (IPv4) and
	// 1386 (IPv6 inner).
	if m4, m6 := innerMSS(1406, 1446); m4 != 1406 || m6 != 1386 {
		t.Errorf("MTU 1446: MSS %d/%d, want AWS's 1406/1386", m4, m6)
	}
	// The configured clamp (AWS's tcp_mss_adjustment, 1379) caps both.
	if m4, m6 := innerMSS(config.DefaultMSSClamp, 1418); m4 != 1378 || m6 != 1358 {
		t.Errorf("MTU 1418, clamp %d: MSS %d/%d, want 1378/1358", config.DefaultMSSClamp, m4, m6)
	}
	if m4, m6 := innerMSS(config.DefaultMSSClamp, 1438); m4 != 1379 || m6 != 1359 {
		t.Errorf("MTU 1438, clamp %d: MSS %d/%d, want 1379/1359", config.DefaultMSSClamp, m4, m6)
	}
	// Before negotiation, the worst configured proposal over IPv6.
	tun := &config.Tunnel{PeerAddress: v6peer, ESPProposals: []ipsec.Proposal{{Encrs: []ipsec.EncrKey{{ID: ipsec.EncrAESGCM16, KeyBits: 256}}}, {Encrs: []ipsec.EncrKey{{ID: ipsec.EncrAESCBC, KeyBits: 128}}, Integs: []ipsec.IntegID{ipsec.IntegHMACSHA1_96}}}}
	if got := configuredMTU(tun); got != 1406 {
		t.Errorf("configured worst case over IPv6 = %d, want 1406", got)
	}
	if outerOverhead(netip.MustParseAddr("::ffff:198.51.100.10")) != udpIPv4 {
		t.Error("an IPv4-mapped peer address must count as IPv4")
	}
}

// innerMSS is the MSS the dataplane clamps IPv4 and IPv6 SYNs to for a
// clamp setting and tunnel MTU (dataplane: min(clamp, MTU-40), and
// packet.IPv6MSSDelta less for IPv6).
func innerMSS(clamp, mtu int) (v4, v6 int) {
	v4 = min(clamp, mtu-packet.IPv4HeaderLen-packet.TCPHeaderLen)
	return v4, v4 - packet.IPv6MSSDelta
}
