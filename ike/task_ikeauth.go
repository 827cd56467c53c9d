package ike

import (
	"errors"
	"fmt"

	"github.com/cgwproject/cgw/ike/crypto"
	"github.com/cgwproject/cgw/ike/message"
)

// ikeAuth is IKE_AUTH with pre-shared keys (RFC 7296, Sections 1.2, 2.15):
//
//	HDR, SK {IDi, AUTH, [N(INITIAL_CONTACT)], SAi2, TSi, TSr}  -->
//	                              <--  HDR, SK {IDr, AUTH, SAr2, TSi, TSr}
//
// This task owns IDi/IDr, AUTH and INITIAL_CONTACT; the CHILD SA payloads
// belong to childCreate. AUTH = prf(prf(PSK, "Key Pad for IKEv2"),
// <SignedOctets>), compared in constant time.
type ikeAuth struct {
	sa        *ikeSA
	initiator bool
	sentIC    bool
}

func newIKEAuth(sa *ikeSA) *ikeAuth          { return &ikeAuth{sa: sa, initiator: true} }
func newIKEAuthResponder(sa *ikeSA) *ikeAuth { return &ikeAuth{sa: sa} }

func (t *ikeAuth) kind() taskKind                 { return taskIKEAuth }
func (t *ikeAuth) exchange() message.ExchangeType { return message.IKEAuth }

// authFailedSentence is what an operator needs when the peer refuses us.
func authFailedSentence(p *peer, sa *ikeSA) string {
	idType, idData, _ := p.localIdentity(sa)
	if p.cfg.Cert != nil {
		s := fmt.Sprintf("ike: peer %s rejected our certificate authentication (we identified as %s with certificate %s): check that the customer gateway in AWS names a certificate of the same CA, that our certificate is not expired",
			p.cfg.RemoteAddr, identityString(idType, idData), CertSubject(p.cfg.Cert.Chain[0]))
		if id := p.cfg.RemoteID; id.Type != 0 {
			// We sent IDr: a peer that holds another identity refuses.
			s += fmt.Sprintf(", and that peer_id %s is this tunnel's endpoint (CN=vpn-<id>.endpoint-0 for the first tunnel, -1 for the second)", identityString(message.IDType(id.Type), id.Data))
		}
		return s
	}
	return fmt.Sprintf("ike: peer %s rejected our PSK/identity: check the tunnel's psk and that local_id is the public IP registered on the customer gateway (we identified as %s)",
		p.cfg.RemoteAddr, identityString(idType, idData))
}

func (t *ikeAuth) build(m *message.Message) error {
	sa, p := t.sa, t.sa.p
	idType, idData, err := p.localIdentity(sa)
	if err != nil {
		return err
	}
	id := &message.ID{Responder: !t.initiator, IDType: idType, Data: idData}
	if t.initiator {
		if p.cfg.Cert != nil {
			auth, err := t.signedAuth(id)
			if err != nil {
				return err
			}
			m.Payloads = append(m.Payloads, id)
			m.Payloads = append(m.Payloads, p.cfg.Cert.certPayloads()...)
			m.Payloads = append(m.Payloads, p.cfg.Cert.certReq())
			if p.cfg.RemoteID.Type != 0 {
				m.Payloads = append(m.Payloads, &message.ID{Responder: true, IDType: message.IDType(p.cfg.RemoteID.Type), Data: p.cfg.RemoteID.Data})
			}
			m.Payloads = append(m.Payloads, auth)
			if !p.hasOtherEstablished(sa) {
				m.Payloads = append(m.Payloads, &message.Notify{Kind: message.NotifyInitialContact})
				t.sentIC = true
			}
			return nil
		}
		auth, err := crypto.PSKAuth(sa.alg.PRF, p.cfg.PSK, sa.initReq, sa.nr, sa.keys.SKpi, id.Body())
		if err != nil {
			return err
		}
		m.Payloads = append(m.Payloads, id)
		if p.cfg.RemoteID.Type != 0 {
			// IDr in the request names the identity we want (3.5).
			m.Payloads = append(m.Payloads, &message.ID{Responder: true, IDType: message.IDType(p.cfg.RemoteID.Type), Data: p.cfg.RemoteID.Data})
		}
		m.Payloads = append(m.Payloads, &message.Auth{Method: message.AuthPSK, Data: auth})
		// INITIAL_CONTACT (RFC 7296, Section 2.4): we hold no other IKE SA
		// with this peer, so it may drop any state it has for us.
		if !p.hasOtherEstablished(sa) {
			m.Payloads = append(m.Payloads, &message.Notify{Kind: message.NotifyInitialContact})
			t.sentIC = true
		}
		return nil
	}
	if p.cfg.Cert != nil {
		auth, err := t.signedAuth(id)
		if err != nil {
			return err
		}
		m.Payloads = append(m.Payloads, id)
		m.Payloads = append(m.Payloads, p.cfg.Cert.certPayloads()...)
		m.Payloads = append(m.Payloads, auth)
		p.established(sa)
		return nil
	}
	auth, err := crypto.PSKAuth(sa.alg.PRF, p.cfg.PSK, sa.initResp, sa.ni, sa.keys.SKpr, id.Body())
	if err != nil {
		return err
	}
	m.Payloads = append(m.Payloads, id, &message.Auth{Method: message.AuthPSK, Data: auth})
	p.established(sa)
	return nil
}

