// Package dataplane is cgw's userspace IPsec packet pipeline: ESP in UDP
// (RFC 3948) between the tunnels' TUN devices and the UDP ports 500 and
// 4500, shaped after wireguard-go's device package.
//
// Outbound, per tunnel:
//
//	RoutineReadFromTUN  batch Read from the TUN (GSO superpackets split)
//	  → drop non-IP, selector check, TCP MSS clamp, sequence reservation
//	  → encryption queue (RoutineEncryption, one per CPU, parallel)
//	  → RoutineSequentialSender (waits for each batch in order; batches
//	    already queued behind it go in the same send)
//	  → batched UDP send (sendmmsg + UDP GSO) to the SA's peer
//
// Inbound, per socket:
//
//	RoutineReceive  batch recvmmsg (UDP GRO superpackets split)
//	  → demux (RFC 3948, Section 2.2): non-ESP marker = IKE (handler),
//	    0xFF = NAT-keepalive, anything else ESP by SPI (SAD snapshot)
//	  → decryption queue (RoutineDecryption, one per CPU, parallel)
//	  → per tunnel RoutineSequentialReceiver: anti-replay update, NAT
//	    mapping follow, inner packet and selector checks, MSS clamp,
//	    batched TUN Write (GRO) of every batch that is ready
//
// Per-SA order is kept the wireguard-go way: a batch is locked, pushed to
// the shared parallel queue and to its tunnel's sequential queue; the
// crypto worker unlocks it when done and the sequential stage waits for the
// lock, so batches leave in the order they were read. Queues are bounded
// channels, so a slow stage pushes back on the readers. Packet buffers
// come from a pool with a capped free list; the steady path allocates
// nothing (TestAllocs).
//
// Tables the hot path reads (the SAD, a tunnel's active outbound SA, SA
// endpoints) are immutable snapshots behind atomic pointers, rebuilt under
// the Engine's mutex on AddSA/DelSA/UpdateEndpoints, so control-plane
// changes never stall traffic.
//
// NAT rebinding (RFC 3948, Section 2.2; RFC 7296, Section 2.23; Linux's
// XFRM_MSG_MAPPING): when an authentic ESP packet whose sequence number is
// higher than any its SA accepted before arrives from an address or port
// other than the tunnel's remote endpoint, the peer's NAT has rebound, and
// the engine moves all the tunnel's SAs to the new endpoint (at most once
// a second) and tells SetMappingHandler's function. Forged, replayed or
// delayed packets never move a tunnel; the no-change case costs one atomic
// load. See mapping.go.
//
// MTU and fragmentation (AWS guidance, shared/aws-vpn-facts.md 2.10): the
// tunnel MTU (TunnelConfig.MTU, changed with SetTunnelMTU) is the largest
// inner packet whose ESP-in-UDP packet fits the outside path; the daemon
// derives it from the negotiated algorithms. The TUN device is created
// larger, with DeviceMTU (1500), so the kernel hands the engine packets up
// to 1500 octets instead of fragmenting or rejecting them itself, and the
// engine treats those above the tunnel MTU as TunnelConfig.Oversize says:
//
//	OversizeFragment (default, AWS's clear_df_bit and
//	fragmentation_before_encryption): IPv4 gets DF cleared (and a fresh
//	Identification, RFC 6864) and is fragmented (RFC 791); every fragment
//	is encrypted as its own ESP packet, in order. AWS does not reassemble
//	fragmented ESP, so fragmenting the inner packet is what keeps such
//	packets alive. IPv6 is answered with ICMPv6 "packet too big" carrying
//	the tunnel MTU (routers must not fragment IPv6, RFC 8200 Section 5).
//	OversizeICMP: IPv4 with DF is answered with ICMP "fragmentation
//	needed" carrying the tunnel MTU (RFC 1191); IPv4 without DF is
//	fragmented as above; IPv6 gets "packet too big".
//
// ICMP errors are rate-limited per tunnel. TCP rarely gets that far: SYN
// and SYN-ACK MSS options are clamped in both directions to
// min(TunnelConfig.MSSClamp, tunnel MTU - 40), so TCP segments, also those
// the TUN reader splits out of GSO superpackets (at the sender's MSS),
// fit the tunnel unfragmented. The outer UDP socket runs with path MTU
// discovery off (IP_PMTUDISC_DONT): should an ESP packet still exceed the
// path MTU, the kernel fragments the outer packet rather than dropping it.
//
// Counters are atomic: per tunnel (inner bytes and packets both ways, which
// survive rekeys, drops by reason, NAT-keepalives, last inbound time) and
// per SA (bytes, packets, last use) for QuerySA, DPD and lifetimes.
//
// Concurrency: every exported method of Engine is safe for concurrent use.
// The Engine takes ownership of each TunnelConfig.Device and closes it in
// RemoveTunnel and Close. Nothing logs per packet.
package dataplane
