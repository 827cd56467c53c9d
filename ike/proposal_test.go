package ike

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/cgwproject/cgw/ike/message"
	"github.com/cgwproject/cgw/ipsec"
)

func mustProps(t *testing.T, ike bool, ss ...string) []ipsec.Proposal {
	t.Helper()
	var out []ipsec.Proposal
	for _, s := range ss {
		p, err := ipsec.ParseProposal(s, ike)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func TestSelectProposal(t *testing.T) {
	cases := []struct {
		name         string
		ours, theirs []string
		ike, withDH  bool
		want         string // Algorithms.String(), "" = no match
	}{
		{"AWS lowest-first wins within one peer proposal", []string{"aes128-aes256-sha1-sha256-modp1024-modp2048"},
			[]string{"aes256-aes128-sha256-sha1-modp2048-modp1024"}, true, true, "aes128-sha1-modp1024"},
		{"our proposal order first", []string{"aes256gcm16-prfsha384-ecp384", "aes128-sha1-modp1024"},
			[]string{"aes128-sha1-modp1024", "aes256gcm16-prfsha384-ecp384"}, true, true, "aes256gcm16-prfsha384-ecp384"},
		{"no common cipher", []string{"aes256gcm16-prfsha384-ecp384"}, []string{"aes128-sha1-modp1024"}, true, true, ""},
		{"key length must match", []string{"aes256-sha1-modp1024"}, []string{"aes128-sha1-modp1024"}, true, true, ""},
		{"ESP in IKE_AUTH ignores DH", []string{"aes128-sha1-modp2048"}, []string{"aes128-sha1-modp1024"}, false, false, "aes128-sha1"},
		{"ESP rekey needs the PFS group", []string{"aes128-sha1-modp2048"}, []string{"aes128-sha1-modp1024"}, false, true, ""},
		{"no PFS configured refuses a PFS offer", []string{"aes128-sha1"}, []string{"aes128-sha1-modp1024"}, false, true, ""},
		{"ESP with PFS", []string{"aes128gcm16-ecp256"}, []string{"aes128gcm16-ecp256"}, false, true, "aes128gcm16-ecp256"},
		{"ESN preference", []string{"aes128-sha1-esn-noesn"}, []string{"aes128-sha1-noesn-esn"}, false, false, "aes128-sha1-esn"},
		{"peer without ESN means no ESN", []string{"aes128-sha1-esn"}, []string{"aes128-sha1"}, false, false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			proto := ipsec.ProtoESP
			if tc.ike {
				proto = ipsec.ProtoIKE
			}
			var spi []byte
			if !tc.ike {
				spi = []byte{1, 2, 3, 4}
			}
			offer := saPayload(proto, mustProps(t, tc.ike, tc.theirs...), spi, true)
			if tc.name == "peer without ESN means no ESN" {
				for i := range offer.Proposals {
					var keep []message.Transform
					for _, tr := range offer.Proposals[i].Transforms {
						if tr.Type != ipsec.TransformESN {
							keep = append(keep, tr)
						}
					}
					offer.Proposals[i].Transforms = keep
				}
			}
			alg, chosen, ok := selectProposal(mustProps(t, tc.ike, tc.ours...), offer.Proposals, proto, tc.withDH)
			if tc.want == "" {
				if ok {
					t.Fatalf("selected %s, want no match", alg.String())
				}
				return
			}
			if !ok || alg.String() != tc.want {
				t.Fatalf("selected %q (ok %v), want %q", alg.String(), ok, tc.want)
			}
			// The initiator accepts what the responder selected.
			resp := selectedProposal(chosen.Number, proto, alg, chosen.SPI, tc.withDH)
			got, _, err := acceptResponse(offer, resp, proto, tc.withDH)
			if err != nil {
				t.Fatalf("acceptResponse: %v", err)
			}
			if got != alg {
				t.Fatalf("accepted %+v, selected %+v", got, alg)
			}
		})
	}
}

func TestAcceptResponseRejects(t *testing.T) {
	sent := saPayload(ipsec.ProtoIKE, mustProps(t, true, "aes128-sha1-modp1024"), nil, true)
	good := selectedProposal(1, ipsec.ProtoIKE, ipsec.Algorithms{Encr: ipsec.EncrAESCBC, KeyBits: 128, PRF: ipsec.PRFHMACSHA1, Integ: ipsec.IntegHMACSHA1_96, DH: ipsec.DHMODP1024}, nil, true)
	if _, _, err := acceptResponse(sent, good, ipsec.ProtoIKE, true); err != nil {
		t.Fatalf("good response refused: %v", err)
	}
	mutate := map[string]func(sa *message.SA){
		"two proposals":   func(sa *message.SA) { sa.Proposals = append(sa.Proposals, sa.Proposals[0]) },
		"unknown number":  func(sa *message.SA) { sa.Proposals[0].Number = 9 },
		"unoffered group": func(sa *message.SA) { sa.Proposals[0].Transforms[3].ID = uint16(ipsec.DHMODP2048) },
		"wrong key size":  func(sa *message.SA) { sa.Proposals[0].Transforms[0].KeyLength = 256 },
		"two ciphers": func(sa *message.SA) {
			sa.Proposals[0].Transforms = append(sa.Proposals[0].Transforms, sa.Proposals[0].Transforms[0])
		},
		"no DH":          func(sa *message.SA) { sa.Proposals[0].Transforms = sa.Proposals[0].Transforms[:3] },
		"wrong protocol": func(sa *message.SA) { sa.Proposals[0].Protocol = ipsec.ProtoESP },
	}
	for name, f := range mutate {
		bad := selectedProposal(1, ipsec.ProtoIKE, ipsec.Algorithms{Encr: ipsec.EncrAESCBC, KeyBits: 128, PRF: ipsec.PRFHMACSHA1, Integ: ipsec.IntegHMACSHA1_96, DH: ipsec.DHMODP1024}, nil, true)
		f(bad)
		if _, _, err := acceptResponse(sent, bad, ipsec.ProtoIKE, true); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func ts(s string) ipsec.TrafficSelector { return ipsec.TSFromPrefix(netip.MustParsePrefix(s)) }

func TestNarrowTS(t *testing.T) {
	cases := []struct {
		offered, config []ipsec.TrafficSelector
		want            []ipsec.TrafficSelector
	}{
		{[]ipsec.TrafficSelector{ts("0.0.0.0/0")}, []ipsec.TrafficSelector{ts("10.0.0.0/16")}, []ipsec.TrafficSelector{ts("10.0.0.0/16")}},
		{[]ipsec.TrafficSelector{ts("10.0.0.0/8")}, []ipsec.TrafficSelector{ts("0.0.0.0/0")}, []ipsec.TrafficSelector{ts("10.0.0.0/8")}},
		{[]ipsec.TrafficSelector{ts("10.0.0.0/16")}, []ipsec.TrafficSelector{ts("192.168.0.0/16")}, nil},
		{[]ipsec.TrafficSelector{ts("0.0.0.0/0")}, []ipsec.TrafficSelector{ts("::/0")}, nil},
		{[]ipsec.TrafficSelector{ts("0.0.0.0/0")}, []ipsec.TrafficSelector{ts("10.1.0.0/16"), ts("10.2.0.0/16")},
			[]ipsec.TrafficSelector{ts("10.1.0.0/16"), ts("10.2.0.0/16")}},
	}
	for i, tc := range cases {
		got := narrowTS(tc.offered, tc.config)
		if len(got) != len(tc.want) {
			t.Errorf("case %d: %v, want %v", i, got, tc.want)
			continue
		}
		for j := range got {
			if got[j] != tc.want[j] {
				t.Errorf("case %d: %v, want %v", i, got, tc.want)
			}
		}
	}
	// Protocol and ports intersect too.
	a := ts("10.0.0.0/8")
	a.IPProto, a.StartPort, a.EndPort = 6, 100, 200
	b := ts("10.1.0.0/16")
	b.StartPort, b.EndPort = 150, 300
	r, ok := intersectTS(a, b)
	if !ok || r.IPProto != 6 || r.StartPort != 150 || r.EndPort != 200 || r.Start != b.Start {
		t.Errorf("intersect %v", r)
	}
	b.IPProto = 17
	if _, ok := intersectTS(a, b); ok {
		t.Errorf("TCP and UDP selectors intersect")
	}
	if tsSubset([]ipsec.TrafficSelector{ts("0.0.0.0/0")}, []ipsec.TrafficSelector{ts("10.0.0.0/8")}) {
		t.Errorf("a wider selector counted as a subset")
	}
}

func validConfig(t *testing.T) PeerConfig {
	return PeerConfig{
		Name: "t1", RemoteAddr: netip.MustParseAddr("198.51.100.10"), PSK: []byte("secret-psk"),
		IKEProposals: mustProps(t, true, "aes128-sha1-modp1024"),
		ESPProposals: mustProps(t, false, "aes128-sha1-modp1024"),
	}
}

func TestValidate(t *testing.T) {
	pc, err := validate(validConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if pc.IKELifetime != 8*time.Hour || pc.ChildLifetime != time.Hour || pc.RekeyMargin != 270*time.Second ||
		pc.DPDRetries != 3 || pc.ReplayWindow != 1024 || pc.RetransmitTimeout != 4*time.Second || pc.RetransmitTries != 5 {
		t.Errorf("defaults not applied: %+v", pc.PeerConfig)
	}
	if len(pc.TSLocal) != 1 || pc.TSLocal[0] != ts("0.0.0.0/0") {
		t.Errorf("default selectors %v", pc.TSLocal)
	}
	bad := map[string]func(*PeerConfig){
		"Name":       func(c *PeerConfig) { c.Name = "" },
		"RemoteAddr": func(c *PeerConfig) { c.RemoteAddr = netip.Addr{} },
		"PSK":        func(c *PeerConfig) { c.PSK = nil },
		"IKE":        func(c *PeerConfig) { c.IKEProposals = nil },
		"3des":       func(c *PeerConfig) { c.IKEProposals[0].Encrs = []ipsec.EncrKey{{ID: ipsec.Encr3DES}} },
		"no DH":      func(c *PeerConfig) { c.IKEProposals[0].DHGroups = nil },
		"ESP PRF":    func(c *PeerConfig) { c.ESPProposals[0].PRFs = []ipsec.PRFID{ipsec.PRFHMACSHA1} },
		"RekeyFuzz":  func(c *PeerConfig) { c.RekeyFuzz = 101 },
		"lifetime":   func(c *PeerConfig) { c.ChildLifetime = 4 * time.Minute },
		"family":     func(c *PeerConfig) { c.LocalAddr = netip.MustParseAddr("2001:db8::1") },
		"LocalID":    func(c *PeerConfig) { c.LocalID = Identity{Type: 1, Data: []byte{1, 2}} },
		"DPDAction":  func(c *PeerConfig) { c.DPDAction = 7 },
		"TS":         func(c *PeerConfig) { c.TSLocal = []ipsec.TrafficSelector{{}} },
		"mixed AEAD": func(c *PeerConfig) {
			c.ESPProposals[0].Encrs = append(c.ESPProposals[0].Encrs, ipsec.EncrKey{ID: ipsec.EncrAESGCM16, KeyBits: 128})
		},
		"GCM integ":    func(c *PeerConfig) { c.ESPProposals[0].Encrs = []ipsec.EncrKey{{ID: ipsec.EncrAESGCM16, KeyBits: 128}} },
		"retransmit":   func(c *PeerConfig) { c.RetransmitTries = -1 },
		"DPD interval": func(c *PeerConfig) { c.DPDInterval = -time.Second },
	}
	for name, f := range bad {
		c := validConfig(t)
		f(&c)
		_, err := validate(c)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if !strings.HasPrefix(err.Error(), "ike: ") {
			t.Errorf("%s: error %q does not start with the package name", name, err)
		}
		if strings.Contains(err.Error(), "secret-psk") {
			t.Errorf("%s: error leaks the PSK", name)
		}
	}
	// The caller's slices are not aliased.
	c := validConfig(t)
	pc, _ = validate(c)
	c.PSK[0] = 'X'
	c.IKEProposals[0].Encrs[0].KeyBits = 256
	if pc.PSK[0] == 'X' || pc.IKEProposals[0].Encrs[0].KeyBits == 256 {
		t.Errorf("validated config aliases the caller's slices")
	}
}

func TestRetransmitSchedule(t *testing.T) {
	// strongSwan's 4 s * 1.8^n: the n-th retransmission waits this long.
	want := []time.Duration{4 * time.Second, 7200 * time.Millisecond, 12960 * time.Millisecond}
	for n, w := range want {
		got := time.Duration(float64(4*time.Second) * pow(retransmitBase, n))
		if d := got - w; d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("retransmit %d after %s, want %s", n, got, w)
		}
	}
	if j := jitter(10*time.Second, 0); j != 8*time.Second {
		t.Errorf("jitter low end %s", j)
	}
	if j := jitter(10*time.Second, ^uint64(0)); j < 8*time.Second || j >= 12*time.Second {
		t.Errorf("jitter out of range: %s", j)
	}
}

func pow(b float64, n int) float64 {
	r := 1.0
	for range n {
		r *= b
	}
	return r
}
