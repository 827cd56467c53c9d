package ike

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/cgwproject/cgw/ike/crypto"
	"github.com/cgwproject/cgw/ike/message"
	"github.com/cgwproject/cgw/ipsec"
)

// initiate starts a new IKE SA as initiator unless one is already up or
// being set up; reason says why, for the log.
func (p *peer) initiate(reason string) {
	if p.stopped {
		return
	}
	if sa := p.ike; sa != nil && sa.alive() && (sa.state == ikeConnecting || sa.state == ikeEstablished) {
		return
	}
	spi, err := p.m.allocSPI(p)
	if err != nil {
		p.reportFailure(err.Error(), 0)
		p.scheduleRetry()
		return
	}
	local := netip.AddrPortFrom(p.cfg.LocalAddr, 500)
	sa := &ikeSA{p: p, initiator: true, spiI: spi, state: ikeConnecting,
		local: local, remote: netip.AddrPortFrom(p.cfg.RemoteAddr, 500)}
	sa.tm = newTaskManager(sa)
	p.sas[spi] = sa
	p.ike = sa
	p.log.Info("IKE phase 1 Negotiating", "reason", reason, "ike_sa", sa.spiString(), "attempt", p.retryAttempt+1,
		"ike_proposals", ipsec.ProposalsString(p.cfg.IKEProposals))
	sa.tm.queued = append(sa.tm.queued, newIKEInit(sa), newNATD(sa), newIKEAuth(sa), newChildCreate(sa, true))
	sa.tm.initiate()
}

// reportFailure is the one way a negotiation failure is reported: it
// records reason as the tunnel's last failure (Status) and emits the same
// reason, with the notify sent or received (0 = none), to the Listener, so
// the two always agree.
func (p *peer) reportFailure(reason string, notify message.NotifyType) {
	p.recordFailure(reason)
	p.emit(Event{Kind: EventNegotiationFailed, Reason: reason, Notify: Notify(notify)})
}

// recordFailure sets the tunnel's last failure for a failure reported by
// another event (an IKE SA or the peer going down).
func (p *peer) recordFailure(reason string) {
	p.lastFailure, p.lastFailureAt = reason, p.m.clock.Now()
}

// failSA ends an IKE SA after a fatal error and, if we keep the tunnel up,
// schedules the next attempt.
func (p *peer) failSA(sa *ikeSA, err error, notify message.NotifyType) {
	if !sa.alive() {
		return
	}
	reason := errString(err)
	switch {
	case sa.state == ikeConnecting && !sa.initiator && p.hasOtherEstablished(sa):
		// The peer's new IKE SA never authenticated while the tunnel has
		// one: anyone can forge an IKE_SA_INIT from the peer's address,
		// so this is a counter and a summary line, never the tunnel's
		// last failure (RFC 7296, Section 2.6).
		p.m.noteUnauthFailure(p.log, reason)
	case sa.state == ikeConnecting:
		p.log.Warn("IKE negotiation failed", "ike_sa", sa.spiString(), "reason", reason)
		p.reportFailure(reason, notify)
	default:
		p.log.Warn("IKE SA failed", "ike_sa", sa.spiString(), "reason", reason)
		p.recordFailure(reason)
	}
	wasCurrent := p.ike == sa
	p.destroySA(sa, reason)
	if wasCurrent || sa.initiator {
		p.scheduleRetry()
	}
}

// retransmitsExhausted is called when a request of ours went unanswered.
func (p *peer) retransmitsExhausted(sa *ikeSA, ex *exchange) {
	switch {
	case sa.state == ikeConnecting:
		p.failSA(sa, fmt.Errorf("ike: peer %s did not answer our %s after %d transmissions; check that it is reachable on UDP 500 and 4500 and that its outside IP is %s%s",
			p.cfg.RemoteAddr, ex.typ, ex.sends, p.cfg.RemoteAddr, sa.largeRequestHint(ex)), 0)
	case sa.state == ikeDeleting || sa.state == ikeRekeyed || sa.redundant:
		p.destroySA(sa, "no answer to our DELETE")
		p.reinitiateIfWanted("no IKE SA left after an unanswered DELETE")
	case ex.dpd:
		p.peerDead(sa, fmt.Sprintf("DPD timed out after %d unanswered probes %s apart", ex.sends, p.cfg.DPDInterval))
	default:
		p.peerDead(sa, fmt.Sprintf("no answer to our %s request after %d transmissions", ex.typ, ex.sends))
	}
}

