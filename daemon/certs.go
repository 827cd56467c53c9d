package daemon

import (
	"math"
	"time"

	"github.com/cgwproject/cgw/config"
	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/ike"
	"github.com/cgwproject/cgw/ipsec"
)

// certPeerConfig switches a tunnel's IKE configuration to certificate
// authentication: no PSK; our identity is the certificate's subject DN
// (local_id, an address meant for PSKs, is not used); AWS's identity is
// peer_id, a DN or an address, or any identity its certificate proves.
func certPeerConfig(pc *ike.PeerConfig, t *config.Tunnel) {
	c := t.Cert
	pc.PSK = nil
	pc.LocalID = ike.Identity{}
	pc.RemoteID = ike.Identity{}
	switch {
	case t.PeerDN != nil:
		pc.RemoteID = ike.DNIdentity(t.PeerDN)
	case t.PeerID.IsValid():
		pc.RemoteID = ike.AddrIdentity(t.PeerID)
	}
	pc.Cert = &ike.CertAuth{
		Chain: c.Chain, Key: c.Key.Signer,
		Roots: c.Roots, Intermediates: c.Intermediates, CRLs: c.CRLs,
		Classic: c.Signature == config.SignatureClassic,
		PSS:     c.Signature == config.SignaturePSS,
	}
}

// authStatus is a tunnel's authentication for the status API: what IKE
// negotiated, and our certificate's expiry from the configuration (known
// even while the tunnel is down).
func authStatus(t *config.Tunnel, a ike.AuthStatus, now time.Time) *control.Auth {
	out := &control.Auth{Method: string(t.Auth), LocalID: a.LocalID, RemoteID: a.RemoteID,
		LocalSignature: a.LocalSig, PeerSignature: a.PeerSig,
		PeerCertificate: a.PeerCert, PeerCertExpires: a.PeerCertNotAfter}
	if out.Method == "" {
		out.Method = string(config.AuthPSK)
	}
	if t.Auth == config.AuthCertificate && t.Cert != nil && len(t.Cert.Chain) > 0 {
		leaf := t.Cert.Chain[0]
		out.Certificate = ike.CertSubject(leaf)
		out.CertificateExpires = leaf.NotAfter
		out.ExpiresInDays = certDaysLeft(leaf.NotAfter, now)
		if out.LocalID == "" {
			out.LocalID = ipsec.DNString(leaf.RawSubject)
		}
	}
	return out
}

// certDaysLeft is the days until notAfter, rounded down to a tenth.
func certDaysLeft(notAfter, now time.Time) float64 {
	return math.Floor(notAfter.Sub(now).Hours()/24*10) / 10
}

// certDoc fills the running configuration of a certificate tunnel: the
// files and AWS's identity (a DN, or nothing when any certificate of the
// CA is accepted).
func certDoc(out *control.ConfigTunnel, t *config.Tunnel) {
	out.Auth = string(config.AuthCertificate)
	switch {
	case t.PeerDN != nil:
		out.PeerID = ipsec.DNString(t.PeerDN)
	case !t.PeerID.IsValid():
		out.PeerID = ""
	}
	if c := t.Cert; c != nil {
		out.Certificate = &control.ConfigCertificate{CertFile: c.CertFile, KeyFile: c.KeyFile, KeyPassphraseFile: c.KeyPassphraseFile,
			CAFile: c.CAFile, CRLFile: c.CRLFile, Signature: string(c.Signature)}
	}
}
