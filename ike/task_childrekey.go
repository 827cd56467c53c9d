package ike

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/cgwproject/cgw/ike/crypto"
	"github.com/cgwproject/cgw/ike/message"
	"github.com/cgwproject/cgw/ipsec"
)

// childRekey replaces a CHILD SA (RFC 7296, Section 1.3.3):
//
//	HDR, SK {N(REKEY_SA), SA, Ni, [KEi], TSi, TSr}  -->
//	                            <--  HDR, SK {SA, Nr, [KEr], TSi, TSr}
//
// Make-before-break: the new inbound SA is installed, then the new outbound
// SA (which takes over sending), then the old SA is deleted with an
// INFORMATIONAL exchange; its inbound half lingers a few seconds for
// packets already in flight.
//
// Collisions (Section 2.8.1): when both ends rekey the same CHILD SA at the
// same time, two new SAs result. The one created by the exchange with the
// lowest of the four nonces is redundant and is deleted by whoever
// initiated that exchange; the initiator of the surviving SA deletes the old
// one.
type childRekey struct {
	sa        *ikeSA
	initiator bool
	old       *childSA

	inSPI ipsec.SPI
	group ipsec.DHGroup
	dh    crypto.DH
	nonce []byte
	sent  *message.SA
	tries int
	// peerNew is the CHILD SA the peer created by rekeying old while our
	// own rekey was in flight (a collision).
	peerNew *childSA

	// responder
	res  *responderChild
	fail *notifyError
}

func newChildRekey(sa *ikeSA, old *childSA) *childRekey {
	return &childRekey{sa: sa, initiator: true, old: old, group: old.pfs}
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
		return fmt.Errorf("ike: CHILD SA %s is no longer current; rekey dropped", old.inSPI)
	}
	var err error
	if t.inSPI == 0 {
		if t.inSPI, err = p.m.cfg.Installer.AllocSPI(p.cfg.Name); err != nil {
			return fmt.Errorf("ike: allocating an inbound SPI: %w", err)
		}
	}
	if t.nonce == nil {
		if t.nonce, err = p.m.randBytes(nonceLen); err != nil {
			return err
		}
	}
	old.state = childRekeying
	t.sent = saPayload(ipsec.ProtoESP, p.cfg.ESPProposals, spiBytes(t.inSPI), true)
	m.Payloads = append(m.Payloads,
		&message.Notify{Protocol: ipsec.ProtoESP, SPI: spiBytes(old.inSPI), Kind: message.NotifyRekeySA},
		t.sent, &message.Nonce{Data: t.nonce})
	if t.group != ipsec.DHNone {
		if t.dh == nil || t.dh.Group() != t.group {
			if t.dh, err = crypto.NewDH(t.group, p.m.rand); err != nil {
				return err
			}
		}
		m.Payloads = append(m.Payloads, &message.KE{Group: t.group, Data: t.dh.Public()})
	}
	m.Payloads = append(m.Payloads,
		&message.TS{Selectors: p.cfg.TSLocal},
		&message.TS{Responder: true, Selectors: p.cfg.TSRemote})
	p.log.Info("IKE phase 2 Rekeying", "old_in_spi", old.inSPI.String(), "new_in_spi", t.inSPI.String())
	return nil
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