// peerDead applies the DPD action (RFC 7296, Section 2.4).
func (p *peer) peerDead(sa *ikeSA, reason string) {
	p.log.Warn("peer is dead", "ike_sa", sa.spiString(), "reason", reason, "dpd_action", dpdActionName(p.cfg.DPDAction))
	p.recordFailure("peer dead: " + reason)
	p.emit(Event{Kind: EventPeerDead, Reason: "peer declared dead: " + reason})
	p.destroySA(sa, "peer dead: "+reason)
	switch p.cfg.DPDAction {
	case DPDRestart:
		p.wantUp = true
		p.retryAttempt = 0
		p.initiate("DPD action restart: the peer was declared dead")
	case DPDClear:
		p.wantUp = false
	case DPDNone:
		if p.wantUp {
			p.initiate("the peer was declared dead and the tunnel is wanted up")
		}
	}
}

func dpdActionName(a DPDAction) string {
	switch a {
	case DPDRestart:
		return "restart"
	case DPDClear:
		return "clear"
	}
	return "none"
}

// destroySA removes an IKE SA and its CHILD SAs without sending anything.
func (p *peer) destroySA(sa *ikeSA, reason string) {
	if !sa.alive() {
		return
	}
	wasUp := (sa.state == ikeEstablished || sa.state == ikeDeleting) && !sa.redundant
	// Events describe the tunnel: a stale duplicate going away while
	// another IKE SA carries the tunnel is logged but not reported.
	report := true
	if p.ike != sa && p.ike != nil && p.ike.alive() && p.ike.state == ikeEstablished {
		report = false
	}
	sa.tm.abort()
	for _, t := range sa.timers {
		t.Stop()
	}
	sa.timers = nil
	for _, c := range append([]*childSA(nil), sa.children...) {
		up := c.state == childInstalled || c.state == childRekeying
		in, out, alg := c.inSPI, c.outSPI, c.alg
		sa.deleteChildSAs(c, false)
		if up {
			p.log.Info("IKE phase 2 Down", "in_spi", in.String(), "out_spi", out.String(), "reason", reason)
			if report {
				p.emit(Event{Kind: EventChildDown, Reason: "CHILD SA removed: " + reason, InSPI: in, OutSPI: out, Alg: alg})
			}
		}
	}
	if !sa.halfOpenDone && !sa.initiator {
		sa.halfOpenDone = true
		p.m.addHalfOpen(-1)
	}
	sa.state = ikeDestroyed
	sa.releaseFragments()
	if sa.keys != nil {
		sa.keys.Zero() // nothing is sent or received on a destroyed IKE SA
	}
	delete(p.sas, sa.ourSPI())
	p.m.freeSPI(sa.ourSPI())
	if wasUp {
		p.log.Info("IKE phase 1 Down", "ike_sa", sa.spiString(), "reason", reason)
		if report {
			p.emit(Event{Kind: EventIKEDown, Reason: "IKE SA closed: " + reason, Alg: sa.alg})
		}
	}
	if p.ike == sa {
		p.ike = nil
		for _, o := range p.sortedSAs() {
			if o.state == ikeEstablished {
				p.ike = o
			}
		}
	}
}

// reinitiateIfWanted starts a new IKE SA when the tunnel should be up and
// none is left (after a hard expiry).
func (p *peer) reinitiateIfWanted(reason string) {
	if p.wantUp && p.ike == nil {
		p.initiate(reason)
	}
}

// deleteIKESA starts an orderly delete: the DELETE exchange, then destroy.
func (p *peer) deleteIKESA(sa *ikeSA, reason string) {
	switch sa.state {
	case ikeConnecting:
		p.destroySA(sa, reason)
	case ikeEstablished, ikeRekeyed, ikePending:
		sa.tm.abortQueued()
		sa.state = ikeDeleting
		sa.tm.queue(newIKEDelete(sa, reason))
	}
}

// established is called by IKE_AUTH when an IKE SA is authenticated.
func (p *peer) established(sa *ikeSA) {
	if !sa.halfOpenDone && !sa.initiator {
		sa.halfOpenDone = true
		p.m.addHalfOpen(-1)
	}
	sa.state = ikeEstablished
	now := p.m.clock.Now()
	sa.established = now
	sa.lastInbound = now
	// INITIAL_CONTACT (RFC 7296, Section 2.4): the peer lost all state, so
	// our other IKE SAs with it are stale; remove them without a DELETE,
	// before reporting the new one.
	if sa.initialCnt {
		for _, o := range p.sortedSAs() {
			if o != sa && o.state != ikeConnecting {
				p.destroySA(o, "the peer sent INITIAL_CONTACT on a new IKE SA")
			}
		}
	}
	p.ike = sa
	if p.retryTimer != nil {
		p.retryTimer.Stop()
		p.retryTimer = nil
		p.retryAt = time.Time{}
	}
	p.scheduleIKETimers(sa)
	p.scheduleDPD(sa)
	p.log.Info("IKE phase 1 Established", "ike_sa", sa.spiString(), "initiator", sa.initiator,
		"alg", sa.alg.String(), "local", sa.local.String(), "remote", sa.remote.String(), "nat", sa.natLocal || sa.natRemote, "encap", sa.encap)
	p.emit(Event{Kind: EventIKEUp, Reason: fmt.Sprintf("IKE SA established with %s using %s", sa.remote.Addr(), sa.alg.String()), Alg: sa.alg})
}

