package ike

import "time"

// Address changes of this host (DHCP renew, LTE reconnect) for peers
// without a fixed LocalAddr. The daemon watches the host's addresses and
// calls these; IKE itself never looks at interfaces.

// Reconnect drops the peer's IKE and CHILD SAs without sending anything
// (the address they use is gone, so a DELETE could not leave or be
// answered; the peer's DPD or our INITIAL_CONTACT clears its side) and,
// when the tunnel is wanted up and we initiate, starts a new IKE SA at
// once from whatever source address the host now routes with.
func (m *Manager) Reconnect(name, reason string) error {
	p, err := m.peer(name)
	if err != nil {
		return err
	}
	return p.call(func() error {
		for _, sa := range p.sortedSAs() {
			p.destroySA(sa, reason)
		}
		p.retryNow(reason)
		return nil
	})
}

// RetryNow cuts a pending retry delay short: a tunnel that is wanted up,
// initiated by us and has no IKE SA negotiates at once (a new address
// appeared, so the last failure may be gone).
func (m *Manager) RetryNow(name, reason string) error {
	p, err := m.peer(name)
	if err != nil {
		return err
	}
	return p.call(func() error {
		p.retryNow(reason)
		return nil
	})
}

func (p *peer) retryNow(reason string) {
	if !p.wantUp || p.cfg.StartAction != StartInitiate {
		return
	}
	if sa := p.ike; sa != nil && sa.alive() {
		return
	}
	p.retryAttempt = 0
	if p.retryTimer != nil {
		p.retryTimer.Stop()
		p.retryTimer = nil
		p.retryAt = time.Time{}
	}
	p.initiate(reason)
}