func (t *childRekey) processResponse(m *message.Message) (status, error) {
	sa, p, old := t.sa, t.sa.p, t.old
	if n := childErrorIn(m); n != nil || m.Notify(message.NotifyChildSANotFound) != nil {
		if n == nil {
			n = m.Notify(message.NotifyChildSANotFound)
		}
		switch n.Kind {
		case message.NotifyInvalidKEPayload:
			if len(n.Data) == 2 {
				g := ipsec.DHGroup(binary.BigEndian.Uint16(n.Data))
				t.tries++
				if offersDH(p.cfg.ESPProposals, g) && g != t.group && t.tries <= maxInitRetries {
					p.log.Info("peer asked for another PFS group; retrying the CHILD rekey", "requested", dhName(g))
					t.group, old.pfs = g, g
					return statusRetry, nil
				}
			}
		case message.NotifyTemporaryFailure:
			t.release()
			t.restoreOld()
			d := p.randDuration(tempFailMaxDelay)
			p.log.Info("peer answered TEMPORARY_FAILURE to our CHILD rekey; retrying", "in", d.String())
			sa.after(d, func() { p.queueChildRekey(old) })
			return statusDone, nil
		case message.NotifyChildSANotFound:
			t.release()
			p.log.Warn("peer does not know the CHILD SA we rekeyed; replacing it", "in_spi", old.inSPI.String())
			if old.state != childDestroyed {
				sa.deleteChildSAs(old, false)
				p.emit(Event{Kind: EventChildDown, Reason: "the peer no longer has this CHILD SA", InSPI: old.inSPI, OutSPI: old.outSPI})
			}
			p.ensureChild(sa)
			return statusDone, nil
		}
		t.release()
		t.restoreOld()
		reason := childFailSentence(p, n.Kind, "our CHILD SA rekey")
		p.log.Warn("CHILD SA rekey failed; the current SA stays until its hard lifetime", "reason", reason)
		p.lastFailure, p.lastFailureAt = reason, p.m.clock.Now()
		p.emit(Event{Kind: EventNegotiationFailed, Reason: reason, Notify: uint16(n.Kind)})
		// Try again once more before the hard lifetime.
		if left := old.expireAt.Sub(p.m.clock.Now()); left > 2*retryMinDelay {
			sa.after(left/2, func() { p.queueChildRekey(old) })
		}
		return statusDone, nil
	}
	cc := &childCreate{sa: sa, initiator: true, inSPI: t.inSPI, nonce: t.nonce, sent: t.sent, dh: t.dh}
	k, err := cc.acceptResponse(m)
	var shared []byte
	if err == nil && k.alg.DH != ipsec.DHNone {
		shared, err = cc.sharedFrom(m, k.alg.DH)
	}
	if err == nil {
		err = sa.deriveChild(k, shared, true)
	}
	if err != nil {
		t.release()
		t.restoreOld()
		p.log.Warn("CHILD SA rekey failed", "reason", err.Error())
		p.emit(Event{Kind: EventNegotiationFailed, Reason: err.Error()})
		return statusDone, nil
	}

	redundant := false
	if t.peerNew != nil && t.peerNew.state != childDestroyed {
		// RFC 7296, Section 2.8.1: the lowest nonce marks the redundant SA.
		redundant = lowestNonceIsOurs(k.ni, k.nr, t.peerNew.ni, t.peerNew.nr)
		p.log.Info("CHILD_REKEY collision", "our_sa_redundant", redundant)
	}
	c, err := sa.installChild(k, !redundant)
	if err != nil {
		t.restoreOld()
		p.log.Error("installing the rekeyed CHILD SA failed", "err", err)
		sa.tm.queue(newChildDeleteSPIs(sa, k.inSPI))
		return statusDone, nil
	}
	c.pfs = k.alg.DH
	if redundant {
		// Ours loses: delete it; the peer, whose SA survived, deletes old.
		c.state = childRekeyed
		sa.tm.queue(newChildDelete(sa, c, "redundant SA of a rekey collision"))
		if old.state != childDestroyed {
			p.retireOld(old)
		}
		return statusDone, nil
	}
	p.childUp(c, true)
	if t.peerNew != nil && t.peerNew.state != childDestroyed {
		// The peer's SA is the redundant one: stop sending on it; the peer
		// deletes it.
		p.retireOld(t.peerNew)
	}
	if old.state == childDestroyed {
		return statusDone, nil // the peer deleted it meanwhile (2.25.1)
	}
	p.retireOld(old)
	sa.tm.queue(newChildDelete(sa, old, "rekeyed"))
	return statusDone, nil
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
		p.log.Info("peer wants to rekey a CHILD SA we do not have", "spi", spi.String())
		return statusDone, &notifyError{notify: message.NotifyChildSANotFound, reason: "ike: CHILD_SA_NOT_FOUND"}
	}
	if old.state == childDeleting || old.state == childRekeyed {
		// RFC 7296, Section 2.25.1.
		return statusDone, &notifyError{notify: message.NotifyTemporaryFailure, reason: "ike: the CHILD SA is being deleted"}
	}
	res, fail := negotiateChildResponder(sa, m, false)
	if fail != nil {
		p.log.Warn("refusing the peer's CHILD SA rekey", "reason", fail.reason)
		p.emit(Event{Kind: EventNegotiationFailed, Reason: fail.reason, Notify: uint16(fail.notify)})
		return statusDone, fail
	}
	t.old, t.res = old, res
	return statusDone, nil
}

func (t *childRekey) buildResponse(m *message.Message) error {
	sa, p, old := t.sa, t.sa.p, t.old
	c, err := sa.installChild(t.res.keys, true)
	if err != nil {
		_ = p.m.cfg.Installer.DelSA(p.cfg.Name, ipsec.Inbound, t.res.keys.inSPI)
		return &notifyError{notify: message.NotifyNoAdditionalSAs, reason: err.Error()}
	}
	c.pfs = t.res.keys.alg.DH
	appendChildResponse(m, t.res.keys, t.res.chosen, t.res.dhPublic, true)
	p.childUp(c, true)
	if ours, ok := sa.tm.activeKind(taskChildRekey).(*childRekey); ok && ours.initiator && ours.old == old {
		// A collision: ours is in flight too; decide when its answer comes.
		ours.peerNew = c
		return nil
	}
	// The initiator deletes old; until then we keep its inbound half and
	// stop sending on it.
	p.retireOld(old)
	return nil
}
