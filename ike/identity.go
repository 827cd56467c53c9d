package ike

import (
	"bytes"
	"fmt"

	"github.com/cgwproject/cgw/ike/message"
	"github.com/cgwproject/cgw/ipsec"
)

// localIdentity is our IDi/IDr: LocalID, or ID_IPV4_ADDR/ID_IPV6_ADDR of our
// outside address. Behind a NAT, LocalID must be the public address AWS has
// registered for the customer gateway.
func (p *peer) localIdentity(sa *ikeSA) (message.IDType, []byte, error) {
	if p.cfg.LocalID.Type != 0 {
		return message.IDType(p.cfg.LocalID.Type), p.cfg.LocalID.Data, nil
	}
	if p.cfg.Cert != nil {
		// With certificates our identity is our certificate's subject.
		return message.IDDERASN1DN, p.cfg.Cert.Chain[0].RawSubject, nil
	}
	a := p.cfg.LocalAddr
	if !a.IsValid() || a.IsUnspecified() {
		a = sa.local.Addr()
	}
	if !a.IsValid() || a.IsUnspecified() {
		return 0, nil, fmt.Errorf("ike: peer %q: our outside address is unknown, so there is no default identity; set local_id (or local_address)", p.cfg.Name)
	}
	if a.Is4() {
		b := a.As4()
		return message.IDIPv4Addr, b[:], nil
	}
	b := a.As16()
	return message.IDIPv6Addr, b[:], nil
}

// checkPeerIdentity enforces RemoteID when configured. Without it the PSK,
// which is bound to the peer's address, is the only check; a different
// identity is logged.
func (p *peer) checkPeerIdentity(sa *ikeSA, id *message.ID) error {
	sa.peerID = id
	if p.cfg.RemoteID.Type != 0 {
		same := message.IDType(p.cfg.RemoteID.Type) == id.IDType && bytes.Equal(p.cfg.RemoteID.Data, id.Data)
		if !same && id.IDType == message.IDDERASN1DN && message.IDType(p.cfg.RemoteID.Type) == id.IDType {
			same = sameDN(p.cfg.RemoteID.Data, id.Data)
		}
		if !same {
			return &notifyError{notify: message.NotifyAuthenticationFailed, reason: fmt.Sprintf(
				"ike: peer %s identified as %s but remote_id is %s; fix peer_id in the tunnel config",
				p.cfg.RemoteAddr, identityString(id.IDType, id.Data), identityString(message.IDType(p.cfg.RemoteID.Type), p.cfg.RemoteID.Data))}
		}
		return nil
	}
	if p.cfg.Cert != nil {
		p.log.Info("peer identity accepted by its certificate alone; set peer_id to pin it", "identity", identityString(id.IDType, id.Data))
		return nil
	}
	if a, ok := id.Addr(); !ok || a.Unmap() != p.cfg.RemoteAddr {
		p.log.Info("peer identity differs from its address; set peer_id to pin it", "identity", identityString(id.IDType, id.Data))
	}
	return nil
}

func identityString(t message.IDType, data []byte) string {
	id := message.ID{IDType: t, Data: data}
	if a, ok := id.Addr(); ok {
		return a.String()
	}
	switch t {
	case message.IDFQDN, message.IDRFC822:
		return string(data)
	case message.IDDERASN1DN:
		return ipsec.DNString(data)
	}
	return fmt.Sprintf("%s:%x", t, data)
}
