package main

import (
	"fmt"
	"strings"
)

var reloadCmd = &command{
	name:    "reload",
	args:    "[--socket PATH]",
	summary: "re-read cgwd's configuration file and apply only what changed",
	help: `Tunnels whose configuration did not change are not disturbed. The changes
applied are printed one per line; warnings go to stderr. The same happens on
SIGHUP to cgwd. Check the file first with cgwctl config check.`,
	run: runReload,
}

func runReload(e *env, f *flags, args []string) error {
	sock := socketFlag(f)
	pos, err := f.parse(e, args)
	if err != nil {
		return err
	}
	if err := noArgs(pos); err != nil {
		return err
	}
	ctx, cancel := requestContext(requestTimeout)
	defer cancel()
	res, err := e.daemon(*sock).Reload(ctx)
	if err != nil {
		return err
	}
	for _, w := range res.Warnings {
		// config warnings arrive already prefixed.
		if !strings.HasPrefix(w, "warning: ") {
			w = "warning: " + w
		}
		fmt.Fprintln(e.stderr, w)
	}
	if len(res.Changes) == 0 {
		_, err = fmt.Fprintln(e.stdout, "configuration reloaded: no changes")
		return err
	}
	fmt.Fprintln(e.stdout, "configuration reloaded:")
	for _, c := range res.Changes {
		fmt.Fprintf(e.stdout, "  %s\n", c)
	}
	return nil
}
