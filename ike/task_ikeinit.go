package ike

import (
	"fmt"

	"github.com/cgwproject/cgw/ike/crypto"
	"github.com/cgwproject/cgw/ike/message"
	"github.com/cgwproject/cgw/ipsec"
)

// ikeInit is the IKE_SA_INIT exchange (RFC 7296, Section 1.2):
//
//	HDR, SAi1, KEi, Ni  -->
//	                <--  HDR, SAr1, KEr, Nr
//
// As initiator it handles COOKIE (2.6) and INVALID_KE_PAYLOAD (1.2) by
// rebuilding the request, and derives the IKE SA keys (2.14).
type ikeInit struct {
	sa        *ikeSA
	initiator bool
	kx        keyExchange
	cookie    []byte

	// responder
	alg    ipsec.Algorithms
	chosen *message.Proposal
	dh     crypto.DH
	// peerFrag: the initiator offered IKE fragmentation (RFC 7383).
	peerFrag bool
}

const maxInitRetries = 3

func newIKEInit(sa *ikeSA) *ikeInit {
	return &ikeInit{sa: sa, initiator: true, kx: keyExchange{group: firstDH(sa.p.cfg.IKEProposals)}}
}

func newIKEInitResponder(sa *ikeSA) *ikeInit { return &ikeInit{sa: sa} }

func (t *ikeInit) kind() taskKind                 { return taskIKEInit }
func (t *ikeInit) exchange() message.ExchangeType { return message.IKESAInit }

func (t *ikeInit) build(m *message.Message) error {
	if t.initiator {
		return t.buildRequest(m)
	}
	return t.buildResponse(m)
}

func (t *ikeInit) process(m *message.Message) (status, error) {
	if t.initiator {
		return t.processResponse(m)
	}
	return t.processRequest(m)
}

func (t *ikeInit) buildRequest(m *message.Message) error {
	sa, p := t.sa, t.sa.p
	if err := t.kx.prepare(p, func() ([]byte, error) { return p.m.randBytes(nonceLen) }); err != nil {
		return err
	}
	sa.ni = t.kx.nonce
	if t.cookie != nil {
		// RFC 7296, Section 2.6: the COOKIE notify comes first.
		m.Payloads = append(m.Payloads, &message.Notify{Kind: message.NotifyCookie, Data: t.cookie})
	}
	m.Payloads = append(m.Payloads, t.kx.offer(ipsec.ProtoIKE, p.cfg.IKEProposals, nil, true),
		t.kx.ke(), &message.Nonce{Data: t.kx.nonce})
	if p.cfg.FragmentSize > 0 {
		m.Payloads = append(m.Payloads, fragmentNotify())
	}
	if p.cfg.Cert != nil {
		m.Payloads = append(m.Payloads, sigHashNotify())
	}
	return nil
}

