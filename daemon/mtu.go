package daemon

import (
	"github.com/cgwproject/cgw/config"
	"github.com/cgwproject/cgw/ipsec"
)

// Tunnel MTU.
//
// cgw carries ESP in UDP (RFC 3948) through the host's outside interface,
// assumed to have the Internet's usual 1500-octet MTU. Per packet the tunnel
// adds: outer IPv4 header 20 + UDP 8 + ESP header 8 + IV (16 for AES-CBC,
// 8 for GCM and ChaCha20) + padding (up to 15 for CBC, whose payload must
// fill 16-octet blocks; up to 3 for AEAD, 4-octet alignment) + pad length
// and next header 2 + ICV (12/16/24/32 for HMAC-SHA1-96/SHA2-256/384/512,
// 16 for AEAD). AES-256-GCM therefore costs 65 octets (MTU 1435) and
// AES-CBC with SHA2-512 101 octets (MTU 1399). AWS documents 1446 as the
// largest MTU it supports, so the result is capped there.
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
	espHeader  = 8
	espTrailer = 2
)

func espOverhead(a ipsec.Algorithms) int {
	iv, pad, icv := 16, 15, 0
	if a.Encr.IsAEAD() {
		iv, pad, icv = 8, 3, 16
	} else {
		switch a.Integ {
		case ipsec.IntegHMACSHA1_96:
			icv = 12
		case ipsec.IntegHMACSHA2_256_128:
			icv = 16
		case ipsec.IntegHMACSHA2_384_192:
			icv = 24
		default:
			icv = 32
		}
	}
	return udpIPv4 + espHeader + iv + pad + espTrailer + icv
}

func mtuFor(overhead int) int {
	return min(outsideMTU-overhead, awsMaxMTU)
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
				worst = max(worst, espOverhead(ipsec.Algorithms{Encr: e.ID, Integ: i}))
			}
		}
	}
	if worst == 0 {
		worst = espOverhead(ipsec.Algorithms{Encr: ipsec.EncrAESCBC, Integ: ipsec.IntegHMACSHA2_512_256})
	}
	return mtuFor(worst)
}

// negotiatedMTU is the MTU for the algorithms a CHILD SA actually uses.
func negotiatedMTU(t *config.Tunnel, a ipsec.Algorithms, _ bool) int {
	if t.MTU > 0 {
		return t.MTU
	}
	if a.Encr == 0 {
		return configuredMTU(t)
	}
	return mtuFor(espOverhead(a))
}
