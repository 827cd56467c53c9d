package main

// Profiling cgwd under pktgen load (issue 18): with -profile DIR, cgwd
// runs with --pprof on a unix socket in the simulation's directory, and
// every cgwd mode gets, after its rows, one bounded pktgen run per flow
// count in -pps-flows at -profile-rate packets per second of
// -profile-size bytes, during which a Go CPU profile of each cgwd (and,
// when perf(1) is installed, a system-wide perf profile with call graphs)
// is written to DIR:
//
//	DIR/<mode>-<role>-<flows>flows.pprof   go tool pprof -top …
//	DIR/<mode>-<flows>flows.perf.data      perf report -i … --sort comm,dso,sym
//
// Kernel UDP and TUN drop counters of each namespace are printed before
// and after, so the run also says where packets were lost.

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cgwproject/cgw/test/sim"
)

var (
	flagProfile     = flag.String("profile", "", "profile cgwd modes under pktgen load into this directory (Go CPU profiles, perf if installed)")
	flagProfileRate = flag.String("profile-rate", "20k", "profile: pktgen offered rate (packets per second, k/M suffix)")
	flagProfileSize = flag.String("profile-size", "1400", "profile: pktgen packet size")
	flagProfileSecs = flag.Int("profile-seconds", 10, "profile: length of each profiled run")
)

// startCgwd starts cgwd in role like sim.StartCgwd, with --pprof on a unix
// socket when profiling.
func startCgwd(s *sim.Sim, role sim.Role, bin, cfg string) (*sim.Process, error) {
	if *flagProfile == "" {
		return s.StartCgwd(role, bin, cfg)
	}
	cf := filepath.Join(s.Dir(), "cgwd-"+string(role)+".yaml")
	if err := os.WriteFile(cf, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	return s.StartProcess(role, "cgwd-"+string(role), bin, "--config", cf, "--pprof", pprofSocket(s, role))
}

func pprofSocket(s *sim.Sim, role sim.Role) string {
	return filepath.Join(s.Dir(), "pprof-"+string(role)+".sock")
}

// profileMode runs the profiled load on one prepared cgwd mode.
func profileMode(ctx context.Context, st *setup, modeName string, roles []sim.Role) {
	if *flagProfile == "" || !strings.HasPrefix(modeName, "cgwd") {
		return
	}
	plan, err := parsePPSPlan()
	if err != nil {
		fmt.Printf("   profile: %v\n", err)
		return
	}
	bin, err := pktgenBinary(ctx)
	if err != nil {
		fmt.Printf("   profile: %v\n", err)
		return
	}
	if err := os.MkdirAll(*flagProfile, 0o755); err != nil {
		fmt.Printf("   profile: %v\n", err)
		return
	}
	for _, flows := range plan.flows {
		tag := fmt.Sprintf("%s-%dflows", modeName, flows)
		before := dropCounters(st.sim)
		var wg sync.WaitGroup
		for _, r := range roles {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out := filepath.Join(*flagProfile, fmt.Sprintf("%s-%s-%dflows.pprof", modeName, r, flows))
				if err := fetchProfile(pprofSocket(st.sim, r), out, *flagProfileSecs); err != nil {
					fmt.Printf("   profile %s: %v\n", r, err)
				}
			}()
		}
		var perf *exec.Cmd
		if p, err := exec.LookPath("perf"); err == nil {
			perf = exec.Command(p, "record", "-a", "-g", "-o", filepath.Join(*flagProfile, tag+".perf.data"), "--", "sleep", strconv.Itoa(*flagProfileSecs))
			perf.Stdout, perf.Stderr = io.Discard, io.Discard
			if err := perf.Start(); err != nil {
				perf = nil
			}
		}
		dst := netip.AddrPortFrom(sim.VPCHostAddr, sinkPort).String()
		sink, err := st.sim.StartProcess(sim.VPCHost, "pktgen-sink", bin, "sink", "-listen", dst, "-max", "2m")
		if err != nil {
			fmt.Printf("   profile: %v\n", err)
			return
		}
		time.Sleep(300 * time.Millisecond)
		out, err := sim.ExecContext(ctx, st.sim.NS(sim.LAN), bin, "send", "-to", dst, "-from", sim.LANHostAddr.String(),
			"-port", "20000", "-flows", strconv.Itoa(flows), "-rate", *flagProfileRate, "-size", *flagProfileSize,
			"-duration", strconv.Itoa(*flagProfileSecs)+"s", "-threads", strconv.Itoa(min(flows, 2)))
		sink.Stop()
		wg.Wait()
		if perf != nil {
			perf.Wait()
		}
		if err != nil {
			fmt.Printf("   profile %s: pktgen: %v\n", tag, err)
		}
		fmt.Printf("   profile %s: %s %s B at %s pps: %s\n", tag, *flagProfileSize, *flagProfileSize, *flagProfileRate, firstLine(strings.Join(strings.Fields(out), " ")))
		fmt.Printf("   drops during the run: %s\n", diffCounters(before, dropCounters(st.sim)))
	}
}

func fetchProfile(sock, out string, secs int) error {
	c := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}, Timeout: time.Duration(secs+30) * time.Second}
	resp, err := c.Get("http://cgwd/debug/pprof/profile?seconds=" + strconv.Itoa(secs))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET profile: %s", resp.Status)
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// dropCounters reads, per namespace on the path, the UDP receive/send
// buffer errors (/proc/net/snmp) and every interface's rx/tx drops.
func dropCounters(s *sim.Sim) map[string]uint64 {
	m := map[string]uint64{}
	for _, r := range []sim.Role{sim.LAN, sim.Cust, sim.Inet, sim.AWS1, sim.VPC, sim.VPCHost} {
		if out, err := s.Exec(r, "cat", "/proc/net/snmp"); err == nil {
			var names []string
			for _, l := range strings.Split(out, "\n") {
				f := strings.Fields(l)
				if len(f) < 2 || f[0] != "Udp:" {
					continue
				}
				if names == nil {
					names = f[1:]
					continue
				}
				for i, v := range f[1:] {
					if i < len(names) && (names[i] == "RcvbufErrors" || names[i] == "SndbufErrors" || names[i] == "InErrors") {
						n, _ := strconv.ParseUint(v, 10, 64)
						m[string(r)+" udp "+names[i]] = n
					}
				}
			}
		}
		if out, err := s.Exec(r, "cat", "/proc/net/dev"); err == nil {
			for _, l := range strings.Split(out, "\n") {
				dev, rest, ok := strings.Cut(l, ":")
				if !ok {
					continue
				}
				f := strings.Fields(rest)
				if len(f) < 12 {
					continue
				}
				rx, _ := strconv.ParseUint(f[3], 10, 64)
				tx, _ := strconv.ParseUint(f[11], 10, 64)
				m[string(r)+" "+strings.TrimSpace(dev)+" rx_drop"] = rx
				m[string(r)+" "+strings.TrimSpace(dev)+" tx_drop"] = tx
			}
		}
	}
	return m
}

func diffCounters(a, b map[string]uint64) string {
	var parts []string
	for k, v := range b {
		if d := v - a[k]; v > a[k] && d > 0 {
			parts = append(parts, fmt.Sprintf("%s +%d", k, d))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
