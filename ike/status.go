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
	// Fragmentation: the current IKE SA negotiated IKE fragmentation
	// (RFC 7383); Fragments counts the tunnel's fragments over its life.
	Fragmentation bool
	Fragments     FragmentStats
	// Ignored counts authenticated messages outside the message ID window
	// (stale retransmissions, unexpected responses).
	Ignored uint64
	// Retrying is when the next initiation attempt is due (zero: none).
	NextRetry time.Time
	Auth      AuthStatus

	// NAT is the NAT detection of the last IKE_SA_INIT we initiated, kept
	// when that IKE SA failed (nil: none answered yet).
	NAT *NATView
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

// publish stores a Status snapshot.
func (p *peer) publish() {
	s := &PeerStatus{Name: p.cfg.Name, LastFailure: p.lastFailure, LastFailureAt: p.lastFailureAt, NextRetry: p.retryAt, Ignored: p.ignored,
		UnauthDrops: p.unauthDrops, Fragments: p.fragments,
		Remote: netip.AddrPortFrom(p.cfg.RemoteAddr, 500)}
	s.NAT = p.natView
	for _, sa := range p.sas {
		if sa.state == ikeConnecting && s.State == StateDown {
			s.State = StateNegotiating
		}
	}
	sa := p.ike
	if sa != nil && sa.alive() {
		switch sa.state {
		case ikeConnecting:
			s.State = StateNegotiating
		case ikeEstablished:
			s.State = StateEstablished
			if sa.tm.activeKind(taskIKERekey) != nil {
				s.State = StateRekeying
			}
		case ikeDeleting, ikeRekeyed:
			s.State = StateEstablished
		}
		s.Initiator, s.SPIi, s.SPIr, s.IKEAlg = sa.initiator, sa.spiI, sa.spiR, sa.alg
		s.Established, s.RekeyAt, s.ExpireAt = sa.established, sa.rekeyAt, sa.expireAt
		s.NATDetected, s.Encap, s.Fragmentation = sa.natLocal || sa.natRemote, sa.encap, sa.fragOK
		s.Local, s.Remote, s.DPDMisses = sa.local, sa.remote, sa.dpdMisses
		s.Auth = p.authStatus(sa)
		for _, c := range sa.children {
			if c.state == childDestroyed || c.state == childRekeyed {
				continue
			}
			s.Children = append(s.Children, ChildStatus{
				InSPI: c.inSPI, OutSPI: c.outSPI, Alg: c.alg,
				TSLocal: c.tsLocal, TSRemote: c.tsRemote,
				Established: c.established, RekeyAt: c.rekeyAt, ExpireAt: c.expireAt,
				Rekeying: c.state == childRekeying,
			})
		}
		for _, c := range s.Children {
			if c.Rekeying {
				s.ChildState = StateRekeying
				break
			}
			s.ChildState = StateEstablished
		}
		if s.ChildState != StateRekeying && sa.tm.activeKind(taskChildCreate) != nil {
			if len(s.Children) == 0 {
				s.ChildState = StateNegotiating
			}
		}
	}
	p.status.Store(s)
}
