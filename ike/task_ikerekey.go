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
// IKE SA, and the rekey initiator then deletes the old one. A rekey request
// that arrives while one of our own CREATE_CHILD_SA exchanges is in flight
// is answered with TEMPORARY_FAILURE (Section 2.25.2); the peer retries.
type ikeRekey struct {
	sa        *ikeSA
	initiator bool

	newSPI uint64
	group  ipsec.DHGroup
	dh     crypto.DH
	nonce  []byte
	sent   *message.SA
	tries  int

	// responder
	alg     ipsec.Algorithms
	chosen  uint8
	peerSPI uint64
	keys    *crypto.IKEKeys
	ni      []byte
}

func newIKERekey(sa *ikeSA) *ikeRekey {
	return &ikeRekey{sa: sa, initiator: true, group: sa.alg.DH}
}

func newIKERekeyResponder(sa *ikeSA) *ikeRekey { return &ikeRekey{sa: sa} }

func (t *ikeRekey) kind() taskKind                 { return taskIKERekey }
func (t *ikeRekey) exchange() message.ExchangeType { return message.CreateChildSA }

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
			&message.Nonce{Data: t.nonce},
			&message.KE{Group: t.alg.DH, Data: t.dh.Public()})
		return nil
	}
	if sa.state != ikeEstablished {
		return fmt.Errorf("ike: IKE SA is not established; rekey dropped")
	}
	var err error
	if t.newSPI == 0 {
		if t.newSPI, err = p.m.allocSPI(p); err != nil {
			return err
		}
	}
	if t.nonce == nil {
		if t.nonce, err = p.m.randBytes(nonceLen); err != nil {
			return err
		}
	}
	if t.dh == nil || t.dh.Group() != t.group {
		if t.dh, err = crypto.NewDH(t.group, p.m.rand); err != nil {
			return err
		}
	}
	// Offer only the current algorithms: the new IKE SA keeps its PRF, so
	// key derivation cannot depend on which PRF feeds prf+ (RFC 7296, 2.18
	// says the new one; strongSwan 5.9 uses the old one), and a peer that
	// accepted them once accepts them again.
	t.sent = saPayload(ipsec.ProtoIKE, []ipsec.Proposal{algProposal(sa.alg)}, spi64Bytes(t.newSPI), true)
	m.Payloads = append(m.Payloads, t.sent, &message.Nonce{Data: t.nonce}, &message.KE{Group: t.group, Data: t.dh.Public()})
	p.log.Info("IKE phase 1 Rekeying", "ike_sa", sa.spiString())
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
		n, ok := pl.(*message.Notify)
		if !ok || !n.Kind.IsError() {
			continue
		}
		switch n.Kind {
		case message.NotifyInvalidKEPayload:
			if len(n.Data) == 2 {
				g := ipsec.DHGroup(binary.BigEndian.Uint16(n.Data))
				t.tries++
				if offersDH(p.cfg.IKEProposals, g) && g != t.group && t.tries <= maxInitRetries {
					t.group = g
					return statusRetry, nil
				}
			}
		case message.NotifyTemporaryFailure:
			t.freeSPI()
			d := p.randDuration(tempFailMaxDelay)
			p.log.Info("peer answered TEMPORARY_FAILURE to our IKE rekey; retrying", "in", d.String())
			sa.after(d, func() {
				if sa.state == ikeEstablished && !sa.tm.hasQueued(taskIKERekey) {
					sa.tm.queue(newIKERekey(sa))
				}
			})
			return statusDone, nil
		}
		t.freeSPI()
		reason := fmt.Sprintf("ike: peer %s refused our IKE SA rekey with %s; the IKE SA stays until its hard lifetime", p.cfg.RemoteAddr, n.Kind)
		p.log.Warn(reason)
		p.lastFailure, p.lastFailureAt = reason, p.m.clock.Now()
		p.emit(Event{Kind: EventNegotiationFailed, Reason: reason, Notify: uint16(n.Kind)})
		return statusDone, nil
	}
	got, _ := m.Get(message.PayloadSA).(*message.SA)
	ke, _ := m.Get(message.PayloadKE).(*message.KE)
	nonce, _ := m.Get(message.PayloadNonce).(*message.Nonce)
	fail := func(err error) (status, error) {
		t.freeSPI()
		p.log.Warn("IKE SA rekey failed", "reason", err.Error())
		p.emit(Event{Kind: EventNegotiationFailed, Reason: err.Error()})
		return statusDone, nil
	}
	if got == nil || ke == nil || nonce == nil || len(nonce.Data) < 16 || len(nonce.Data) > 256 {
		return fail(fmt.Errorf("ike: peer %s answered our IKE rekey without SA, KE or a valid nonce", p.cfg.RemoteAddr))
	}
	alg, gp, err := acceptResponse(t.sent, got, ipsec.ProtoIKE, true)
	if err != nil {
		return fail(fmt.Errorf("ike: peer %s: bad IKE rekey response: %v", p.cfg.RemoteAddr, err))
	}
	if len(gp.SPI) != 8 || alg.DH != t.group || ke.Group != t.group {
		return fail(fmt.Errorf("ike: peer %s: IKE rekey response has a bad SPI or DH group", p.cfg.RemoteAddr))
	}
	shared, err := t.dh.Shared(ke.Data)
	if err != nil {
		return fail(err)
	}
	spiR := binary.BigEndian.Uint64(gp.SPI)
	keys, err := crypto.DeriveRekeyedIKEKeys(alg, sa.alg.PRF, sa.keys.SKd, shared, t.nonce, nonce.Data, t.newSPI, spiR)
	if err != nil {
		return fail(err)
	}
	nsa, err := p.rekeyedSA(sa, true, t.newSPI, spiR, alg, keys, t.nonce, nonce.Data)
	if err != nil {
		return fail(err)
	}
	t.newSPI = 0 // owned by nsa now
	p.adoptRekeyed(sa, nsa)
	sa.tm.queue(newIKEDelete(sa, "rekeyed"))
	return statusDone, nil
}

