package ike

import (
	"fmt"
	"time"

	"github.com/cgwproject/cgw/ipsec"
)

// scheduleRetry re-initiates after a capped, jittered exponential backoff
// (5 s doubling to 2 min, +-20 %), forever, while the tunnel should be up.
func (p *peer) scheduleRetry() {
	if !p.wantUp || p.stopped || p.retryTimer != nil {
		return
	}
	if sa := p.ike; sa != nil && sa.alive() && (sa.state == ikeConnecting || sa.state == ikeEstablished) {
		return
	}
	d := retryMinDelay
	for i := 0; i < p.retryAttempt && d < retryMaxDelay; i++ {
		d *= 2
	}
	d = min(d, retryMaxDelay)
	d = jitter(d, p.m.randUint64())
	p.retryAttempt++
	p.retryAt = p.m.clock.Now().Add(d)
	p.log.Info("will retry IKE negotiation", "reason", "the tunnel is wanted up and has no IKE SA", "in", d.Round(time.Millisecond).String(), "attempt", p.retryAttempt+1)
	p.retryTimer = p.after(d, func() {
		p.retryTimer = nil
		p.retryAt = time.Time{}
		if p.wantUp {
			p.initiate("retry after a failed negotiation")
		}
	})
}

// jitter spreads d by +-20 % using r.
func jitter(d time.Duration, r uint64) time.Duration {
	span := d * 2 / 5
	if span <= 0 {
		return d
	}
	return d - span/2 + time.Duration(r%uint64(span))
}

// randDuration returns a uniform value in [0, d).
func (p *peer) randDuration(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(p.m.randUint64() % uint64(d))
}

// scheduleIKETimers arms rekey (lifetime - margin - rand(margin*fuzz)) and
// hard expiry of an IKE SA.
func (p *peer) scheduleIKETimers(sa *ikeSA) {
	now := p.m.clock.Now()
	rekey := p.rekeyDelay(p.cfg.IKELifetime)
	sa.rekeyAt, sa.expireAt = now.Add(rekey), now.Add(p.cfg.IKELifetime)
	sa.after(rekey, func() {
		if sa.state == ikeEstablished && !sa.tm.hasQueued(taskIKERekey) && sa.tm.activeKind(taskIKERekey) == nil {
			sa.tm.queue(newIKERekey(sa, fmt.Sprintf("soft lifetime reached (%s of %s)", rekey.Round(time.Second), p.cfg.IKELifetime)))
		}
	})
	sa.after(p.cfg.IKELifetime, func() {
		if sa.state != ikeEstablished {
			return // rekeyed or being deleted already
		}
		// Its keys (and its CHILD SAs') must not be used any longer: one
		// DELETE, not held back by an exchange of ours in flight (a rekey
		// being retransmitted), and the SA is gone at once.
		p.log.Warn("IKE SA reached its hard lifetime without a rekey; deleting it and starting a new one", "ike_sa", sa.spiString(), "lifetime", p.cfg.IKELifetime.String())
		p.sendDeleteOnce(sa)
		p.destroySA(sa, "hard lifetime expired")
		p.reinitiateIfWanted("the IKE SA reached its hard lifetime")
	})
}

func (p *peer) rekeyDelay(lifetime time.Duration) time.Duration {
	margin := p.cfg.RekeyMargin
	return lifetime - margin - p.randDuration(margin*time.Duration(p.cfg.RekeyFuzz)/100)
}

// scheduleChildTimers arms the rekey and hard expiry of a CHILD SA.
func (p *peer) scheduleChildTimers(c *childSA) {
	now := p.m.clock.Now()
	rekey := p.rekeyDelay(p.cfg.ChildLifetime)
	c.rekeyAt, c.expireAt = now.Add(rekey), now.Add(p.cfg.ChildLifetime)
	c.timers = append(c.timers,
		p.after(rekey, func() {
			if c.state == childInstalled && c.sa.alive() {
				if old := c.replaces; old != nil {
					// Still not in service: the peer's rekey that created
					// it never finished (see childstall.go).
					p.settlePeerRekey(old, c)
					return
				}
				p.queueChildRekey(c, fmt.Sprintf("soft lifetime reached (%s of %s)", rekey.Round(time.Second), p.cfg.ChildLifetime))
			}
		}),
		p.after(p.cfg.ChildLifetime, p.childHardExpiry(c)))
}

