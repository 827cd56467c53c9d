package daemon

import (
	"net/netip"
	"testing"

	"github.com/cgwproject/cgw/config"
)

// TestPeerConfigEncapsulation: encapsulation: udp (the default) forces
// UDP encapsulation as before; auto lets NAT detection decide unless
// force_encap says otherwise.
func TestPeerConfigEncapsulation(t *testing.T) {
	c := &config.Connection{LocalAddress: netip.MustParseAddr("192.0.2.1")}
	for _, tc := range []struct {
		enc   config.Encapsulation
		force bool
		want  bool
	}{
		{config.EncapUDP, false, true},
		{config.EncapAuto, false, false},
		{config.EncapAuto, true, true},
	} {
		tn := &config.Tunnel{Name: "t1", PeerAddress: netip.MustParseAddr("2001:db8::1"), Encapsulation: tc.enc, ForceEncap: tc.force}
		if got := peerConfig(c, tn).ForceEncap; got != tc.want {
			t.Errorf("encapsulation %s, force_encap %v: IKE ForceEncap %v, want %v", tc.enc, tc.force, got, tc.want)
		}
	}
}