func (t *ikeRekey) processRequest(m *message.Message) (status, error) {
	sa, p := t.sa, t.sa.p
	for _, k := range []taskKind{taskIKERekey, taskChildRekey, taskChildCreate, taskIKEDelete} {
		if sa.tm.activeKind(k) != nil {
			return statusDone, &notifyError{notify: message.NotifyTemporaryFailure, reason: "ike: an exchange of ours is in progress"}
		}
	}
	if sa.state != ikeEstablished {
		return statusDone, &notifyError{notify: message.NotifyTemporaryFailure, reason: "ike: IKE SA is being deleted"}
	}
	offer, _ := m.Get(message.PayloadSA).(*message.SA)
	ke, _ := m.Get(message.PayloadKE).(*message.KE)
	nonce, _ := m.Get(message.PayloadNonce).(*message.Nonce)
	if offer == nil || ke == nil || nonce == nil || len(nonce.Data) < 16 || len(nonce.Data) > 256 {
		return statusDone, &notifyError{notify: message.NotifyInvalidSyntax, reason: "ike: IKE rekey request without SA, KE or a valid nonce"}
	}
	// Prefer the current algorithms when offered (see build), then our
	// configured order.
	alg, chosen, ok := selectProposal([]ipsec.Proposal{algProposal(sa.alg)}, offer.Proposals, ipsec.ProtoIKE, true)
	if !ok {
		alg, chosen, ok = selectProposal(p.cfg.IKEProposals, offer.Proposals, ipsec.ProtoIKE, true)
	}
	if !ok {
		reason := fmt.Sprintf("ike: peer %s offered IKE rekey proposals %s, none of which matches our ike_proposals %s",
			p.cfg.RemoteAddr, offeredString(offer, true), proposalsString(p.cfg.IKEProposals, true))
		p.log.Warn(reason)
		return statusDone, &notifyError{notify: message.NotifyNoProposalChosen, reason: reason}
	}
	if ke.Group != alg.DH {
		var d [2]byte
		binary.BigEndian.PutUint16(d[:], uint16(alg.DH))
		return statusDone, &notifyError{notify: message.NotifyInvalidKEPayload, data: d[:], reason: "ike: asked the peer to use " + dhName(alg.DH)}
	}
	if len(chosen.SPI) != 8 {
		return statusDone, &notifyError{notify: message.NotifyInvalidSyntax, reason: "ike: IKE rekey without an 8-octet SPI"}
	}
	dh, err := crypto.NewDH(alg.DH, p.m.rand)
	var shared []byte
	if err == nil {
		shared, err = dh.Shared(ke.Data)
	}
	if err != nil {
		return statusDone, &notifyError{notify: message.NotifyInvalidSyntax, reason: "ike: IKE rekey key exchange failed: " + err.Error()}
	}
	if t.nonce, err = p.m.randBytes(nonceLen); err != nil {
		return statusDone, &notifyError{notify: message.NotifyNoProposalChosen, reason: err.Error()}
	}
	if t.newSPI, err = p.m.allocSPI(p); err != nil {
		return statusDone, &notifyError{notify: message.NotifyNoProposalChosen, reason: err.Error()}
	}
	t.peerSPI = binary.BigEndian.Uint64(chosen.SPI)
	t.ni = append([]byte(nil), nonce.Data...)
	t.keys, err = crypto.DeriveRekeyedIKEKeys(alg, sa.alg.PRF, sa.keys.SKd, shared, t.ni, t.nonce, t.peerSPI, t.newSPI)
	if err != nil {
		t.freeSPI()
		return statusDone, &notifyError{notify: message.NotifyNoProposalChosen, reason: err.Error()}
	}
	t.alg, t.chosen, t.dh = alg, chosen.Number, dh
	return statusDone, nil
}

func (t *ikeRekey) afterSend() {
	sa, p := t.sa, t.sa.p
	nsa, err := p.rekeyedSA(sa, false, t.peerSPI, t.newSPI, t.alg, t.keys, t.ni, t.nonce)
	if err != nil {
		t.freeSPI()
		p.log.Error("adopting the rekeyed IKE SA failed", "err", err)
		return
	}
	p.adoptRekeyed(sa, nsa)
	// The initiator deletes the old SA; if it never does, we do.
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
		peerID: old.peerID, halfOpenDone: true,
	}
	if err := nsa.setKeys(keys); err != nil {
		return nil, err
	}
	nsa.tm = newTaskManager(nsa)
	return nsa, nil
}

// adoptRekeyed moves CHILD SAs and pending work from old to nsa and makes
// nsa current (RFC 7296, Section 2.18).
func (p *peer) adoptRekeyed(old, nsa *ikeSA) {
	now := p.m.clock.Now()
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
	p.log.Info("IKE phase 1 Established (rekeyed)", "old_ike_sa", old.spiString(), "ike_sa", nsa.spiString(), "alg", algString(nsa.alg))
	p.emit(Event{Kind: EventIKERekeyed, Reason: fmt.Sprintf("IKE SA rekeyed using %s", algString(nsa.alg)), Alg: nsa.alg})
	for _, t := range pending {
		switch t := t.(type) {
		case *childRekey:
			p.queueChildRekey(t.old)
		case *childCreate:
			p.ensureChild(nsa)
		case *childDelete:
			if t.child != nil {
				nsa.tm.queue(newChildDelete(nsa, t.child, t.reason))
			}
		}
	}
}
