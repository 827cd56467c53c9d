package ike

import (
	"bytes"
	"net/netip"
	"time"

	"github.com/cgwproject/cgw/ike/crypto"
)

// NATView is what the peer's NAT detection in the answer to our last
// IKE_SA_INIT told about our side (RFC 7296, Section 2.23). The peer's
// NAT_DETECTION_DESTINATION_IP is a hash of the address and port it saw our
// request come from, so it cannot be read back, but any candidate address
// can be tested against it: SeenAs. It is kept after the IKE SA fails,
// because the typical failure it explains (a wrong identity behind NAT,
// answered with AUTHENTICATION_FAILED) leaves no IKE SA behind.
type NATView struct {
	At time.Time
	// Local is the address and port the answer reached us on (our side
	// of any NAT).
	Local netip.AddrPort
	// BehindNAT: the peer saw our request come from another address or
	// port than Local.
	BehindNAT bool

	spiI, spiR uint64
	dstHash    []byte // the peer's NAT_DETECTION_DESTINATION_IP
}

// SeenAs reports whether the peer saw our request come from addr, and from
// which source port: it hashes addr with every port (the ports a NAT maps
// to are unknown; Local's port, 500 and 4500 are tried first). 65536 SHA-1
// hashes take a few milliseconds.
func (v *NATView) SeenAs(addr netip.Addr) (port uint16, ok bool) {
	if v == nil || len(v.dstHash) == 0 || !addr.IsValid() {
		return 0, false
	}
	try := func(p uint16) bool {
		return bytes.Equal(crypto.NATDetectionHash(v.spiI, v.spiR, netip.AddrPortFrom(addr, p)), v.dstHash)
	}
	first := []uint16{v.Local.Port(), 500, 4500}
	for _, p := range first {
		if try(p) {
			return p, true
		}
	}
	for p := 0; p <= 0xffff; p++ {
		if try(uint16(p)) {
			return uint16(p), true
		}
	}
	return 0, false
}

// recordNATView keeps the NAT detection result of an answer to our
// IKE_SA_INIT on the peer (only answers to our own requests: they carry
// our SPI, so an off-path sender cannot plant one).
func (p *peer) recordNATView(spiI, spiR uint64, local netip.AddrPort, behindNAT bool, dstHash []byte) {
	p.natView = &NATView{At: p.m.clock.Now(), Local: local, BehindNAT: behindNAT,
		spiI: spiI, spiR: spiR, dstHash: bytes.Clone(dstHash)}
}
