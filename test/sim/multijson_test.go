package sim

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cgwproject/cgw/config"
	"github.com/cgwproject/cgw/config/awsxml"
	"github.com/cgwproject/cgw/ipsec"
)

// newTestMulti lays out a Multi without starting anything.
func newTestMulti(t *testing.T, o MultiOptions) *Multi {
	t.Helper()
	s := &Sim{opts: Options{ID: "abcd", AWS: AWSNone}}
	if err := s.opts.setDefaults(); err != nil {
		t.Fatal(err)
	}
	s.id = s.opts.ID
	m, err := s.newMulti(o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestMultiDescribeImport imports the describe-vpn-connections JSON of 20
// simulated connections the way `cgwctl import-aws` does (ParseDescribe,
// GenerateAll with per-connection --advertise) and checks every connection
// and tunnel of the resulting configuration against the simulator's.
func TestMultiDescribeImport(t *testing.T) {
	const n = 20
	m := newTestMulti(t, MultiOptions{Connections: n, DHGroups: []int{21, 19, 20}})
	conns, err := awsxml.ParseDescribe(m.DescribeJSON())
	if err != nil {
		t.Fatal(err)
	}
	if len(conns) != n {
		t.Fatalf("ParseDescribe: %d connections, want %d", len(conns), n)
	}
	opt := awsxml.Options{
		LocalAddress: m.s.CustOutsideAddr(),
		Advertise:    []netip.Prefix{m.s.opts.LANPrefix},
		AdvertiseFor: map[string][]netip.Prefix{},
	}
	for _, c := range m.Conns {
		opt.AdvertiseFor[c.ID] = []netip.Prefix{c.Marker}
	}
	out, _, err := awsxml.GenerateAll(conns, opt)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err := config.Parse(out, "imported.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Connections) != n {
		t.Fatalf("%d connections imported, want %d", len(cfg.Connections), n)
	}
	ids := map[string]bool{}
	for i, c := range m.Conns {
		ids[c.ID] = true
		got := cfg.Connections[i]
		if got.Name != c.ID || got.Routing != config.RoutingBGP || got.LocalID != CustPublicAddr || got.LocalAddress != m.s.CustOutsideAddr() {
			t.Errorf("connection %d: name %q routing %s local_id %v local_address %v", c.Index, got.Name, got.Routing, got.LocalID, got.LocalAddress)
			continue
		}
		if got.BGP.ASN != c.ASN || got.BGP.PeerASN != m.s.opts.AWSASN || !slices.Equal(got.BGP.Advertise, c.Advertise) {
			t.Errorf("%s: bgp asn %d peer %d advertise %v, want %d %d %v", c.ID, got.BGP.ASN, got.BGP.PeerASN, got.BGP.Advertise, c.ASN, m.s.opts.AWSASN, c.Advertise)
		}
		if len(got.Tunnels) != 2 {
			t.Errorf("%s: %d tunnels", c.ID, len(got.Tunnels))
			continue
		}
		for j, want := range c.Tunnels {
			gt := got.Tunnels[j]
			if gt.Name != fmt.Sprintf("%s-t%d", c.ID, j+1) || gt.PeerAddress != want.Outside || gt.InsideCIDR != want.Inside ||
				string(gt.PSK) != want.PSK || gt.InsidePeer() != want.AWSInside || gt.InsideLocal() != want.CustInside {
				t.Errorf("%s tunnel %d: name %q peer %v inside %v (psk matches: %v), want %v %v",
					c.ID, j+1, gt.Name, gt.PeerAddress, gt.InsideCIDR, string(gt.PSK) == want.PSK, want.Outside, want.Inside)
			}
			// The TunnelOptions' ECP groups narrow both phases, ecp256
			// first (the KE guess), so no INVALID_KE round trip.
			for _, ps := range [][]ipsec.Proposal{gt.IKEProposals, gt.ESPProposals} {
				for _, p := range ps {
					if !slices.Equal(p.DHGroups, []ipsec.DHGroup{19, 21, 20}) {
						t.Errorf("%s tunnel %d: DH groups %v, want ecp256, ecp521, ecp384", c.ID, j+1, p.DHGroups)
					}
				}
			}
		}
	}
	if len(ids) != n {
		t.Errorf("connection IDs are not unique: %d of %d", len(ids), n)
	}
}

// TestMultiDescribeLifetimes: AWS-valid phase 2 times reach the imported
// tunnels; the bench's short storm lifetimes are the simulator's own and
// leave the document at AWS's defaults, which import accepts.
func TestMultiDescribeLifetimes(t *testing.T) {
	for _, tc := range []struct {
		life, margin time.Duration
		fuzz         int
		wantLife     time.Duration
		wantMargin   time.Duration
	}{
		{life: 1800 * time.Second, margin: 300 * time.Second, fuzz: -1, wantLife: 1800 * time.Second, wantMargin: 300 * time.Second},
		{life: 150 * time.Second, margin: 60 * time.Second, fuzz: -1, wantLife: time.Hour, wantMargin: 270 * time.Second},
	} {
		m := newTestMulti(t, MultiOptions{Connections: 2, ChildLifetime: tc.life, RekeyMargin: tc.margin, RekeyFuzz: tc.fuzz})
		conns, err := awsxml.ParseDescribe(m.DescribeJSON())
		if err != nil {
			t.Fatal(err)
		}
		out, _, err := awsxml.GenerateAll(conns, awsxml.Options{})
		if err != nil {
			t.Fatal(err)
		}
		cfg, _, err := config.Parse(out, "imported.yaml")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cfg.Connections {
			for _, tn := range c.Tunnels {
				if tn.ChildLifetime != tc.wantLife || tn.RekeyMargin != tc.wantMargin {
					t.Errorf("life %v: %s: child lifetime %v margin %v, want %v %v", tc.life, tn.Name, tn.ChildLifetime, tn.RekeyMargin, tc.wantLife, tc.wantMargin)
				}
				if len(tn.IKEProposals) == 0 || !strings.Contains(ipsec.ProposalsString(tn.IKEProposals), "modp1024") {
					t.Errorf("%s: without DHGroups every AWS group stays: %s", tn.Name, ipsec.ProposalsString(tn.IKEProposals))
				}
			}
		}
	}
}

// TestMultiDHGroups: the AWS side's proposals follow DHGroups, lowest
// first, with group 5 in phase 2 only; an unknown group is refused.
func TestMultiDHGroups(t *testing.T) {
	m := newTestMulti(t, MultiOptions{Connections: 1, DHGroups: []int{20, 19, 5}})
	conf := m.swanctlConf()
	if !strings.Contains(conf, "proposals = aes128-aes256-sha1-sha256-sha384-sha512-ecp256-ecp384,") ||
		!strings.Contains(conf, "esp_proposals = aes128-aes256-sha1-sha256-sha384-sha512-modp1536-ecp256-ecp384,") {
		t.Errorf("swanctl.conf:\n%s", conf)
	}
	s := &Sim{opts: Options{ID: "abcd", AWS: AWSNone}}
	if err := s.opts.setDefaults(); err != nil {
		t.Fatal(err)
	}
	for _, g := range [][]int{{1}, {5}} {
		if _, err := s.newMulti(MultiOptions{Connections: 1, DHGroups: g}); err == nil {
			t.Errorf("DHGroups %v accepted", g)
		}
	}
}
