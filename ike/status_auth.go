package ike

import (
	"time"
)

// AuthStatus describes how the current IKE SA authenticated.
type AuthStatus struct {
	// Method is "psk" or "certificate".
	Method string
	// LocalID and RemoteID are both identities as strongSwan writes them
	// (an address, or a DN "C=US, O=Example, CN=gw1").
	LocalID, RemoteID string
	// LocalSig and PeerSig name the signature algorithms used, e.g.
	// "RFC 7427 RSASSA-PSS SHA-256 (method 14)"; empty with PSKs.
	LocalSig, PeerSig string
	// PeerCert names the peer's certificate, PeerCertNotAfter its expiry.
	PeerCert         string
	PeerCertNotAfter time.Time
}

func (p *peer) authStatus(sa *ikeSA) AuthStatus {
	a := AuthStatus{Method: "psk"}
	if p.cfg.Cert != nil {
		a.Method = "certificate"
	}
	if t, d, err := p.localIdentity(sa); err == nil {
		a.LocalID = identityString(t, d)
	}
	if sa.peerID != nil {
		a.RemoteID = identityString(sa.peerID.IDType, sa.peerID.Data)
	}
	a.LocalSig, a.PeerSig = sa.localAuth, sa.peerAuth
	if sa.peerCert != nil {
		a.PeerCert, a.PeerCertNotAfter = CertSubject(sa.peerCert), sa.peerCert.NotAfter
	}
	return a
}
