package ike

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cgwproject/cgw/ike/message"
	"github.com/cgwproject/cgw/ipsec"
)

// childRekey replaces a CHILD SA (RFC 7296, Section 1.3.3):
//
//	HDR, SK {N(REKEY_SA), SA, Ni, [KEi], TSi, TSr}  -->
//	                            <--  HDR, SK {SA, Nr, [KEr], TSi, TSr}
//
// Make-before-break. The initiator installs the new inbound SA, then the
// new outbound SA (which takes over sending), then deletes the old SA with
// an INFORMATIONAL exchange; its inbound half lingers a few seconds for
// packets already in flight. The responder installs the new inbound SA
// before answering but keeps sending on the old SA until the initiator's
// DELETE for it arrives: that proves the initiator has the new inbound SA,
// so no packet is sent on an SPI the peer does not know yet (strongSwan
// does the same). A responder whose DELETE never comes switches after
// halfOpenTimeout and deletes the old SA itself.
//
// Collisions (Sections 2.8.1 and 2.25.1): when both ends rekey the same
// CHILD SA at once, both exchanges complete. The SA created by the exchange
// holding the lowest of the four nonces is redundant and is deleted by the
// initiator of that exchange; the initiator of the surviving exchange
// deletes the old SA. A peer that did not notice the collision answers our
// request with TEMPORARY_FAILURE (it is closing the old SA) and deletes the
// old SA; its SA then replaces the old one, and we do not retry.
type childRekey struct {
	sa        *ikeSA
	initiator bool
	old       *childSA
	reason    string // why we rekey, for the log

	inSPI ipsec.SPI
	kx    keyExchange
	// fullOffer: offer every configured ESP proposal instead of only the
	// old SA's algorithms (after the peer refused those).
	fullOffer bool
	// peerNew is the CHILD SA the peer created by rekeying old while our
	// own rekey was in flight (a collision).
	peerNew *childSA
	// oldDeleted: the peer deleted old while our request was in flight.
	oldDeleted bool

	// responder
	res *responderChild
}

func newChildRekey(sa *ikeSA, old *childSA, reason string) *childRekey {
	return &childRekey{sa: sa, initiator: true, old: old, kx: keyExchange{group: old.pfs}, reason: reason}
}

func newChildRekeyResponder(sa *ikeSA) *childRekey { return &childRekey{sa: sa} }

func (t *childRekey) kind() taskKind                 { return taskChildRekey }
func (t *childRekey) exchange() message.ExchangeType { return message.CreateChildSA }

func (t *childRekey) build(m *message.Message) error {
	if t.initiator {
		return t.buildRequest(m)
	}
	return t.buildResponse(m)
}

func (t *childRekey) process(m *message.Message) (status, error) {
	if t.initiator {
		return t.processResponse(m)
	}
	return t.processRequest(m)
}

func (t *childRekey) buildRequest(m *message.Message) error {
	sa, p, old := t.sa, t.sa.p, t.old
	if old.sa != sa || (old.state != childInstalled && old.state != childRekeying) || sa.state != ikeEstablished {
		return &notifyError{quiet: true, reason: fmt.Sprintf("ike: CHILD SA %s is no longer in service (rekeyed or deleted meanwhile); its rekey is dropped", old.inSPI)}
	}
	var err error
	if t.inSPI == 0 {
		if t.inSPI, err = p.m.cfg.Installer.AllocSPI(p.cfg.Name); err != nil {
			return fmt.Errorf("ike: allocating an inbound SPI: %w", err)
		}
	}
	if err := t.kx.prepare(p, func() ([]byte, error) { return p.m.newNonce(true) }); err != nil {
		return err
	}
	old.state = childRekeying
	// Offer the algorithms in use, so the rekey neither changes them (a
	// lowest-first responder such as AWS would otherwise pick again from
	// all our proposals, and the tunnel's algorithms and MTU would flip
	// between rekeys) nor costs an INVALID_KE_PAYLOAD round trip. If the
	// peer no longer accepts them, the retry offers everything configured.
	offer := p.cfg.ESPProposals
	if !t.fullOffer && proposalMatchesConfigured(p.cfg.ESPProposals, old.alg, t.kx.group) {
		cur := algProposal(old.alg)
		cur.DHGroups = nil
		if t.kx.group != ipsec.DHNone {
			cur.DHGroups = rekeyGroups(p.cfg.ESPProposals, old.alg, t.kx.group)
		}
		offer = []ipsec.Proposal{cur}
	}
	m.Payloads = append(m.Payloads,
		&message.Notify{Protocol: ipsec.ProtoESP, SPI: spiBytes(old.inSPI), Kind: message.NotifyRekeySA},
		t.kx.offer(ipsec.ProtoESP, offer, spiBytes(t.inSPI), true), &message.Nonce{Data: t.kx.nonce})
	if ke := t.kx.ke(); ke != nil {
		m.Payloads = append(m.Payloads, ke)
	}
	m.Payloads = append(m.Payloads,
		&message.TS{Selectors: p.cfg.TSLocal},
		&message.TS{Responder: true, Selectors: p.cfg.TSRemote})
	if t.kx.tries == 0 {
		p.log.Info("CHILD SA rekey started", "reason", t.reason, "old_in_spi", old.inSPI.String(), "old_out_spi", old.outSPI.String(),
			"new_in_spi", t.inSPI.String(), "pfs", t.kx.group.Name())
	}
	return nil
}

