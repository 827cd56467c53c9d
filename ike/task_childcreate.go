package ike

import (
	"encoding/binary"
	"fmt"

	"github.com/cgwproject/cgw/ike/crypto"
	"github.com/cgwproject/cgw/ike/message"
	"github.com/cgwproject/cgw/ipsec"
)

// childCreate negotiates a CHILD SA, either piggybacked on IKE_AUTH
// (RFC 7296, Section 1.2; no KE there, so ESP proposals go without DH) or
// in its own exchange (Section 1.3.1):
//
//	HDR, SK {SA, Ni, [KEi], TSi, TSr}  -->
//	                   <--  HDR, SK {SA, Nr, [KEr], TSi, TSr}
//
// The responder narrows the selectors to its configuration (2.9): AWS
// proposes 0.0.0.0/0 on both sides.
type childCreate struct {
	sa        *ikeSA
	initiator bool
	inAuth    bool

	inSPI ipsec.SPI
	kx    keyExchange

	// responder
	fail   *notifyError
	keys   *childKeys
	chosen uint8
	peerDH []byte
	shared []byte
}

func newChildCreate(sa *ikeSA, inAuth bool) *childCreate {
	t := &childCreate{sa: sa, initiator: true, inAuth: inAuth}
	if !inAuth {
		t.kx.group = firstDH(sa.p.cfg.ESPProposals)
	}
	return t
}

// newChildCreateResponder answers the CHILD SA part of IKE_AUTH or a
// CREATE_CHILD_SA that creates a new CHILD SA.
func newChildCreateResponder(sa *ikeSA) *childCreate {
	return &childCreate{sa: sa, inAuth: sa.state == ikeConnecting}
}

func (t *childCreate) kind() taskKind { return taskChildCreate }
func (t *childCreate) exchange() message.ExchangeType {
	if t.inAuth {
		return message.IKEAuth
	}
	return message.CreateChildSA
}

func spiBytes(s ipsec.SPI) []byte {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(s))
	return b[:]
}

func (t *childCreate) build(m *message.Message) error {
	if t.initiator {
		return t.buildRequest(m)
	}
	return t.buildResponse(m)
}

func (t *childCreate) process(m *message.Message) (status, error) {
	if t.initiator {
		return t.processResponse(m)
	}
	return t.processRequest(m)
}

func (t *childCreate) buildRequest(m *message.Message) error {
	sa, p := t.sa, t.sa.p
	if !t.inAuth && sa.state != ikeEstablished {
		return fmt.Errorf("ike: IKE SA is not established")
	}
	if !t.inAuth && sa.activeChild() != nil {
		// One CHILD SA per tunnel: one appeared meanwhile (a rekey that
		// was in flight completed, or the peer created one).
		return &notifyError{quiet: true, reason: "ike: the tunnel has a CHILD SA again; creating another is not needed"}
	}
	var err error
	if t.inSPI == 0 {
		if t.inSPI, err = p.m.cfg.Installer.AllocSPI(p.cfg.Name); err != nil {
			return fmt.Errorf("ike: allocating an inbound SPI: %w", err)
		}
	}
	m.Payloads = append(m.Payloads, t.kx.offer(ipsec.ProtoESP, p.cfg.ESPProposals, spiBytes(t.inSPI), !t.inAuth))
	if !t.inAuth {
		if err := t.kx.prepare(p, func() ([]byte, error) { return p.m.newNonce(true) }); err != nil {
			return err
		}
		m.Payloads = append(m.Payloads, &message.Nonce{Data: t.kx.nonce})
		if ke := t.kx.ke(); ke != nil {
			m.Payloads = append(m.Payloads, ke)
		}
	}
	m.Payloads = append(m.Payloads,
		&message.TS{Selectors: p.cfg.TSLocal},
		&message.TS{Responder: true, Selectors: p.cfg.TSRemote})
	if t.inAuth {
		p.log.Info("IKE phase 2 Negotiating", "in_spi", t.inSPI.String(), "esp_proposals", ipsec.ProposalsString(p.cfg.ESPProposals))
	}
	return nil
}

