// Package dataplane is cgw's userspace IPsec packet pipeline: ESP in UDP
// (RFC 3948) between the tunnels' TUN devices and the UDP ports 500 and
// 4500, shaped after wireguard-go's device package.
//
// Outbound, per tunnel:
//
//	RoutineReadFromTUN  batch Read from the TUN (GSO superpackets split)
//	  → drop non-IP, selector check, TCP MSS clamp, sequence reservation
//	  → encryption queue (RoutineEncryption, one per CPU, parallel)
//	  → RoutineSequentialSender (waits for each batch in order)
//	  → batched UDP send (sendmmsg + UDP GSO) to the SA's peer
//
// Inbound, per socket:
//
//	RoutineReceive  batch recvmmsg (UDP GRO superpackets split)
//	  → demux (RFC 3948, Section 2.2): non-ESP marker = IKE (handler),
//	    0xFF = NAT-keepalive, anything else ESP by SPI (SAD snapshot)
//	  → decryption queue (RoutineDecryption, one per CPU, parallel)
//	  → per tunnel RoutineSequentialReceiver: anti-replay update, inner
//	    packet and selector checks, MSS clamp, batched TUN Write (GRO)
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
// MTU and fragmentation (AWS guidance, shared/aws-vpn-facts.md 2.10): the
// TUN device's MTU is the tunnel MTU, so the kernel never hands us an inner
// packet larger than it (TSO/GSO superpackets are split to MTU-sized
// segments by the TUN reader). Inner packets are not modified apart from
// MSS clamping; their DF bit does not matter to the tunnel because the
// outer UDP socket runs with path MTU discovery off (IP_PMTUDISC_DONT,
// AWS "clear_df_bit"): if an ESP packet exceeds the path MTU the kernel
// fragments the outer packet instead of dropping it. The tunnel MTU starts
// at TunnelConfig.MTU and follows the device's MTU when it changes (the
// daemon sets it from the negotiated algorithms). A packet that is larger
// than the tunnel MTU anyway is dropped with reason "mtu", or answered with
// ICMP "fragmentation needed"/"packet too big" when
// TunnelConfig.FragNeededICMP is set.
//
// Counters are atomic: per tunnel (inner bytes and packets both ways, which
// survive rekeys, drops by reason, NAT-keepalives, last inbound time) and
// per SA (bytes, packets, last use) for QuerySA, DPD and lifetimes.
//
// Concurrency: every exported method of Engine is safe for concurrent use.
// The Engine takes ownership of each TunnelConfig.Device and closes it in
// RemoveTunnel and Close. Nothing logs per packet.
package dataplane
