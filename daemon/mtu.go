package daemon

import (
	"net/netip"

	"github.com/cgwproject/cgw/config"
	"github.com/cgwproject/cgw/esp"
	"github.com/cgwproject/cgw/ipsec"
)

// Tunnel MTU.
//
// cgw carries ESP in UDP (RFC 3948) through the host's outside interface,
// assumed to have the Internet's usual 1500-octet MTU. The outer IPv4 and
// UDP headers take 28 octets (IPv6 and UDP 48, for a tunnel whose outside
// addresses are IPv6); the tunnel MTU is then the largest inner
// packet that ESP fits in the rest: ESP header 8 + IV (16 for AES-CBC, 8
// for GCM and ChaCha20) + the payload and its 2 trailer octets padded to
// the cipher's alignment (16 for CBC, 4 for AEAD) + ICV (12/16/24/32 for
// HMAC-SHA1-96/SHA2-256/384/512, 16 for AEAD). That gives AWS's own table:
// 1438 for AES-GCM, 1422 for AES-CBC with SHA1, SHA2-256 or SHA2-384, 1406
// with SHA2-512. AWS documents 1446 as the largest MTU it supports, so the
// result is capped there. Over an IPv6 outer header the same algorithms
// give 1418, 1406, 1390 and 1390 (docs/ipv6.md).
//
// Until the first CHILD SA is up the tunnel MTU is the worst case of the
// configured ESP proposals; when it comes up the dataplane is given the
// MTU of the negotiated algorithms (Engine.SetTunnelMTU). An explicit
// tunnels[].mtu overrides both. The TUN device itself keeps
// dataplane.DeviceMTU, so the dataplane handles oversize packets as
// tunnels[].oversize says.
const (
	outsideMTU = 1500
	awsMaxMTU  = 1446
	udpIPv4    = 20 + 8
	udpIPv6    = 40 + 8
	udpHeader  = 8
)

// outerOverhead is the outer IP and UDP header length on the way to peer:
// an IPv6 header is 20 octets longer than an IPv4 one.
func outerOverhead(peer netip.Addr) int {
	if peer.Is6() && !peer.Is4In6() {
		return udpIPv6
	}
	return udpIPv4
}

// mtuFor returns the tunnel MTU for a with an outer header of overhead
// octets (outerOverhead), or 0 when esp does not support a.
func mtuFor(a ipsec.Algorithms, overhead int) int {
	n, err := esp.MaxInnerFor(a, outsideMTU-overhead)
	if err != nil {
		return 0
	}
	return min(n, awsMaxMTU)
}

// configuredMTU is the MTU before negotiation: the explicit setting, or the
// smallest MTU any configured ESP proposal could lead to.
func configuredMTU(t *config.Tunnel) int {
	if t.MTU > 0 {
		return t.MTU
	}
	worst := 0
	for _, p := range t.ESPProposals {
		for _, e := range p.Encrs {
			integs := p.Integs
			if len(integs) == 0 {
				integs = []ipsec.IntegID{ipsec.IntegNone}
			}
			for _, i := range integs {
				if m := mtuFor(ipsec.Algorithms{Encr: e.ID, KeyBits: e.KeyBits, Integ: i}, outerOverhead(t.PeerAddress)); m > 0 && (worst == 0 || m < worst) {
					worst = m
				}
			}
		}
	}
	if worst == 0 {
		worst = mtuFor(ipsec.Algorithms{Encr: ipsec.EncrAESCBC, KeyBits: 256, Integ: ipsec.IntegHMACSHA2_512_256}, outerOverhead(t.PeerAddress))
	}
	return worst
}

// negotiatedMTU is the MTU for the algorithms a CHILD SA actually uses.
// Raw ESP (encap false) saves the 8-octet UDP header.
func negotiatedMTU(t *config.Tunnel, a ipsec.Algorithms, encap bool) int {
	if t.MTU > 0 {
		return t.MTU
	}
	overhead := outerOverhead(t.PeerAddress)
	if !encap {
		overhead -= udpHeader
	}
	if m := mtuFor(a, overhead); m > 0 {
		return m
	}
	return configuredMTU(t)
}