func (t *ikeInit) processResponse(m *message.Message) (status, error) {
	sa, p := t.sa, t.sa.p
	if n := m.Notify(message.NotifyCookie); n != nil {
		t.kx.tries++
		if t.kx.tries > maxInitRetries {
			return statusFailed, fmt.Errorf("ike: peer %s keeps demanding a COOKIE; giving up this attempt", p.cfg.RemoteAddr)
		}
		p.log.Info("peer demands a COOKIE (it is under load); retrying IKE_SA_INIT with it")
		t.cookie = append([]byte(nil), n.Data...)
		return statusRetry, nil
	}
	if n := m.Notify(message.NotifyInvalidKEPayload); n != nil {
		if len(n.Data) != 2 {
			return statusFailed, &notifyError{notify: n.Kind, reason: fmt.Sprintf("ike: peer %s sent INVALID_KE_PAYLOAD without a group number", p.cfg.RemoteAddr)}
		}
		offered := t.kx.group
		g, retry := t.kx.invalidKE(n, p.cfg.IKEProposals)
		if !retry {
			return statusFailed, &notifyError{notify: n.Kind, reason: fmt.Sprintf(
				"ike: peer %s asked for Diffie-Hellman group %s, which our ike_proposals %s do not offer; add it to ike_proposals",
				p.cfg.RemoteAddr, g.Name(), ipsec.ProposalsString(p.cfg.IKEProposals))}
		}
		p.log.Info("peer asked for another Diffie-Hellman group; retrying IKE_SA_INIT", "offered", offered.Name(), "requested", g.Name())
		return statusRetry, nil
	}
	if n := m.Notify(message.NotifyNoProposalChosen); n != nil {
		return statusFailed, &notifyError{notify: n.Kind, reason: fmt.Sprintf(
			"ike: peer %s sent NO_PROPOSAL_CHOSEN to our IKE_SA_INIT: none of our ike_proposals %s is acceptable to the peer; AWS accepts AES128/AES256 (CBC or GCM-16), SHA1/SHA2-256/384/512 and DH groups 2, 14-24, restricted by the tunnel's Phase 1 options",
			p.cfg.RemoteAddr, ipsec.ProposalsString(p.cfg.IKEProposals))}
	}
	for _, pl := range m.Payloads {
		if n, ok := pl.(*message.Notify); ok && n.Kind.IsError() {
			return statusFailed, &notifyError{notify: n.Kind, reason: fmt.Sprintf("ike: peer %s refused our IKE_SA_INIT with %s", p.cfg.RemoteAddr, n.Kind)}
		}
	}
	if m.Header.SPIr == 0 {
		return statusFailed, fmt.Errorf("ike: peer %s answered IKE_SA_INIT with a zero responder SPI and no error", p.cfg.RemoteAddr)
	}
	got, _ := m.Get(message.PayloadSA).(*message.SA)
	ke, _ := m.Get(message.PayloadKE).(*message.KE)
	nonce, _ := m.Get(message.PayloadNonce).(*message.Nonce)
	if got == nil || ke == nil || nonce == nil {
		return statusFailed, fmt.Errorf("ike: peer %s sent an IKE_SA_INIT response without SA, KE or Nonce", p.cfg.RemoteAddr)
	}
	alg, _, err := t.kx.accept(got, ipsec.ProtoIKE, true)
	if err != nil {
		return statusFailed, fmt.Errorf("ike: peer %s: bad IKE_SA_INIT response: %v", p.cfg.RemoteAddr, err)
	}
	if alg.DH != t.kx.group || !t.kx.matches(ke, alg.DH) {
		return statusFailed, fmt.Errorf("ike: peer %s selected DH group %s but our KE used %s and it did not send INVALID_KE_PAYLOAD",
			p.cfg.RemoteAddr, alg.DH.Name(), t.kx.group.Name())
	}
	if len(nonce.Data) < 16 || len(nonce.Data) > 256 {
		return statusFailed, fmt.Errorf("ike: peer %s sent a %d-octet nonce; RFC 7296 requires 16 to 256", p.cfg.RemoteAddr, len(nonce.Data))
	}
	shared, err := t.kx.shared(ke)
	if err != nil {
		return statusFailed, fmt.Errorf("ike: peer %s sent an invalid KE value: %v", p.cfg.RemoteAddr, err)
	}
	sa.spiR = m.Header.SPIr
	sa.alg = alg
	sa.noteSigHashes(m)
	sa.nr = append([]byte(nil), nonce.Data...)
	keys, err := crypto.DeriveIKEKeys(alg, sa.ni, sa.nr, shared, sa.spiI, sa.spiR)
	if err != nil {
		return statusFailed, err
	}
	if err := sa.setKeys(keys); err != nil {
		return statusFailed, err
	}
	sa.fragOK = p.cfg.FragmentSize > 0 && offersFragmentation(m)
	p.log.Debug("IKE_SA_INIT done", "ike_sa", sa.spiString(), "alg", alg.String(), "fragmentation", sa.fragOK)
	return statusDone, nil
}

