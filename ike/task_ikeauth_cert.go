package ike

import (
	"fmt"
	"time"

	"github.com/cgwproject/cgw/ike/crypto"
	"github.com/cgwproject/cgw/ike/message"
)

// Certificate authentication in IKE_AUTH (RFC 7296, Sections 2.15, 3.6,
// 3.7; RFC 7427):
//
//	HDR, SK {IDi, CERT+, CERTREQ, [IDr,] AUTH, [N(INITIAL_CONTACT)], SAi2, TSi, TSr}  -->
//	                                  <--  HDR, SK {IDr, CERT+, AUTH, SAr2, TSi, TSr}
//
// The task builds the whole message before the task manager sends it, so
// the send path alone decides whether it travels in one datagram or in
// fragments.

// signedAuth is our AUTH payload: a signature over our SignedOctets with
// the algorithm ChooseSigAlg picks for our key and the peer's
// SIGNATURE_HASH_ALGORITHMS.
func (t *ikeAuth) signedAuth(id *message.ID) (*message.Auth, error) {
	sa, c := t.sa, t.sa.p.cfg.Cert
	realMessage, nonce, skp := sa.initResp, sa.ni, sa.keys.SKpr
	if t.initiator {
		realMessage, nonce, skp = sa.initReq, sa.nr, sa.keys.SKpi
	}
	octets, err := crypto.SignedOctets(sa.alg.PRF, realMessage, nonce, skp, id.Body())
	if err != nil {
		return nil, err
	}
	alg, err := crypto.ChooseSigAlg(c.Key.Public(), sa.peerHashes, c.Classic, c.PSS)
	if err != nil {
		return nil, fmt.Errorf("ike: peer %s: %v", sa.p.cfg.RemoteAddr, err)
	}
	data, err := crypto.SignAuth(c.Key, alg, octets)
	if err != nil {
		return nil, err
	}
	sa.localAuth = alg.String()
	return &message.Auth{Method: message.AuthMethod(alg.Method), Data: data}, nil
}

// verifyCertAuth validates the peer's certificate and identity and checks
// its AUTH signature; on success the peer's identity, certificate and
// signature algorithm are recorded and logged.
func (t *ikeAuth) verifyCertAuth(m *message.Message, id *message.ID, auth *message.Auth) error {
	sa, p := t.sa, t.sa.p
	fail := func(format string, a ...any) error {
		return &notifyError{notify: message.NotifyAuthenticationFailed, reason: fmt.Sprintf("ike: peer %s: certificate authentication failed: ", p.cfg.RemoteAddr) + fmt.Sprintf(format, a...)}
	}
	if auth.Method == message.AuthPSK {
		return fail("the peer authenticates with a pre-shared key but this tunnel has auth: certificate; use the same authentication on both sides")
	}
	var certs []*message.Cert
	for _, pl := range m.Payloads {
		if c, ok := pl.(*message.Cert); ok {
			certs = append(certs, c)
		}
	}
	leaf, err := p.cfg.Cert.verifyPeerCert(certs, id, time.Now())
	if err != nil {
		return fail("%v", err)
	}
	realMessage, nonce, skp := sa.initReq, sa.nr, sa.keys.SKpi
	if t.initiator {
		realMessage, nonce, skp = sa.initResp, sa.ni, sa.keys.SKpr
	}
	octets, err := crypto.SignedOctets(sa.alg.PRF, realMessage, nonce, skp, id.Body())
	if err != nil {
		return err
	}
	alg, err := crypto.VerifyAuth(leaf.PublicKey, uint8(auth.Method), auth.Data, octets)
	if err != nil {
		return fail("%v (certificate %s)", err, CertSubject(leaf))
	}
	if err := p.checkPeerIdentity(sa, id); err != nil {
		return err
	}
	sa.peerAuth, sa.peerCert = alg.String(), leaf
	p.log.Info("peer authenticated with its certificate", "identity", identityString(id.IDType, id.Data),
		"auth_method", alg.String(), "certificate", CertSubject(leaf), "expires", leaf.NotAfter.UTC().Format(time.RFC3339))
	return nil
}
