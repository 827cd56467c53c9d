package main

// The control-plane row of the bench (issue 18): how long cgwd takes from
// a tunnel's CHILD SA being installed to its BGP session being Established
// and the learned routes being in the kernel, against the simulator
// (strongSwan + BIRD standing in for AWS, two tunnels, BGP routing). The
// figures come from cgwd's own log timestamps (sim.ParseBGPTimeline).

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/cgwproject/cgw/test/sim"
)

var (
	flagBGPLat = flag.Bool("bgp-latency", true, "measure CHILD SA -> BGP Established -> routes installed against the simulator")
	flagBGPRun = flag.Int("bgp-latency-runs", 3, "bgp-latency: cgwd starts to measure (best and worst are printed)")
)

// bgpLatRow is one cgwd start: per tunnel, the delays from its CHILD SA.
type bgpLatRow struct {
	Run     int                  `json:"run"`
	Tunnels []sim.TunnelTimeline `json:"tunnels"`
	Err     string               `json:"error,omitempty"`
}

// measureBGPLatency starts cgwd against the simulator -bgp-latency-runs
// times and reads each tunnel's timeline from its log.
func measureBGPLatency() []bgpLatRow {
	bin, err := cgwdBinary()
	if err != nil {
		fmt.Printf("   %v\n", err)
		return []bgpLatRow{{Err: err.Error()}}
	}
	var rows []bgpLatRow
	for run := 1; run <= *flagBGPRun; run++ {
		row := bgpLatRow{Run: run}
		tl, err := bgpLatencyOnce(bin)
		row.Tunnels = tl
		if err != nil {
			row.Err = err.Error()
		}
		rows = append(rows, row)
		for _, t := range tl {
			fmt.Printf("   run %d %s: CHILD SA -> BGP Established %s, -> routes installed %s\n", run, t.Tunnel, fmtDelay(t.Established), fmtDelay(t.Routes))
		}
		if err != nil {
			fmt.Printf("   run %d: %v\n", run, firstLine(err.Error()))
		}
	}
	return rows
}

func bgpLatencyOnce(bin string) ([]sim.TunnelTimeline, error) {
	o := sim.Options{Tunnels: 2, Routing: sim.RoutingBGP}
	for i := range o.Endpoint {
		o.Endpoint[i].IKEProposals, o.Endpoint[i].ESPProposals = ikeGCM, espGCM
	}
	s, err := newSim(o)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	// active-active: both tunnels carry the VPC route, so each tunnel's
	// own route installation is visible in the log.
	cfg, err := s.CgwdConfig(sim.CgwdOptions{IKEProposals: ikeGCM, ESPProposals: espGCM, BGPMode: "active-active"})
	if err != nil {
		return nil, err
	}
	p, err := s.StartCgwd(sim.Cust, bin, cfg)
	if err != nil {
		return nil, err
	}
	defer p.Stop()
	names := []string{s.ConnectionID() + "-t1", s.ConnectionID() + "-t2"}
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, _ := os.ReadFile(p.Log)
		tl := sim.ParseBGPTimeline(b, names, s.Options().VPCPrefix)
		done := true
		for _, t := range tl {
			done = done && t.Routes > 0
		}
		if done {
			if *flagVerbose {
				for _, l := range strings.Split(string(b), "\n") {
					if strings.Contains(l, "bgp") || strings.Contains(l, "tunnel up") || strings.Contains(l, "routes updated") {
						fmt.Fprintln(os.Stderr, l)
					}
				}
			}
			return tl, nil
		}
		if ex, _ := p.Exited(); ex || time.Now().After(deadline) {
			return tl, fmt.Errorf("routes not installed through both tunnels within 60 s; cgwd log:\n%s", p.Tail(3000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func fmtDelay(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f s", d.Seconds())
}

// printBGPLatency prints the best and worst of the runs per tunnel.
func printBGPLatency(rows []bgpLatRow) {
	if len(rows) == 0 {
		return
	}
	w := newTable("control plane (cgwd vs simulator)\ttunnel\truns\tCHILD SA -> BGP Established (best / worst)\tCHILD SA -> routes installed (best / worst)\t")
	type agg struct {
		n                 int
		estBest, estWorst time.Duration
		rtBest, rtWorst   time.Duration
	}
	var by []agg // by tunnel index (t1, t2)
	for _, r := range rows {
		for i, t := range r.Tunnels {
			if t.Routes <= 0 {
				continue
			}
			for len(by) <= i {
				by = append(by, agg{})
			}
			a := &by[i]
			if a.n == 0 {
				a.estBest, a.rtBest = t.Established, t.Routes
			}
			a.n++
			a.estBest, a.estWorst = min(a.estBest, t.Established), max(a.estWorst, t.Established)
			a.rtBest, a.rtWorst = min(a.rtBest, t.Routes), max(a.rtWorst, t.Routes)
		}
	}
	for i, a := range by {
		if a.n == 0 {
			continue
		}
		fmt.Fprintf(w, "\tt%d\t%d\t%s / %s\t%s / %s\t\n", i+1, a.n, fmtDelay(a.estBest), fmtDelay(a.estWorst), fmtDelay(a.rtBest), fmtDelay(a.rtWorst))
	}
	if len(by) == 0 {
		fmt.Fprintln(w, "\t(no complete run)\t\t\t\t")
	}
	w.Flush()
	fmt.Println("   target (issue 18): routes installed <= 1 s after the CHILD SA")
}
