package main

// The packet-rate part of the bench (issue 18): an RFC 2544-style
// loss-free-rate search with test/tools/pktgen from lan to vpchost over
// each mode's path. For every packet size and flow count it runs bounded
// trials of -trial each and binary-searches the highest offered rate
// whose loss is at most -pps-loss percent:
//
//  1. offer -pps-max; if that passes, the result is the generator's (or
//     the maximum's) limit, marked "gen-limit";
//  2. otherwise try 95 % of the rate that arrived at that overload (a
//     good first guess for a tunnel that saturates), then bisect between
//     the best passing and the lowest failing rate until they are within
//     1 % or -pps-steps trials have run.
//
// The search bisects on the rates asked of the generator; the rate
// reported is what the generator achieved in the best passing trial
// (RFC 2544's offered rate). On a loaded machine the pacer may fall
// short of the rate asked (it forfeits tokens rather than burst), and the
// row is then marked "gen-limit".
// The generator runs min(flows, CPUs) sending threads unless
// -pps-threads says otherwise: on these namespace paths the kernel
// forwards each datagram through every hop inside the sender's system
// call, so a single thread can cap the plain path.
//
// CPU per packet is the tunnel processes' utime+stime (/proc/PID/stat,
// both ends together) during the loss-free trial divided by the packets
// that arrived.

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cgwproject/cgw/test/sim"
	"github.com/cgwproject/cgw/test/tools/pktgen/traffic"
)

var (
	flagPPS      = flag.Bool("pps", true, "run the loss-free packet-rate search (pktgen) on every mode")
	flagIperf    = flag.Bool("iperf", true, "run the iperf3 TCP/UDP rows (-iperf=false for a quick packet-rate-only run)")
	flagPPSSizes = flag.String("pps-sizes", "64,512,1400,imix", "packet-rate search: comma-separated IPv4 packet sizes or imix")
	flagPPSFlows = flag.String("pps-flows", "1,16", "packet-rate search: comma-separated flow counts")
	flagTrial    = flag.Duration("trial", 10*time.Second, "packet-rate search: length of one trial (RFC 2544: 10s; 2s for a quick run)")
	flagPPSLoss  = flag.Float64("pps-loss", 0.1, "packet-rate search: largest loss in percent that still passes")
	flagPPSMax   = flag.Float64("pps-max", 1e6, "packet-rate search: highest offered rate in packets per second")
	flagPPSSteps = flag.Int("pps-steps", 8, "packet-rate search: most trials per size and flow count")
	flagPPSThr   = flag.Int("pps-threads", 0, "packet-rate search: generator threads; 0: one per CPU, at most one per flow")
	flagPPSGSO   = flag.Int("pps-gso", 0, "pktgen sends up to this many datagrams of a flow's batch as one UDP GSO superpacket (not for imix): "+
		"the superpackets a LAN NIC's GRO would hand the gateway (ethtool -K IF rx-udp-gro-forwarding on), which veth in these namespaces does not form")
	flagPktgen = flag.String("pktgen", "", "pktgen binary; default: built from test/tools/pktgen into a temporary directory")
)

// ppsRow is the loss-free-rate search of one mode, size and flow count.
type ppsRow struct {
	Mode     string  `json:"mode"`
	Size     string  `json:"size"`
	Flows    int     `json:"flows"`
	PPS      float64 `json:"loss_free_pps"` // offered (achieved) rate of the best passing trial
	Mbps     float64 `json:"loss_free_mbps"`
	UpperPPS float64 `json:"lowest_failing_pps,omitempty"`
	GenLimit bool    `json:"generator_limited"`
	// Tunnel CPU (both ends) per million packets that arrived, and host
	// busy CPUs, during the loss-free trial.
	CPUSecPerMpkt float64 `json:"tunnel_cpu_s_per_mpkt"`
	HostCPUs      float64 `json:"host_busy_cpus"`
	// What arrived at the first (highest) offer: the overload behaviour.
	OverloadOffered float64         `json:"overload_offered_pps"`
	OverloadRecv    float64         `json:"overload_received_pps"`
	OverloadLossPct float64         `json:"overload_loss_pct"`
	Trials          int             `json:"trials"`
	Best            *traffic.Result `json:"best,omitempty"`
	Err             string          `json:"error,omitempty"`
}

// ppsRows collects every mode's rows for the final tables.
var ppsRows []ppsRow

// sinkPort is the UDP port pktgen's sink listens on in vpchost.
const sinkPort = 9000

type ppsPlan struct {
	sizes []traffic.Profile
	flows []int
}