// childErrors are notifies that fail a CHILD SA but not the IKE SA.
var childErrors = []message.NotifyType{
	message.NotifyNoProposalChosen, message.NotifyTSUnacceptable, message.NotifySinglePairRequired,
	message.NotifyNoAdditionalSAs, message.NotifyInternalAddressFailure, message.NotifyFailedCPRequired,
	message.NotifyInvalidSelectors, message.NotifyInvalidKEPayload, message.NotifyTemporaryFailure,
	message.NotifyInvalidSyntax,
}

func childErrorIn(m *message.Message) *message.Notify {
	for _, k := range childErrors {
		if n := m.Notify(k); n != nil {
			return n
		}
	}
	return nil
}

func (t *childCreate) processResponse(m *message.Message) (status, error) {
	sa, p := t.sa, t.sa.p
	if sa.state != ikeEstablished {
		return statusDone, nil // IKE_AUTH failed; ikeAuth reported it
	}
	if n := childErrorIn(m); n != nil {
		if n.Kind == message.NotifyInvalidKEPayload && !t.inAuth {
			if g, retry := t.kx.invalidKE(n, p.cfg.ESPProposals); retry {
				p.log.Info("peer asked for another PFS group; retrying CREATE_CHILD_SA", "requested", g.Name())
				return statusRetry, nil
			}
		}
		if n.Kind == message.NotifyTemporaryFailure && !t.inAuth {
			d := tempFailMinDelay + p.randDuration(tempFailMaxDelay-tempFailMinDelay)
			p.log.Info("peer answered TEMPORARY_FAILURE; retrying CHILD SA creation", "in", d.String())
			p.ensureChildLater(d)
			t.release()
			return statusDone, nil
		}
		t.release()
		p.childFailed(sa, childFailSentence(p, n.Kind, "our CHILD SA proposal"), n.Kind)
		return statusDone, nil
	}
	k, err := t.acceptResponse(m)
	if err != nil {
		t.release()
		p.childFailed(sa, err.Error(), 0)
		return statusDone, nil
	}
	var shared []byte
	if !t.inAuth && k.alg.DH != ipsec.DHNone {
		if shared, err = childShared(sa, &t.kx, m, k.alg.DH); err != nil {
			t.release()
			p.childFailed(sa, err.Error(), 0)
			return statusDone, nil
		}
	}
	if err := sa.deriveChild(k, shared, true); err != nil {
		t.release()
		p.childFailed(sa, err.Error(), 0)
		return statusDone, nil
	}
	c, err := sa.installChild(k, true)
	if err != nil {
		p.childFailed(sa, err.Error(), 0)
		sa.tm.queue(newChildDeleteSPIs(sa, "installation failed", k.inSPI))
		return statusDone, nil
	}
	if !t.inAuth {
		c.pfs = k.alg.DH
	}
	p.childUp(c)
	return statusDone, nil
}

// acceptResponse validates SA, Nr and TS of a CHILD SA response.
func (t *childCreate) acceptResponse(m *message.Message) (*childKeys, error) {
	return acceptChildResponse(t.sa, &t.kx, t.inSPI, t.inAuth, m)
}