func (t *ikeAuth) process(m *message.Message) (status, error) {
	sa, p := t.sa, t.sa.p
	if t.initiator {
		if n := m.Notify(message.NotifyAuthenticationFailed); n != nil {
			return statusFailed, &notifyError{notify: n.Kind, reason: authFailedSentence(p, sa)}
		}
		idr, _ := m.Get(message.PayloadIDr).(*message.ID)
		auth, _ := m.Get(message.PayloadAUTH).(*message.Auth)
		if idr == nil || auth == nil {
			for _, pl := range m.Payloads {
				if n, ok := pl.(*message.Notify); ok && n.Kind.IsError() {
					return statusFailed, &notifyError{notify: n.Kind, reason: fmt.Sprintf("ike: peer %s refused our IKE_AUTH with %s", p.cfg.RemoteAddr, n.Kind)}
				}
			}
			return statusFailed, fmt.Errorf("ike: peer %s sent an IKE_AUTH response without IDr or AUTH", p.cfg.RemoteAddr)
		}
		if p.cfg.Cert != nil {
			if err := t.verifyCertAuth(m, idr, auth); err != nil {
				p.sendNotifyOnce(sa, message.NotifyAuthenticationFailed)
				return statusFailed, err
			}
			p.established(sa)
			return statusDone, nil
		}
		if err := p.checkPeerIdentity(sa, idr); err != nil {
			p.sendNotifyOnce(sa, message.NotifyAuthenticationFailed)
			return statusFailed, err
		}
		if auth.Method != message.AuthPSK || !crypto.VerifyPSKAuth(sa.alg.PRF, p.cfg.PSK, sa.initResp, sa.ni, sa.keys.SKpr, idr.Body(), auth.Data) {
			// RFC 7296, Section 2.21.2: tell the peer in a new INFORMATIONAL.
			p.sendNotifyOnce(sa, message.NotifyAuthenticationFailed)
			return statusFailed, &notifyError{notify: message.NotifyAuthenticationFailed, reason: fmt.Sprintf(
				"ike: peer %s failed PSK authentication: its AUTH does not match our PSK (method %d); check that both sides use the same psk for this tunnel",
				p.cfg.RemoteAddr, auth.Method)}
		}
		p.established(sa)
		return statusDone, nil
	}

	idi, _ := m.Get(message.PayloadIDi).(*message.ID)
	auth, _ := m.Get(message.PayloadAUTH).(*message.Auth)
	if idi == nil || auth == nil {
		return statusFailed, &notifyError{notify: message.NotifyAuthenticationFailed, fatal: true,
			reason: fmt.Sprintf("ike: peer %s sent IKE_AUTH without IDi or AUTH (EAP is not supported)", p.cfg.RemoteAddr)}
	}
	if p.cfg.Cert != nil {
		if err := t.verifyCertAuth(m, idi, auth); err != nil {
			var ne *notifyError
			if errors.As(err, &ne) {
				ne.fatal = true
				return statusFailed, ne
			}
			return statusFailed, &notifyError{notify: message.NotifyAuthenticationFailed, fatal: true, reason: err.Error()}
		}
		sa.initialCnt = m.Notify(message.NotifyInitialContact) != nil
		return statusDone, nil
	}
	if auth.Method != message.AuthPSK {
		return statusFailed, &notifyError{notify: message.NotifyAuthenticationFailed, fatal: true,
			reason: fmt.Sprintf("ike: peer %s authenticates with method %d; cgw supports pre-shared keys only", p.cfg.RemoteAddr, auth.Method)}
	}
	if !crypto.VerifyPSKAuth(sa.alg.PRF, p.cfg.PSK, sa.initReq, sa.nr, sa.keys.SKpi, idi.Body(), auth.Data) {
		return statusFailed, &notifyError{notify: message.NotifyAuthenticationFailed, fatal: true, reason: fmt.Sprintf(
			"ike: peer %s (identity %s) failed PSK authentication; we answered AUTHENTICATION_FAILED: check that both sides use the same psk for this tunnel",
			p.cfg.RemoteAddr, identityString(idi.IDType, idi.Data))}
	}
	if err := p.checkPeerIdentity(sa, idi); err != nil {
		return statusFailed, &notifyError{notify: message.NotifyAuthenticationFailed, fatal: true, reason: err.Error()}
	}
	sa.initialCnt = m.Notify(message.NotifyInitialContact) != nil
	return statusDone, nil
}
