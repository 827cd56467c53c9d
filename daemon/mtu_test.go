package daemon

import (
	"testing"

	"github.com/cgwproject/cgw/config"
	"github.com/cgwproject/cgw/ipsec"
)

func TestTunnelMTU(t *testing.T) {
	esp := func(s string) ipsec.Proposal {
		p, err := ipsec.ParseProposal(s, false)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	// AWS's table for NAT-T tunnels (aws-vpn-facts 2.10).
	for _, tc := range []struct {
		esp  string
		want int
	}{
		{"aes256gcm16-ecp384", 1438},
		{"aes128-sha1-modp1024", 1422},
		{"aes256-sha256-modp2048", 1422},
		{"aes256-sha384-modp2048", 1422},
		{"aes256-sha512-modp4096", 1406},
	} {
		p := esp(tc.esp)
		a := ipsec.Algorithms{Encr: p.Encrs[0].ID, KeyBits: p.Encrs[0].KeyBits}
		if len(p.Integs) > 0 {
			a.Integ = p.Integs[0]
		}
		if got := negotiatedMTU(&config.Tunnel{}, a, true); got != tc.want {
			t.Errorf("%s: MTU %d, want %d", tc.esp, got, tc.want)
		}
	}
	// Before negotiation: the worst configured proposal.
	tun := &config.Tunnel{ESPProposals: []ipsec.Proposal{esp("aes256gcm16-ecp384"), esp("aes256-sha512-modp4096"), esp("aes128-sha1-modp1024")}}
	if got := configuredMTU(tun); got != 1406 {
		t.Errorf("configured worst case = %d, want 1406", got)
	}
	tun.MTU = 1300
	if configuredMTU(tun) != 1300 || negotiatedMTU(tun, ipsec.Algorithms{Encr: ipsec.EncrAESGCM16, KeyBits: 128}, false) != 1300 {
		t.Error("an explicit mtu must win")
	}
}
