//go:build linux

package dataplane

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Topology of TestNetns (namespaces and links are ours alone):
//
//	cgwdp-a                                          cgwdp-b
//	 cgwdp0 169.254.10.2/30                            cgwdp0 169.254.10.1/30
//	 dptest ── 192.168.77.1:4500 ═veth═ 192.168.77.2:4500 ── dptest
//
// ping and iperf3 run between the TUN addresses, so every packet crosses
// both engines: TUN → ESP-in-UDP over the veth → TUN.
const (
	nsA, nsB = "cgwdp-a", "cgwdp-b"
	tunAddrA = "169.254.10.2"
	tunAddrB = "169.254.10.1"
)

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func buildDPTest(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+"/", "./internal/dptest")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build dptest: %v\n%s", err, out)
	}
	return filepath.Join(dir, "dptest")
}

func setupNetns(t *testing.T) {
	t.Helper()
	for _, ns := range []string{nsA, nsB} {
		exec.Command("ip", "netns", "del", ns).Run() // leftovers of a killed run
	}
	t.Cleanup(func() {
		for _, ns := range []string{nsA, nsB} {
			exec.Command("ip", "netns", "del", ns).Run()
		}
	})
	run(t, "ip", "netns", "add", nsA)
	run(t, "ip", "netns", "add", nsB)
	run(t, "ip", "link", "add", "cgwdp-va", "netns", nsA, "type", "veth", "peer", "name", "cgwdp-vb", "netns", nsB)
	run(t, "ip", "-n", nsA, "addr", "add", "192.168.77.1/24", "dev", "cgwdp-va")
	run(t, "ip", "-n", nsB, "addr", "add", "192.168.77.2/24", "dev", "cgwdp-vb")
	for _, ns := range []string{nsA, nsB} {
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	run(t, "ip", "-n", nsA, "link", "set", "cgwdp-va", "up")
	run(t, "ip", "-n", nsB, "link", "set", "cgwdp-vb", "up")
}

// startDPTest starts dptest in ns and waits for "ready"; stop sends
// SIGTERM and returns the printed TunnelStats.
func startDPTest(t *testing.T, bin, ns string, args ...string) (stop func() TunnelStats) {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, bin}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	ready := make(chan bool, 1)
	go func() { ready <- sc.Scan() && sc.Text() == "ready" }()
	select {
	case ok := <-ready:
		if !ok {
			cmd.Wait()
			t.Fatalf("dptest in %s did not start:\n%s", ns, stderr.String())
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("dptest in %s: no ready line:\n%s", ns, stderr.String())
	}
	stopped := false
	stop = func() TunnelStats {
		var st TunnelStats
		if stopped {
			return st
		}
		stopped = true
		cmd.Process.Signal(os.Interrupt)
		if sc.Scan() {
			json.Unmarshal(sc.Bytes(), &st)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Errorf("dptest in %s did not exit on SIGINT", ns)
		}
		if t.Failed() {
			t.Logf("dptest %s stderr:\n%s", ns, stderr.String())
		}
		return st
	}
	t.Cleanup(func() { stop() })
	return stop
}

// TestNetns runs two engines in their own network namespaces with real
// TUN devices and measures ping and a 5-second iperf3 TCP stream through
// them. It needs root, ip(8), ping and iperf3; -short skips it.
func TestNetns(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, tool := range []string{"ip", "ping", "iperf3"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	bin := buildDPTest(t)
	for _, alg := range []string{"aes128gcm16", "aes128-sha256"} {
		t.Run(alg, func(t *testing.T) {
			setupNetns(t)
			common := []string{"-alg", alg, "-mtu", "1400", "-mss", "1360", "-tun", "cgwdp0", "-ike-port", "0"}
			if p := os.Getenv("CGWDP_PROFILE"); p != "" {
				common = append(common, "-cpuprofile", p+"."+alg)
			}
			stopA := startDPTest(t, bin, nsA, append(common, "-addr", tunAddrA+"/30",
				"-local", "192.168.77.1:4500", "-remote", "192.168.77.2:4500", "-spi-out", "4097", "-spi-in", "8194")...)
			stopB := startDPTest(t, bin, nsB, append(common, "-addr", tunAddrB+"/30",
				"-local", "192.168.77.2:4500", "-remote", "192.168.77.1:4500", "-spi-out", "8194", "-spi-in", "4097")...)

			out := run(t, "ip", "netns", "exec", nsA, "ping", "-c", "3", "-i", "0.2", "-W", "2", tunAddrB)
			if !strings.Contains(out, " 0% packet loss") {
				t.Fatalf("ping through the tunnel lost packets:\n%s", out)
			}
			// Large pings exercise the MTU: 1372 + 28 = 1400 fits the
			// tunnel; 1472 + 28 = 1500 fits the device (DeviceMTU) but not
			// the tunnel, so the engine clears DF and fragments it before
			// encryption (OversizeFragment, the default).
			run(t, "ip", "netns", "exec", nsA, "ping", "-c", "2", "-i", "0.2", "-W", "2", "-s", "1372", "-M", "do", tunAddrB)
			run(t, "ip", "netns", "exec", nsA, "ping", "-c", "2", "-i", "0.2", "-W", "2", "-s", "1472", "-M", "do", tunAddrB)

			srv := exec.Command("ip", "netns", "exec", nsB, "iperf3", "-s", "-1", "-B", tunAddrB)
			if err := srv.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { srv.Process.Kill(); srv.Wait() }()
			var res struct {
				End struct {
					SumReceived struct {
						BitsPerSecond float64 `json:"bits_per_second"`
					} `json:"sum_received"`
					SumSent struct {
						Retransmits int `json:"retransmits"`
					} `json:"sum_sent"`
				} `json:"end"`
			}
			var raw []byte
			for try := 0; ; try++ {
				time.Sleep(300 * time.Millisecond) // server start-up
				c := exec.Command("ip", "netns", "exec", nsA, "iperf3", "-c", tunAddrB, "-t", "5", "-J")
				var err error
				raw, err = c.Output()
				if err == nil || try == 5 {
					if err != nil {
						t.Fatalf("iperf3: %v\n%s", err, raw)
					}
					break
				}
			}
			if err := json.Unmarshal(raw, &res); err != nil {
				t.Fatalf("iperf3 JSON: %v", err)
			}
			gbps := res.End.SumReceived.BitsPerSecond / 1e9
			msg := fmt.Sprintf("iperf3 single TCP stream through the tunnel (%s, %d CPUs): %.2f Gbit/s, %d retransmits",
				alg, runtime.NumCPU(), gbps, res.End.SumSent.Retransmits)
			t.Log(msg)
			fmt.Println(msg)
			if gbps <= 0 {
				t.Error("no throughput")
			}
			if alg == "aes128gcm16" {
				// Outer fragmentation: with a veth MTU below the ESP packet
				// size, UDP GSO sends fail (EINVAL) and the writer falls back
				// to single sends that the kernel fragments, since the socket
				// runs with IP_PMTUDISC_DONT (AWS: clear DF).
				for _, l := range [][2]string{{nsA, "cgwdp-va"}, {nsB, "cgwdp-vb"}} {
					run(t, "ip", "-n", l[0], "link", "set", l[1], "mtu", "1280")
				}
				out := run(t, "ip", "netns", "exec", nsA, "ping", "-c", "3", "-i", "0.2", "-W", "2", "-s", "1372", "-M", "do", tunAddrB)
				if !strings.Contains(out, " 0% packet loss") {
					t.Errorf("large ping over a 1280-octet outer path lost packets:\n%s", out)
				}
				c := exec.Command("ip", "netns", "exec", nsA, "iperf3", "-c", tunAddrB, "-t", "1", "-J")
				srv2 := exec.Command("ip", "netns", "exec", nsB, "iperf3", "-s", "-1", "-B", tunAddrB)
				if err := srv2.Start(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(300 * time.Millisecond)
				raw, err := c.Output()
				srv2.Process.Kill()
				srv2.Wait()
				if err != nil {
					t.Errorf("iperf3 over a fragmenting outer path: %v\n%s", err, raw)
				} else if json.Unmarshal(raw, &res) == nil {
					msg := fmt.Sprintf("iperf3 with outer fragmentation (outer MTU 1280, tunnel MTU 1400): %.2f Gbit/s", res.End.SumReceived.BitsPerSecond/1e9)
					t.Log(msg)
					fmt.Println(msg)
				}
			}
			stA, stB := stopA(), stopB()
			t.Logf("A: out %d pkts, in %d pkts, fragmented %d, drops %v", stA.OutPackets, stA.InPackets, stA.Fragmented, nonZero(stA.Drops))
			t.Logf("B: out %d pkts, in %d pkts, fragmented %d, drops %v", stB.OutPackets, stB.InPackets, stB.Fragmented, nonZero(stB.Drops))
			if stA.Fragmented < 2 || stB.Fragmented < 2 {
				t.Errorf("1500-octet pings: A fragmented %d, B %d packets, want at least 2 each (requests and replies)", stA.Fragmented, stB.Fragmented)
			}
			if stA.OutPackets == 0 || stB.InPackets == 0 {
				t.Error("counters show no traffic")
			}
		})
	}
}

func nonZero(m map[string]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}
