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

	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/test/sim"
)

// checkMSSClamp opens a TCP connection LAN -> VPC host while capturing the
// handshake on both hosts: each host offers MSS 1460 (veth MTU 1500) and
// must receive the other's SYN / SYN-ACK clamped to at most clamp, which
// only cgwd (the one box in between that rewrites TCP options) can do.
func checkMSSClamp(t *testing.T, s *sim.Sim, tool string, clamp int) {
	const port = 5101
	// Forget path MTUs learned earlier (an earlier full-size transfer may
	// have taught the LAN host the tunnel MTU), so the hosts offer 1460.
	for _, r := range []sim.Role{sim.LAN, sim.VPCHost} {
		if _, err := s.Exec(r, "ip", "route", "flush", "cache"); err != nil {
			t.Fatal(err)
		}
	}
	filter := fmt.Sprintf("tcp port %d and tcp[tcpflags] & tcp-syn != 0", port)
	capLAN := startCapture(t, s, sim.LAN, "eth0", 2, filter)
	capVPC := startCapture(t, s, sim.VPCHost, "eth0", 2, filter)
	if _, err := transfer(s, tool, sim.LAN, sim.VPCHost, netip.AddrPortFrom(sim.VPCHostAddr, port), 100_000, "mss"); err != nil {
		t.Fatal(err)
	}
	type syn struct {
		src string
		ack bool
		mss int
	}
	parse := func(c *capture, where sim.Role) (offered, received syn) {
		rows := c.fields(t, 5*time.Second, "ip.src", "tcp.flags.ack", "tcp.options.mss_val")
		var got []syn
		for _, r := range rows {
			if len(r) != 3 {
				t.Fatalf("%s capture: unexpected tshark row %q", where, r)
			}
			mss, err := strconv.Atoi(r[2])
			if err != nil {
				t.Fatalf("%s capture: SYN without an MSS option: %q", where, r)
			}
			got = append(got, syn{src: r[0], ack: r[1] == "1" || r[1] == "True", mss: mss})
		}
		if len(got) != 2 || got[0].ack || !got[1].ack {
			t.Fatalf("%s capture: want a SYN and a SYN-ACK, got %+v", where, got)
		}
		if where == sim.LAN {
			return got[0], got[1]
		}
		return got[1], got[0]
	}
	lanOffered, lanReceived := parse(capLAN, sim.LAN)
	vpcOffered, vpcReceived := parse(capVPC, sim.VPCHost)
	t.Logf("e2e: MSS: LAN host offered %d in its SYN, VPC host received %d; VPC host offered %d in its SYN-ACK, LAN host received %d (clamp %d)",
		lanOffered.mss, vpcReceived.mss, vpcOffered.mss, lanReceived.mss, clamp)
	if lanOffered.mss != 1460 || vpcOffered.mss != 1460 {
		t.Errorf("hosts offered MSS %d (LAN) and %d (VPC), want 1460 from a 1500-byte MTU: the test does not show clamping", lanOffered.mss, vpcOffered.mss)
	}
	if vpcReceived.mss > clamp || vpcReceived.mss < 536 {
		t.Errorf("SYN LAN->VPC arrived with MSS %d, want clamped to <= %d (outbound clamping)", vpcReceived.mss, clamp)
	}
	if lanReceived.mss > clamp || lanReceived.mss < 536 {
		t.Errorf("SYN-ACK VPC->LAN arrived with MSS %d, want clamped to <= %d (inbound clamping)", lanReceived.mss, clamp)
	}
}