// awaitOldDelete makes sure a rekeyed IKE SA goes away even if the peer,
// whose job that is, never deletes it.
func (p *peer) awaitOldDelete(sa *ikeSA) {
	sa.after(halfOpenTimeout, func() {
		if sa.state == ikeRekeyed {
			p.deleteIKESA(sa, "rekeyed; the peer did not delete the old IKE SA")
		}
	})
}

// rekeyedSA builds the IKE SA that replaces old. initiator is whether we
// initiated the rekey (and so are the new SA's original initiator).
func (p *peer) rekeyedSA(old *ikeSA, initiator bool, spiI, spiR uint64, alg ipsec.Algorithms, keys *crypto.IKEKeys, ni, nr []byte) (*ikeSA, error) {
	nsa := &ikeSA{
		p: p, initiator: initiator, spiI: spiI, spiR: spiR, state: ikeEstablished,
		local: old.local, remote: old.remote, alg: alg, ni: ni, nr: nr,
		natdSeen: old.natdSeen, natLocal: old.natLocal, natRemote: old.natRemote, encap: old.encap,
		peerID: old.peerID, halfOpenDone: true, fragOK: old.fragOK,
	}
	if err := nsa.setKeys(keys); err != nil {
		return nil, err
	}
	nsa.tm = newTaskManager(nsa)
	return nsa, nil
}

// adoptRekeyed moves CHILD SAs and pending work from old to nsa and makes
// nsa current (RFC 7296, Section 2.18).
func (p *peer) adoptRekeyed(old, nsa *ikeSA, reason string) {
	now := p.m.clock.Now()
	nsa.state = ikeEstablished
	nsa.established, nsa.lastInbound = now, now
	p.sas[nsa.ourSPI()] = nsa
	nsa.children = old.children
	old.children = nil
	for _, c := range nsa.children {
		c.sa = nsa
	}
	old.state = ikeRekeyed
	// The old SA's timers stay: its rekey and DPD checks do nothing in the
	// rekeyed state, and a retransmission in flight must still complete.
	pending := old.tm.queued
	old.tm.queued = nil
	if p.ike == old || p.ike == nil {
		p.ike = nsa
	}
	p.scheduleIKETimers(nsa)
	p.scheduleDPD(nsa)
	p.log.Info("IKE phase 1 Established (rekeyed)", "reason", reason, "old_ike_sa", old.spiString(), "ike_sa", nsa.spiString(),
		"alg", nsa.alg.String(), "children", len(nsa.children))
	p.emit(Event{Kind: EventIKERekeyed, Reason: fmt.Sprintf("IKE SA rekeyed using %s", nsa.alg.String()), Alg: nsa.alg})
	for _, t := range pending {
		switch t := t.(type) {
		case *childRekey:
			p.queueChildRekey(t.old, t.reason)
		case *childCreate:
			p.ensureChild(nsa)
		case *childDelete:
			if t.child != nil {
				nsa.tm.queue(newChildDelete(nsa, t.child, t.reason))
			}
		}
	}
}

// childUp reports a new CHILD SA (not a rekey, see childRekeyed).
func (p *peer) childUp(c *childSA) {
	p.retryAttempt = 0
	sa := c.sa
	p.log.Info("IKE phase 2 Established", "in_spi", c.inSPI.String(), "out_spi", c.outSPI.String(), "alg", c.alg.String(),
		"ts_local", tsString(c.tsLocal), "ts_remote", tsString(c.tsRemote), "encap", sa.encap)
	p.emit(Event{Kind: EventChildUp, Reason: fmt.Sprintf("CHILD SA established using %s, %s === %s", c.alg.String(), tsString(c.tsLocal), tsString(c.tsRemote)),
		InSPI: c.inSPI, OutSPI: c.outSPI, Alg: c.alg})
}

// childFailed reports a CHILD SA failure while the IKE SA stays up, and
// schedules another attempt when we keep the tunnel up.
func (p *peer) childFailed(sa *ikeSA, reason string, n message.NotifyType) {
	p.log.Warn("IKE phase 2 was unable to establish while keeping phase 1", "reason", reason)
	p.reportFailure("Phase 2 was unable to establish while keeping Phase 1: "+reason, n)
	if !p.wantUp || sa.state != ikeEstablished {
		return
	}
	d := retryMinDelay
	for i := 0; i < p.retryAttempt && d < retryMaxDelay; i++ {
		d *= 2
	}
	d = jitter(min(d, retryMaxDelay), p.m.randUint64())
	p.retryAttempt++
	p.log.Info("will retry CHILD SA creation", "in", d.Round(time.Millisecond).String())
	p.ensureChildLater(d)
}

