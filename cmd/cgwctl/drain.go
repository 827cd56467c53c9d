package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/internal/human"
)

var drainCmd = &command{
	name:    "drain",
	args:    "[--wait D] [--idle D] [--idle-rate N] [--json] [--socket PATH]",
	summary: "take this gateway out of service: withdraw toward the LAN, prepend toward AWS, wait for traffic to move",
	help: `drain withdraws the AWS prefixes from the LAN BGP neighbors and sends the
on-premises prefixes to AWS with 4 more AS-path prepends, so both directions
move to the other gateway of the site. It then samples the tunnels' packet
counters and returns when they carried at most --idle-rate packets/s (BGP
keepalives and DPD remain) for --idle, or after --wait (at most 50s; drain
is idempotent, run it again to wait longer). Exit status 0 when the traffic
moved, 1 when it did not within the wait. The gateway stays drained, and
cgwctl status shows it, until cgwctl undrain or a restart of cgwd.`,
	run: func(e *env, f *flags, args []string) error { return drainVerb(e, f, args, false) },
}

var undrainCmd = &command{
	name:    "undrain",
	args:    "[--json] [--socket PATH]",
	summary: "put a drained gateway back into service",
	run:     func(e *env, f *flags, args []string) error { return drainVerb(e, f, args, true) },
}

var healthCmd = &command{
	name:    "health",
	args:    "[--json] [--socket PATH]",
	summary: "exit 0 when this gateway should carry traffic (for keepalived's track_script)",
	help: `health exits 0 when cgwd answers, the gateway is not drained, and every
connection has at least one tunnel up; otherwise it prints why and exits 1.
Use it as keepalived's track_script so that the virtual next-hop address
moves to the other gateway when this one cannot reach AWS or is drained.`,
	run: runHealth,
}

func drainVerb(e *env, f *flags, args []string, undrain bool) error {
	var wait, idle time.Duration
	var rate float64
	if !undrain {
		f.DurationVar(&wait, "wait", 30*time.Second, "longest wait for the traffic to move (at most 50s)")
		f.DurationVar(&idle, "idle", 3*time.Second, "how long the tunnels must stay idle")
		f.Float64Var(&rate, "idle-rate", 2, "packets per second (in + out, all tunnels) that still count as idle")
	}
	asJSON := f.Bool("json", false, "print the result as JSON (control API v1 format)")
	sock := socketFlag(f)
	pos, err := f.parse(e, args)
	if err != nil {
		return err
	}
	if err := noArgs(pos); err != nil {
		return err
	}
	if wait < 0 || wait > 50*time.Second || idle < 0 || rate < 0 {
		return usagef("--wait must be 0-50s, --idle and --idle-rate not negative")
	}
	ctx, cancel := requestContext(wait + requestTimeout)
	defer cancel()
	res, err := e.daemon(*sock).Drain(ctx, control.DrainRequest{Undrain: undrain,
		WaitSeconds: wait.Seconds(), IdleSeconds: idle.Seconds(), IdleRate: rate})
	if err != nil {
		return err
	}
	if *asJSON {
		err = writeJSON(e.stdout, res)
	} else {
		_, err = fmt.Fprintf(e.stdout, "%s (waited %.1fs)\n", res.Message, res.WaitedSeconds)
	}
	if err == nil && !undrain && !res.Moved {
		return &statusError{code: exitError}
	}
	return err
}

// healthProblems lists why st's gateway should not carry traffic.
func healthProblems(st *control.Status) []string {
	var out []string
	if st.LAN != nil && st.LAN.Drained {
		out = append(out, "drained (cgwctl undrain)")
	}
	for _, c := range st.Connections {
		up := false
		for _, t := range c.Tunnels {
			up = up || t.State == "up"
		}
		if !up {
			out = append(out, "connection "+c.Name+" has no tunnel up")
		}
	}
	if len(st.Connections) == 0 {
		out = append(out, "no connections configured")
	}
	return out
}

type healthResult struct {
	Healthy  bool     `json:"healthy"`
	Problems []string `json:"problems"`
}

func runHealth(e *env, f *flags, args []string) error {
	asJSON := f.Bool("json", false, `print {"healthy", "problems"} as JSON`)
	sock := socketFlag(f)
	pos, err := f.parse(e, args)
	if err != nil {
		return err
	}
	if err := noArgs(pos); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := e.daemon(*sock).Status(ctx)
	if err != nil {
		return err
	}
	p := healthProblems(st)
	if *asJSON {
		err = writeJSON(e.stdout, healthResult{Healthy: len(p) == 0, Problems: append([]string{}, p...)})
	} else if len(p) == 0 {
		_, err = fmt.Fprintln(e.stdout, "healthy")
	} else {
		_, err = fmt.Fprintf(e.stdout, "unhealthy: %s\n", strings.Join(p, "; "))
	}
	if err == nil && len(p) > 0 {
		return &statusError{code: exitError}
	}
	return err
}

// renderLAN is the status section of the LAN neighbors.
func renderLAN(w io.Writer, lan *control.LAN) {
	if lan == nil {
		return
	}
	state := "in service"
	if lan.Drained {
		state = "DRAINED: AWS prefixes withdrawn from the LAN, on-premises prefixes prepended toward AWS (cgwctl undrain)"
	}
	fmt.Fprintf(w, "\nLAN: %s\n", state)
	if len(lan.Neighbors) == 0 {
		return
	}
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NEIGHBOR\tADDRESS\tASN\tTYPE\tSTATE\tUP\tRECEIVED\tACCEPTED\tADVERTISED\tLAST ERROR")
	for _, n := range lan.Neighbors {
		up := "-"
		if n.UptimeSeconds > 0 {
			up = human.Duration(time.Duration(n.UptimeSeconds * float64(time.Second)))
		}
		last := n.LastError
		if last == "" {
			last = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", n.Name, n.Address, n.ASN, n.Type, n.State, up, n.Received, n.Accepted, n.Advertised, last)
	}
	tw.Flush()
	w.Write(b.Bytes())
}