// abort releases what an unfinished rekey holds.
func (t *childRekey) abort() {
	if t.initiator {
		t.release()
		t.restoreOld()
	}
}

func (t *childRekey) release() {
	if t.inSPI != 0 {
		_ = t.sa.p.m.cfg.Installer.DelSA(t.sa.p.cfg.Name, ipsec.Inbound, t.inSPI)
		t.inSPI = 0
	}
}

// restoreOld puts the old CHILD SA back in service after a failed rekey.
func (t *childRekey) restoreOld() {
	if t.old.state == childRekeying {
		t.old.state = childInstalled
	}
}

// peerSA returns the peer's colliding replacement of old, if it still
// exists.
func (t *childRekey) peerSA() *childSA {
	if t.peerNew != nil && t.peerNew.state != childDestroyed {
		return t.peerNew
	}
	return nil
}

// oldGone handles a rekey whose old SA the peer deleted meanwhile (RFC
// 7296, Section 2.25.1) and which produced no replacement: the tunnel lost
// its CHILD SA, so it is reported down and a new one negotiated.
func (t *childRekey) oldGone(why string) {
	sa, p, old := t.sa, t.sa.p, t.old
	if sa.activeChild() != nil {
		return
	}
	if !t.oldDeleted {
		// We removed it ourselves (hard lifetime), which reported it and
		// queued its replacement.
		return
	}
	p.log.Info("IKE phase 2 Down", "in_spi", old.inSPI.String(), "out_spi", old.outSPI.String(),
		"reason", "the peer deleted the CHILD SA we were rekeying ("+why+"); creating a new one")
	p.emit(Event{Kind: EventChildDown, Reason: "CHILD SA deleted by the peer during our rekey", InSPI: old.inSPI, OutSPI: old.outSPI, Alg: old.alg})
	if p.wantUp {
		p.ensureChildLater(restartDelay)
	}
}

// yieldToPeer ends our rekey without a result when the peer's colliding
// rekey of old completed: the peer deletes old, which puts its SA in
// service (or already did).
func (t *childRekey) yieldToPeer(why string) bool {
	pn := t.peerSA()
	if pn == nil {
		return false
	}
	p, old := t.sa.p, t.old
	p.log.Info("CHILD SA rekey collision: the peer's rekey completed and ours did not, so the peer's SA replaces the old one",
		"why", why, "old_in_spi", old.inSPI.String(), "in_spi", pn.inSPI.String(), "out_spi", pn.outSPI.String())
	t.awaitPeerDelete()
	return true
}

// awaitPeerDelete leaves old in service until the peer, initiator of the
// surviving rekey, deletes it.
func (t *childRekey) awaitPeerDelete() {
	if old := t.old; old.state == childRekeying {
		old.state = childRekeyed // keep sending on it until the peer's DELETE
		old.stopTimers()
	}
}

