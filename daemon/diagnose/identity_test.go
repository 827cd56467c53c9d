package diagnose

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/cgwproject/cgw/config"
	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/ipsec"
)

// seenFrom fakes AWS's NAT detection answer: AWS saw our request come from
// ap.
func seenFrom(ap netip.AddrPort) func(netip.Addr) (uint16, bool) {
	return func(a netip.Addr) (uint16, bool) { return ap.Port(), a == ap.Addr() }
}

func TestDiagnoseIdentity(t *testing.T) {
	nat := netip.MustParseAddrPort("192.168.1.10:500")
	tests := []struct {
		name   string
		mutate func(in *Input)
		check  string
		sev    control.Severity
		want   []string
	}{
		{"behind nat, local_id is our private address, auth failed", func(in *Input) {
			down(in)
			in.Conn.LocalID = nat.Addr()
			in.NAT = &NATView{At: diagNow.Add(-10 * time.Second), Local: nat, BehindNAT: true,
				SeenAs: seenFrom(netip.MustParseAddrPort("203.0.113.10:40123"))}
			failed(in, "AUTHENTICATION_FAILED", "ike: peer answered AUTHENTICATION_FAILED to our IKE_AUTH")
		}, checkNAT, control.SeverityError, []string{
			"our IKE identity 192.168.1.10 is this host's address behind the NAT", "AUTHENTICATION_FAILED",
			"local_id: 192.168.1.10, from local_id", "left from 192.168.1.10:500", "matches 192.168.1.10 with no source port",
			"Set local_id to the NAT device's public IP address", "Customer gateways", "cgwctl reload",
		}},
		{"behind nat, wrong public local_id", func(in *Input) {
			down(in)
			in.Conn.LocalID = netip.MustParseAddr("203.0.113.99")
			in.NAT = &NATView{At: diagNow, Local: nat, BehindNAT: true, SeenAs: seenFrom(netip.MustParseAddrPort("203.0.113.10:40123"))}
		}, checkNAT, control.SeverityError, []string{"not from our IKE identity 203.0.113.99", "Set local_id to the NAT device's public IP"}},
		{"auth failed names the identity first", func(in *Input) {
			down(in)
			in.Conn.LocalID = nat.Addr()
			in.NAT = &NATView{At: diagNow, Local: nat, BehindNAT: true, SeenAs: seenFrom(netip.MustParseAddrPort("203.0.113.10:40123"))}
			failed(in, "AUTHENTICATION_FAILED", "ike: peer answered AUTHENTICATION_FAILED to our IKE_AUTH")
		}, checkIKEFail, control.SeverityError, []string{"our identity 192.168.1.10 is not the address AWS sees us at", "Set local_id", "pre-shared key"}},
		{"no nat, local_id is another address", func(in *Input) {
			down(in)
			in.Conn.LocalID = netip.MustParseAddr("203.0.113.99")
			in.NAT = &NATView{At: diagNow, Local: netip.MustParseAddrPort("203.0.113.10:500"), SeenAs: seenFrom(netip.MustParseAddrPort("203.0.113.10:500"))}
		}, checkNAT, control.SeverityError, []string{"not the address AWS sees us at, 203.0.113.10", "Set local_id to 203.0.113.10"}},
		{"behind nat, public local_id seen by AWS, tunnel down", func(in *Input) {
			down(in)
			in.After.NAT = false // the failed IKE SA is gone; the view remains
			in.NAT = &NATView{At: diagNow, Local: nat, BehindNAT: true, SeenAs: seenFrom(netip.MustParseAddrPort("203.0.113.10:40123"))}
		}, checkNAT, control.SeverityInfo, []string{"A NAT is between", "AWS saw our last IKE_SA_INIT come from 203.0.113.10:40123, so the identity matches"}},
		{"no nat, identity seen", func(in *Input) {
			in.NAT = &NATView{At: diagNow, Local: netip.MustParseAddrPort("203.0.113.10:500"), SeenAs: seenFrom(netip.MustParseAddrPort("203.0.113.10:500"))}
		}, checkNAT, control.SeverityOK, []string{"No NAT", "so the identity matches"}},
		{"no proposal chosen names the recorded AWS options", func(in *Input) {
			down(in)
			in.Tunnel.AWS = &config.AWSTunnelOptions{Phase1: config.AWSPhaseOptions{AWSOptionsPhase: ipsec.AWSOptionsPhase{Encryption: []string{"AES256"}, DHGroups: []int{16}}}}
			failed(in, "NO_PROPOSAL_CHOSEN", "ike: peer answered NO_PROPOSAL_CHOSEN to our IKE_SA_INIT")
		}, checkIKEFail, control.SeverityError, []string{"recorded in aws_tunnel_options: phase 1 AES256, DH 16, phase 2 AWS's defaults", "re-import"}},
		{"certificate auth behind nat: the address identity is not checked", func(in *Input) {
			down(in)
			in.Tunnel.Auth = config.AuthCertificate
			in.Conn.LocalID = nat.Addr()
			in.NAT = &NATView{At: diagNow, Local: nat, BehindNAT: true, SeenAs: seenFrom(netip.MustParseAddrPort("203.0.113.10:40123"))}
		}, checkNAT, control.SeverityInfo, []string{"A NAT is between", "local_id: the certificate's subject DN"}},
		{"down without a view: nat unknown, not 'no nat'", func(in *Input) {
			down(in)
			in.IKEResponses = 3
			failed(in, "AUTHENTICATION_FAILED", "ike: peer answered AUTHENTICATION_FAILED to our IKE_AUTH")
		}, checkNAT, control.SeverityInfo, []string{"not known yet"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := healthyInput(t)
			tt.mutate(&in)
			fs := findingsOf(Tunnel(in), tt.check)
			if len(fs) != 1 {
				t.Fatalf("%s findings: %+v", tt.check, fs)
			}
			if fs[0].Severity != tt.sev {
				t.Errorf("severity %s, want %s: %+v", fs[0].Severity, tt.sev, fs[0])
			}
			text := findingText(fs[0])
			for _, w := range tt.want {
				if !strings.Contains(text, w) {
					t.Errorf("want %q in\n%s", w, text)
				}
			}
		})
	}
}
