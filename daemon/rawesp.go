package daemon

import (
	"github.com/cgwproject/cgw/config"
	"github.com/cgwproject/cgw/ike"
)

// Raw ESP (IP protocol 50).
//
// A tunnel with encapsulation: auto lets IKE's NAT detection decide (RFC
// 7296, Section 2.23): with no NAT in the path and a peer that does not
// force encapsulation, its CHILD SAs carry raw ESP through the dataplane's
// protocol-50 sockets (dataplane/rawesp.go). Those need CAP_NET_RAW;
// without them such a tunnel keeps asking for ESP in UDP, and says so.
// Whatever was negotiated, the dataplane accepts the peer's ESP both ways
// and logs which one the peer uses (docs/ipv6.md).

// withRawESP returns pc for tunnel t, forcing UDP encapsulation when t
// would allow raw ESP but the dataplane has no raw socket for its family.
func (d *Daemon) withRawESP(pc ike.PeerConfig, t *config.Tunnel) ike.PeerConfig {
	if pc.ForceEncap || d.dp.RawESP(t.PeerAddress) {
		return pc
	}
	d.log.Warn("encapsulation: auto, but raw ESP (IP protocol 50) is unavailable (cgwd needs CAP_NET_RAW); asking for ESP in UDP 4500 instead",
		"tunnel", t.Name)
	pc.ForceEncap = true
	return pc
}
