package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/cgwproject/cgw/control"
)

var eventsCmd = &command{
	name:    "events",
	args:    "[--json] [--count N] [--socket PATH] [TUNNEL]",
	summary: "stream tunnel, IKE, CHILD SA, BGP and route changes as they happen",
	help: `One line per change, until interrupted: tunnel up/down (CHILD SA installed or
gone), ike up/down/rekeyed/failed/peer_dead/dpd_miss/nat_detected, child
up/down/rekeyed, bgp (the neighbor's new FSM state), route added/changed/
removed (kernel routes, next hops by tunnel). TUNNEL shows only that
tunnel's events (route events name no tunnel and are left out). cgwd never
waits for a slow reader: a reader that falls 256 events behind loses events
and gets a "dropped" line saying how many. --json prints one JSON object
per line (control API v1). --count N exits after N events.`,
	run: runEvents,
}

func runEvents(e *env, f *flags, args []string) error {
	asJSON := f.Bool("json", false, "print one JSON object per line (control API v1 format)")
	count := f.Int("count", 0, "exit after `N` events (0: run until interrupted)")
	sock := socketFlag(f)
	pos, err := f.parse(e, args)
	if err != nil {
		return err
	}
	var tunnel string
	if len(pos) > 0 {
		tunnel, pos = pos[0], pos[1:]
	}
	if err := noArgs(pos); err != nil {
		return err
	}
	if *count < 0 {
		return usagef("--count must be 0 or more, got %d", *count)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errEnough := errors.New("enough")
	n := 0
	err = e.daemon(*sock).Events(ctx, func(ev control.Event) error {
		if tunnel != "" && ev.Tunnel != tunnel && ev.Type != control.EventDropped {
			return nil
		}
		var err error
		if *asJSON {
			err = writeJSONLine(e.stdout, ev)
		} else {
			_, err = io.WriteString(e.stdout, renderEvent(ev))
		}
		if err != nil {
			return err
		}
		if n++; *count > 0 && n >= *count {
			return errEnough
		}
		return nil
	})
	if errors.Is(err, errEnough) {
		return nil
	}
	return err
}

// renderEvent is one line: time, type, subject, what happened, why.
func renderEvent(ev control.Event) string {
	subject := ev.Tunnel
	if ev.Prefix != "" {
		subject = ev.Prefix
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %-7s %-18s %s", ev.Time.Format("2006-01-02T15:04:05.000Z07:00"), ev.Type, dash(subject), ev.Event)
	if ev.Type == control.EventDropped {
		fmt.Fprintf(&b, " %d events", ev.Dropped)
	}
	if ev.Detail != "" {
		b.WriteString(": " + ev.Detail)
	}
	b.WriteString("\n")
	return b.String()
}
