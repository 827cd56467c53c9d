//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cgwproject/cgw/test/sim"
)

// espCase is one ESP algorithm of the matrix and how strongSwan names it.
type espCase struct {
	proposal string // strongSwan keyword without the DH group
	encr     string // vici encr-alg
	keyBits  int
	integ    string // vici integ-alg; "" for AEAD
}

var espMatrix = []espCase{
	{"aes128gcm16", "AES_GCM_16", 128, ""},
	{"aes256gcm16", "AES_GCM_16", 256, ""},
	{"aes128-sha1", "AES_CBC", 128, "HMAC_SHA1_96"},
	{"aes256-sha256", "AES_CBC", 256, "HMAC_SHA2_256_128"},
	{"aes256-sha384", "AES_CBC", 256, "HMAC_SHA2_384_192"},
	{"aes256-sha512", "AES_CBC", 256, "HMAC_SHA2_512_256"},
}

// TestDataplaneESPAlgorithms: one tunnel, static routing; cgwd offers every
// ESP algorithm of the matrix (with PFS group modp2048) and the AWS side is
// narrowed to one at a time, as AWS tunnel options do. For each, the tunnel
// is renegotiated with cgwctl tunnel down/up, strongSwan must report the
// expected CHILD SA algorithms, and a ping plus a checksummed TCP transfer
// must cross it in both directions.
func TestDataplaneESPAlgorithms(t *testing.T) {
	s := NewSim(t, sim.Options{Tunnels: 1, Routing: sim.RoutingStatic})
	tool := tcpcheckBin(t)
	var offered []string
	for _, c := range espMatrix {
		offered = append(offered, c.proposal+"-modp2048")
	}
	d := StartCgwd(t, s, sim.CgwdOptions{ESPProposals: offered})
	st := d.waitStatus(t, 30*time.Second, childrenUp)
	name := tunnelOf(st, 1).Name
	e := sim.Endpoints[0]
	for _, c := range espMatrix {
		t.Run(c.proposal, func(t *testing.T) {
			if err := s.SetProposals(1, nil, []string{c.proposal + "-modp2048"}); err != nil {
				t.Fatal(err)
			}
			if _, err := d.Ctl("tunnel", "down", name); err != nil {
				t.Fatal(err)
			}
			Eventually(t, 15*time.Second, func() error {
				if tn := d.mustTunnel(t, 1); tn.ChildState == "Established" {
					return fmt.Errorf("CHILD SA still %s after tunnel down", tn.ChildState)
				}
				return nil
			})
			if _, err := d.Ctl("tunnel", "up", name); err != nil {
				t.Fatal(err)
			}
			st := d.waitStatus(t, 30*time.Second, childrenUp)
			sa, err := s.WaitTunnel(1, 15*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			inst := sa.Installed()
			ch := inst[len(inst)-1]
			if ch.EncrAlg != c.encr || ch.EncrKeySize != c.keyBits || ch.IntegAlg != c.integ {
				t.Fatalf("strongSwan CHILD SA uses %s-%d/%q, want %s-%d/%q", ch.EncrAlg, ch.EncrKeySize, ch.IntegAlg, c.encr, c.keyBits, c.integ)
			}
			tn := tunnelOf(st, 1)
			if len(tn.Children) == 0 || !strings.HasPrefix(tn.Children[0].Algorithms, c.proposal) {
				t.Errorf("cgwd reports CHILD SA algorithms %+v, want %s", tn.Children, c.proposal)
			}
			if err := s.WaitPing(sim.LAN, sim.VPCHostAddr, 20*time.Second); err != nil {
				t.Fatal(err)
			}
			pingAll(t, s, sim.LAN, sim.VPCHostAddr, 3)
			pingAll(t, s, sim.Cust, e.AWSInside, 3)
			const n = 5_000_000
			el := checkCarried(t, s, d, tool, 1, sim.LAN, sim.VPCHost, netip.AddrPortFrom(sim.VPCHostAddr, 5201), n, "esp-"+c.proposal)
			// The reverse direction: the VPC host sends, cgwd decrypts.
			if _, err := transfer(s, tool, sim.VPCHost, sim.LAN, netip.AddrPortFrom(sim.LANHostAddr, 5202), n, "esp-rev-"+c.proposal); err != nil {
				t.Fatal(err)
			}
			after, err := s.ListSAs(1)
			if err != nil {
				t.Fatal(err)
			}
			var in uint64
			for _, sa := range after {
				for _, ch2 := range sa.Installed() {
					if ch2.SPIIn == ch.SPIIn {
						in = ch2.BytesIn
					}
				}
			}
			if in < n {
				t.Errorf("strongSwan CHILD SA %s counted %d bytes in, want >= %d", ch.SPIIn, in, n)
			}
			t.Logf("e2e: ESP %s: tunnel MTU %d, %d MB each way, sha256 match (%s LAN->VPC)", c.proposal, tn.MTU, n/1_000_000, mbps(n, el))
		})
	}
}

// TestDataplaneCgwdToCgwd: a second cgwd stands in for AWS endpoint 1
// (AWS mode none, static routing both ways, AES-128-GCM as in make bench);
// the customer's cgwd brings the tunnel up, and a ping, a 50 MB checksummed
// transfer each way and a 5 s iperf3 cross it; then the customer's
// "oversize: icmp" answers DF packets above the tunnel MTU.
func TestDataplaneCgwdToCgwd(t *testing.T) {
	s := NewSim(t, sim.Options{AWS: sim.AWSNone, Tunnels: 1, Routing: sim.RoutingStatic})
	tool := tcpcheckBin(t)
	ike := []string{"aes128gcm16-prfsha256-ecp256"}
	esp := []string{"aes128gcm16-ecp256"}
	aws := StartCgwd(t, s, sim.CgwdOptions{AWSSide: true, Endpoints: []int{1}, IKEProposals: ike, ESPProposals: esp})
	// The customer side also runs "oversize: icmp" (the non-default
	// path-MTU-discovery behaviour), checked at the end.
	cust := StartCgwd(t, s, sim.CgwdOptions{IKEProposals: ike, ESPProposals: esp, Extra: "        oversize: icmp\n"})
	ta, _ := s.Transit(1)
	if err := s.AddStaticRoute(sim.VPC, sim.DefaultLAN, "via", ta.String()); err != nil {
		t.Fatal(err)
	}
	st := cust.waitStatus(t, 30*time.Second, childrenUp)
	aws.waitStatus(t, 10*time.Second, childrenUp)
	tn := tunnelOf(st, 1)
	if len(tn.Children) == 0 || tn.Children[0].Algorithms != "aes128gcm16" {
		t.Errorf("CHILD SA algorithms %+v, want aes128gcm16", tn.Children)
	}
	if err := s.WaitPing(sim.LAN, sim.VPCHostAddr, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	// (No inside-address ping: both cgwds give themselves the customer's
	// inside address, .2 of the /30, since the config has no AWS role.)
	pingAll(t, s, sim.LAN, sim.VPCHostAddr, 5)

	const size = 50_000_000
	awsIn := aws.mustTunnel(t, 1).Traffic.BytesIn
	checkCarried(t, s, cust, tool, 1, sim.LAN, sim.VPCHost, netip.AddrPortFrom(sim.VPCHostAddr, 5301), size, "cc-up")
	if got := aws.mustTunnel(t, 1).Traffic.BytesIn - awsIn; got < size {
		t.Errorf("AWS-side cgwd counted %d inner bytes in during a %d-byte transfer", got, size)
	}
	custIn := cust.mustTunnel(t, 1).Traffic.BytesIn
	el, err := transfer(s, tool, sim.VPCHost, sim.LAN, netip.AddrPortFrom(sim.LANHostAddr, 5302), size, "cc-down")
	if err != nil {
		t.Fatal(err)
	}
	if got := cust.mustTunnel(t, 1).Traffic.BytesIn - custIn; got < size {
		t.Errorf("customer cgwd counted %d inner bytes in during a %d-byte VPC->LAN transfer", got, size)
	}
	t.Logf("e2e: %d MB VPC -> LAN through cgwd<->cgwd: sha256 match, %v (%s)", size/1_000_000, el.Round(time.Millisecond), mbps(size, el))

	r, err := s.Iperf3(sim.LAN, sim.VPCHostAddr, 5, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("e2e: iperf3 cgwd<->cgwd (aes128gcm16, 1 TCP stream, 5 s): %.2f Gbit/s, %d retransmits", r.Gbps, r.Retransmits)
	if r.Gbps <= 0 {
		t.Fatalf("iperf3 moved nothing: %+v", r)
	}
	for _, c := range []*Cgwd{cust, aws} {
		if d := nonZero(c.mustTunnel(t, 1).Traffic.Drops); d["auth"]+d["replay"]+d["malformed"]+d["unknown_spi"] > 0 {
			t.Errorf("%s cgwd dropped packets as invalid: %v", c.Role, d)
		}
	}
	checkOversizeICMP(t, s, cust.mustTunnel(t, 1).MTU)
}

// TestDataplaneNAT: the customer sits behind a NAT that also rewrites
// source ports. Both tunnels come up with NAT detected and UDP
// encapsulation, the AWS side sees the public address with a translated
// port, traffic flows, and while the tunnels are idle cgwd sends RFC 3948
// NAT-keepalives (one 0xFF octet to UDP 4500) to both endpoints. The
// keepalive interval is 4 s here to keep the test short; BGP keepalives
// every 10 s count as traffic, so 20 s (the default) would never be idle.
func TestDataplaneNAT(t *testing.T) {
	s := NewSim(t, sim.Options{NAT: true})
	tool := tcpcheckBin(t)
	d := StartCgwd(t, s, sim.CgwdOptions{Extra: "        nat_keepalive: 4s\n"})
	st := d.waitStatus(t, 60*time.Second, tunnelsUp)
	for i := 1; i <= 2; i++ {
		tn := tunnelOf(st, i)
		if !tn.NAT || !tn.Encap {
			t.Errorf("tunnel %d: nat_detected %v, udp_encap %v, want both", i, tn.NAT, tn.Encap)
		}
		if want := netip.AddrPortFrom(sim.CustNATAddr, 4500).String(); tn.Local != want {
			t.Errorf("tunnel %d: local endpoint %s, want %s", i, tn.Local, want)
		}
		sas, err := s.ListSAs(i)
		if err != nil {
			t.Fatal(err)
		}
		ok := false
		for _, sa := range sas {
			if sa.Established() && sa.RemoteHost == sim.CustPublicAddr.String() && sa.RemotePort >= 40000 && sa.RemotePort <= 49999 && sa.NATRemote {
				ok = true
			}
		}
		if !ok {
			t.Errorf("AWS endpoint %d: want an IKE SA from %s with a NAT-translated port and the customer seen behind NAT: %+v", i, sim.CustPublicAddr, sas)
		}
	}
	if err := s.WaitPing(sim.LAN, sim.VPCHostAddr, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	pingAll(t, s, sim.LAN, sim.VPCHostAddr, 5)
	checkCarried(t, s, d, tool, 1, sim.LAN, sim.VPCHost, netip.AddrPortFrom(sim.VPCHostAddr, 5401), 20_000_000, "nat")
	for i := 1; i <= 2; i++ {
		e := sim.Endpoints[i-1]
		checkCarried(t, s, d, tool, i, sim.Cust, e.Role, netip.AddrPortFrom(e.AWSInside, 5402), 5_000_000, fmt.Sprintf("nat-t%d", i))
	}

	// NAT-keepalives on the private side of the NAT: UDP length 9 (one
	// payload octet), payload 0xFF, from the customer's NAT-T port.
	start := time.Now()
	c := startCapture(t, s, sim.Inet, "cust0", 4, fmt.Sprintf("src host %s and udp src port 4500 and udp[4:2] = 9 and udp[8] = 0xff", sim.CustNATAddr))
	rows := c.fields(t, 30*time.Second, "ip.dst", "udp.dstport", "frame.time_relative")
	seen := map[string]int{}
	for _, r := range rows {
		seen[r[0]]++
	}
	t.Logf("e2e: NAT-keepalives captured in %v: %v", time.Since(start).Round(time.Second), seen)
	for _, e := range sim.Endpoints {
		if seen[e.Outside.String()] == 0 {
			t.Errorf("no NAT-keepalive to %s within 30 s (nat_keepalive 4s): captured %v", e.Outside, rows)
		}
	}
	// The tunnels survive the idle period (the NAT mapping held).
	pingAll(t, s, sim.LAN, sim.VPCHostAddr, 3)
}

// checkOversizeICMP asserts "oversize: icmp": a 1500-byte LAN->VPC ping
// with DF is answered with ICMP "fragmentation needed" carrying the tunnel
// MTU (path MTU discovery), one without DF still crosses fragmented.
func checkOversizeICMP(t *testing.T, s *sim.Sim, mtu int) {
	if _, err := s.Exec(sim.LAN, "ip", "route", "flush", "cache"); err != nil {
		t.Fatal(err)
	}
	ping := func(df string, count int) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return sim.ExecContext(ctx, s.NS(sim.LAN), "ping", "-n", "-c", strconv.Itoa(count), "-i", "0.2", "-W", "2",
			"-M", df, "-s", "1472", sim.VPCHostAddr.String())
	}
	out, err := ping("do", 2)
	if err != nil {
		out += err.Error()
	}
	m := pingFragRE.FindStringSubmatch(out)
	if m == nil || m[1]+m[2] != strconv.Itoa(mtu) {
		t.Errorf("oversize icmp: 1500-byte ping with DF: want ICMP frag needed with mtu = %d, got:\n%s", mtu, out)
	}
	if out, err := ping("dont", 3); err != nil || !strings.Contains(out, "3 received") {
		t.Errorf("oversize icmp: 1500-byte ping without DF must still cross (fragmented): %v\n%s", err, out)
	}
	t.Logf("e2e: oversize icmp: DF packets above the tunnel MTU get frag-needed mtu=%d, others are fragmented and cross", mtu)
}
