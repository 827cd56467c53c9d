package sim

import (
	"encoding/xml"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cgwproject/cgw/config/awsxml"
)

// needRoot skips tests that build namespaces when not root or when the
// tools are missing (`make test` runs test/deps.sh first).
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	if err := CheckTools(Options{}); err != nil {
		t.Skip(err)
	}
	if testing.Short() {
		t.Skip("netns simulation skipped in -short mode")
	}
}

func newSim(t *testing.T, o Options) *Sim {
	t.Helper()
	o.Logf = t.Logf
	o.KeepDir = os.Getenv("SIM_KEEP") != ""
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, name := range []string{"charon-aws1", "charon-aws2", "charon-cust", "bird-aws1", "bird-cust", "bird-vpc"} {
				if b := tailFile(s.path("logs", name+".log"), 3000); b != "" {
					t.Logf("--- %s (tail):\n%s", name, b)
				}
			}
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		for _, r := range Roles {
			if fileExists("/run/netns/" + s.NS(r)) {
				t.Errorf("namespace %s left behind", s.NS(r))
			}
		}
	})
	return s
}

// TestStrongSwanCustomerBGP validates the simulator against a strongSwan
// customer: both tunnels negotiate with the AWS proposal set, both BGP
// sessions reach Established with the VPC CIDR learned, LAN <-> VPC traffic
// passes, and withdrawing tunnel 1's BGP session moves traffic to tunnel 2.
func TestStrongSwanCustomerBGP(t *testing.T) {
	needRoot(t)
	s := newSim(t, Options{Customer: CustomerStrongSwan})

	for i := 1; i <= 2; i++ {
		sa, err := s.WaitTunnel(i, 20*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		e := Endpoints[i-1]
		if sa.LocalHost != e.Outside.String() || sa.RemoteHost != CustPublicAddr.String() {
			t.Errorf("endpoint %d: IKE_SA %s <-> %s, want %s <-> %s", i, sa.LocalHost, sa.RemoteHost, e.Outside, CustPublicAddr)
		}
		if sa.LocalPort != 4500 || sa.RemotePort != 4500 || !sa.NATAny {
			t.Errorf("endpoint %d: ports %d/%d nat-any %v, want 4500/4500 with forced NAT-T", i, sa.LocalPort, sa.RemotePort, sa.NATAny)
		}
		if sa.EncrAlg != "AES_GCM_16" || sa.EncrKeySize != 128 || sa.DHGroup != "ECP_256" {
			t.Errorf("endpoint %d: IKE alg %s-%d/%s, want AES_GCM_16-128/ECP_256", i, sa.EncrAlg, sa.EncrKeySize, sa.DHGroup)
		}
		c := sa.Installed()[0]
		if !c.Encap || c.Mode != "TUNNEL" || c.SPIIn == "" || c.SPIOut == "" {
			t.Errorf("endpoint %d: CHILD_SA %+v: want UDP-encapsulated tunnel mode with SPIs", i, c)
		}
		st, err := s.WaitBGPRoutes(i, 1, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if st.NeighborAS != 65000 || st.Neighbor != e.CustInside.String() {
			t.Errorf("endpoint %d: BGP neighbor %s AS%d, want %s AS65000", i, st.Neighbor, st.NeighborAS, e.CustInside)
		}
		if st.Imported != 1 || st.Exported != 1 {
			t.Errorf("endpoint %d: BGP imported %d exported %d, want 1/1", i, st.Imported, st.Exported)
		}
	}
	// The VPC must have learned the LAN through iBGP before traffic flows.
	if err := s.WaitPing(LAN, VPCHostAddr, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	if loss, err := s.Ping(LAN, VPCHostAddr, 10, 50*time.Millisecond); err != nil || loss > 0 {
		t.Fatalf("ping lan -> vpchost: loss %.0f%% err %v", loss*100, err)
	}
	for i := 1; i <= 2; i++ {
		if err := s.WaitPing(Cust, Endpoints[i-1].AWSInside, 5*time.Second); err != nil {
			t.Errorf("inside address of tunnel %d: %v", i, err)
		}
	}
	sas, err := s.ListSAs(1)
	if err != nil {
		t.Fatal(err)
	}
	if c := sas[0].Installed(); len(c) == 0 || c[0].PacketsIn == 0 || c[0].BytesOut == 0 {
		t.Errorf("tunnel 1 CHILD_SA counters did not move: %+v", c)
	}

	// Failover: tunnel 1's session goes down -> both directions use tunnel 2.
	if err := s.DisableBGP(1); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.BGPState(1); st.Established() {
		t.Fatal("BGP of endpoint 1 still Established after DisableBGP")
	}
	before := childPackets(t, s, 2)
	if err := s.WaitPing(LAN, VPCHostAddr, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	// Both routing directions converge on their own schedules (the
	// customer's BIRD and the VPC's), so ping until tunnel 2 carried the
	// traffic both ways or 10 s passed.
	var after uint64
	for deadline := time.Now().Add(10 * time.Second); ; {
		if loss, err := s.Ping(LAN, VPCHostAddr, 5, 50*time.Millisecond); err != nil || loss > 0 {
			t.Fatalf("ping over tunnel 2: loss %.0f%% err %v", loss*100, err)
		}
		if after = childPackets(t, s, 2); after >= before+10 || time.Now().After(deadline) {
			break
		}
	}
	if after < before+10 {
		t.Errorf("tunnel 2 carried %d packets during failover, want >= 10", after-before)
	}
	if err := s.EnableBGP(1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WaitBGP(1, 30*time.Second); err != nil {
		t.Fatal(err)
	}
}

func childPackets(t *testing.T, s *Sim, i int) uint64 {
	t.Helper()
	sas, err := s.ListSAs(i)
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, sa := range sas {
		for _, c := range sa.Installed() {
			n += c.PacketsIn + c.PacketsOut
		}
	}
	return n
}

// TestStrongSwanCustomerStaticNAT: one tunnel, static routing, customer
// behind a port-rewriting NAT; the AWS side must see the public address and
// a non-4500 source port, and the VPC must route the LAN via the updown
// hook.
func TestStrongSwanCustomerStaticNAT(t *testing.T) {
	needRoot(t)
	s := newSim(t, Options{Customer: CustomerStrongSwan, Tunnels: 1, Routing: RoutingStatic, NAT: true})
	sa, err := s.WaitTunnel(1, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if sa.RemoteHost != CustPublicAddr.String() || sa.RemotePort == 4500 || sa.RemotePort == 500 {
		t.Errorf("AWS sees the customer at %s:%d, want %s with a NAT-assigned port", sa.RemoteHost, sa.RemotePort, CustPublicAddr)
	}
	if err := s.WaitPing(LAN, VPCHostAddr, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ListSAs(2); err == nil {
		t.Error("ListSAs(2) succeeded with one tunnel")
	}
	// Blocking IKE/NAT-T to the endpoint cuts the data path too (ESP is
	// inside UDP 4500).
	if err := s.BlockEndpoint(1); err != nil {
		t.Fatal(err)
	}
	if loss, _ := s.Ping(LAN, VPCHostAddr, 3, 100*time.Millisecond); loss != 1 {
		t.Errorf("ping with endpoint blocked: loss %.0f%%, want 100%%", loss*100)
	}
	if err := s.UnblockEndpoint(1); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitPing(LAN, VPCHostAddr, 5*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestAWSXML(t *testing.T) {
	s := &Sim{opts: Options{ID: "abcd"}}
	if err := s.opts.setDefaults(); err != nil {
		t.Fatal(err)
	}
	var doc xmlVPNConnection
	if err := xml.Unmarshal(s.AWSXML(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Tunnels) != 2 || doc.Attributes != "" || !strings.HasPrefix(doc.ID, "vpn-") {
		t.Fatalf("doc = %+v", doc)
	}
	for i, tun := range doc.Tunnels {
		e := Endpoints[i]
		if tun.VPNGateway.Outside.IP != e.Outside.String() || tun.CustomerGateway.Outside.IP != "203.0.113.10" ||
			tun.VPNGateway.Inside.IP != e.AWSInside.String() || tun.CustomerGateway.Inside.IP != e.CustInside.String() ||
			tun.IKE.PSK != e.DefaultPSK || tun.VPNGateway.BGP.ASN != 64512 || tun.CustomerGateway.BGP.ASN != 65000 ||
			tun.VPNGateway.BGP.HoldTime != 30 || tun.IPsec.TCPMSS != 1379 {
			t.Errorf("tunnel %d = %+v", i+1, tun)
		}
	}

	st := &Sim{opts: Options{ID: "abcd", Tunnels: 1, Routing: RoutingStatic}}
	if err := st.opts.setDefaults(); err != nil {
		t.Fatal(err)
	}
	out := string(st.AWSXML())
	if !strings.Contains(out, "<vpn_connection_attributes>NoBGPVPNConnection</vpn_connection_attributes>") ||
		strings.Contains(out, "<bgp>") || strings.Count(out, "<ipsec_tunnel>") != 1 {
		t.Errorf("static single-tunnel XML:\n%s", out)
	}
}

func TestOptionsValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
	}{
		{"bad psk charset", Options{Endpoint: [2]EndpointOptions{{PSK: "abc-defgh"}}}},
		{"psk leading zero", Options{Endpoint: [2]EndpointOptions{{PSK: "0abcdefgh"}}}},
		{"short psk", Options{Endpoint: [2]EndpointOptions{{PSK: "abc"}}}},
		{"proposal injection", Options{Endpoint: [2]EndpointOptions{{IKEProposals: []string{"aes128}\nfoo {"}}}}},
		{"tunnels", Options{Tunnels: 3}},
		{"routing", Options{Routing: "ospf"}},
		{"margin", Options{Endpoint: [2]EndpointOptions{{ChildLifetime: time.Minute, RekeyMargin: 2 * time.Minute}}}},
		{"id", Options{ID: "A/B"}},
	} {
		if err := tc.o.setDefaults(); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	o := Options{}
	if err := o.setDefaults(); err != nil {
		t.Fatal(err)
	}
	if o.Endpoint[0].MED >= o.Endpoint[1].MED {
		t.Errorf("tunnel 1 MED %d must be lower than tunnel 2 MED %d", o.Endpoint[0].MED, o.Endpoint[1].MED)
	}
}

func TestSwanctlConf(t *testing.T) {
	s := &Sim{opts: Options{ID: "abcd", Endpoint: [2]EndpointOptions{{
		IKELifetime: time.Hour, ChildLifetime: 20 * time.Minute, RekeyMargin: 5 * time.Minute, RekeyFuzz: 50,
		StartAction: "start", DPDAction: "restart",
	}}}, dir: "/x"}
	if err := s.opts.setDefaults(); err != nil {
		t.Fatal(err)
	}
	c := s.awsSwanctlConf(0)
	for _, want := range []string{
		"local_addrs = 198.51.100.10", "remote_addrs = 203.0.113.10", "version = 2",
		"rekey_time = 3300s", "over_time = 300s", "rand_time = 150s", "reauth_time = 0s",
		"life_time = 1200s", "rekey_time = 900s", "encap = yes", "keyingtries = 0",
		"dpd_action = restart", "start_action = start", "replay_window = 1024",
		"proposals = " + strings.Join(DefaultIKEProposals, ","),
		"secret = \"EXAMPLEpsk1_abcdefghij.klmnopqrs\"",
	} {
		if !strings.Contains(c, want) {
			t.Errorf("swanctl.conf lacks %q:\n%s", want, c)
		}
	}
	if strings.Contains(strings.Split(c, "children")[0], "modp1536") {
		t.Error("group 5 (modp1536) offered in phase 1")
	}
}

func TestParseVici(t *testing.T) {
	const out = `list-sa event {
  aws-t1 {
    uniqueid = 3
    version = 2
    state = ESTABLISHED
    local-host = 198.51.100.10
    local-port = 4500
    remote-host = 203.0.113.10
    remote-port = 41574
    nat-any = yes
    encr-alg = AES_CBC
    encr-keysize = 128
    integ-alg = HMAC_SHA1_96
    prf-alg = PRF_HMAC_SHA1
    dh-group = MODP_1024
    child-sas {
      aws-t1-7 {
        name = aws-t1
        state = INSTALLED
        encap = yes
        spi-in = 69a85b83
        spi-out = 86716209
        bytes-in = 870
        packets-in = 12
        local-ts = [
          0.0.0.0/0
        ]
        remote-ts = [
          10.1.0.0/24
        ]
      }
      aws-t1-8 {
        name = aws-t1
        state = REKEYED
      }
    }
  }
}
list-sas reply {
}
`
	sas, err := parseListSAs(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(sas) != 1 {
		t.Fatalf("got %d SAs", len(sas))
	}
	sa := sas[0]
	if sa.Name != "aws-t1" || sa.UniqueID != 3 || !sa.Established() || sa.RemotePort != 41574 || !sa.NATAny ||
		sa.EncrAlg != "AES_CBC" || sa.DHGroup != "MODP_1024" || len(sa.Children) != 2 {
		t.Errorf("sa = %+v", sa)
	}
	c := sa.Installed()
	if len(c) != 1 || c[0].SPIIn != "69a85b83" || c[0].PacketsIn != 12 || c[0].BytesIn != 870 ||
		len(c[0].LocalTS) != 1 || c[0].RemoteTS[0] != "10.1.0.0/24" {
		t.Errorf("installed = %+v", c)
	}
	for _, bad := range []string{"x {\n", "}\n", "a {\n k = [\n"} {
		if _, err := parseListSAs(bad); err == nil {
			t.Errorf("parseListSAs(%q) accepted", bad)
		}
	}
}

func TestParseBird(t *testing.T) {
	const out = `BIRD 2.0.12 ready.
Name       Proto      Table      State  Since         Info
cgw        BGP        ---        up     12:00:01.123  Established   
  BGP state:          Established
    Neighbor address: 169.254.15.194
    Neighbor AS:      65000
    Local AS:         64512
  Channel ipv4
    State:          UP
    Routes:         1 imported, 1 exported, 1 preferred
`
	st, err := parseBirdProtocol(out)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Established() || st.State != "up" || st.Neighbor != "169.254.15.194" || st.NeighborAS != 65000 ||
		st.Imported != 1 || st.Exported != 1 || st.Preferred != 1 || st.Info != "Established" || st.Since != "12:00:01.123" {
		t.Errorf("st = %+v", st)
	}
	down, err := parseBirdProtocol("Name Proto Table State Since Info\ncgw BGP --- start 12:00 Active Socket: Connection refused\n  BGP state: Active\n    Last error: Socket: Connection refused\n")
	if err != nil {
		t.Fatal(err)
	}
	if down.Established() || down.BGPState != "Active" || down.LastError != "Socket: Connection refused" {
		t.Errorf("down = %+v", down)
	}
	if _, err := parseBirdProtocol("syntax error\n"); err == nil {
		t.Error("garbage accepted")
	}
}

func TestParseIperf(t *testing.T) {
	tcp := `{"start":{},"end":{"sum_sent":{"seconds":10,"bits_per_second":2.5e9,"retransmits":7},
	"sum_received":{"seconds":10,"bits_per_second":2.4e9},"cpu_utilization_percent":{"host_total":55.5,"remote_total":33.3}}}`
	r, err := parseIperf([]byte(tcp), false)
	if err != nil {
		t.Fatal(err)
	}
	if r.Gbps != 2.4 || r.SentGbps != 2.5 || r.Retransmits != 7 || r.CPUClient != 55.5 || r.CPUServer != 33.3 {
		t.Errorf("tcp = %+v", r)
	}
	udp := `warning: something
{"end":{"sum_sent":{"seconds":2,"bits_per_second":3.5e8,"packets":62926},
"sum_received":{"seconds":2,"bits_per_second":8e7,"packets":61216,"lost_packets":46303,"lost_percent":75.6}}}`
	r, err = parseIperf([]byte(udp), true)
	if err != nil {
		t.Fatal(err)
	}
	if r.Gbps != 0.08 || r.SentGbps != 0.35 || r.LostPackets != 46303 || r.PPS != float64(61216-46303)/2 {
		t.Errorf("udp = %+v", r)
	}
	if r, err := parseIperf([]byte(`{"error":"unable to connect"}`), false); err != nil || r.ErrorMessage == "" {
		t.Errorf("error report: %+v %v", r, err)
	}
}

// TestFaultHelpers exercises the fault-injection helpers against the
// strongSwan customer: AWS-initiated rekeys, an endpoint restart (state
// lost), a PSK change (authentication fails) and its repair.
func TestFaultHelpers(t *testing.T) {
	needRoot(t)
	s := newSim(t, Options{Customer: CustomerStrongSwan, Tunnels: 1, Routing: RoutingStatic})
	sa, err := s.WaitTunnel(1, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	oldSPI := sa.Installed()[0].SPIIn
	if err := s.RekeyChild(1); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool {
		sa, err := s.WaitTunnel(1, time.Second)
		return err == nil && sa.Installed()[0].SPIIn != oldSPI
	}, "CHILD_SA rekeyed by AWS")
	if err := s.RekeyIKE(1); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool {
		sa2, err := s.WaitTunnel(1, time.Second)
		return err == nil && sa2.SPIInit != sa.SPIInit
	}, "IKE_SA rekeyed by AWS")
	if err := s.WaitPing(LAN, VPCHostAddr, 10*time.Second); err != nil {
		t.Fatal(err)
	}

	if err := s.RestartCharon(1); err != nil {
		t.Fatal(err)
	}
	if sas, err := s.ListSAs(1); err != nil || len(sas) != 0 {
		t.Fatalf("after restart: %d SAs (err %v), want none", len(sas), err)
	}
	// The customer still believes in its SA; drop it without waiting for
	// the (lost) peer.
	if _, err := s.Swanctl(Cust, "--terminate", "--ike", "cust-t1", "--force", "--timeout", "2"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPSK(1, "Wrong_psk.123456"); err != nil {
		t.Fatal(err)
	}
	_, _ = s.Swanctl(Cust, "--initiate", "--child", "cust-t1", "--timeout", "3")
	if sas, _ := s.ListSAs(1); len(sas) > 0 && sas[0].Established() {
		t.Fatal("IKE_SA established with a wrong PSK")
	}
	_, _ = s.Swanctl(Cust, "--terminate", "--ike", "cust-t1", "--force", "--timeout", "2")
	if err := s.SetPSK(1, Endpoints[0].DefaultPSK); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Swanctl(Cust, "--initiate", "--child", "cust-t1", "--timeout", "10"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WaitTunnel(1, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitPing(LAN, VPCHostAddr, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

func eventually(t *testing.T, timeout time.Duration, f func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestAWSGenericText: the Generic rendering reads back (with cgw's own
// importer) as the same connection as the XML it renders, BGP and static.
func TestAWSGenericText(t *testing.T) {
	for _, o := range []Options{{ID: "abcd"}, {ID: "abcd", Routing: RoutingStatic}} {
		s := &Sim{opts: o}
		if err := s.opts.setDefaults(); err != nil {
			t.Fatal(err)
		}
		fromXML, err := awsxml.Parse(s.AWSXML())
		if err != nil {
			t.Fatal(err)
		}
		format, conns, err := awsxml.Read(s.AWSGenericText())
		if err != nil || format != awsxml.FormatGeneric || len(conns) != 1 {
			t.Fatalf("Read: %q %v %v", format, conns, err)
		}
		opt := awsxml.Options{Advertise: []netip.Prefix{DefaultLAN}}
		if o.Routing == RoutingStatic {
			opt = awsxml.Options{RemotePrefixes: []netip.Prefix{DefaultVPC}}
		}
		a, _, err := awsxml.Generate(fromXML, opt)
		if err != nil {
			t.Fatal(err)
		}
		b, _, err := awsxml.Generate(conns[0].Doc, opt)
		if err != nil {
			t.Fatal(err)
		}
		if string(a) != string(b) {
			t.Errorf("routing %q: the Generic text imports differently from the XML:\n%s\n---\n%s", o.Routing, a, b)
		}
	}
}

// TestAWSBirdDefaultRoute: AdvertiseDefault adds 0.0.0.0/0 to what BIRD
// exports to the customer (and only to the customer), nothing else does.
func TestAWSBirdDefaultRoute(t *testing.T) {
	s := &Sim{opts: Options{ID: "abcd"}, dir: "/x"}
	s.opts.Endpoint[0].AdvertiseDefault = true
	if err := s.opts.setDefaults(); err != nil {
		t.Fatal(err)
	}
	with, without := s.awsBirdConf(0), s.awsBirdConf(1)
	for _, want := range []string{"protocol static aws_default", "route 0.0.0.0/0 unreachable", `if proto = "vpc_cidrs" || proto = "aws_default" then`} {
		if !strings.Contains(with, want) {
			t.Errorf("bird.conf with AdvertiseDefault lacks %q:\n%s", want, with)
		}
	}
	if strings.Contains(without, "0.0.0.0/0") {
		t.Errorf("bird.conf without AdvertiseDefault mentions 0.0.0.0/0:\n%s", without)
	}
	if strings.Contains(with, `export where proto = "cgw" || proto = "cust_lan" || proto = "aws_default"`) {
		t.Error("the default route leaks into the VPC")
	}
}

// TestInetRulesetChains: the fault-injection chains exist and are jumped
// to, so SetUDPLoss and IKEFlood can fill them at run time.
func TestInetRulesetChains(t *testing.T) {
	s := &Sim{opts: Options{ID: "abcd"}}
	r := s.inetRuleset()
	for _, want := range []string{"chain flood {}", "chain loss {}", "jump flood", "jump loss"} {
		if !strings.Contains(r, want) {
			t.Errorf("inet ruleset lacks %q:\n%s", want, r)
		}
	}
	if err := s.SetUDPLoss(101); err == nil {
		t.Error("SetUDPLoss(101) accepted")
	}
}
