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
