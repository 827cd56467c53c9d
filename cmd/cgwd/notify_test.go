package main

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cgwproject/cgw/control"
)

// listenNotify stands in for systemd: a unixgram socket in NOTIFY_SOCKET.
func listenNotify(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return c
}

func recvNotify(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	return string(buf[:n])
}

func TestNotifyReadyReload(t *testing.T) {
	c := listenNotify(t)
	n := newNotifier()
	n.ready()
	if got := recvNotify(t, c); got != "READY=1" {
		t.Errorf("ready: %q", got)
	}
	before := monotonicUsec()
	n.reloading()
	got := recvNotify(t, c)
	lines := strings.Split(got, "\n")
	if len(lines) != 2 || lines[0] != "RELOADING=1" || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
		t.Fatalf("reloading: %q", got)
	}
	usec, err := strconv.ParseInt(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64)
	if err != nil || usec < before || usec > monotonicUsec() {
		t.Errorf("MONOTONIC_USEC=%d is not CLOCK_MONOTONIC now (%d..%d): %v", usec, before, monotonicUsec(), err)
	}
	n.reloaded()
	if got := recvNotify(t, c); got != "READY=1" {
		t.Errorf("reloaded: %q", got)
	}
}

func TestNotifyOffWithoutSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n := newNotifier()
	n.ready() // must not panic or block
	called := false
	n.supervise(context.Background(), func(context.Context) (*control.Status, error) { called = true; return nil, nil })
	if called {
		t.Error("supervise polled the daemon without systemd")
	}
}

func statusWith(states ...string) *control.Status {
	c := &control.Connection{Name: "vpn"}
	for i, s := range states {
		c.Tunnels = append(c.Tunnels, &control.Tunnel{Name: "t" + strconv.Itoa(i+1), State: s})
	}
	return &control.Status{Connections: []*control.Connection{c}}
}

func TestStatusLine(t *testing.T) {
	for _, tc := range []struct {
		st   *control.Status
		want string
	}{
		{statusWith("up", "up"), "2/2 tunnels up"},
		{statusWith("up", "negotiating"), "1/2 tunnels up, 1 negotiating"},
		{statusWith("down", "down"), "0/2 tunnels up"},
		{&control.Status{}, "0/0 tunnels up"},
	} {
		if got := statusLine(tc.st); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

// The watchdog is petted only while the daemon answers; STATUS= is sent
// when it changes.
func TestSuperviseWatchdog(t *testing.T) {
	c := listenNotify(t)
	t.Setenv("WATCHDOG_USEC", "200000") // 100 ms pets
	t.Setenv("WATCHDOG_PID", "")
	var healthy atomic.Bool
	healthy.Store(true)
	var calls atomic.Int32
	status := func(context.Context) (*control.Status, error) {
		calls.Add(1)
		if !healthy.Load() {
			return nil, errors.New("wedged")
		}
		return statusWith("up", "up"), nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { newNotifier().supervise(ctx, status); close(done) }()
	defer func() { cancel(); <-done }()
	if got := recvNotify(t, c); got != "WATCHDOG=1\nSTATUS=2/2 tunnels up" {
		t.Errorf("first notification %q", got)
	}
	if got := recvNotify(t, c); got != "WATCHDOG=1" {
		t.Errorf("second notification %q (STATUS= unchanged must not repeat)", got)
	}
	healthy.Store(false)
	// Drain what was in flight, then expect silence across several ticks.
	c.SetReadDeadline(time.Now().Add(150 * time.Millisecond))
	buf := make([]byte, 512)
	for {
		if _, err := c.Read(buf); err != nil {
			break
		}
	}
	n0 := calls.Load()
	c.SetReadDeadline(time.Now().Add(600 * time.Millisecond))
	if n, err := c.Read(buf); err == nil {
		t.Errorf("watchdog petted while the daemon does not answer: %q", buf[:n])
	}
	if calls.Load() <= n0 {
		t.Error("supervise stopped asking the daemon")
	}
}

func TestWatchdogForOtherPID(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "1000000")
	t.Setenv("WATCHDOG_PID", "1")
	if d := watchdogInterval(); d != 0 {
		t.Errorf("interval %v for another process's watchdog", d)
	}
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	if d := watchdogInterval(); d != 500*time.Millisecond {
		t.Errorf("interval %v, want half of WATCHDOG_USEC", d)
	}
}
