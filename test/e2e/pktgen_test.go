//go:build e2e

package e2e

// Issue 18: the packet-rate generator's self-test over the plain routed
// path (no tunnel). pktgen's own counts must agree with the kernel's:
// the LAN host's interface transmitted what the sender says it sent, and
// the VPC host's UDP stack delivered to the socket exactly what the sink
// says it received. No rate is asserted (speed belongs to make bench).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cgwproject/cgw/test/sim"
	"github.com/cgwproject/cgw/test/tools/pktgen/traffic"
)

func TestPktgenSelfTest(t *testing.T) {
	s := NewSim(t, sim.Options{AWS: sim.AWSNone, Tunnels: 1})
	ta, _ := s.Transit(1)
	o := s.Options()
	for _, err := range []error{
		s.AddStaticRoute(sim.Inet, o.VPCPrefix, "via", sim.Endpoints[0].Outside.String()),
		s.AddStaticRoute(sim.Inet, o.LANPrefix, "via", sim.CustPublicAddr.String()),
		s.AddStaticRoute(sim.VPC, o.LANPrefix, "via", ta.String()),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.WaitPing(sim.LAN, sim.VPCHostAddr, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	bin := toolBin(t, "pktgen")
	dst := netip.AddrPortFrom(sim.VPCHostAddr, 9000).String()
	result := filepath.Join(s.Dir(), "pktgen-sink.json")
	sink, err := s.StartProcess(sim.VPCHost, "pktgen-sink", bin, "sink", "-listen", dst, "-result", result, "-max", "2m")
	if err != nil {
		t.Fatal(err)
	}
	Eventually(t, 10*time.Second, func() error {
		if !strings.Contains(sink.Tail(1000), "listening "+dst) {
			return errors.New("sink not listening yet")
		}
		return nil
	})

	txBefore := linkPackets(t, s, sim.LAN, "tx")
	udpBefore := udpCounters(t, s, sim.VPCHost)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// 3000 pps of IMIX in 4 flows for 2 s: far below what the plain path
	// carries even on a loaded machine, but loss would not fail the test.
	out, err := sim.ExecContext(ctx, s.NS(sim.LAN), bin, "send", "-to", dst, "-from", sim.LANHostAddr.String(),
		"-port", "20000", "-flows", "4", "-rate", "3k", "-size", "imix", "-duration", "2s")
	if err != nil {
		t.Fatal(err)
	}
	var sent traffic.SendReport
	if err := json.Unmarshal([]byte(out), &sent); err != nil {
		t.Fatalf("send output %q: %v", out, err)
	}
	time.Sleep(500 * time.Millisecond)
	txAfter := linkPackets(t, s, sim.LAN, "tx")
	sink.Stop()
	udpAfter := udpCounters(t, s, sim.VPCHost)
	b, err := os.ReadFile(result)
	if err != nil {
		t.Fatalf("sink report: %v; log:\n%s", err, sink.Tail(2000))
	}
	var recv traffic.SinkReport
	if err := json.Unmarshal(b, &recv); err != nil {
		t.Fatal(err)
	}
	res := traffic.Merge(sent, recv)
	t.Logf("sent %d (%.0f pps, %d flows), received %d, lost %d, reordered %d, dup %d, latency p50 %.0f µs p99 %.0f µs",
		sent.Sent, sent.PPS, len(sent.PerFlow), recv.Received, res.Lost, recv.Reordered, recv.Duplicates, recv.LatencyUs.P50, recv.LatencyUs.P99)

	if sent.Sent < 1000 || sent.Errors != 0 || len(sent.PerFlow) != 4 {
		t.Fatalf("sender: %+v", sent)
	}
	// The LAN host sends only pktgen datagrams (plus the odd ARP or IPv6
	// neighbour discovery): its interface counter must match.
	if tx := txAfter - txBefore; tx < sent.Sent || tx > sent.Sent+20 {
		t.Errorf("lan eth0 transmitted %d packets; pktgen says it sent %d", tx, sent.Sent)
	}
	// Every datagram the VPC host's UDP stack delivered was counted once by
	// the sink; none were malformed or duplicated on a plain path.
	delivered := udpAfter["InDatagrams"] - udpBefore["InDatagrams"]
	if delivered != recv.Received+recv.Duplicates+recv.Malformed {
		t.Errorf("vpchost UDP InDatagrams +%d; sink counted %d received, %d duplicates, %d malformed",
			delivered, recv.Received, recv.Duplicates, recv.Malformed)
	}
	if recv.Received == 0 || recv.Duplicates != 0 || recv.Malformed != 0 || recv.Received+res.Lost != sent.Sent {
		t.Errorf("sink %+v inconsistent with %d sent (lost %d)", recv, sent.Sent, res.Lost)
	}
	// What the kernel dropped for a full socket buffer is part of the loss
	// pktgen reports, never more than it.
	if drops := udpAfter["RcvbufErrors"] - udpBefore["RcvbufErrors"]; drops > res.Lost {
		t.Errorf("vpchost dropped %d datagrams for a full receive buffer, but pktgen counts only %d lost", drops, res.Lost)
	}
}

// linkPackets reads the packet counter of eth0 in role's namespace in
// direction dir ("rx" or "tx").
func linkPackets(t *testing.T, s *sim.Sim, role sim.Role, dir string) uint64 {
	t.Helper()
	out, err := s.Exec(role, "ip", "-s", "-j", "link", "show", "dev", "eth0")
	if err != nil {
		t.Fatal(err)
	}
	var links []struct {
		Stats64 map[string]struct {
			Packets uint64 `json:"packets"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		t.Fatalf("ip -s -j link show dev eth0 in %s: %v: %s", role, err, out)
	}
	st, ok := links[0].Stats64[dir]
	if !ok {
		t.Fatalf("no %s stats for eth0 in %s: %s", dir, role, out)
	}
	return st.Packets
}

// udpCounters reads the Udp: lines of /proc/net/snmp in role's namespace.
func udpCounters(t *testing.T, s *sim.Sim, role sim.Role) map[string]uint64 {
	t.Helper()
	out, err := s.Exec(role, "cat", "/proc/net/snmp")
	if err != nil {
		t.Fatal(err)
	}
	var names, values []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f[1:]
		} else {
			values = f[1:]
		}
	}
	if len(names) == 0 || len(names) != len(values) {
		t.Fatalf("no Udp counters in /proc/net/snmp of %s", role)
	}
	m := map[string]uint64{}
	for i, n := range names {
		v, err := strconv.ParseUint(values[i], 10, 64)
		if err != nil {
			t.Fatal(fmt.Errorf("Udp %s = %q: %w", n, values[i], err))
		}
		m[n] = v
	}
	return m
}