func (t *childRekey) processResponse(m *message.Message) (status, error) {
	sa, p, old := t.sa, t.sa.p, t.old
	n := childErrorIn(m)
	if n == nil {
		n = m.Notify(message.NotifyChildSANotFound)
	}
	if n != nil {
		return t.processRefusal(n)
	}
	k, err := acceptChildResponse(sa, &t.kx, t.inSPI, false, m)
	var shared []byte
	if err == nil && k.alg.DH != ipsec.DHNone {
		shared, err = childShared(sa, &t.kx, m, k.alg.DH)
	}
	if err == nil {
		err = sa.deriveChild(k, shared, true)
	}
	if err != nil {
		t.release()
		if t.yieldToPeer(err.Error()) {
			return statusDone, nil
		}
		t.restoreOld()
		p.log.Warn("CHILD SA rekey failed", "reason", err.Error())
		p.reportFailure(err.Error(), 0)
		return statusDone, nil
	}

	if pn := t.peerSA(); pn != nil {
		// RFC 7296, Section 2.8.1: the lowest nonce marks the redundant SA;
		// but once the peer deleted old, its SA went into service
		// (2.25.1), and ours is the redundant one whatever the nonces say.
		if concluded := old.state == childDestroyed && pn.replaces == nil; concluded || lowestNonceIsOurs(k.ni, k.nr, pn.ni, pn.nr) {
			p.log.Info("CHILD SA rekey collision lost: our new SA holds the lowest nonce, so it is redundant and we delete it; the peer's SA replaces the old one once the peer deletes it (RFC 7296 2.8.1)",
				"old_in_spi", old.inSPI.String(), "redundant_in_spi", k.inSPI.String(), "in_spi", pn.inSPI.String(), "out_spi", pn.outSPI.String())
			c, err := sa.installChild(k, false)
			if err != nil {
				sa.tm.queue(newChildDeleteSPIs(sa, "installation failed", k.inSPI))
			} else {
				c.state = childRekeyed
				sa.tm.queue(newChildDelete(sa, c, "redundant SA of a rekey collision"))
			}
			t.inSPI = 0
			t.awaitPeerDelete()
			return statusDone, nil
		}
		p.log.Info("CHILD SA rekey collision won: the peer's new SA holds the lowest nonce, so it is redundant and the peer deletes it; ours replaces the old one (RFC 7296 2.8.1)",
			"old_in_spi", old.inSPI.String(), "in_spi", k.inSPI.String(), "redundant_in_spi", pn.inSPI.String())
		pn.replaces = nil
		p.retireOld(pn)
		p.after(halfOpenTimeout, func() {
			// The peer may never have completed its exchange (it saw our
			// DELETE of old first and abandoned it): delete pn ourselves.
			if pn.state == childRekeyed && pn.sa.alive() && !pn.sa.tm.hasQueued(taskChildDelete) {
				p.log.Info("peer did not delete its redundant CHILD SA of a rekey collision; deleting it", "in_spi", pn.inSPI.String(), "out_spi", pn.outSPI.String())
				pn.sa.tm.queue(newChildDelete(pn.sa, pn, "redundant SA of a rekey collision"))
			}
		})
	}
	c, err := sa.installChild(k, true)
	t.inSPI = 0
	if err != nil {
		t.restoreOld()
		p.log.Error("installing the rekeyed CHILD SA failed", "err", err)
		sa.tm.queue(newChildDeleteSPIs(sa, "installation failed", k.inSPI))
		return statusDone, nil
	}
	c.pfs = k.alg.DH
	p.dropUnfinishedSuccessor(old) // see childstall.go
	p.childRekeyed(old, c, t.reason)
	if old.state == childDestroyed {
		return statusDone, nil // the peer deleted it meanwhile (2.25.1)
	}
	p.retireOld(old)
	sa.tm.queue(newChildDelete(sa, old, "rekeyed"))
	return statusDone, nil
}

