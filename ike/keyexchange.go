package ike

import (
	"encoding/binary"

	"github.com/cgwproject/cgw/ike/crypto"
	"github.com/cgwproject/cgw/ike/message"
	"github.com/cgwproject/cgw/ipsec"
)

// keyExchange is the initiator's half of a Diffie-Hellman and nonce
// exchange, shared by the four negotiating tasks (IKE_SA_INIT, IKE SA
// rekey, CHILD SA creation and CHILD SA rekey):
//
//	SA, Ni, [KEi]  -->
//	          <--  SA, Nr, [KEr]   or   N(INVALID_KE_PAYLOAD, group)
//
// It keeps its nonce and DH key across retransmissions and retries (a new
// key only when the group changes), remembers the SA payload it sent so the
// answer can be checked against it, and switches group when the responder
// asks for another one it is allowed to (RFC 7296, Sections 1.2 and 1.3).
type keyExchange struct {
	group ipsec.DHGroup // DHNone: no KE payload (a CHILD SA without PFS)
	dh    crypto.DH
	nonce []byte
	sent  *message.SA
	// tries counts retries (INVALID_KE_PAYLOAD, and COOKIE for
	// IKE_SA_INIT), bounded by maxInitRetries.
	tries int
}

// prepare makes the nonce (once) and the DH key for the current group (once
// per group). newNonce is the task's nonce source.
func (kx *keyExchange) prepare(p *peer, newNonce func() ([]byte, error)) error {
	var err error
	if kx.nonce == nil {
		if kx.nonce, err = newNonce(); err != nil {
			return err
		}
	}
	if kx.group != ipsec.DHNone && (kx.dh == nil || kx.dh.Group() != kx.group) {
		if kx.dh, err = crypto.NewDH(kx.group, p.m.rand); err != nil {
			return err
		}
	}
	return nil
}

// offer builds and remembers the SA payload of the request.
func (kx *keyExchange) offer(proto ipsec.Protocol, props []ipsec.Proposal, spi []byte, withDH bool) *message.SA {
	kx.sent = saPayload(proto, props, spi, withDH)
	return kx.sent
}

// ke returns the KE payload of the request, nil without a group.
func (kx *keyExchange) ke() *message.KE {
	if kx.group == ipsec.DHNone || kx.dh == nil {
		return nil
	}
	return &message.KE{Group: kx.group, Data: kx.dh.Public()}
}

// invalidKE handles N(INVALID_KE_PAYLOAD): it returns the group the peer
// asked for and whether to retry with it, which it does when allowed
// offers that group, it is not the one just refused, and the retries are
// not used up. A notify without a group number is never retried.
func (kx *keyExchange) invalidKE(n *message.Notify, allowed []ipsec.Proposal) (ipsec.DHGroup, bool) {
	if len(n.Data) != 2 {
		return ipsec.DHNone, false
	}
	g := ipsec.DHGroup(binary.BigEndian.Uint16(n.Data))
	kx.tries++
	if !offersDH(allowed, g) || g == kx.group || kx.tries > maxInitRetries {
		return g, false
	}
	kx.group = g
	return g, true
}

// accept checks the responder's SA payload against the one we sent and
// returns the chosen algorithms and proposal.
func (kx *keyExchange) accept(got *message.SA, proto ipsec.Protocol, withDH bool) (ipsec.Algorithms, *message.Proposal, error) {
	return acceptResponse(kx.sent, got, proto, withDH)
}

// matches reports whether the responder's KE payload is for group g and g
// is the group of our own KE.
func (kx *keyExchange) matches(ke *message.KE, g ipsec.DHGroup) bool {
	return ke != nil && ke.Group == g && kx.dh != nil && kx.dh.Group() == g
}

// shared validates the responder's public value and returns g^ir. The
// exchange is over then, so our private value is destroyed.
func (kx *keyExchange) shared(ke *message.KE) ([]byte, error) {
	z, err := kx.dh.Shared(ke.Data)
	kx.dh.Destroy()
	kx.dh = nil
	return z, err
}

// responderDH is the responder's half: a key for group g and the shared
// secret with the initiator's KE data. peerBad tells an unusable public
// value of the peer from a failure of our own (no key could be made).
//
// With reuse (IKE_SA_INIT) it takes the Manager's short-lived ephemeral key for g
// (see initGuard) instead of a fresh one; CREATE_CHILD_SA exchanges, which
// are authenticated and give PFS, always make a fresh key.
func responderDH(p *peer, g ipsec.DHGroup, peerPublic []byte, reuse bool) (dh crypto.DH, shared []byte, peerBad bool, err error) {
	if reuse {
		dh, err = p.m.responderKey(g)
	} else {
		dh, err = crypto.NewDH(g, p.m.rand)
	}
	if err != nil {
		return nil, nil, false, err
	}
	if shared, err = dh.Shared(peerPublic); err != nil {
		return nil, nil, true, err
	}
	return dh, shared, false, nil
}

// invalidKEData is the data of N(INVALID_KE_PAYLOAD) asking for group g.
func invalidKEData(g ipsec.DHGroup) []byte {
	var d [2]byte
	binary.BigEndian.PutUint16(d[:], uint16(g))
	return d[:]
}