// checkFragmentation asserts the MTU behaviour the product documents
// (dataplane/doc.go, config "oversize: fragment", the default: AWS's
// clear_df_bit and fragmentation_before_encryption):
//
//   - a 1500-byte IPv4 packet without DF crosses the tunnel;
//   - the TUN device is larger than the tunnel MTU, so such packets reach
//     cgwd, and a 1500-byte packet with DF crosses too: DF cleared,
//     fragmented before encryption, every fragment its own ESP packet,
//     nothing fragmented on the outside;
//   - outer ESP-in-UDP packets leave with DF clear, so a smaller MTU
//     further along the path fragments them instead of dropping them.
func checkFragmentation(t *testing.T, s *sim.Sim, d *Cgwd, tn *control.Tunnel) {
	mtu := d.mustTunnel(t, 1).MTU
	out, err := s.Exec(sim.Cust, "cat", "/sys/class/net/"+tn.Device+"/mtu")
	if err != nil {
		t.Fatal(err)
	}
	devMTU, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("TUN %s MTU %q: %v", tn.Device, out, err)
	}
	// ping fails unless every echo request of count is answered.
	ping := func(df string, payload, count int) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := sim.ExecContext(ctx, s.NS(sim.LAN), "ping", "-n", "-c", strconv.Itoa(count), "-i", "0.2", "-W", "2",
			"-M", df, "-s", strconv.Itoa(payload), sim.VPCHostAddr.String())
		if err == nil && !strings.Contains(out, fmt.Sprintf("%d received", count)) {
			err = fmt.Errorf("lost replies")
		}
		return out, err
	}
	isClear := func(v string) bool { return v == "0" || v == "False" }
	// outerOK checks captured outer packets: DF clear (AWS clear_df_bit)
	// and, when noFrag, not IP fragments (fragmentation happened before
	// encryption). Sizes are not checked on the capture: veth carries UDP
	// GSO superpackets unsegmented.
	outerOK := func(rows [][]string, noFrag bool) {
		t.Helper()
		for _, r := range rows {
			if len(r) < 4 {
				t.Fatalf("unexpected tshark row %q", r)
			}
			if !isClear(r[0]) {
				t.Errorf("outer ESP packet sent with DF set (df=%s len=%s), want DF clear (AWS clear_df_bit)", r[0], r[1])
			}
			if noFrag && (!isClear(r[2]) || (r[3] != "0" && r[3] != "")) {
				t.Errorf("outer ESP packet is an IP fragment (mf %s offset %s): want fragmentation before encryption", r[2], r[3])
			}
		}
	}
	fields := []string{"ip.flags.df", "ip.len", "ip.flags.mf", "ip.frag_offset"}
	outer := fmt.Sprintf("src host %s and udp port 4500", sim.CustPublicAddr)

	// 1472 + 8 + 20 = 1500 > tunnel MTU, DF clear.
	if out, err := ping("dont", 1472, 3); err != nil {
		t.Errorf("1500-byte ping without DF LAN->VPC failed (want fragmentation before encryption): %v\n%s", err, out)
	}
	// Same size with DF.
	for _, r := range []sim.Role{sim.LAN, sim.VPCHost} {
		if _, err := s.Exec(r, "ip", "route", "flush", "cache"); err != nil {
			t.Fatal(err)
		}
	}
	espIn := func() uint64 {
		sas, err := s.ListSAs(1)
		if err != nil {
			t.Fatal(err)
		}
		var n uint64
		for _, sa := range sas {
			for _, ch := range sa.Installed() {
				n += ch.PacketsIn
			}
		}
		return n
	}
	if devMTU <= mtu {
		t.Fatalf("TUN device MTU %d is not above the tunnel MTU %d: oversize packets would never reach cgwd", devMTU, mtu)
	}
	before := espIn()
	c := startCapture(t, s, sim.Inet, "cust0", 0, outer)
	out, err = ping("do", 1472, 3)
	rows := c.fields(t, 0, fields...)
	if err != nil {
		t.Errorf("1500-byte ping with DF LAN->VPC failed; with oversize=fragment cgwd must clear DF and fragment before encryption: %v\n%s", err, out)
	}
	// Each ping became two ESP packets (strongSwan counts them), and
	// nothing on the wire is an outer IP fragment.
	esp := espIn() - before
	if esp < 6 {
		t.Errorf("AWS endpoint 1 received %d ESP packets for 3 pings of 1500 octets, want >= 6 (inner fragments, each its own ESP packet)", esp)
	}
	outerOK(rows, true)
	t.Logf("e2e: tunnel MTU %d (device %d): 1500-byte pings with and without DF cross; with DF: %d ESP packets at AWS for 3 pings (fragmented before encryption), outer DF clear", mtu, devMTU, esp)

	// A 1400-byte MTU between the internet router and AWS: outer packets
	// of about 1490 octets must be fragmented on the way, which works
	// only because DF is clear.
	links := []struct {
		r   sim.Role
		dev string
	}{{sim.Inet, "aws1"}, {sim.Inet, "aws2"}, {sim.Inet, "br0"}, {sim.AWS1, "wan0"}, {sim.AWS2, "wan0"}}
	setMTU := func(m int) {
		for _, l := range links {
			if _, err := s.Exec(l.r, "ip", "link", "set", l.dev, "mtu", strconv.Itoa(m)); err != nil {
				t.Error(err)
			}
		}
	}
	setMTU(1400)
	defer setMTU(1500)
	c = startCapture(t, s, sim.Inet, "cust0", 0, fmt.Sprintf("%s and greater 1400", outer))
	if out, err := ping("do", mtu-28, 3); err != nil {
		t.Errorf("tunnel-MTU ping across a 1400-byte outer path MTU failed (outer fragmentation needs DF clear): %v\n%s", err, out)
	}
	rows = c.fields(t, 0, fields...)
	if len(rows) < 3 {
		t.Errorf("captured %d outer packets above 1400 octets for 3 tunnel-MTU pings: the test did not exercise the smaller path MTU", len(rows))
	}
	outerOK(rows, false)
}