// processRefusal handles a rekey response carrying an error notify: retry
// with another group or the full offer, yield to the peer's colliding
// rekey, or keep the old SA and report the failure.
func (t *childRekey) processRefusal(n *message.Notify) (status, error) {
	sa, p, old := t.sa, t.sa.p, t.old
	switch n.Kind {
	case message.NotifyInvalidKEPayload:
		if g, retry := t.kx.invalidKE(n, p.cfg.ESPProposals); retry {
			p.log.Info("peer asked for another PFS group; retrying the CHILD rekey", "requested", g.Name())
			old.pfs = g
			return statusRetry, nil
		}
	case message.NotifyNoProposalChosen:
		if !t.fullOffer {
			p.log.Info("peer refused the CHILD SA's current algorithms for the rekey; retrying with every configured proposal",
				"old_in_spi", old.inSPI.String(), "alg", old.alg.String())
			t.fullOffer = true
			t.kx.group = firstDH(p.cfg.ESPProposals)
			old.pfs = t.kx.group
			return statusRetry, nil
		}
	case message.NotifyTemporaryFailure:
		t.release()
		if t.yieldToPeer("the peer answered TEMPORARY_FAILURE after finishing its own rekey") {
			return statusDone, nil
		}
		if old.state == childDestroyed {
			t.oldGone("it answered TEMPORARY_FAILURE while deleting it")
			return statusDone, nil
		}
		t.restoreOld()
		// RFC 7296, Section 2.25: retry after a random delay.
		d := tempFailMinDelay + p.randDuration(tempFailMaxDelay-tempFailMinDelay)
		p.log.Info("CHILD SA rekey postponed: the peer answered TEMPORARY_FAILURE (an exchange of its own is in progress); retrying",
			"old_in_spi", old.inSPI.String(), "in", d.String())
		p.retryChildRekey(old, d, "retry after TEMPORARY_FAILURE")
		return statusDone, nil
	case message.NotifyChildSANotFound:
		// RFC 7296, Section 2.25: the peer no longer has the SA.
		t.release()
		if t.peerSA() == nil && p.concludeFinishedSuccessor(old) {
			return statusDone, nil
		}
		if t.yieldToPeer("the peer had already rekeyed and deleted it") {
			return statusDone, nil
		}
		if old.state == childDestroyed {
			t.oldGone("it answered CHILD_SA_NOT_FOUND")
			return statusDone, nil
		}
		p.log.Warn("peer does not know the CHILD SA we rekeyed (CHILD_SA_NOT_FOUND); removing it and creating a new one",
			"in_spi", old.inSPI.String(), "out_spi", old.outSPI.String())
		sa.deleteChildSAs(old, false)
		p.emit(Event{Kind: EventChildDown, Reason: "the peer no longer has this CHILD SA (CHILD_SA_NOT_FOUND)", InSPI: old.inSPI, OutSPI: old.outSPI, Alg: old.alg})
		p.ensureChild(sa)
		return statusDone, nil
	}
	t.release()
	if t.yieldToPeer("the peer refused our rekey with " + n.Kind.String()) {
		return statusDone, nil
	}
	if old.state == childDestroyed {
		t.oldGone("it refused our rekey with " + n.Kind.String())
		return statusDone, nil
	}
	t.restoreOld()
	reason := childFailSentence(p, n.Kind, "our CHILD SA rekey")
	p.log.Warn("CHILD SA rekey failed; the current SA stays until its hard lifetime", "reason", reason, "expires", old.expireAt)
	p.reportFailure(reason, n.Kind)
	// Try again once more before the hard lifetime.
	if left := old.expireAt.Sub(p.m.clock.Now()); left > 2*retryMinDelay {
		p.retryChildRekey(old, left/2, "retry after a refused rekey")
	}
	return statusDone, nil
}

// lowestNonceIsOurs reports whether the lowest of the four nonces belongs
// to our exchange (octet-wise comparison, RFC 7296, Section 2.8.1).
func lowestNonceIsOurs(ourI, ourR, peerI, peerR []byte) bool {
	ours := ourI
	if bytes.Compare(ourR, ours) < 0 {
		ours = ourR
	}
	theirs := peerI
	if bytes.Compare(peerR, theirs) < 0 {
		theirs = peerR
	}
	return bytes.Compare(ours, theirs) < 0
}

func (t *childRekey) processRequest(m *message.Message) (status, error) {
	sa, p := t.sa, t.sa.p
	n := m.Notify(message.NotifyRekeySA)
	if n == nil || n.Protocol != ipsec.ProtoESP || len(n.SPI) != 4 {
		return statusDone, &notifyError{notify: message.NotifyInvalidSyntax, reason: "ike: REKEY_SA without a 4-octet ESP SPI"}
	}
	spi := ipsec.SPI(binary.BigEndian.Uint32(n.SPI))
	old := sa.childByOutSPI(spi)
	if old == nil {
		// RFC 7296, Section 2.25.
		p.log.Info("peer wants to rekey a CHILD SA we do not have; answering CHILD_SA_NOT_FOUND", "spi", spi.String())
		return statusDone, &notifyError{notify: message.NotifyChildSANotFound, reason: "ike: CHILD_SA_NOT_FOUND"}
	}
	if old.state == childDeleting || old.state == childRekeyed {
		// RFC 7296, Section 2.25.1: we are closing it.
		p.log.Info("refusing the peer's rekey of a CHILD SA we are closing with TEMPORARY_FAILURE", "in_spi", old.inSPI.String())
		return statusDone, &notifyError{notify: message.NotifyTemporaryFailure, reason: "ike: the CHILD SA is being deleted"}
	}
	if sa.successorOf(old) != nil {
		p.log.Info("refusing the peer's second rekey of a CHILD SA with TEMPORARY_FAILURE: its first rekey waits for the DELETE", "in_spi", old.inSPI.String())
		return statusDone, &notifyError{notify: message.NotifyTemporaryFailure, reason: "ike: the CHILD SA is being rekeyed"}
	}
	res, fail := negotiateChildResponder(sa, m, false)
	if fail != nil && fail.quiet {
		// INVALID_KE_PAYLOAD: a normal step, the peer retries.
		p.log.Info("asked the peer to rekey the CHILD SA with another PFS group", "reason", fail.reason)
		return statusDone, fail
	}
	if fail != nil {
		p.log.Warn("refusing the peer's CHILD SA rekey", "reason", fail.reason)
		p.reportFailure(fail.reason, fail.notify)
		return statusDone, fail
	}
	t.old, t.res = old, res
	return statusDone, nil
}

