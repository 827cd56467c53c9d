package ike

import (
	"encoding/binary"
	"fmt"

	"github.com/cgwproject/cgw/ike/crypto"
	"github.com/cgwproject/cgw/ike/message"
	"github.com/cgwproject/cgw/ipsec"
)

// ikeRekey replaces the IKE SA (RFC 7296, Sections 1.3.2 and 2.18):
//
//	HDR, SK {SA, Ni, KEi}  -->
//	                 <--  HDR, SK {SA, Nr, KEr}
//
// The SA payloads carry the new 8-octet SPIs; the new keys come from the old
// SK_d and a fresh Diffie-Hellman exchange. The CHILD SAs move to the new
// IKE SA, and the rekey initiator then deletes the old one.
//
// Collisions (Sections 2.8.2 and 2.25.2), as strongSwan's ike_rekey does:
//   - Both ends rekey at once: both exchanges complete. The peer's new IKE
//     SA waits (ikePending) until our own response arrives; then the
//     exchange holding the lowest of the four nonces made the redundant SA,
//     which its initiator deletes, and the other new SA inherits the CHILD
//     SAs. The initiator of the surviving exchange deletes the old SA.
//   - The peer did not notice the collision (our request reached it after
//     it finished): it answers TEMPORARY_FAILURE or deletes the old SA, and
//     we adopt its new SA instead of retrying.
//   - A rekey request on an IKE SA we are deleting, have already rekeyed, or
//     while one of our CHILD SA exchanges is in flight gets TEMPORARY_FAILURE;
//     the peer retries after a random delay.
type ikeRekey struct {
	sa        *ikeSA
	initiator bool
	reason    string // why we rekey, for the log

	newSPI uint64
	kx     keyExchange
	// peerNew is the IKE SA the peer created by rekeying sa while our
	// request was in flight (a collision).
	peerNew *ikeSA

	// responder
	alg      ipsec.Algorithms
	chosen   uint8
	peerSPI  uint64
	keys     *crypto.IKEKeys
	dh       crypto.DH
	ni, nr   []byte
	collided bool // our own rekey of sa was in flight when the request came
}

func newIKERekey(sa *ikeSA, reason string) *ikeRekey {
	return &ikeRekey{sa: sa, initiator: true, kx: keyExchange{group: sa.alg.DH}, reason: reason}
}

func newIKERekeyResponder(sa *ikeSA) *ikeRekey { return &ikeRekey{sa: sa} }

func (t *ikeRekey) kind() taskKind                 { return taskIKERekey }
func (t *ikeRekey) exchange() message.ExchangeType { return message.CreateChildSA }

// abort releases the new SPI when the exchange is dropped unfinished.
func (t *ikeRekey) abort() { t.freeSPI() }

// pendingPeerSA returns the peer's colliding new IKE SA while it still
// waits for the outcome.
func (t *ikeRekey) pendingPeerSA() *ikeSA {
	if t.peerNew != nil && t.peerNew.state == ikePending {
		return t.peerNew
	}
	return nil
}

// concludeCollision adopts the peer's new IKE SA when our rekey did not
// complete but the peer's colliding one did (the peer did not notice the
// collision and answered TEMPORARY_FAILURE, or our rekey failed). The peer,
// as initiator of the surviving exchange, deletes the old SA.
func (t *ikeRekey) concludeCollision(why string) bool {
	pn := t.pendingPeerSA()
	if pn == nil {
		return false
	}
	sa, p := t.sa, t.sa.p
	p.log.Info("IKE SA rekey collision: the peer's rekey completed and ours did not, so the peer's new IKE SA replaces the old one (RFC 7296 2.8.2)",
		"why", why, "old_ike_sa", sa.spiString(), "ike_sa", pn.spiString())
	p.adoptRekeyed(sa, pn, "rekeyed by the peer during a collision")
	p.awaitOldDelete(sa)
	return true
}

func spi64Bytes(s uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], s)
	return b[:]
}