// childHardExpiry is the timer function of c's hard lifetime.
func (p *peer) childHardExpiry(c *childSA) func() {
	return func() {
		if c.state == childDestroyed || !c.sa.alive() {
			return
		}
		p.log.Warn("CHILD SA reached its hard lifetime without a rekey; deleting it and creating a new one", "in_spi", c.inSPI.String(), "out_spi", c.outSPI.String(), "lifetime", p.cfg.ChildLifetime.String())
		p.childExpired(c)
	}
}

// queueChildRekey queues a rekey of c unless one is pending, c is not in
// service, or c is a peer-initiated replacement still waiting for the
// DELETE of the SA it replaces.
func (p *peer) queueChildRekey(c *childSA, reason string) {
	sa := c.sa
	if !sa.alive() || sa.state != ikeEstablished || c.state != childInstalled || c.replaces != nil {
		return
	}
	for _, t := range sa.tm.queued {
		if r, ok := t.(*childRekey); ok && r.old == c {
			return
		}
	}
	sa.tm.queue(newChildRekey(sa, c, reason))
}

// childExpired removes a CHILD SA at its hard lifetime and tells the peer.
func (p *peer) childExpired(c *childSA) {
	sa := c.sa
	up := c.state == childInstalled || c.state == childRekeying
	in, out, alg := c.inSPI, c.outSPI, c.alg
	// Its keys must not be used any longer: out of the dataplane at once,
	// even if an exchange of ours (a rekey being retransmitted) would hold
	// a DELETE exchange back.
	sa.deleteChildSAs(c, false)
	if up {
		p.log.Info("IKE phase 2 Down", "in_spi", in.String(), "out_spi", out.String(), "reason", reasonChildExpired)
		p.emit(Event{Kind: EventChildDown, Reason: "CHILD SA deleted: " + reasonChildExpired, InSPI: in, OutSPI: out, Alg: alg})
	}
	if sa.state == ikeEstablished {
		sa.tm.queue(newChildDeleteSPIs(sa, reasonChildExpired, in))
		if up && p.wantUp {
			p.ensureChild(sa)
		}
	}
}

// scheduleDPD arms the liveness check (RFC 7296, Section 2.4): a probe is
// sent only after DPDInterval without any inbound IKE or ESP traffic and
// with no exchange in flight.
func (p *peer) scheduleDPD(sa *ikeSA) {
	if p.cfg.DPDInterval <= 0 || p.cfg.DPDAction == DPDNone {
		return
	}
	sa.after(p.cfg.DPDInterval, func() { p.dpdCheck(sa) })
}

func (p *peer) dpdCheck(sa *ikeSA) {
	if sa.state != ikeEstablished {
		return
	}
	interval := p.cfg.DPDInterval
	last := p.lastInbound(sa)
	idle := p.m.clock.Now().Sub(last)
	next := interval
	switch {
	case sa.tm.busy():
		// An exchange in flight proves liveness or times out by itself.
	case idle >= interval:
		p.log.Debug("no inbound traffic, sending DPD probe", "idle", idle.String())
		sa.tm.queue(newDPD(sa))
	default:
		next = interval - idle
	}
	sa.after(next, func() { p.dpdCheck(sa) })
}

// lastInbound is the newest of the last authenticated IKE message and the
// last ESP packet on any inbound CHILD SA.
func (p *peer) lastInbound(sa *ikeSA) time.Time {
	last := sa.lastInbound
	for _, c := range sa.children {
		if c.state == childDestroyed {
			continue
		}
		st, err := p.m.cfg.Installer.QuerySA(p.cfg.Name, ipsec.Inbound, c.inSPI)
		if err == nil && st.LastUsed.After(last) {
			last = st.LastUsed
		}
	}
	return last
}

// ensureChildLater runs ensureChild after d on whatever IKE SA is current
// then (an IKE rekey in between moves the tunnel to a new one).
func (p *peer) ensureChildLater(d time.Duration) {
	p.after(d, func() {
		if p.wantUp && p.ike != nil {
			p.ensureChild(p.ike)
		}
	})
}

// retryChildRekey queues the rekey of old again after d, on whatever IKE SA
// owns old by then (an IKE rekey may move it).
func (p *peer) retryChildRekey(old *childSA, d time.Duration, reason string) {
	p.after(d, func() {
		if old.state == childInstalled {
			p.queueChildRekey(old, reason)
		}
	})
}
