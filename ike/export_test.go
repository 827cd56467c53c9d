package ike

import (
	"fmt"

	"github.com/cgwproject/cgw/ipsec"
)

// Test hooks for the external ike_test package. They run on the peer's
// goroutine like the public control methods.

// SetNonceFirstByte makes every nonce m generates start with initiator
// (exchanges we initiate) or responder (exchanges we answer), so tests can
// choose which exchange of a collision holds the lowest nonce.
func SetNonceFirstByte(m *Manager, initiator, responder byte) {
	h := func(init bool, n []byte) {
		if init {
			n[0] = initiator
		} else {
			n[0] = responder
		}
	}
	m.nonceHook.Store(&h)
}

func onPeer(m *Manager, name string, f func(p *peer) error) error {
	p, err := m.peer(name)
	if err != nil {
		return err
	}
	return p.call(func() error { return f(p) })
}

// DeleteChild starts a DELETE of the peer's active CHILD SA, as its hard
// lifetime would (a new one is negotiated afterwards).
func DeleteChild(m *Manager, name string) error {
	return onPeer(m, name, func(p *peer) error {
		c := p.ike.activeChild()
		p.ike.tm.queue(newChildDelete(p.ike, c, reasonChildExpired))
		return nil
	})
}

// DeleteIKE starts a DELETE of the peer's IKE SA, as its hard lifetime
// would (the tunnel stays wanted).
func DeleteIKE(m *Manager, name string) error {
	return onPeer(m, name, func(p *peer) error {
		p.deleteIKESA(p.ike, "deleted by the test")
		return nil
	})
}

// SendDPD queues a DPD probe on the current IKE SA.
func SendDPD(m *Manager, name string) error {
	return onPeer(m, name, func(p *peer) error {
		p.ike.tm.queue(newDPD(p.ike))
		return nil
	})
}

// IKESAs returns the number of IKE SAs the peer holds (any state).
func IKESAs(m *Manager, name string) (n int) {
	_ = onPeer(m, name, func(p *peer) error { n = len(p.sas); return nil })
	return n
}

// SendChildDelete sends a DELETE for the given inbound SPIs of ours,
// whether or not they belong to a CHILD SA.
func SendChildDelete(m *Manager, name string, spis ...ipsec.SPI) error {
	return onPeer(m, name, func(p *peer) error {
		p.ike.tm.queue(newChildDeleteSPIs(p.ike, "deleted by the test", spis...))
		return nil
	})
}

// ForgetChild drops the active CHILD SA without telling the peer, as a
// peer that lost its state (or whose DELETE never arrived) would.
func ForgetChild(m *Manager, name string) error {
	return onPeer(m, name, func(p *peer) error {
		p.ike.deleteChildSAs(p.ike.activeChild(), false)
		return nil
	})
}

// DumpSAs describes every IKE and CHILD SA of the peer, for test failures.
func DumpSAs(m *Manager, name string) (s string) {
	_ = onPeer(m, name, func(p *peer) error {
		for _, sa := range p.sortedSAs() {
			s += fmt.Sprintf("IKE %s %s redundant=%v\n", sa.spiString(), sa.state, sa.redundant)
			for _, c := range sa.children {
				s += fmt.Sprintf("  CHILD in %s out %s state %d out_installed %v replaces %v\n", c.inSPI, c.outSPI, c.state, c.outInstalled, c.replaces != nil)
			}
		}
		for spi := range p.lingering {
			s += fmt.Sprintf("  lingering %s\n", spi)
		}
		return nil
	})
	return s
}
