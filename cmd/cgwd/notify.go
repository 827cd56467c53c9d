package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cgwproject/cgw/control"
)

// notifier speaks systemd's sd_notify protocol (Type=notify): READY=1 after
// start-up, RELOADING=1 + MONOTONIC_USEC around a SIGHUP reload, STATUS=
// with the number of tunnels up, and WATCHDOG=1 while the daemon answers.
// With NOTIFY_SOCKET unset every method does nothing.
type notifier struct {
	addr *net.UnixAddr // nil: not under systemd
}

func newNotifier() *notifier {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return &notifier{}
	}
	if path[0] == '@' {
		path = "\x00" + path[1:]
	}
	return &notifier{addr: &net.UnixAddr{Name: path, Net: "unixgram"}}
}

// send writes one datagram of newline-separated assignments; failures are
// ignored (systemd going away must not stop the gateway).
func (n *notifier) send(lines ...string) {
	if n.addr == nil {
		return
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return
	}
	defer c.Close()
	c.Write([]byte(strings.Join(lines, "\n")))
}

func (n *notifier) ready()    { n.send("READY=1") }
func (n *notifier) stopping() { n.send("STOPPING=1") }
func (n *notifier) reloaded() { n.send("READY=1") }
func (n *notifier) reloading() {
	n.send("RELOADING=1", "MONOTONIC_USEC="+strconv.FormatInt(monotonicUsec(), 10))
}

// monotonicUsec is CLOCK_MONOTONIC in microseconds, which systemd needs
// with RELOADING=1 to match the reload to the ExecReload= it ran.
func monotonicUsec() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Sec*1_000_000 + ts.Nsec/1_000
}

// statusLine is the STATUS= text: "2/2 tunnels up" (plus the negotiating
// ones when any are).
func statusLine(st *control.Status) string {
	var up, neg, total int
	for _, c := range st.Connections {
		for _, t := range c.Tunnels {
			total++
			switch t.State {
			case "up":
				up++
			case "negotiating":
				neg++
			}
		}
	}
	s := fmt.Sprintf("%d/%d tunnels up", up, total)
	if neg > 0 {
		s += fmt.Sprintf(", %d negotiating", neg)
	}
	return s
}

// watchdogInterval is half of $WATCHDOG_USEC (systemd's recommendation),
// or 0 when the watchdog is off or meant for another process.
func watchdogInterval() time.Duration {
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	return time.Duration(usec) * time.Microsecond / 2
}

// supervise updates STATUS= every few seconds and, when systemd asked for
// a watchdog, sends WATCHDOG=1 only after the daemon answered a status
// request in time: a wedged daemon stops petting and systemd restarts it.
func (n *notifier) supervise(ctx context.Context, status func(context.Context) (*control.Status, error)) {
	if n.addr == nil {
		return
	}
	every := 5 * time.Second
	wd := watchdogInterval()
	if wd > 0 && wd < every {
		every = wd
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	last := ""
	for {
		qctx, cancel := context.WithTimeout(ctx, every)
		st, err := status(qctx)
		cancel()
		if err == nil {
			lines := []string{}
			if wd > 0 {
				lines = append(lines, "WATCHDOG=1")
			}
			if s := statusLine(st); s != last {
				lines = append(lines, "STATUS="+s)
				last = s
			}
			if len(lines) > 0 {
				n.send(lines...)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
