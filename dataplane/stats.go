package dataplane

import (
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/cgwproject/cgw/ipsec"
)

// dropReason indexes the per-tunnel drop counters.
type dropReason int

const (
	dropNoSA         dropReason = iota // outbound packet while the tunnel has no outbound SA
	dropUnknownSPI                     // ESP for an SPI we do not have (attributed by peer address)
	dropAuth                           // ICV did not verify
	dropReplay                         // anti-replay window
	dropMalformed                      // bad ESP or inner IP packet, wrong next header
	dropPadding                        // bad ESP padding
	dropTSMismatch                     // inner packet outside the SA's traffic selectors
	dropMTU                            // inner packet larger than the tunnel MTU and not fragmented (IPv6; IPv4 DF with OversizeICMP)
	dropTUNWrite                       // the TUN device refused a write
	dropUDPSend                        // the UDP socket refused a send
	dropSeqExhausted                   // outbound SA ran out of sequence numbers
	dropExpired                        // SA passed its hard byte limit
	dropDummy                          // TFC dummy packet (next header 59): dropped by design
	dropNotIP                          // non-IP packet read from the TUN
	dropSource                         // decrypted packet from a source the tunnel may not carry (SetTunnelSources)
	numDropReasons
)

var dropNames = [numDropReasons]string{
	dropNoSA:         "no_sa",
	dropUnknownSPI:   "unknown_spi",
	dropAuth:         "auth",
	dropReplay:       "replay",
	dropMalformed:    "malformed",
	dropPadding:      "padding",
	dropTSMismatch:   "ts_mismatch",
	dropMTU:          "mtu",
	dropTUNWrite:     "tun_write",
	dropUDPSend:      "udp_send",
	dropSeqExhausted: "seq_exhausted",
	dropExpired:      "expired",
	dropDummy:        "dummy",
	dropNotIP:        "not_ip",
	dropSource:       "source",
}

func (r dropReason) String() string { return dropNames[r] }

// DropReasons lists the keys TunnelStats.Drops may have, in a fixed order.
func DropReasons() []string { return append([]string(nil), dropNames[:]...) }

// tunnelCounters are a tunnel's atomic counters. They live as long as the
// tunnel, across rekeys.
type tunnelCounters struct {
	inPackets, inBytes   atomic.Uint64
	outPackets, outBytes atomic.Uint64
	keepalivesRx         atomic.Uint64
	keepalivesTx         atomic.Uint64
	fragmented           atomic.Uint64 // inner IPv4 packets fragmented before encryption
	tooBigSent           atomic.Uint64 // ICMP errors telling a sender the tunnel MTU
	mappingChanges       atomic.Uint64 // peer endpoint moves made by the dataplane (mapping.go)
	mappingHeld          atomic.Uint64 // moves postponed by the hold-down
	lastInbound          atomic.Int64  // unix nanoseconds; 0 = never
	lastOutbound         atomic.Int64  // unix nanoseconds of the last UDP send (keepalive timer)
	drops                [numDropReasons]atomic.Uint64
}

// saCounters are one SA's use counters (inner octets).
type saCounters struct {
	bytes, packets atomic.Uint64
	lastUsed       atomic.Int64 // unix nanoseconds; 0 = never
}

func (c *saCounters) add(packets, bytes uint64, now int64) {
	c.packets.Add(packets)
	c.bytes.Add(bytes)
	c.lastUsed.Store(now)
}

func (c *saCounters) snapshot() ipsec.SAStats {
	return ipsec.SAStats{Bytes: c.bytes.Load(), Packets: c.packets.Load(), LastUsed: unixTime(c.lastUsed.Load())}
}

func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// TunnelStats is a snapshot of one tunnel's counters.
type TunnelStats struct {
	Name string
	// Inner IP packets and octets: In = decrypted and written to the TUN,
	// Out = read from the TUN and sent encrypted. They survive rekeys.
	InPackets, InBytes   uint64
	OutPackets, OutBytes uint64
	// Drops by reason; every key of DropReasons() is present.
	Drops map[string]uint64
	// RFC 3948 NAT-keepalives received from and sent to the peer.
	KeepalivesRx, KeepalivesTx uint64
	// Fragmented counts inner IPv4 packets larger than the tunnel MTU that
	// were fragmented before encryption (each fragment is one OutPacket);
	// TooBigSent the ICMP "fragmentation needed" and ICMPv6 "packet too
	// big" errors sent back for packets dropped as "mtu".
	Fragmented, TooBigSent uint64
	// MappingChanges counts the times the dataplane moved the tunnel to a
	// new peer address or port because authenticated ESP with a new
	// highest sequence number came from there (the peer's NAT rebound);
	// MappingHeld the candidate moves postponed by the one-second
	// hold-down between two moves.
	MappingChanges, MappingHeld uint64
	// LastInbound is when the last authentic ESP packet arrived; zero if
	// never. NAT-keepalives (unauthenticated) do not count.
	LastInbound time.Time
	// ActiveOutbound is the SPI of the SA used for sending (0 = none).
	ActiveOutbound ipsec.SPI
	// SAs lists the installed SAs, inbound first.
	SAs []SAInfo
}

// SAInfo describes one installed SA and its use counters.
type SAInfo struct {
	SPI           ipsec.SPI
	Dir           ipsec.Direction
	Alg           ipsec.Algorithms
	Encap         bool
	Local, Remote netip.AddrPort
	ipsec.SAStats
}

// EngineStats are counters of packets that belong to no tunnel.
type EngineStats struct {
	// IKE messages passed to the handler and sent.
	IKEIn, IKEOut uint64
	// ESP packets whose SPI is unknown and whose source is no tunnel's
	// peer, malformed datagrams, NAT-keepalives from unknown peers.
	UnknownSPI, Malformed, StrayKeepalives uint64
}

type engineCounters struct {
	ikeIn, ikeOut                          atomic.Uint64
	unknownSPI, malformed, strayKeepalives atomic.Uint64
}