// ensureChild creates a CHILD SA on sa if it has none and none is pending.
func (p *peer) ensureChild(sa *ikeSA) {
	if sa.state != ikeEstablished || sa.activeChild() != nil || sa.tm.hasQueued(taskChildCreate) || sa.tm.activeKind(taskChildCreate) != nil {
		return
	}
	sa.tm.queue(newChildCreate(sa, false))
}

// finishChildDelete removes a CHILD SA whose DELETE exchange completed. A
// replaced SA keeps its inbound half for a moment; an active one going away
// is reported as down.
func (p *peer) finishChildDelete(c *childSA, reason string) {
	sa := c.sa
	replaced := c.state == childRekeyed
	in, out, alg := c.inSPI, c.outSPI, c.alg
	if replaced {
		p.lingering[in] = true
		sa.deleteChildSAs(c, true)
		p.after(oldInboundLinger, func() { delete(p.lingering, in) })
		return
	}
	sa.deleteChildSAs(c, false)
	p.log.Info("IKE phase 2 Down", "in_spi", in.String(), "out_spi", out.String(), "reason", reason)
	p.emit(Event{Kind: EventChildDown, Reason: "CHILD SA deleted: " + reason, InSPI: in, OutSPI: out, Alg: alg})
}

// childRekeyed reports a completed rekey of old by c.
func (p *peer) childRekeyed(old, c *childSA, reason string) {
	p.retryAttempt = 0
	p.log.Info("IKE phase 2 Established (rekeyed)", "reason", reason, "old_in_spi", old.inSPI.String(), "old_out_spi", old.outSPI.String(),
		"in_spi", c.inSPI.String(), "out_spi", c.outSPI.String(), "alg", c.alg.String())
	p.emit(Event{Kind: EventChildRekeyed, Reason: fmt.Sprintf("CHILD SA rekeyed (%s) using %s", reason, c.alg.String()), InSPI: c.inSPI, OutSPI: c.outSPI, Alg: c.alg})
}

// concludeChildRekey puts a peer-initiated replacement c of old in
// service: its outbound SA is added (and takes over sending), then old's
// outbound SA is removed. The caller finishes old.
func (p *peer) concludeChildRekey(old, c *childSA, reason string) {
	c.replaces = nil
	if c.state == childDestroyed {
		return
	}
	if !c.outInstalled && c.pendingOut != nil {
		out := *c.pendingOut
		out.Local, out.Remote, out.Encap = c.sa.local, c.sa.remote, c.sa.encap
		if err := p.m.cfg.Installer.AddSA(out); err != nil {
			p.log.Error("installing the outbound SA of the rekeyed CHILD SA failed; deleting it", "spi", out.SPI.String(), "err", err)
			c.sa.tm.queue(newChildDelete(c.sa, c, reasonChildExpired))
			return
		}
		c.outInstalled = true
	}
	c.pendingOut = nil
	if old.state != childDestroyed {
		p.retireOld(old)
	}
	p.childRekeyed(old, c, reason)
	p.runDeferredRekey(c)
}

// retireOld stops using a replaced CHILD SA for sending: its outbound half
// goes now, its inbound half when the DELETE exchange completes.
func (p *peer) retireOld(old *childSA) {
	old.state = childRekeyed
	old.stopTimers()
	if old.outInstalled {
		if err := p.m.cfg.Installer.DelSA(p.cfg.Name, ipsec.Outbound, old.outSPI); err != nil {
			p.log.Warn("deleting replaced outbound SA failed", "spi", old.outSPI.String(), "err", err)
		}
		old.outInstalled = false
	}
}

func (p *peer) hasOtherEstablished(sa *ikeSA) bool {
	for _, o := range p.sas {
		if o != sa && (o.state == ikeEstablished || o.state == ikeRekeyed) {
			return true
		}
	}
	return false
}

// sendNotifyOnce sends an INFORMATIONAL request carrying one notify, once,
// without waiting for an answer (used right before tearing the SA down).
func (p *peer) sendNotifyOnce(sa *ikeSA, n message.NotifyType) {
	if sa.out == nil {
		return
	}
	m := &message.Message{Header: sa.header(message.Informational, sa.tm.myMID+1, false)}
	m.Payloads = []message.Payload{&message.Notify{Kind: n}}
	pkt, err := m.Marshal(sa.out)
	if err != nil {
		return
	}
	p.send(sa.local, sa.remote, pkt)
}