func (t *ikeRekey) build(m *message.Message) error {
	sa, p := t.sa, t.sa.p
	if !t.initiator {
		m.Payloads = append(m.Payloads,
			selectedProposal(t.chosen, ipsec.ProtoIKE, t.alg, spi64Bytes(t.newSPI), true),
			&message.Nonce{Data: t.nr},
			&message.KE{Group: t.alg.DH, Data: t.dh.Public()})
		return nil
	}
	if sa.state != ikeEstablished {
		return fmt.Errorf("ike: IKE SA is not established; rekey dropped")
	}
	if t.newSPI == 0 && sa.childHalfOpen() {
		// RFC 7296, Section 2.25.2, as strongSwan does: not under a CHILD
		// SA exchange that has not finished on both ends.
		p.retryIKERekeyLater(sa, "a CHILD SA exchange has not finished on both ends")
		return &notifyError{quiet: true, reason: "ike: IKE SA rekey postponed: a CHILD SA exchange has not finished on both ends"}
	}
	var err error
	if t.newSPI == 0 {
		if t.newSPI, err = p.m.allocSPI(p); err != nil {
			return err
		}
	}
	if err := t.kx.prepare(p, func() ([]byte, error) { return p.m.newNonce(true) }); err != nil {
		return err
	}
	// Offer only the current algorithms: the new IKE SA keeps its PRF, so
	// key derivation cannot depend on which PRF feeds prf+ (RFC 7296, 2.18
	// says the new one; strongSwan 5.9 uses the old one), and a peer that
	// accepted them once accepts them again.
	m.Payloads = append(m.Payloads, t.kx.offer(ipsec.ProtoIKE, []ipsec.Proposal{algProposal(sa.alg)}, spi64Bytes(t.newSPI), true),
		&message.Nonce{Data: t.kx.nonce}, t.kx.ke())
	if t.kx.tries == 0 {
		p.log.Info("IKE SA rekey started", "reason", t.reason, "ike_sa", sa.spiString(), "new_spi_i", fmt.Sprintf("%016x", t.newSPI))
	}
	return nil
}

func (t *ikeRekey) freeSPI() {
	if t.newSPI != 0 {
		t.sa.p.m.freeSPI(t.newSPI)
		t.newSPI = 0
	}
}

func (t *ikeRekey) process(m *message.Message) (status, error) {
	if !t.initiator {
		return t.processRequest(m)
	}
	sa, p := t.sa, t.sa.p
	for _, pl := range m.Payloads {
		if n, ok := pl.(*message.Notify); ok && n.Kind.IsError() {
			return t.processRefusal(n)
		}
	}
	got, _ := m.Get(message.PayloadSA).(*message.SA)
	ke, _ := m.Get(message.PayloadKE).(*message.KE)
	nonce, _ := m.Get(message.PayloadNonce).(*message.Nonce)
	fail := func(err error) (status, error) {
		t.freeSPI()
		if t.concludeCollision(err.Error()) {
			return statusDone, nil
		}
		p.log.Warn("IKE SA rekey failed", "reason", err.Error())
		p.reportFailure(err.Error(), 0)
		return statusDone, nil
	}
	if got == nil || ke == nil || nonce == nil || len(nonce.Data) < 16 || len(nonce.Data) > 256 {
		return fail(fmt.Errorf("ike: peer %s answered our IKE rekey without SA, KE or a valid nonce", p.cfg.RemoteAddr))
	}
	alg, gp, err := t.kx.accept(got, ipsec.ProtoIKE, true)
	if err != nil {
		return fail(fmt.Errorf("ike: peer %s: bad IKE rekey response: %v", p.cfg.RemoteAddr, err))
	}
	if len(gp.SPI) != 8 || alg.DH != t.kx.group || !t.kx.matches(ke, alg.DH) {
		return fail(fmt.Errorf("ike: peer %s: IKE rekey response has a bad SPI or DH group", p.cfg.RemoteAddr))
	}
	shared, err := t.kx.shared(ke)
	if err != nil {
		return fail(err)
	}
	spiR := binary.BigEndian.Uint64(gp.SPI)
	keys, err := crypto.DeriveRekeyedIKEKeys(alg, sa.alg.PRF, sa.keys.SKd, shared, t.kx.nonce, nonce.Data, t.newSPI, spiR)
	if err != nil {
		return fail(err)
	}
	nr := append([]byte(nil), nonce.Data...)
	nsa, err := p.rekeyedSA(sa, true, t.newSPI, spiR, alg, keys, t.kx.nonce, nr)
	if err != nil {
		return fail(err)
	}
	t.newSPI = 0 // owned by nsa now
	if pn := t.pendingPeerSA(); pn != nil {
		// RFC 7296, Section 2.8.2: the new IKE SA created by the exchange
		// holding the lowest of the four nonces is redundant and deleted
		// by its initiator; the other inherits the CHILD SAs.
		if lowestNonceIsOurs(t.kx.nonce, nr, pn.ni, pn.nr) {
			p.log.Info("IKE SA rekey collision lost: our new IKE SA holds the lowest nonce, so it is redundant and we delete it; the peer's new IKE SA replaces the old one and the peer deletes the old one (RFC 7296 2.8.2)",
				"old_ike_sa", sa.spiString(), "redundant_ike_sa", nsa.spiString(), "ike_sa", pn.spiString())
			nsa.redundant = true
			nsa.state = ikeRekeyed
			p.sas[nsa.ourSPI()] = nsa
			p.adoptRekeyed(sa, pn, "rekeyed by the peer (it won the rekey collision)")
			p.awaitOldDelete(sa)
			p.deleteIKESA(nsa, "redundant IKE SA of a rekey collision (ours held the lowest nonce)")
			return statusDone, nil
		}
		p.log.Info("IKE SA rekey collision won: the peer's new IKE SA holds the lowest nonce, so it is redundant and the peer deletes it; ours replaces the old one (RFC 7296 2.8.2)",
			"old_ike_sa", sa.spiString(), "ike_sa", nsa.spiString(), "redundant_ike_sa", pn.spiString())
		pn.redundant = true
		pn.state = ikeRekeyed
		pn.after(halfOpenTimeout, func() {
			if pn.state == ikeRekeyed {
				// The peer may never have completed it (it saw our DELETE of
				// the old SA first and abandoned its rekey), so one DELETE
				// without retransmissions, as at shutdown.
				p.log.Info("peer did not delete its redundant IKE SA of a rekey collision; deleting it", "ike_sa", pn.spiString())
				p.sendDeleteOnce(pn)
				p.destroySA(pn, "redundant IKE SA of a rekey collision")
			}
		})
	}
	p.adoptRekeyed(sa, nsa, t.reason)
	sa.tm.queue(newIKEDelete(sa, "rekeyed"))
	return statusDone, nil
}

