package daemon

import (
	"strings"
	"testing"

	"github.com/cgwproject/cgw/config"
)

// TestPlanReloadBGPNoSpeakerRestart: adding a BGP connection, restarting
// a BGP tunnel (a renegotiating change) and removing one are planned as
// changes of those tunnels only, with no warning that the BGP speaker (so
// every other session) restarts: new sessions are dialed from their
// tunnels' addresses (bgp.Server.SetListenAddresses).
func TestPlanReloadBGPNoSpeakerRestart(t *testing.T) {
	parse := func(t *testing.T, s string) *config.Config {
		t.Helper()
		cfg, _, err := config.Parse([]byte(s), "cgw.yaml")
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	second := `
  - name: vpn-2
    local_address: 192.0.2.1
    routing: bgp
    bgp:
      asn: 65002
    tunnels:
      - name: vpn-2-t1
        peer_address: 198.51.100.3
        psk: "EXAMPLEpsk3_abcdefghij.klmnopqrs"
        inside_cidr: 169.254.12.0/30
`
	old := parse(t, bgpStartConfig)
	for _, tc := range []struct {
		name, next string
		want       []string // section tunnel effect
	}{
		{"add a connection", bgpStartConfig + second, []string{"connection  start"}},
		{"restart a tunnel", strings.Replace(bgpStartConfig, "inside_cidr: 169.254.11.4/30", "inside_cidr: 169.254.11.4/30\n        ike_lifetime: 4h", 1),
			[]string{"tunnel vpn-1-t2 restart"}},
		{"move a tunnel's inside CIDR", strings.Replace(bgpStartConfig, "169.254.11.4/30", "169.254.11.8/30", 1),
			[]string{"tunnel vpn-1-t2 restart"}},
		{"remove a tunnel", bgpStartConfig[:strings.Index(bgpStartConfig, "      - name: vpn-1-t2")],
			[]string{"tunnel vpn-1-t2 stop"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := planReload(old, parse(t, tc.next), nil)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range p.res.Details {
				got = append(got, c.Section+" "+c.Tunnel+" "+c.Effect)
			}
			if strings.Join(got, "; ") != strings.Join(tc.want, "; ") {
				t.Errorf("changes %q, want %q", got, tc.want)
			}
			for _, w := range p.res.Warnings {
				if strings.Contains(w, "speaker") || strings.Contains(w, "every BGP session") {
					t.Errorf("warning %q: no other BGP session is reset", w)
				}
			}
		})
	}
}
