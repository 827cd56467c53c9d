package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
)

// newTable prints an empty line and returns a right-aligned table writer
// with header as its first row.
func newTable(header string) *tabwriter.Writer {
	fmt.Println()
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, header)
	return w
}

func printTable(rs []result) {
	if len(rs) == 0 {
		return
	}
	w := newTable("mode\ttest\tGbit/s\tsent Gbit/s\tkpps\tloss %\tretrans\thost CPUs\ttunnel CPUs\t")
	for _, r := range rs {
		if r.Err != "" {
			fmt.Fprintf(w, "%s\t%s\terror\t\t\t\t\t\t\t\n", r.Mode, r.Test)
			continue
		}
		kpps, loss, retr := "", "", ""
		if strings.HasPrefix(r.Test, "udp") {
			kpps, loss = fmt.Sprintf("%.1f", r.PPS/1000), fmt.Sprintf("%.1f", r.LossPct)
		} else {
			retr = fmt.Sprint(r.Retrans)
		}
		fmt.Fprintf(w, "%s\t%s\t%.3f\t%.3f\t%s\t%s\t%s\t%.2f\t%.2f\t\n", r.Mode, r.Test, r.Gbps, r.SentGbps, kpps, loss, retr, r.HostCPUs, r.TunnelCPUs)
	}
	w.Flush()
}

// printRatios compares cgwd<->cgwd with every other mode, per test:
// throughput ratio and throughput per tunnel CPU ratio.
func printRatios(rs []result) {
	const ref = "cgwd-cgwd"
	if len(rs) == 0 {
		return
	}
	byKey := map[[2]string]result{}
	var others []string
	seen := map[string]bool{}
	for _, r := range rs {
		byKey[[2]string{r.Mode, r.Test}] = r
		if r.Mode != ref && !seen[r.Mode] {
			seen[r.Mode] = true
			others = append(others, r.Mode)
		}
	}
	fmt.Println()
	if _, ok := byKey[[2]string{ref, "tcp-1"}]; !ok {
		fmt.Println("ratios: cgwd-cgwd not measured (cgwd binary not found or mode failed)")
		return
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "cgwd-cgwd vs\ttest\tthroughput ratio\tGbit/s per tunnel CPU ratio\t")
	for _, m := range others {
		for _, test := range []string{"tcp-1", "tcp-4", "udp-1400"} {
			a, aok := byKey[[2]string{ref, test}]
			b, bok := byKey[[2]string{m, test}]
			if !aok || !bok || a.Err != "" || b.Err != "" || b.Gbps == 0 {
				continue
			}
			eff := "-"
			if a.TunnelCPUs > 0 && b.TunnelCPUs > 0 {
				eff = fmt.Sprintf("%.2f", (a.Gbps/a.TunnelCPUs)/(b.Gbps/b.TunnelCPUs))
			}
			fmt.Fprintf(w, "%s\t%s\t%.2f\t%s\t\n", m, test, a.Gbps/b.Gbps, eff)
		}
	}
	w.Flush()
}
