//go:build e2e

package e2e

// Issue 4, the ESP/NAT-T dataplane, end to end: traffic through both
// tunnels against strongSwan (ping and checksummed TCP transfers), every ESP
// algorithm of the matrix, cgwd <-> cgwd, TCP MSS clamping shown by
// capturing the handshake, the customer behind a NAT (NAT-T keepalives on
// the wire) and the fragmentation behaviour dataplane/doc.go documents.
//
// Shared helpers for traffic checks (tcpcheck transfers, packet captures,
// kernel routes, per-tunnel counters) live here too; bgp_test.go uses them.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/test/sim"
)

// ---- helpers ---------------------------------------------------------------

// tcpcheckBin builds test/tools/tcpcheck into a temporary directory of t.
func tcpcheckBin(t testing.TB) string { return toolBin(t, "tcpcheck") }

// toolBin builds test/tools/<name> into a temporary directory of t.
func toolBin(t testing.TB, name string) string {
	t.Helper()
	bin, err := sim.BuildTool(name, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

var (
	procSeq    atomic.Int64
	tcpResult  = regexp.MustCompile(`bytes=(\d+) sha256=([0-9a-f]{64})`)
	pingFragRE = regexp.MustCompile(`(?i)frag needed and DF set \(mtu = (\d+)\)|message too long, mtu=(\d+)`)
)

// uniq returns name with a per-process sequence number, for process logs.
func uniq(name string) string { return fmt.Sprintf("%s-%d", name, procSeq.Add(1)) }

// waitLog polls a process log until it contains substr.
func waitLog(p *sim.Process, substr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		b, _ := os.ReadFile(p.Log)
		if strings.Contains(string(b), substr) {
			return nil
		}
		if ok, err := p.Exited(); ok {
			return fmt.Errorf("%s exited before printing %q: %v\n%s", p.Name, substr, err, p.Tail(1000))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not print %q within %v:\n%s", p.Name, substr, timeout, p.Tail(1000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitExit waits for p to exit, killing it after timeout.
func waitExit(p *sim.Process, timeout time.Duration) error {
	select {
	case <-p.Done():
		_, err := p.Exited()
		return err
	case <-time.After(timeout):
		p.Stop()
		return fmt.Errorf("%s still running after %v (killed)", p.Name, timeout)
	}
}

// transfer sends n deterministic bytes with tcpcheck from client to a
// tcpcheck server at server (in serverRole) and fails unless the server
// read exactly those bytes (length and SHA-256). It returns the sender's
// elapsed time.
func transfer(s *sim.Sim, tool string, client, serverRole sim.Role, server netip.AddrPort, n int64, seed string) (time.Duration, error) {
	// Generous for a loaded 2-core machine: 20 s plus 1 s per MB.
	limit := 20*time.Second + time.Duration(n/1_000_000)*time.Second
	srv, err := s.StartProcess(serverRole, uniq("tcpcheck-serve"), tool, "-timeout", (limit + 10*time.Second).String(), "serve", server.String())
	if err != nil {
		return 0, err
	}
	defer srv.Stop()
	if err := waitLog(srv, "listening", 10*time.Second); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit+10*time.Second)
	defer cancel()
	start := time.Now()
	out, err := sim.ExecContext(ctx, s.NS(client), tool, "-timeout", limit.String(), "send", server.String(), strconv.FormatInt(n, 10), seed)
	elapsed := time.Since(start)
	if err != nil {
		return elapsed, fmt.Errorf("tcpcheck send %s -> %s: %w\nserver: %s", client, server, err, srv.Tail(500))
	}
	if err := waitExit(srv, 15*time.Second); err != nil {
		return elapsed, fmt.Errorf("tcpcheck server: %w\n%s", err, srv.Tail(500))
	}
	sent := tcpResult.FindStringSubmatch(out)
	b, _ := os.ReadFile(srv.Log)
	got := tcpResult.FindStringSubmatch(string(b))
	if sent == nil || got == nil {
		return elapsed, fmt.Errorf("tcpcheck printed no result: sender %q, server %q", out, string(b))
	}
	if sent[1] != strconv.FormatInt(n, 10) {
		return elapsed, fmt.Errorf("sender sent %s bytes, want %d", sent[1], n)
	}
	if got[1] != sent[1] || got[2] != sent[2] {
		return elapsed, fmt.Errorf("data corrupted in transit: sent %s bytes sha256 %s, received %s bytes sha256 %s", sent[1], sent[2], got[1], got[2])
	}
	return elapsed, nil
}

// mbps formats a transfer rate.
func mbps(n int64, d time.Duration) string {
	if d <= 0 {
		return "?"
	}
	return fmt.Sprintf("%.0f Mbit/s", float64(n)*8/d.Seconds()/1e6)
}

// capture is a running tcpdump writing a pcap file.
type capture struct {
	p    *sim.Process
	file string
}

// startCapture runs tcpdump on dev in role with a capture filter, stopping
// after count packets (or when stopped), and waits until it listens.
func startCapture(t testing.TB, s *sim.Sim, role sim.Role, dev string, count int, filter string) *capture {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "cap.pcap")
	// Immediate mode: without it libpcap hands packets over per ring
	// block (up to a second late) and stopping the capture loses them.
	args := []string{"tcpdump", "--immediate-mode", "-Z", "root", "-i", dev, "-n", "-U", "-s", "200", "-w", file}
	if count > 0 {
		args = append(args, "-c", strconv.Itoa(count))
	}
	args = append(args, filter)
	p, err := s.StartProcess(role, uniq("tcpdump-"+string(role)), args...)
	if err != nil {
		t.Fatal(err)
	}
	if err := waitLog(p, "listening on", 10*time.Second); err != nil {
		p.Stop()
		t.Fatal(err)
	}
	return &capture{p: p, file: file}
}

// fields stops the capture (after waiting up to wait for it to finish by
// itself) and returns tshark's -T fields rows for the given fields.
func (c *capture) fields(t testing.TB, wait time.Duration, fields ...string) [][]string {
	t.Helper()
	select {
	case <-c.p.Done():
	case <-time.After(wait):
		time.Sleep(200 * time.Millisecond) // let the last packets reach the file
		c.p.Stop()
	}
	args := []string{"tshark", "-n", "-r", c.file, "-T", "fields", "-E", "separator=/t"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	out, err := sim.Exec("", args...)
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	var rows [][]string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		rows = append(rows, strings.Split(l, "\t"))
	}
	return rows
}

// tunnelOf returns tunnel i (1-based) of the first connection.
func tunnelOf(st *control.Status, i int) *control.Tunnel {
	if len(st.Connections) == 0 || len(st.Connections[0].Tunnels) < i {
		return nil
	}
	return st.Connections[0].Tunnels[i-1]
}

// mustTunnel returns tunnel i of the current status or fails the test.
func (c *Cgwd) mustTunnel(t testing.TB, i int) *control.Tunnel {
	t.Helper()
	st, err := c.status()
	if err != nil {
		t.Fatal(err)
	}
	tn := tunnelOf(st, i)
	if tn == nil {
		t.Fatalf("status has no tunnel %d: %+v", i, st)
	}
	return tn
}

// kernelRoute is one route of `ip -j route show`.
type kernelRoute struct {
	Dst      string `json:"dst"`
	Dev      string `json:"dev"`
	Protocol string `json:"protocol"`
	Metric   int    `json:"metric"`
	NextHops []struct {
		Dev    string `json:"dev"`
		Weight int    `json:"weight"`
	} `json:"nexthops"`
}

// devs returns the route's output devices, sorted as the kernel lists them.
func (r kernelRoute) devs() []string {
	if len(r.NextHops) == 0 {
		return []string{r.Dev}
	}
	var d []string
	for _, nh := range r.NextHops {
		d = append(d, nh.Dev)
	}
	return d
}

// cgwRoutes returns the routes with protocol 199 (cgw's) in role's cgw
// table (199), by destination.
func cgwRoutes(s *sim.Sim, role sim.Role) (map[string][]string, error) {
	out, err := s.Exec(role, "ip", "-j", "-4", "route", "show", "table", "199", "proto", "199")
	if err != nil {
		return nil, err
	}
	var rs []kernelRoute
	if strings.TrimSpace(out) != "" {
		if err := json.Unmarshal([]byte(out), &rs); err != nil {
			return nil, fmt.Errorf("ip -j route: %w: %q", err, out)
		}
	}
	m := map[string][]string{}
	for _, r := range rs {
		m[r.Dst] = r.devs()
	}
	return m, nil
}

// routeVia is a condition: role's cgw route to dst goes through exactly devs.
func routeVia(s *sim.Sim, role sim.Role, dst netip.Prefix, devs ...string) func() error {
	return func() error {
		m, err := cgwRoutes(s, role)
		if err != nil {
			return err
		}
		got := m[dst.String()]
		if strings.Join(got, ",") != strings.Join(devs, ",") {
			return fmt.Errorf("route %s (proto 199) via %v, want via %v (all cgw routes: %v)", dst, got, devs, m)
		}
		return nil
	}
}

// pingAll pings count times and fails the test on any loss.
func pingAll(t testing.TB, s *sim.Sim, from sim.Role, to netip.Addr, count int) {
	t.Helper()
	loss, err := s.Ping(from, to, count, 100*time.Millisecond)
	if err != nil || loss > 0 {
		t.Fatalf("ping %s -> %s: loss %.0f%%, err %v", from, to, loss*100, err)
	}
}

// trafficOut returns tunnel i's outbound inner bytes.
func (c *Cgwd) trafficOut(t testing.TB, i int) uint64 {
	t.Helper()
	return c.mustTunnel(t, i).Traffic.BytesOut
}

// checkCarried transfers n bytes from client to server and checks that
// tunnel via (1-based) carried them outbound and the other tunnel did not.
func checkCarried(t testing.TB, s *sim.Sim, d *Cgwd, tool string, via int, client, serverRole sim.Role, server netip.AddrPort, n int64, seed string) time.Duration {
	t.Helper()
	other := 3 - via
	before := [3]uint64{0, d.trafficOut(t, 1), 0}
	if tunnelOf(mustStatus(t, d), 2) != nil {
		before[2] = d.trafficOut(t, 2)
	}
	el, err := transfer(s, tool, client, serverRole, server, n, seed)
	if err != nil {
		tn := d.mustTunnel(t, via)
		t.Fatalf("%v\ntunnel %d: device %s mtu %d, drops %v", err, via, tn.Device, tn.MTU, nonZero(tn.Traffic.Drops))
	}
	t.Logf("e2e: %d MB %s -> %s through tunnel %d: sha256 match, %v (%s)", n/1_000_000, client, server, via, el.Round(time.Millisecond), mbps(n, el))
	st := mustStatus(t, d)
	if got := tunnelOf(st, via).Traffic.BytesOut - before[via]; got < uint64(n) {
		t.Errorf("tunnel %d counted %d outbound inner bytes during a %d-byte transfer through it", via, got, n)
	}
	if tn := tunnelOf(st, other); tn != nil {
		if got := tn.Traffic.BytesOut - before[other]; got > uint64(n)/10 {
			t.Errorf("tunnel %d carried %d bytes of a transfer meant for tunnel %d", other, got, via)
		}
	}
	return el
}

// nonZero returns the non-zero counters of m.
func nonZero(m map[string]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

func mustStatus(t testing.TB, d *Cgwd) *control.Status {
	t.Helper()
	st, err := d.status()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// ---- tests -----------------------------------------------------------------

// TestDataplaneStrongSwan: cgwd against the strongSwan AWS side with both
// tunnels and BGP. Each tunnel carries a ping and a 50 MB checksummed TCP
// transfer to its AWS inside address; the LAN reaches the VPC through
// tunnel 1, and through tunnel 2 once tunnel 1 is taken down; iperf3 gives
// the cgwd <-> strongSwan rate; then MSS clamping and fragmentation.
func TestDataplaneStrongSwan(t *testing.T) {
	s := NewSim(t, sim.Options{})
	tool := tcpcheckBin(t)
	d := StartCgwd(t, s, sim.CgwdOptions{})
	st := d.waitStatus(t, 60*time.Second, tunnelsUp)
	t1, t2 := tunnelOf(st, 1), tunnelOf(st, 2)
	if err := s.WaitPing(sim.LAN, sim.VPCHostAddr, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	const size = 50_000_000
	vpcSrv := func(port uint16) netip.AddrPort { return netip.AddrPortFrom(sim.VPCHostAddr, port) }

	t.Run("BothTunnelsInside", func(t *testing.T) {
		for i := 1; i <= 2; i++ {
			e := sim.Endpoints[i-1]
			pingAll(t, s, sim.Cust, e.AWSInside, 5)
			checkCarried(t, s, d, tool, i, sim.Cust, e.Role, netip.AddrPortFrom(e.AWSInside, 5001), size, fmt.Sprintf("inside-t%d", i))
		}
	})

	t.Run("LANToVPCTunnel1ThenTunnel2", func(t *testing.T) {
		Eventually(t, 10*time.Second, routeVia(s, sim.Cust, sim.DefaultVPC, t1.Device))
		pingAll(t, s, sim.LAN, sim.VPCHostAddr, 5)
		checkCarried(t, s, d, tool, 1, sim.LAN, sim.VPCHost, vpcSrv(5001), size, "lan-t1")

		// Tunnel 1 down: its BGP neighbor goes down at once, the VPC
		// route moves to tunnel 2; the AWS side moves the LAN route when
		// its BGP session over tunnel 1 ends.
		down := time.Now()
		if _, err := d.Ctl("tunnel", "down", t1.Name); err != nil {
			t.Fatal(err)
		}
		Eventually(t, 10*time.Second, routeVia(s, sim.Cust, sim.DefaultVPC, t2.Device))
		t.Logf("e2e: tunnel 1 down -> VPC route via tunnel 2 after %v", time.Since(down).Round(time.Millisecond))
		if err := s.WaitPing(sim.LAN, sim.VPCHostAddr, 45*time.Second); err != nil {
			t.Fatal(err)
		}
		t.Logf("e2e: tunnel 1 down -> LAN<->VPC ping through tunnel 2 after %v", time.Since(down).Round(time.Millisecond))
		pingAll(t, s, sim.LAN, sim.VPCHostAddr, 5)
		checkCarried(t, s, d, tool, 2, sim.LAN, sim.VPCHost, vpcSrv(5002), size, "lan-t2")

		up := time.Now()
		if _, err := d.Ctl("tunnel", "up", t1.Name); err != nil {
			t.Fatal(err)
		}
		d.waitStatus(t, 60*time.Second, tunnelsUp)
		Eventually(t, 10*time.Second, routeVia(s, sim.Cust, sim.DefaultVPC, t1.Device))
		t.Logf("e2e: tunnel 1 up again and preferred after %v", time.Since(up).Round(time.Millisecond))
		if err := s.WaitPing(sim.LAN, sim.VPCHostAddr, 20*time.Second); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("Iperf3", func(t *testing.T) {
		before := d.trafficOut(t, 1)
		r, err := s.Iperf3(sim.LAN, sim.VPCHostAddr, 5, 1, false)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("e2e: iperf3 cgwd<->strongSwan (%s, 1 TCP stream, 5 s): %.2f Gbit/s, %d retransmits", t1.Children[0].Algorithms, r.Gbps, r.Retransmits)
		if r.Gbps <= 0 {
			t.Fatalf("iperf3 moved nothing: %+v", r)
		}
		if got := d.trafficOut(t, 1) - before; float64(got) < r.Gbps*1e9/8*r.Seconds*0.9 {
			t.Errorf("tunnel 1 counted %d bytes out during an iperf3 run of %.2f Gbit/s x %.1f s", got, r.Gbps, r.Seconds)
		}
	})

	t.Run("MSSClamp", func(t *testing.T) {
		// AWS's 1379, capped so a full segment fits the tunnel MTU
		// (dataplane/doc.go: min(mss_clamp, tunnel MTU - 40)).
		mtu := d.mustTunnel(t, 1).MTU
		checkMSSClamp(t, s, tool, min(1379, mtu-40))
	})

	t.Run("Fragmentation", func(t *testing.T) {
		checkFragmentation(t, s, d, t1)
	})
}

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