func parsePPSPlan() (ppsPlan, error) {
	var p ppsPlan
	for _, s := range strings.Split(*flagPPSSizes, ",") {
		prof, err := traffic.ParseProfile(s)
		if err != nil {
			return p, fmt.Errorf("-pps-sizes: %w", err)
		}
		p.sizes = append(p.sizes, prof)
	}
	for _, s := range strings.Split(*flagPPSFlows, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > traffic.MaxFlows {
			return p, fmt.Errorf("-pps-flows %q: want counts 1..%d", s, traffic.MaxFlows)
		}
		p.flows = append(p.flows, n)
	}
	switch {
	case *flagTrial < 500*time.Millisecond || *flagTrial > 5*time.Minute:
		return p, fmt.Errorf("-trial %v: want 500ms..5m", *flagTrial)
	case *flagPPSLoss < 0 || *flagPPSLoss >= 100:
		return p, fmt.Errorf("-pps-loss %v: want a percentage 0..100", *flagPPSLoss)
	case *flagPPSMax < 100 || *flagPPSMax > 100e6:
		return p, fmt.Errorf("-pps-max %v: want 100..1e8 packets per second", *flagPPSMax)
	case *flagPPSThr < 0 || *flagPPSThr > 64:
		return p, fmt.Errorf("-pps-threads %d: want 0..64", *flagPPSThr)
	case *flagPPSSteps < 1 || *flagPPSSteps > 30:
		return p, fmt.Errorf("-pps-steps %d: want 1..30", *flagPPSSteps)
	}
	return p, nil
}

// pktgenBinary builds test/tools/pktgen once per bench run.
var pktgenBuilt string

func pktgenBinary(ctx context.Context) (string, error) {
	if *flagPktgen != "" {
		return filepath.Abs(*flagPktgen)
	}
	if pktgenBuilt != "" {
		return pktgenBuilt, nil
	}
	dir, err := os.MkdirTemp("", "cgw-bench-pktgen-")
	if err != nil {
		return "", err
	}
	exe := filepath.Join(dir, "pktgen")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", exe, "github.com/cgwproject/cgw/test/tools/pktgen")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build pktgen: %v: %s", err, out)
	}
	pktgenBuilt = exe
	return exe, nil
}

// runPPS runs the loss-free-rate search for every size and flow count on
// one prepared mode and appends the rows to ppsRows.
func runPPS(ctx context.Context, st *setup, modeName string) {
	plan, err := parsePPSPlan()
	if err == nil {
		_, err = pktgenBinary(ctx)
	}
	if err != nil {
		fmt.Printf("   pps: %v\n", err)
		ppsRows = append(ppsRows, ppsRow{Mode: modeName, Err: err.Error()})
		return
	}
	for _, prof := range plan.sizes {
		for _, n := range plan.flows {
			if ctx.Err() != nil {
				return
			}
			r := searchLossFree(ctx, st, prof, n)
			r.Mode = modeName
			printPPSProgress(r)
			ppsRows = append(ppsRows, r)
		}
	}
}

func printPPSProgress(r ppsRow) {
	if r.Err != "" {
		fmt.Printf("   pps %-4s x%-2d error: %s\n", r.Size, r.Flows, r.Err)
		return
	}
	note := ""
	if r.GenLimit {
		note = " (generator limit)"
	}
	fmt.Printf("   pps %-4s x%-2d loss-free %8.1f kpps%s  %d trials  overload: %.1f kpps offered, %.1f arrived\n",
		r.Size, r.Flows, r.PPS/1000, note, r.Trials, r.OverloadOffered/1000, r.OverloadRecv/1000)
}

// trialResult is one bounded pktgen run and the CPU used meanwhile.
type trialResult struct {
	res      traffic.Result
	tunnelS  float64 // CPU seconds of the tunnel processes
	hostCPUs float64
}

func (t trialResult) pass() bool {
	return t.res.Send.Sent > 0 && t.res.LossPct <= *flagPPSLoss
}

