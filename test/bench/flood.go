package main

import (
	"context"
	"fmt"
	"os"

	"github.com/cgwproject/cgw/test/sim"
)

// floodCount is the size of each spoofed IKE_SA_INIT flood.
const floodCount = 7000

// measureFlood runs the two spoofed IKE_SA_INIT floods against cgwd with
// one tunnel up to strongSwan.
func measureFlood() ([]sim.FloodResult, error) {
	st, err := setupCgwdStrongSwan(context.Background())
	if err != nil {
		return nil, err
	}
	defer st.sim.Close()
	dir, err := os.MkdirTemp("", "cgw-bench-tools-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	tool, err := sim.BuildTool("ikeattack", dir)
	if err != nil {
		return nil, err
	}
	cgwd := st.pids[len(st.pids)-1]
	var out []sim.FloodResult
	for _, f := range []struct {
		kind sim.FloodKind
		rate int
	}{{sim.FloodBadKE, 500}, {sim.FloodValidKE, 10000}} {
		r, err := st.sim.IKEFlood(tool, cgwd, 1, f.kind, floodCount, f.rate)
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

func printFlood(rs []sim.FloodResult) {
	if len(rs) == 0 {
		return
	}
	w := newTable("ike-flood (spoofed IKE_SA_INIT)\tsent\tseconds\tcgwd CPU-s per 7000\treplies\t")
	for _, r := range rs {
		per := 0.0
		if r.Sent > 0 {
			per = r.CPUSeconds * floodCount / float64(r.Sent)
		}
		fmt.Fprintf(w, "%s\t%d\t%.1f\t%.2f\t%d\t\n", r.Kind, r.Sent, r.Took.Seconds(), per, r.Replies)
	}
	w.Flush()
}
