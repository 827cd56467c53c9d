package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/control/client"
)

var reloadCmd = &command{
	name:    "reload",
	args:    "[--dry-run] [--json] [--socket PATH]",
	summary: "re-read cgwd's configuration file and apply only what changed",
	help: `Tunnels whose configuration did not change are not disturbed. The changes
applied are printed one per line; warnings go to stderr. The same happens on
SIGHUP to cgwd. Check the file first with cgwctl config check.
--dry-run reads and checks the file and prints what a reload would change,
per connection and tunnel, and the effect of each change (in_place, start,
stop, restart: SAs renegotiated and BGP session restarted, routes_moved,
restart_cgwd), applying nothing. --json prints the control API's v1 result.`,
	run: runReload,
}

func runReload(e *env, f *flags, args []string) error {
	dry := f.Bool("dry-run", false, "show what a reload would change; apply nothing")
	fetch := func(c *client.Client, ctx context.Context) (*control.ReloadResult, error) {
		if *dry {
			return c.ReloadDryRun(ctx)
		}
		return c.Reload(ctx)
	}
	return query(e, f, args, "result", fetch, func(res *control.ReloadResult) error {
		renderReload(e.stdout, e.stderr, res)
		return nil
	})
}

// effects explains control.ReloadChange.Effect.
var effects = map[string]string{
	"in_place":     "applied in place, nothing renegotiated",
	"start":        "starts",
	"stop":         "stops: SAs deleted, routes removed",
	"restart":      "restarts: SAs renegotiated, BGP session restarted",
	"routes_moved": "routes and policy rules reinstalled",
	"restart_cgwd": "takes effect when cgwd restarts",
}

func renderReload(stdout, stderr io.Writer, res *control.ReloadResult) {
	for _, w := range res.Warnings {
		// config warnings arrive already prefixed.
		if !strings.HasPrefix(w, "warning: ") {
			w = "warning: " + w
		}
		fmt.Fprintln(stderr, w)
	}
	head := "configuration reloaded"
	if res.DryRun {
		head = "dry run, nothing applied: a reload would change"
	}
	if len(res.Changes) == 0 {
		if res.DryRun {
			fmt.Fprintln(stdout, "dry run: the file matches the running configuration; a reload would change nothing")
			return
		}
		fmt.Fprintln(stdout, head+": no changes")
		return
	}
	fmt.Fprintln(stdout, head+":")
	for i, c := range res.Changes {
		if i < len(res.Details) && res.Details[i].Effect != "" {
			e := res.Details[i].Effect
			if x, ok := effects[e]; ok {
				e = x
			}
			fmt.Fprintf(stdout, "  %s\n    -> %s\n", c, e)
			continue
		}
		fmt.Fprintf(stdout, "  %s\n", c)
	}
}
