package main

// The strongSwan rows (issue 18): charon (libipsec) reads ESP from one
// UDP socket and sets no SO_RCVBUF, so its receive buffer is
// net.core.rmem_default (208 KiB), and under a burst that socket, not the
// tunnel peer, drops (RcvbufErrors). cgwd and wireguard-go size their
// sockets themselves (7 MiB), and so does pktgen's sink (16 MiB). rmem_default is read-only inside the simulator's
// network namespaces but global when written in the initial one, so the
// bench raises it there for its run, prints that it did, and restores
// the old value when it ends: on success, on failure, and on SIGINT or
// SIGTERM (which cancel the run's context; run returns through its
// defers). Only a SIGKILL leaves it raised; the old value is printed so
// it can be put back by hand.

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
)

var flagRmemDefault = flag.Int("rmem-default", 4<<20, "raise net.core.rmem_default (global, initial netns) to this many bytes for the run when a strongSwan mode runs, "+
	"so that charon's ESP socket, which sets no SO_RCVBUF, is not the limit of its rows; restored afterwards; 0 leaves it alone")

const rmemDefaultPath = "/proc/sys/net/core/rmem_default"

// raiseRmemDefault raises rmem_default when modes include a strongSwan
// mode and returns the function that restores it.
func raiseRmemDefault(modes []mode) (restore func(), err error) {
	restore = func() {}
	want := *flagRmemDefault
	if want == 0 {
		return restore, nil
	}
	if want < 0 || want > 1<<30 {
		return restore, fmt.Errorf("-rmem-default %d: want 0 or 1..1073741824 bytes", want)
	}
	swan := false
	for _, m := range modes {
		swan = swan || strings.Contains(m.name, "strongswan")
	}
	if !swan {
		return restore, nil
	}
	b, err := os.ReadFile(rmemDefaultPath)
	if err != nil {
		return restore, fmt.Errorf("read %s: %w", rmemDefaultPath, err)
	}
	old, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return restore, fmt.Errorf("read %s: %q: %w", rmemDefaultPath, b, err)
	}
	if old >= want {
		fmt.Printf("bench: net.core.rmem_default is %d, at least -rmem-default %d: left as is\n", old, want)
		return restore, nil
	}
	if err := os.WriteFile(rmemDefaultPath, []byte(strconv.Itoa(want)), 0o644); err != nil {
		return restore, fmt.Errorf("raise net.core.rmem_default to %d (-rmem-default 0 skips it): %w", want, err)
	}
	fmt.Printf("bench: raised net.core.rmem_default from %d to %d for this run (charon sets no SO_RCVBUF); it is restored at the end\n", old, want)
	return func() {
		if err := os.WriteFile(rmemDefaultPath, []byte(strconv.Itoa(old)), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "bench: could not restore net.core.rmem_default to %d: %v; run: sysctl -w net.core.rmem_default=%d\n", old, err, old)
			return
		}
		fmt.Printf("bench: restored net.core.rmem_default to %d\n", old)
	}, nil
}