// acceptChildResponse validates SA, Nr and TS of the response to a CHILD SA
// request (creation or rekey) that offered kx.sent with our inbound SPI
// inSPI.
func acceptChildResponse(sa *ikeSA, kx *keyExchange, inSPI ipsec.SPI, inAuth bool, m *message.Message) (*childKeys, error) {
	p := sa.p
	got, _ := m.Get(message.PayloadSA).(*message.SA)
	tsi, _ := m.Get(message.PayloadTSi).(*message.TS)
	tsr, _ := m.Get(message.PayloadTSr).(*message.TS)
	if got == nil || tsi == nil || tsr == nil {
		return nil, fmt.Errorf("ike: peer %s answered our CHILD SA request without SA, TSi or TSr", p.cfg.RemoteAddr)
	}
	alg, gp, err := kx.accept(got, ipsec.ProtoESP, !inAuth)
	if err != nil {
		return nil, fmt.Errorf("ike: peer %s: bad CHILD SA response: %v", p.cfg.RemoteAddr, err)
	}
	if len(gp.SPI) != 4 {
		return nil, fmt.Errorf("ike: peer %s sent a %d-octet ESP SPI", p.cfg.RemoteAddr, len(gp.SPI))
	}
	if !tsSubset(tsi.Selectors, p.cfg.TSLocal) || !tsSubset(tsr.Selectors, p.cfg.TSRemote) {
		return nil, fmt.Errorf("ike: peer %s answered with traffic selectors %s === %s outside ours %s === %s",
			p.cfg.RemoteAddr, tsString(tsi.Selectors), tsString(tsr.Selectors), tsString(p.cfg.TSLocal), tsString(p.cfg.TSRemote))
	}
	k := &childKeys{alg: alg, inSPI: inSPI, outSPI: ipsec.SPI(binary.BigEndian.Uint32(gp.SPI)),
		tsLocal: tsi.Selectors, tsRemote: tsr.Selectors}
	if inAuth {
		k.ni, k.nr = sa.ni, sa.nr
	} else {
		nr, _ := m.Get(message.PayloadNonce).(*message.Nonce)
		if nr == nil || len(nr.Data) < 16 || len(nr.Data) > 256 {
			return nil, fmt.Errorf("ike: peer %s answered CREATE_CHILD_SA without a valid nonce", p.cfg.RemoteAddr)
		}
		k.ni, k.nr = kx.nonce, append([]byte(nil), nr.Data...)
	}
	return k, nil
}

// childShared is the PFS shared secret of a CHILD SA response whose
// chosen group is g.
func childShared(sa *ikeSA, kx *keyExchange, m *message.Message, g ipsec.DHGroup) ([]byte, error) {
	ke, _ := m.Get(message.PayloadKE).(*message.KE)
	if !kx.matches(ke, g) {
		return nil, fmt.Errorf("ike: peer %s selected PFS group %s without a matching KE payload", sa.p.cfg.RemoteAddr, g.Name())
	}
	return kx.shared(ke)
}

// release frees an allocated but never installed inbound SPI.
func (t *childCreate) release() {
	if t.inSPI != 0 {
		_ = t.sa.p.m.cfg.Installer.DelSA(t.sa.p.cfg.Name, ipsec.Inbound, t.inSPI)
		t.inSPI = 0
	}
}

func (t *childCreate) processRequest(m *message.Message) (status, error) {
	sa := t.sa
	k, fail := negotiateChildResponder(sa, m, t.inAuth)
	if fail != nil {
		if t.inAuth {
			t.fail = fail // IKE_AUTH still succeeds (RFC 7296, Section 1.2)
			return statusDone, nil
		}
		return statusDone, fail
	}
	t.keys = k.keys
	t.chosen = k.chosen
	t.peerDH = k.dhPublic
	return statusDone, nil
}

func (t *childCreate) buildResponse(m *message.Message) error {
	sa, p := t.sa, t.sa.p
	if t.fail == nil && t.keys == nil {
		return nil // IKE_AUTH without a CHILD SA
	}
	if t.fail == nil {
		if _, err := sa.installChild(t.keys, true); err != nil {
			_ = p.m.cfg.Installer.DelSA(p.cfg.Name, ipsec.Inbound, t.keys.inSPI)
			t.fail = &notifyError{notify: message.NotifyNoAdditionalSAs, reason: err.Error()}
		}
	}
	if t.fail != nil {
		p.childFailed(sa, t.fail.reason, t.fail.notify)
		if t.inAuth {
			m.Payloads = append(m.Payloads, &message.Notify{Kind: t.fail.notify, Data: t.fail.data})
			return nil
		}
		return t.fail
	}
	c := sa.children[len(sa.children)-1]
	if !t.inAuth {
		c.pfs = t.keys.alg.DH
	}
	appendChildResponse(m, t.keys, t.chosen, t.peerDH, !t.inAuth)
	p.childUp(c)
	return nil
}