func (t *childRekey) buildResponse(m *message.Message) error {
	sa, p, old := t.sa, t.sa.p, t.old
	// Inbound only: see the type comment.
	c, err := sa.installChild(t.res.keys, false)
	if err != nil {
		_ = p.m.cfg.Installer.DelSA(p.cfg.Name, ipsec.Inbound, t.res.keys.inSPI)
		return &notifyError{notify: message.NotifyNoAdditionalSAs, reason: err.Error()}
	}
	out := sa.params(t.res.keys, ipsec.Outbound)
	c.pendingOut = &out
	c.replaces = old
	c.pfs = t.res.keys.alg.DH
	appendChildResponse(m, t.res.keys, t.res.chosen, t.res.dhPublic, true)
	if ours, ok := sa.tm.activeKind(taskChildRekey).(*childRekey); ok && ours.initiator && ours.old == old {
		// A collision: ours is in flight too; the nonces decide when its
		// answer comes.
		ours.peerNew = c
		p.log.Info("CHILD SA rekey collision detected: answered the peer's rekey while ours is in flight; the nonces decide which new SA survives",
			"old_in_spi", old.inSPI.String(), "peer_in_spi", c.inSPI.String())
	} else {
		old.state = childRekeyed
		old.stopTimers()
		p.log.Info("CHILD SA rekey answered; the new outbound SA takes over when the peer sends on the new SA or deletes the old one",
			"old_in_spi", old.inSPI.String(), "in_spi", c.inSPI.String(), "out_spi", c.outSPI.String())
		p.watchNewInbound(old, c)
	}
	p.after(halfOpenTimeout, func() {
		if c.state != childInstalled {
			return
		}
		switch {
		case c.replaces == old:
			p.settlePeerRekey(old, c) // see childstall.go
			return
		case c.switchedFrom == old:
			// Switched early (watchNewInbound); the DELETE never came.
			p.log.Warn("peer did not delete the CHILD SA it rekeyed; deleting the old one ourselves",
				"old_in_spi", old.inSPI.String(), "in_spi", c.inSPI.String(), "after", halfOpenTimeout.String())
		default:
			return
		}
		if old.state != childDestroyed && old.sa.alive() {
			old.sa.tm.queue(newChildDelete(old.sa, old, "rekeyed; the peer did not delete it"))
		}
	})
	return nil
}

// newInboundPoll is how often a rekey responder looks for the peer's first
// packet on the new CHILD SA.
const newInboundPoll = 250 * time.Millisecond

// watchNewInbound puts the peer's new CHILD SA c in service as soon as
// authentic ESP arrives on its inbound half, without waiting for the
// peer's DELETE of old: the initiator sends on the new SA only after it
// installed both halves, so it can receive on it too. Waiting for the
// DELETE alone keeps us sending on old, which the peer may drop at its hard
// lifetime, for as long as that DELETE is lost and retransmitted (seconds
// on a lossy path). The inbound counter is the dataplane's, which counts
// only packets that passed the ICV and the replay window.
func (p *peer) watchNewInbound(old, c *childSA) {
	var poll func()
	poll = func() {
		if c.replaces != old || c.state != childInstalled || c.outInstalled {
			return
		}
		if st, err := p.m.cfg.Installer.QuerySA(p.cfg.Name, ipsec.Inbound, c.inSPI); err == nil && !st.LastUsed.IsZero() {
			p.log.Info("peer sends on the new CHILD SA; it takes over sending before the peer's DELETE of the old one",
				"old_in_spi", old.inSPI.String(), "in_spi", c.inSPI.String(), "out_spi", c.outSPI.String())
			c.switchedFrom = old
			p.concludeChildRekey(old, c, "rekeyed by the peer, which sends on the new SA")
			return
		}
		p.after(newInboundPoll, poll)
	}
	p.after(newInboundPoll, poll)
}