// processRefusal handles a rekey response carrying an error notify: retry
// with the group the peer asks for, retry later after TEMPORARY_FAILURE,
// adopt the peer's colliding rekey, or keep the IKE SA and report.
func (t *ikeRekey) processRefusal(n *message.Notify) (status, error) {
	sa, p := t.sa, t.sa.p
	switch n.Kind {
	case message.NotifyInvalidKEPayload:
		if g, retry := t.kx.invalidKE(n, p.cfg.IKEProposals); retry {
			p.log.Info("peer asked for another DH group; retrying the IKE SA rekey", "requested", g.Name())
			return statusRetry, nil
		}
	case message.NotifyTemporaryFailure:
		t.freeSPI()
		if t.concludeCollision("the peer answered TEMPORARY_FAILURE after finishing its own rekey") {
			return statusDone, nil
		}
		// RFC 7296, Section 2.25: retry after a random delay.
		p.retryIKERekeyLater(sa, "the peer answered TEMPORARY_FAILURE (an exchange of its own is in progress)")
		return statusDone, nil
	}
	t.freeSPI()
	if t.concludeCollision("the peer refused our rekey with " + n.Kind.String()) {
		return statusDone, nil
	}
	reason := fmt.Sprintf("ike: peer %s refused our IKE SA rekey with %s; the IKE SA stays until its hard lifetime", p.cfg.RemoteAddr, n.Kind)
	p.log.Warn(reason)
	p.reportFailure(reason, n.Kind)
	return statusDone, nil
}

