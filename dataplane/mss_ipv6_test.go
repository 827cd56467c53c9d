package dataplane

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/cgwproject/cgw/dataplane/packet"
)

// tcpSYN6 is tcpSYN's TCP segment (MSS option, checksum left unset) in an
// IPv6 packet: ClampMSS updates the checksum incrementally and the test
// reads only the option.
func tcpSYN6(src, dst netip.Addr, mss uint16) []byte {
	tcp := tcpSYN(netip.IPv4Unspecified(), netip.IPv4Unspecified(), mss)[20:]
	p := make([]byte, 40, 40+len(tcp))
	p[0] = 0x60
	binary.BigEndian.PutUint16(p[4:], uint16(len(tcp)))
	p[6] = 6
	p[7] = 64
	s, d := src.As16(), dst.As16()
	copy(p[8:], s[:])
	copy(p[24:], d[:])
	return append(p, tcp...)
}

// TestMSSClampPerFamily: the effective clamp the tunnel derives from its
// MTU gives IPv4 SYNs MTU-40 and IPv6 SYNs MTU-60, so a full segment of
// either family fits the tunnel, for the MTUs of IPv4 and IPv6 outer
// headers (docs/ipv6.md), and AWS's configured cap wins below that.
func TestMSSClampPerFamily(t *testing.T) {
	a4, b4 := netip.MustParseAddr("10.1.0.10"), netip.MustParseAddr("10.0.0.10")
	a6, b6 := netip.MustParseAddr("fd00:1::10"), netip.MustParseAddr("fd00:2::10")
	for _, tc := range []struct {
		clamp, mtu   uint16
		want4, want6 uint16
	}{
		{1406, 1446, 1406, 1386}, // AWS: AES-GCM, no NAT-T
		{1406, 1438, 1398, 1378}, // AES-GCM in UDP over IPv4
		{1406, 1418, 1378, 1358}, // AES-GCM in UDP over IPv6
		{1406, 1390, 1350, 1330}, // AES-CBC/SHA2-512 in UDP over IPv6
		{1379, 1418, 1378, 1358},
		{1379, 1438, 1379, 1359}, // the configured clamp caps both
	} {
		tun := &tunnel{mssCfg: tc.clamp}
		tun.setMTU(int(tc.mtu))
		mss := uint16(tun.mss.Load())
		p4, p6 := tcpSYN(a4, b4, 1460), tcpSYN6(a6, b6, 1440)
		packet.ClampMSS(p4, mss)
		packet.ClampMSS(p6, mss)
		got4, got6 := binary.BigEndian.Uint16(p4[20+22:]), binary.BigEndian.Uint16(p6[40+22:])
		if got4 != tc.want4 || got6 != tc.want6 {
			t.Errorf("clamp %d, MTU %d: SYN MSS IPv4 %d, IPv6 %d; want %d, %d", tc.clamp, tc.mtu, got4, got6, tc.want4, tc.want6)
		}
		if int(got4)+40 > int(tc.mtu) || int(got6)+60 > int(tc.mtu) {
			t.Errorf("MTU %d: a full segment does not fit (MSS %d/%d)", tc.mtu, got4, got6)
		}
	}
}
