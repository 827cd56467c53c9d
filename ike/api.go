// Package ike is cgw's IKEv2 control plane (RFC 7296, PSK or certificate
// authentication):
// the SA manager, one owner goroutine per IKE SA, the task manager (message
// IDs, window of one, retransmission, response cache) and the exchanges as
// tasks. It reaches the outside world only through the small interfaces in
// this file: Sender for packets, SAInstaller for the dataplane, Listener for
// events. It never touches sockets, TUN devices or routes.
//
// Contract:
//   - A Manager holds peers (tunnels, see PeerConfig). Each peer has one
//     goroutine that owns its IKE SAs, their task managers and timers; all
//     protocol state changes there, and timers are events posted to it.
//   - Manager methods are safe for concurrent use. HandlePacket copies its
//     input and never blocks (a full peer queue drops the packet). The
//     control methods (AddPeer, Initiate, Terminate, Rekey, RemovePeer)
//     wait for the peer goroutine, so they must not be called from a
//     Listener, which runs on that goroutine. Status never blocks.
//   - Exchanges implemented: IKE_SA_INIT (with COOKIE, INVALID_KE_PAYLOAD,
//     NAT detection), IKE_AUTH with PSK or certificates (CertAuth) and
//     the first CHILD SA,
//     CREATE_CHILD_SA (CHILD SA create/rekey with PFS, IKE SA rekey, both
//     roles), INFORMATIONAL (DPD, DELETE), IKE fragmentation (RFC 7383,
//     fragment.go) and certificate authentication (certauth.go). MOBIKE and
//     EAP are not implemented.
//   - Exchange collisions follow RFC 7296 2.8 and 2.25 as strongSwan
//     does: simultaneous rekeys of the same CHILD or IKE SA both complete
//     and the lowest nonce marks the redundant SA; a CHILD SA request
//     during an IKE rekey, an IKE rekey during a CHILD SA exchange, and a
//     rekey of an SA being deleted get TEMPORARY_FAILURE and are retried
//     after a random delay; a DELETE is always answered.
//   - CHILD rekeys are make-before-break: the initiator switches outbound
//     as soon as it has the answer; the responder switches when the
//     initiator deletes the old SA (proof that it has the new inbound
//     SA). Replaced inbound SAs linger a few seconds.
//   - Packets that fail to authenticate never change state; they are
//     counted (PeerStatus.UnauthDrops, Manager.Drops), never logged.
//   - Keys and PSKs never appear in logs, errors, events or Status.
package ike

import (
	"net/netip"
	"time"

	"github.com/cgwproject/cgw/ike/message"
	"github.com/cgwproject/cgw/ipsec"
)

// Sender transmits one IKE message. When local or remote uses port 4500 the
// implementation prepends the four-octet non-ESP marker (RFC 3948, 2.2);
// data never includes it.
type Sender interface {
	SendIKE(local, remote netip.AddrPort, data []byte) error
}

// SAInstaller programs negotiated CHILD SAs into the dataplane; it is the
// kernel_ipsec_t shape. CHILD rekeys are make-before-break: the new inbound
// SA is added first, then the new outbound SA (which replaces the tunnel's
// current outbound SA atomically), then the old SAs are deleted.
type SAInstaller interface {
	// AllocSPI returns a fresh inbound SPI, unique across all tunnels.
	AllocSPI(tunnel string) (ipsec.SPI, error)
	// AddSA installs one direction. An outbound SA becomes the tunnel's
	// active outbound SA.
	AddSA(p ipsec.SAParams) error
	// DelSA removes one direction; deleting an unknown SA is not an error.
	DelSA(tunnel string, dir ipsec.Direction, spi ipsec.SPI) error
	// UpdateEndpoints changes the outer addresses of all the tunnel's SAs
	// (NAT rebinding, float to port 4500).
	UpdateEndpoints(tunnel string, local, remote netip.AddrPort, encap bool) error
	// QuerySA returns use counters (DPD needs LastUsed of inbound SAs).
	QuerySA(tunnel string, dir ipsec.Direction, spi ipsec.SPI) (ipsec.SAStats, error)
}