// responderChild is the outcome of a responder's CHILD SA negotiation.
type responderChild struct {
	keys     *childKeys
	chosen   uint8
	dhPublic []byte
}

// negotiateChildResponder selects the ESP proposal, checks KE, narrows the
// selectors, allocates our SPI and derives keys for a CHILD SA request
// (CREATE_CHILD_SA or the CHILD part of IKE_AUTH). Failures are non-fatal
// notifies.
func negotiateChildResponder(sa *ikeSA, m *message.Message, inAuth bool) (*responderChild, *notifyError) {
	p := sa.p
	offer, _ := m.Get(message.PayloadSA).(*message.SA)
	tsi, _ := m.Get(message.PayloadTSi).(*message.TS)
	tsr, _ := m.Get(message.PayloadTSr).(*message.TS)
	if offer == nil || tsi == nil || tsr == nil {
		if inAuth && offer == nil {
			return nil, nil
		}
		return nil, &notifyError{notify: message.NotifyInvalidSyntax, reason: fmt.Sprintf("ike: peer %s requested a CHILD SA without SA, TSi or TSr", p.cfg.RemoteAddr)}
	}
	ke, _ := m.Get(message.PayloadKE).(*message.KE)
	keGroup := ipsec.DHNone
	if ke != nil {
		keGroup = ke.Group
	}
	alg, chosen, ok := selectWithGroup(p.cfg.ESPProposals, offer.Proposals, ipsec.ProtoESP, keGroup)
	if !ok {
		alg, chosen, ok = selectProposal(p.cfg.ESPProposals, offer.Proposals, ipsec.ProtoESP, !inAuth)
	}
	if !ok {
		hint := ""
		if !inAuth && !proposalsHavePFS(p.cfg.ESPProposals) {
			hint = "; AWS always uses PFS on Phase 2 rekeys, so add a DH group to esp_proposals"
		}
		return nil, &notifyError{notify: message.NotifyNoProposalChosen, reason: fmt.Sprintf(
			"ike: peer %s offered ESP proposals %s, none of which matches our esp_proposals %s%s",
			p.cfg.RemoteAddr, offeredString(offer, false), ipsec.ProposalsString(p.cfg.ESPProposals), hint)}
	}
	if len(chosen.SPI) != 4 {
		return nil, &notifyError{notify: message.NotifyInvalidSyntax, reason: fmt.Sprintf("ike: peer %s sent a %d-octet ESP SPI", p.cfg.RemoteAddr, len(chosen.SPI))}
	}
	var dh crypto.DH
	var shared []byte
	if !inAuth && alg.DH != ipsec.DHNone {
		if ke == nil || ke.Group != alg.DH {
			return nil, &notifyError{notify: message.NotifyInvalidKEPayload, data: invalidKEData(alg.DH), quiet: true,
				reason: fmt.Sprintf("ike: peer %s sent KE for %s; asked it to use PFS group %s", p.cfg.RemoteAddr, keGroup.Name(), alg.DH.Name())}
		}
		var err error
		if dh, shared, _, err = responderDH(p, alg.DH, ke.Data, false); err != nil {
			return nil, &notifyError{notify: message.NotifyInvalidSyntax, reason: fmt.Sprintf("ike: peer %s: PFS key exchange failed: %v", p.cfg.RemoteAddr, err)}
		}
	}
	// RFC 7296, Section 2.9: TSi is the initiator's side (our remote).
	local := narrowTS(tsr.Selectors, p.cfg.TSLocal)
	remote := narrowTS(tsi.Selectors, p.cfg.TSRemote)
	if len(local) == 0 || len(remote) == 0 {
		return nil, &notifyError{notify: message.NotifyTSUnacceptable, reason: fmt.Sprintf(
			"ike: peer %s proposed traffic selectors %s === %s, which do not overlap ours %s === %s; we answered TS_UNACCEPTABLE (check the tunnel's local/remote network CIDRs)",
			p.cfg.RemoteAddr, tsString(tsi.Selectors), tsString(tsr.Selectors), tsString(p.cfg.TSRemote), tsString(p.cfg.TSLocal))}
	}
	k := &childKeys{alg: alg, outSPI: ipsec.SPI(binary.BigEndian.Uint32(chosen.SPI)), tsLocal: local, tsRemote: remote}
	if inAuth {
		k.ni, k.nr = sa.ni, sa.nr
	} else {
		ni, _ := m.Get(message.PayloadNonce).(*message.Nonce)
		if ni == nil || len(ni.Data) < 16 || len(ni.Data) > 256 {
			return nil, &notifyError{notify: message.NotifyInvalidSyntax, reason: fmt.Sprintf("ike: peer %s sent CREATE_CHILD_SA without a valid nonce", p.cfg.RemoteAddr)}
		}
		nr, err := p.m.newNonce(false)
		if err != nil {
			return nil, &notifyError{notify: message.NotifyNoAdditionalSAs, reason: err.Error()}
		}
		k.ni, k.nr = append([]byte(nil), ni.Data...), nr
	}
	spi, err := p.m.cfg.Installer.AllocSPI(p.cfg.Name)
	if err != nil {
		return nil, &notifyError{notify: message.NotifyNoAdditionalSAs, reason: fmt.Sprintf("ike: allocating an inbound SPI: %v", err)}
	}
	k.inSPI = spi
	if err := sa.deriveChild(k, shared, false); err != nil {
		_ = p.m.cfg.Installer.DelSA(p.cfg.Name, ipsec.Inbound, spi)
		return nil, &notifyError{notify: message.NotifyNoProposalChosen, reason: err.Error()}
	}
	rc := &responderChild{keys: k, chosen: chosen.Number}
	if dh != nil {
		rc.dhPublic = dh.Public()
	}
	return rc, nil
}