func (t *ikeRekey) processRequest(m *message.Message) (status, error) {
	sa, p := t.sa, t.sa.p
	// RFC 7296, Sections 2.8.2 and 2.25.2.
	busy := ""
	switch {
	case sa.state == ikeDeleting:
		busy = "we are deleting this IKE SA"
	case sa.state != ikeEstablished:
		busy = "this IKE SA is already rekeyed"
	case sa.childHalfOpen():
		busy = "a CHILD SA exchange of ours is in progress"
	}
	if busy != "" {
		p.log.Info("refusing the peer's IKE SA rekey with TEMPORARY_FAILURE; it retries later", "why", busy, "ike_sa", sa.spiString())
		return statusDone, &notifyError{notify: message.NotifyTemporaryFailure, reason: "ike: " + busy}
	}
	if r, ok := sa.tm.activeKind(taskIKERekey).(*ikeRekey); ok && r.initiator {
		t.collided = true
	}
	offer, _ := m.Get(message.PayloadSA).(*message.SA)
	ke, _ := m.Get(message.PayloadKE).(*message.KE)
	nonce, _ := m.Get(message.PayloadNonce).(*message.Nonce)
	if offer == nil || ke == nil || nonce == nil || len(nonce.Data) < 16 || len(nonce.Data) > 256 {
		return statusDone, &notifyError{notify: message.NotifyInvalidSyntax, reason: "ike: IKE rekey request without SA, KE or a valid nonce"}
	}
	// Prefer what needs no INVALID_KE round trip: the current algorithms
	// with the peer's KE group, then any configured proposal with it; else
	// the current algorithms when offered (see build), then our configured
	// order.
	cur := []ipsec.Proposal{algProposal(sa.alg)}
	alg, chosen, ok := selectWithGroup(cur, offer.Proposals, ipsec.ProtoIKE, ke.Group)
	if !ok {
		alg, chosen, ok = selectWithGroup(p.cfg.IKEProposals, offer.Proposals, ipsec.ProtoIKE, ke.Group)
	}
	if !ok {
		alg, chosen, ok = selectProposal(cur, offer.Proposals, ipsec.ProtoIKE, true)
	}
	if !ok {
		alg, chosen, ok = selectProposal(p.cfg.IKEProposals, offer.Proposals, ipsec.ProtoIKE, true)
	}
	if !ok {
		reason := fmt.Sprintf("ike: peer %s offered IKE rekey proposals %s, none of which matches our ike_proposals %s",
			p.cfg.RemoteAddr, offeredString(offer, true), ipsec.ProposalsString(p.cfg.IKEProposals))
		p.log.Warn(reason)
		return statusDone, &notifyError{notify: message.NotifyNoProposalChosen, reason: reason}
	}
	if ke.Group != alg.DH {
		return statusDone, &notifyError{notify: message.NotifyInvalidKEPayload, data: invalidKEData(alg.DH), reason: "ike: asked the peer to use " + alg.DH.Name()}
	}
	if len(chosen.SPI) != 8 {
		return statusDone, &notifyError{notify: message.NotifyInvalidSyntax, reason: "ike: IKE rekey without an 8-octet SPI"}
	}
	dh, shared, _, err := responderDH(p, alg.DH, ke.Data, false)
	if err != nil {
		return statusDone, &notifyError{notify: message.NotifyInvalidSyntax, reason: "ike: IKE rekey key exchange failed: " + err.Error()}
	}
	if t.nr, err = p.m.newNonce(false); err != nil {
		return statusDone, &notifyError{notify: message.NotifyNoProposalChosen, reason: err.Error()}
	}
	if t.newSPI, err = p.m.allocSPI(p); err != nil {
		return statusDone, &notifyError{notify: message.NotifyNoProposalChosen, reason: err.Error()}
	}
	t.peerSPI = binary.BigEndian.Uint64(chosen.SPI)
	t.ni = append([]byte(nil), nonce.Data...)
	t.keys, err = crypto.DeriveRekeyedIKEKeys(alg, sa.alg.PRF, sa.keys.SKd, shared, t.ni, t.nr, t.peerSPI, t.newSPI)
	if err != nil {
		t.freeSPI()
		return statusDone, &notifyError{notify: message.NotifyNoProposalChosen, reason: err.Error()}
	}
	t.alg, t.chosen, t.dh = alg, chosen.Number, dh
	return statusDone, nil
}

func (t *ikeRekey) afterSend() {
	sa, p := t.sa, t.sa.p
	nsa, err := p.rekeyedSA(sa, false, t.peerSPI, t.newSPI, t.alg, t.keys, t.ni, t.nr)
	if err != nil {
		t.freeSPI()
		p.log.Error("adopting the rekeyed IKE SA failed", "err", err)
		return
	}
	if ours, ok := sa.tm.activeKind(taskIKERekey).(*ikeRekey); ok && t.collided && ours.initiator {
		// A collision (RFC 7296, Section 2.8.2): the nonces decide once our
		// own response arrives. Until then the new SA answers requests but
		// owns nothing.
		nsa.state = ikePending
		p.sas[nsa.ourSPI()] = nsa
		ours.peerNew = nsa
		p.log.Info("IKE SA rekey collision detected: answered the peer's rekey while ours is in flight; the nonces decide which new IKE SA survives",
			"old_ike_sa", sa.spiString(), "peer_ike_sa", nsa.spiString())
		nsa.after(halfOpenTimeout, func() {
			if nsa.state == ikePending {
				p.destroySA(nsa, "the rekey collision was never resolved")
			}
		})
		return
	}
	p.adoptRekeyed(sa, nsa, "rekeyed by the peer")
	p.awaitOldDelete(sa)
}

// retryIKERekeyLater queues a rekey of sa again after a random delay
// (RFC 7296, Section 2.25), unless one is pending by then.
func (p *peer) retryIKERekeyLater(sa *ikeSA, why string) {
	d := tempFailMinDelay + p.randDuration(tempFailMaxDelay-tempFailMinDelay)
	p.log.Info("IKE SA rekey postponed; retrying", "why", why, "ike_sa", sa.spiString(), "in", d.String())
	sa.after(d, func() {
		if sa.state == ikeEstablished && !sa.tm.hasQueued(taskIKERekey) && sa.tm.activeKind(taskIKERekey) == nil {
			sa.tm.queue(newIKERekey(sa, "retry after a postponed rekey ("+why+")"))
		}
	})
}
