package main

// Profiling cgwd under pktgen load (issue 18): with -profile DIR, cgwd
// runs with --pprof on a unix socket in the simulation's directory, and
// every cgwd mode gets, after its rows, one bounded pktgen run per flow
// count in -pps-flows at -profile-rate packets per second of
// -profile-size bytes, during which a Go CPU profile of each cgwd (and,
// when perf(1) is installed, a system-wide perf profile with call graphs)
// is written to DIR:
//
//	DIR/<mode>-<flows>flows[-<rate>]-<role>.pprof   go tool pprof -top …
//	DIR/<mode>-<flows>flows[-<rate>].perf.data      perf report -i … --sort comm,dso,sym
//
// Each cgwd's system calls and CPU per packet are printed (syscounts.go).
// Kernel UDP and TUN drop counters of each namespace are printed before
// and after, so the run also says where packets were lost.

import (
	"context"
	"encoding/json"
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
	"github.com/cgwproject/cgw/test/tools/pktgen/traffic"
)

var (
	flagProfile     = flag.String("profile", "", "profile cgwd modes under pktgen load into this directory (Go CPU profiles, perf if installed)")
	flagProfileRate = flag.String("profile-rate", "20k", "profile: comma-separated pktgen offered rates (packets per second, k/M suffix; max: the mode's loss-free rate at -profile-size from this run's search)")
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
	for _, rate := range profileRates(modeName, plan) {
		for _, flows := range plan.flows {
			if ctx.Err() != nil {
				return
			}
			profileRun(ctx, st, modeName, roles, bin, rate, flows)
		}
	}
}

// profileRates returns the -profile-rate list for one mode, with "max"
// replaced by the mode's loss-free rate at -profile-size from this run's
// search (at the lowest flow count searched).
func profileRates(modeName string, plan ppsPlan) []string {
	var out []string
	for _, r := range strings.Split(*flagProfileRate, ",") {
		r = strings.TrimSpace(r)
		if r != "max" {
			out = append(out, r)
			continue
		}
		for _, row := range ppsRows {
			if row.Mode == modeName && row.Size == *flagProfileSize && row.PPS > 0 && row.Flows == plan.flows[0] {
				out = append(out, strconv.FormatFloat(row.PPS, 'f', 0, 64))
				break
			}
		}
	}
	return out
}

// profileRun is one profiled pktgen run at rate with flows flows.
func profileRun(ctx context.Context, st *setup, modeName string, roles []sim.Role, bin, rate string, flows int) {
	tag := fmt.Sprintf("%s-%dflows", modeName, flows)
	if len(strings.Split(*flagProfileRate, ",")) > 1 {
		tag += "-" + rate
	}
	drop, err := installDrop(st.sim)
	if err != nil {
		fmt.Printf("   profile: %v\n", err)
		return
	}
	before := dropCounters(st.sim)
	var wg sync.WaitGroup
	for _, r := range roles {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := filepath.Join(*flagProfile, fmt.Sprintf("%s-%s.pprof", tag, r))
			if err := fetchProfile(pprofSocket(st.sim, r), out, *flagProfileSecs); err != nil {
				fmt.Printf("   profile %s: %v\n", r, err)
			}
		}()
	}
	counters := make([]*sysCounter, len(roles))
	for i, r := range roles {
		if i < len(st.pids) {
			counters[i] = startSysCounter(cgwdPid(st, modeName, r), *flagProfile, tag+"-"+string(r), *flagProfileSecs)
		}
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
	result := filepath.Join(st.sim.Dir(), "pktgen-profile-sink.json")
	os.Remove(result)
	sink, err := st.sim.StartProcess(sim.VPCHost, "pktgen-sink", bin, "sink", "-listen", dst, "-result", result, "-max", "2m")
	if err != nil {
		fmt.Printf("   profile: %v\n", err)
		if drop != nil {
			drop.remove()
		}
		return
	}
	time.Sleep(300 * time.Millisecond)
	out, err := sim.ExecContext(ctx, st.sim.NS(sim.LAN), bin, "send", "-to", dst, "-from", sim.LANHostAddr.String(),
		"-port", "20000", "-flows", strconv.Itoa(flows), "-rate", rate, "-size", *flagProfileSize,
		"-duration", strconv.Itoa(*flagProfileSecs)+"s", "-threads", strconv.Itoa(min(flows, 2)), "-gso", gsoArg(*flagProfileSize))
	wg.Wait()
	counts := make([]sysCount, len(roles))
	for i, c := range counters {
		if c != nil {
			var cerr error
			if counts[i], cerr = c.wait(); cerr != nil {
				fmt.Printf("   profile %s: %v\n", roles[i], cerr)
			}
		}
	}
	time.Sleep(300 * time.Millisecond)
	sink.Stop()
	if perf != nil {
		perf.Wait()
	}
	if err != nil {
		fmt.Printf("   profile %s: pktgen: %v\n", tag, err)
	}
	var sent traffic.SendReport
	json.Unmarshal([]byte(out), &sent)
	var recv traffic.SinkReport
	if b, err := os.ReadFile(result); err == nil {
		json.Unmarshal(b, &recv)
	}
	after := dropCounters(st.sim)
	arrived := float64(recv.Received)
	where := "arrived at the sink"
	if drop != nil {
		// The rule counts skbs, and GSO/GRO make one skb of many
		// packets: count what was sent less what the kernel dropped.
		n, err := drop.remove()
		if err != nil {
			fmt.Printf("   profile: remove drop rule: %v\n", err)
		}
		var lost uint64
		for k, v := range after {
			if v > before[k] {
				lost += v - before[k]
			}
		}
		arrived = float64(sent.Sent) - float64(lost)
		where = fmt.Sprintf("reached %s PREROUTING and were dropped there (%d skbs)", drop.role, n)
	}
	fmt.Printf("   profile %s: %s B at %s pps asked: sent %d (%.0f pps), %.0f %s\n",
		tag, *flagProfileSize, rate, sent.Sent, sent.PPS, arrived, where)
	if float64(sent.Sent) > 1.001*arrived {
		fmt.Printf("     (packets were lost: the figures per packet below count only those that arrived)\n")
	}
	for i, r := range roles {
		if counters[i] != nil {
			fmt.Printf("     %s cgwd: %s\n", r, counts[i].format(arrived))
		}
	}
	fmt.Printf("   drops during the run: %s\n", diffCounters(before, after))
}

// cgwdPid is the pid of the cgwd in role: cgwd-cgwd modes list cust then
// aws1 (setupCgwdPair); cgwd-strongswan lists charon first and cgwd, in
// cust, last.
func cgwdPid(st *setup, modeName string, r sim.Role) int {
	if strings.HasPrefix(modeName, "cgwd-cgwd") && len(st.pids) == 2 && r == sim.AWS1 {
		return st.pids[1]
	}
	if strings.HasPrefix(modeName, "cgwd-cgwd") {
		return st.pids[0]
	}
	return st.pids[len(st.pids)-1]
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