// appendChildResponse writes SA, [Nr, KEr], TSi, TSr of a CHILD SA response.
func appendChildResponse(m *message.Message, k *childKeys, chosen uint8, dhPublic []byte, withDH bool) {
	m.Payloads = append(m.Payloads, selectedProposal(chosen, ipsec.ProtoESP, k.alg, spiBytes(k.inSPI), withDH))
	if withDH {
		m.Payloads = append(m.Payloads, &message.Nonce{Data: k.nr})
		if k.alg.DH != ipsec.DHNone {
			m.Payloads = append(m.Payloads, &message.KE{Group: k.alg.DH, Data: dhPublic})
		}
	}
	m.Payloads = append(m.Payloads,
		&message.TS{Selectors: k.tsRemote},
		&message.TS{Responder: true, Selectors: k.tsLocal})
}

func proposalsHavePFS(props []ipsec.Proposal) bool {
	for _, p := range props {
		if len(p.DHGroups) > 0 {
			return true
		}
	}
	return false
}

func childFailSentence(p *peer, n message.NotifyType, what string) string {
	switch n {
	case message.NotifyNoProposalChosen:
		return fmt.Sprintf("ike: peer %s sent NO_PROPOSAL_CHOSEN for %s: none of our esp_proposals %s is acceptable (check the tunnel's Phase 2 algorithms and PFS groups)",
			p.cfg.RemoteAddr, what, ipsec.ProposalsString(p.cfg.ESPProposals))
	case message.NotifyTSUnacceptable:
		return fmt.Sprintf("ike: peer %s sent TS_UNACCEPTABLE for %s: our traffic selectors %s === %s do not match its local/remote network CIDRs",
			p.cfg.RemoteAddr, what, tsString(p.cfg.TSLocal), tsString(p.cfg.TSRemote))
	}
	return fmt.Sprintf("ike: peer %s refused %s with %s", p.cfg.RemoteAddr, what, n)
}