// EventKind names a tunnel state change.
type EventKind int

const (
	EventIKEUp EventKind = iota + 1
	EventIKEDown
	EventIKERekeyed
	EventChildUp
	EventChildDown
	EventChildRekeyed
	EventDPDMiss
	EventPeerDead
	EventNegotiationFailed
	EventNATDetected
)

// Event is one state change of one tunnel (peer), delivered to the Listener
// from the IKE SA's owner goroutine; a Listener must not block.
type Event struct {
	Peer   string
	Kind   EventKind
	Reason string // one sentence for operators: what happened and why
	// For CHILD events, the SPIs (ours inbound, peer's outbound).
	InSPI, OutSPI ipsec.SPI
	// For failures, the notify the peer sent or we sent, if any (0 = none).
	Notify Notify
	Alg    ipsec.Algorithms
}

// Listener receives events.
type Listener interface {
	OnEvent(Event)
}

// StartAction says who starts the tunnel.
type StartAction int

const (
	StartInitiate StartAction = iota // cgw initiates (AWS "add")
	StartRespond                     // wait for the peer (AWS "start")
)

// DPDAction is what happens when the peer is declared dead.
type DPDAction int

const (
	DPDRestart DPDAction = iota // re-establish with backoff (default)
	DPDClear                    // tear down and wait
	DPDNone                     // keep SAs
)

// PeerConfig is one tunnel: one IKE SA with one CHILD SA to one peer.
type PeerConfig struct {
	Name string
	// LocalAddr may be the zero Addr: any local address.
	LocalAddr  netip.Addr
	RemoteAddr netip.Addr
	// Identities; zero means "use the outside address as ID_IPV4_ADDR".
	LocalID, RemoteID Identity
	PSK               []byte // never logged
	// Cert, when set, authenticates with certificates instead of PSK.
	Cert *CertAuth

	IKEProposals []ipsec.Proposal
	ESPProposals []ipsec.Proposal

	IKELifetime   time.Duration // hard; rekey at lifetime - margin - rand(margin*fuzz)
	ChildLifetime time.Duration
	RekeyMargin   time.Duration
	RekeyFuzz     int // percent of margin

	DPDInterval time.Duration
	DPDRetries  int
	DPDAction   DPDAction

	StartAction StartAction
	TSLocal     []ipsec.TrafficSelector
	TSRemote    []ipsec.TrafficSelector

	ForceEncap        bool
	NATKeepalive      time.Duration
	ReplayWindow      int
	RetransmitTimeout time.Duration // first retransmit; default 4s (strongSwan)
	RetransmitTries   int           // default 5
	// FragmentSize is the largest IP datagram an IKE message is sent in
	// once IKE fragmentation is negotiated (RFC 7383): 0 means
	// DefaultFragmentSize, -1 disables fragmentation (not offered).
	FragmentSize int
}

// Identity is an IKE identity (RFC 7296, Section 3.5).
type Identity struct {
	Type uint8 // message.IDType value
	Data []byte
}

// AddrIdentity is the ID_IPV4_ADDR or ID_IPV6_ADDR identity of a.
func AddrIdentity(a netip.Addr) Identity {
	if a.Is4() {
		return Identity{Type: uint8(message.IDIPv4Addr), Data: a.AsSlice()}
	}
	return Identity{Type: uint8(message.IDIPv6Addr), Data: a.AsSlice()}
}

// Notify is an IKEv2 notify message type (RFC 7296, Section 3.10.1), as
// carried by failure events.
type Notify uint16

// String names the notify as RFC 7296 does (NO_PROPOSAL_CHOSEN), or
// "none" for the zero value.
func (n Notify) String() string {
	if n == 0 {
		return "none"
	}
	return message.NotifyType(n).String()
}
