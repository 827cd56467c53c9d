package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cgwproject/cgw/control/client"
)

// Plumbing shared by the verbs that talk to cgwd over its control socket
// (status, tunnel, reload, diagnose).

// socketEnv overrides the default control socket, like the global --socket.
const socketEnv = "CGW_SOCKET"

// defaultSocket is the control socket used when no --socket flag is given:
// $CGW_SOCKET, else the daemon's default.
func defaultSocket() string {
	if s := os.Getenv(socketEnv); s != "" {
		return s
	}
	return client.DefaultSocket
}

// socketFlag defines the per-verb --socket flag; an empty value means the
// global one (cgwctl --socket PATH VERB), whose default is defaultSocket.
func socketFlag(f *flags) *string {
	return f.String("socket", "", "control socket of cgwd (default: the global --socket, $"+socketEnv+", else "+client.DefaultSocket+")")
}

// daemon returns a client for the verb's socket.
func (e *env) daemon(verbSocket string) *client.Client {
	if verbSocket != "" {
		return client.New(verbSocket)
	}
	if e.socket != "" {
		return client.New(e.socket)
	}
	return client.New(defaultSocket())
}

// requestTimeout bounds one request; diagnose waits for a measurement
// window and MTU probes, so it gets longer.
const (
	requestTimeout  = 30 * time.Second
	diagnoseTimeout = 2 * time.Minute
)

func requestContext(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// noArgs rejects positional arguments of verbs that take none.
func noArgs(pos []string) error {
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	return nil
}

// writeJSON prints v as indented JSON: the control API's v1 wire format, a
// stable interface for scripts.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// human prints a duration for people, at most two adjacent units: "250ms",
// "3.2s", "42s", "4m30s", "8h", "2h3m", "2d2h".
func human(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	switch {
	case d < time.Second:
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	case d < 10*time.Second:
		return strings.TrimSuffix(strconv.FormatFloat(d.Seconds(), 'f', 1, 64), ".0") + "s"
	}
	d = d.Round(time.Second)
	units := []struct {
		n time.Duration
		s string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}}
	var b strings.Builder
	parts := 0
	for _, u := range units {
		if d >= u.n && parts < 2 {
			fmt.Fprintf(&b, "%d%s", d/u.n, u.s)
			d %= u.n
			parts++
		} else if parts > 0 {
			parts = 2 // "1h5s" would read as more precise than it is
		}
	}
	return b.String()
}

// bytesIEC prints a byte count with a binary unit: "900 B", "87.9 KiB".
func bytesIEC(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// plural prints "1 packet", "2 packets".
func plural(n uint64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.FormatUint(n, 10) + " " + noun + "s"
}