func searchLossFree(ctx context.Context, st *setup, prof traffic.Profile, flows int) ppsRow {
	row := ppsRow{Size: prof.Name, Flows: flows}
	var best *trialResult
	lo, hi := 0.0, *flagPPSMax
	try := func(rate float64) (trialResult, bool, error) {
		row.Trials++
		t, err := runTrial(ctx, st, prof, flows, rate)
		if err != nil {
			return t, false, err
		}
		ok := t.pass()
		if *flagVerbose {
			fmt.Fprintf(os.Stderr, "   trial %s x%d: asked %.0f pps, offered %.0f, arrived %.0f, loss %.3f %% -> %v\n",
				prof.Name, flows, rate, t.res.Send.PPS, t.res.Recv.PPS, t.res.LossPct, ok)
		}
		if ok {
			lo = max(lo, rate)
			if best == nil || t.res.Send.PPS > best.res.Send.PPS {
				best = &t
			}
		} else {
			hi = min(hi, rate)
		}
		return t, ok, nil
	}
	first, ok, err := try(hi)
	if err != nil {
		row.Err = err.Error()
		return row
	}
	row.OverloadOffered, row.OverloadRecv, row.OverloadLossPct = first.res.Send.PPS, first.res.Recv.PPS, first.res.LossPct
	if first.res.Recv.Received == 0 {
		row.Err = fmt.Sprintf("nothing arrived of %d datagrams offered at %.0f pps: path broken", first.res.Send.Sent, first.res.Send.PPS)
		return row
	}
	if ok {
		row.GenLimit = true
	} else {
		// The generator may not reach -pps-max: the real upper bound is
		// what it offered.
		hi = min(hi, first.res.Send.PPS)
		guess := 0.95 * first.res.Recv.PPS
		if guess > lo && guess < hi {
			if _, _, err := try(guess); err != nil {
				row.Err = err.Error()
			}
		}
		for row.Err == "" && row.Trials < *flagPPSSteps && hi-lo > math.Max(0.01*hi, 100) && ctx.Err() == nil {
			if _, _, err := try((lo + hi) / 2); err != nil {
				row.Err = err.Error()
			}
		}
	}
	if hi < *flagPPSMax || !ok {
		row.UpperPPS = hi
	}
	if best != nil {
		row.PPS = best.res.Send.PPS
		row.Mbps = best.res.Send.PPS * prof.MeanIPSize() * 8 / 1e6
		row.HostCPUs = best.hostCPUs
		if best.res.Recv.Received > 0 && len(st.pids) > 0 {
			row.CPUSecPerMpkt = best.tunnelS / (float64(best.res.Recv.Received) / 1e6)
		}
		// The pacer fell short of the rate asked for: the generator,
		// not the path, set the limit of this trial.
		if best.res.Send.PPS < 0.97*best.res.Send.TargetPPS && row.UpperPPS == 0 {
			row.GenLimit = true
		}
		r := best.res
		row.Best = &r
	}
	return row
}

// runTrial runs one bounded trial: a fresh sink in vpchost, the sender in
// lan for -trial, a short drain, then the sink's report.
func runTrial(ctx context.Context, st *setup, prof traffic.Profile, flows int, rate float64) (trialResult, error) {
	var t trialResult
	bin, err := pktgenBinary(ctx)
	if err != nil {
		return t, err
	}
	dst := netip.AddrPortFrom(sim.VPCHostAddr, sinkPort).String()
	result := filepath.Join(st.sim.Dir(), "pktgen-sink.json")
	os.Remove(result)
	sink, err := st.sim.StartProcess(sim.VPCHost, "pktgen-sink", bin, "sink", "-listen", dst, "-result", result,
		"-max", (*flagTrial + 2*time.Minute).String())
	if err != nil {
		return t, err
	}
	defer sink.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(sink.Tail(4000), "listening "+dst) {
		if done, _ := sink.Exited(); done || time.Now().After(deadline) {
			return t, fmt.Errorf("pktgen sink did not start: %s", sink.Tail(1000))
		}
		time.Sleep(20 * time.Millisecond)
	}
	threads := *flagPPSThr
	if threads <= 0 {
		threads = min(flows, runtime.NumCPU())
	}
	cpu0, _ := sim.ReadCPU()
	proc0 := procCPU(st.pids)
	sctx, cancel := context.WithTimeout(ctx, *flagTrial+time.Minute)
	defer cancel()
	out, err := sim.ExecContext(sctx, st.sim.NS(sim.LAN), bin, "send", "-to", dst, "-from", sim.LANHostAddr.String(),
		"-port", "20000", "-flows", strconv.Itoa(flows), "-rate", strconv.FormatFloat(rate, 'f', 0, 64),
		"-size", prof.Name, "-duration", flagTrial.String(), "-threads", strconv.Itoa(threads), "-gso", gsoArg(prof.Name))
	if err != nil {
		return t, err
	}
	if err := json.Unmarshal([]byte(out), &t.res.Send); err != nil {
		return t, fmt.Errorf("pktgen send output: %w: %q", err, out)
	}
	cpuSent, _ := sim.ReadCPU()
	// Let what is queued in the tunnel arrive (or be lost) before counting:
	// the tunnel's CPU seconds include that work, the host's busy CPUs
	// (a rate) cover only the sending time.
	select {
	case <-time.After(500 * time.Millisecond):
	case <-ctx.Done():
		return t, ctx.Err()
	}
	proc1 := procCPU(st.pids)
	sink.Stop() // SIGTERM: the sink writes its report and exits
	b, err := os.ReadFile(result)
	if err != nil {
		return t, fmt.Errorf("pktgen sink report: %w; log: %s", err, sink.Tail(1000))
	}
	var rep traffic.SinkReport
	if err := json.Unmarshal(b, &rep); err != nil {
		return t, fmt.Errorf("pktgen sink report: %w", err)
	}
	t.res = traffic.Merge(t.res.Send, rep)
	t.tunnelS = proc1 - proc0
	t.hostCPUs = sim.BusyCPUs(cpu0, cpuSent, runtime.NumCPU())
	return t, nil
}