func (t *ikeInit) processRequest(m *message.Message) (status, error) {
	sa, p := t.sa, t.sa.p
	offer, _ := m.Get(message.PayloadSA).(*message.SA)
	ke, _ := m.Get(message.PayloadKE).(*message.KE)
	nonce, _ := m.Get(message.PayloadNonce).(*message.Nonce)
	if offer == nil || ke == nil || nonce == nil {
		return statusFailed, &notifyError{notify: message.NotifyInvalidSyntax, fatal: true,
			reason: fmt.Sprintf("ike: peer %s sent IKE_SA_INIT without SA, KE or Nonce", p.cfg.RemoteAddr)}
	}
	alg, chosen, ok := selectProposalKE(p.cfg.IKEProposals, offer.Proposals, ipsec.ProtoIKE, ke.Group)
	if !ok {
		return statusFailed, &notifyError{notify: message.NotifyNoProposalChosen, fatal: true, reason: fmt.Sprintf(
			"ike: peer %s offered IKE proposals %s, none of which matches our ike_proposals %s; we answered NO_PROPOSAL_CHOSEN",
			p.cfg.RemoteAddr, offeredString(offer, true), ipsec.ProposalsString(p.cfg.IKEProposals))}
	}
	if ke.Group != alg.DH {
		return statusFailed, &notifyError{notify: message.NotifyInvalidKEPayload, data: invalidKEData(alg.DH), fatal: true, quiet: true,
			reason: fmt.Sprintf("ike: peer %s sent KE for %s; asked it to retry with %s", p.cfg.RemoteAddr, ke.Group.Name(), alg.DH.Name())}
	}
	if len(nonce.Data) < 16 || len(nonce.Data) > 256 {
		return statusFailed, &notifyError{notify: message.NotifyInvalidSyntax, fatal: true,
			reason: fmt.Sprintf("ike: peer %s sent a %d-octet nonce; RFC 7296 requires 16 to 256", p.cfg.RemoteAddr, len(nonce.Data))}
	}
	dh, shared, peerBad, err := responderDH(p, alg.DH, ke.Data, true)
	if peerBad {
		return statusFailed, &notifyError{notify: message.NotifyInvalidSyntax, fatal: true,
			reason: fmt.Sprintf("ike: peer %s sent an invalid KE value: %v", p.cfg.RemoteAddr, err)}
	}
	if err != nil {
		return statusFailed, &notifyError{notify: message.NotifyNoProposalChosen, fatal: true, reason: err.Error()}
	}
	nr, err := p.m.randBytes(nonceLen)
	if err != nil {
		return statusFailed, &notifyError{notify: message.NotifyNoProposalChosen, fatal: true, reason: err.Error()}
	}
	sa.alg, sa.ni, sa.nr = alg, append([]byte(nil), nonce.Data...), nr
	keys, err := crypto.DeriveIKEKeys(alg, sa.ni, sa.nr, shared, sa.spiI, sa.spiR)
	if err == nil {
		err = sa.setKeys(keys)
	}
	if err != nil {
		return statusFailed, &notifyError{notify: message.NotifyNoProposalChosen, fatal: true, reason: err.Error()}
	}
	t.alg, t.chosen, t.dh = alg, chosen, dh
	t.peerFrag = offersFragmentation(m)
	sa.noteSigHashes(m)
	return statusDone, nil
}

func (t *ikeInit) buildResponse(m *message.Message) error {
	m.Payloads = append(m.Payloads,
		selectedProposal(t.chosen.Number, ipsec.ProtoIKE, t.alg, nil, true),
		&message.KE{Group: t.alg.DH, Data: t.dh.Public()},
		&message.Nonce{Data: t.sa.nr})
	if t.peerFrag && t.sa.p.cfg.FragmentSize > 0 {
		m.Payloads = append(m.Payloads, fragmentNotify())
		t.sa.fragOK = true
	}
	if c := t.sa.p.cfg.Cert; c != nil {
		m.Payloads = append(m.Payloads, c.certReq(), sigHashNotify())
	}
	return nil
}

// offeredString renders a received SA payload for logs, in strongSwan's
// keyword syntax.
func offeredString(sa *message.SA, ike bool) string {
	var props []ipsec.Proposal
	for _, mp := range sa.Proposals {
		var p ipsec.Proposal
		for _, t := range mp.Transforms {
			switch t.Type {
			case ipsec.TransformENCR:
				p.Encrs = append(p.Encrs, ipsec.EncrKey{ID: ipsec.EncrID(t.ID), KeyBits: int(t.KeyLength)})
			case ipsec.TransformPRF:
				p.PRFs = append(p.PRFs, ipsec.PRFID(t.ID))
			case ipsec.TransformINTEG:
				if t.ID != 0 {
					p.Integs = append(p.Integs, ipsec.IntegID(t.ID))
				}
			case ipsec.TransformDH:
				if t.ID != 0 {
					p.DHGroups = append(p.DHGroups, ipsec.DHGroup(t.ID))
				}
			case ipsec.TransformESN:
				p.ESN = append(p.ESN, t.ID == uint16(ipsec.ESNYes))
			}
		}
		props = append(props, p)
	}
	return ipsec.ProposalsString(props)
}
