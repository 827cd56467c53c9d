package ike

import (
	"net/netip"
	"time"

	"github.com/cgwproject/cgw/ipsec"
)

// State is a tunnel phase state, named like AWS's TunnelIKEPhase1State and
// TunnelIKEPhase2State values.
type State int

const (
	StateDown State = iota
	StateNegotiating
	StateEstablished
	StateRekeying
)

func (s State) String() string {
	switch s {
	case StateDown:
		return "Down"
	case StateNegotiating:
		return "Negotiating"
	case StateEstablished:
		return "Established"
	case StateRekeying:
		return "Rekeying"
	}
	return "Unknown"
}

// PeerStatus is a snapshot of one peer (tunnel).
type PeerStatus struct {
	Name       string
	State      State // IKE SA (phase 1)
	ChildState State // CHILD SA (phase 2)
	Initiator  bool  // we initiated the current IKE SA
	SPIi, SPIr uint64
	IKEAlg     ipsec.Algorithms
	// Established, RekeyAt and ExpireAt describe the current IKE SA.
	Established time.Time
	RekeyAt     time.Time
	ExpireAt    time.Time
	Children    []ChildStatus
	NATDetected bool // a NAT was seen in front of either side
	Encap       bool // ESP in UDP (NAT or ForceEncap)
	Local       netip.AddrPort
	Remote      netip.AddrPort
	// LastFailure is the last negotiation failure, one sentence.
	LastFailure   string
	LastFailureAt time.Time
	DPDMisses     int
	// UnauthDrops counts packets for our SAs that failed to authenticate or
	// parse; they never change state.
	UnauthDrops uint64
	// Ignored counts authenticated messages outside the message ID window
	// (stale retransmissions, unexpected responses).
	Ignored uint64
	// Retrying is when the next initiation attempt is due (zero: none).
	NextRetry time.Time
}

// ChildStatus describes one CHILD SA pair.
type ChildStatus struct {
	InSPI, OutSPI     ipsec.SPI
	Alg               ipsec.Algorithms
	TSLocal, TSRemote []ipsec.TrafficSelector
	Established       time.Time
	RekeyAt           time.Time
	ExpireAt          time.Time
	Rekeying          bool
}