// printPPS prints the loss-free-rate table and, for each cgwd mode, its
// ratios against every other mode of the same run.
func printPPS(rows []ppsRow) {
	if len(rows) == 0 {
		return
	}
	fmt.Printf("\nloss-free packet rate (RFC 2544 style): loss <= %.2f %% over %v trials, lan -> vpchost, sizes are IPv4 packet bytes (imix = 64/576/1400 7:4:1)\n",
		*flagPPSLoss, *flagTrial)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "mode\tsize\tflows\tkpps\tMbit/s\tloss %\tp50 µs\tp99 µs\tp99.9 µs\treord\tdup\ttunnel CPU s/Mpkt\thost CPUs\ttrials\tfails at kpps\tnote\t")
	for _, r := range rows {
		if r.Err != "" {
			fmt.Fprintf(w, "%s\t%s\t%d\terror\t\t\t\t\t\t\t\t\t\t%d\t\t%s\t\n", r.Mode, r.Size, r.Flows, r.Trials, firstLine(r.Err))
			continue
		}
		if r.Best == nil {
			fmt.Fprintf(w, "%s\t%s\t%d\t0\t0\t\t\t\t\t\t\t\t\t%d\t%.1f\tno passing rate\t\n", r.Mode, r.Size, r.Flows, r.Trials, r.UpperPPS/1000)
			continue
		}
		b := r.Best
		cpu, fails, note := "-", "-", ""
		if r.CPUSecPerMpkt > 0 {
			cpu = fmt.Sprintf("%.2f", r.CPUSecPerMpkt)
		}
		if r.UpperPPS > 0 {
			fails = fmt.Sprintf("%.1f", r.UpperPPS/1000)
		}
		if r.GenLimit {
			note = "gen-limit"
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%.1f\t%.1f\t%.3f\t%.0f\t%.0f\t%.0f\t%d\t%d\t%s\t%.2f\t%d\t%s\t%s\t\n",
			r.Mode, r.Size, r.Flows, r.PPS/1000, r.Mbps, b.LossPct, b.Recv.LatencyUs.P50, b.Recv.LatencyUs.P99, b.Recv.LatencyUs.P999,
			b.Recv.Reordered, b.Recv.Duplicates, cpu, r.HostCPUs, r.Trials, fails, note)
	}
	w.Flush()

	type key struct {
		mode, size string
		flows      int
	}
	by := map[key]ppsRow{}
	var modes []string
	seen := map[string]bool{}
	for _, r := range rows {
		by[key{r.Mode, r.Size, r.Flows}] = r
		if !seen[r.Mode] {
			seen[r.Mode] = true
			modes = append(modes, r.Mode)
		}
	}
	for _, ref := range []string{"cgwd-cgwd", "cgwd-strongswan"} {
		if !seen[ref] {
			continue
		}
		fmt.Printf("\n%s loss-free rate vs the other modes of this run (ratio > 1: %s faster; CPU ratio < 1: %s cheaper per packet)\n", ref, ref, ref)
		w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(w, "vs\tsize\tflows\tpps ratio\tCPU/pkt ratio\t")
		n := 0
		for _, m := range modes {
			if m == ref {
				continue
			}
			for _, r := range rows {
				if r.Mode != ref || r.Err != "" || r.PPS == 0 {
					continue
				}
				o, ok := by[key{m, r.Size, r.Flows}]
				if !ok || o.Err != "" || o.PPS == 0 {
					continue
				}
				cpu := "-"
				if r.CPUSecPerMpkt > 0 && o.CPUSecPerMpkt > 0 {
					cpu = fmt.Sprintf("%.2f", r.CPUSecPerMpkt/o.CPUSecPerMpkt)
				}
				fmt.Fprintf(w, "%s\t%s\t%d\t%.2f\t%s\t\n", m, r.Size, r.Flows, r.PPS/o.PPS, cpu)
				n++
			}
		}
		if n > 0 {
			w.Flush()
		} else {
			fmt.Println("   (no other mode measured)")
		}
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// gsoArg is pktgen's -gso for packet size name: -pps-gso, except for imix.
func gsoArg(size string) string {
	if size == "imix" {
		return "0"
	}
	return strconv.Itoa(*flagPPSGSO)
}
