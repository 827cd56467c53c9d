//go:build e2e

package e2e

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgwproject/cgw/test/sim"
)

// TestSystemdNotify runs cgwd as systemd would start a Type=notify unit
// with WatchdogSec= (NOTIFY_SOCKET, WATCHDOG_USEC) and checks the protocol
// on the socket: READY=1 after start-up, STATUS= reaching "2/2 tunnels up",
// WATCHDOG=1 pets, and around a SIGHUP reload RELOADING=1 with
// MONOTONIC_USEC, then READY=1 again.
func TestSystemdNotify(t *testing.T) {
	s := NewSim(t, sim.Options{})
	yaml, err := s.CgwdConfig(sim.CgwdOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sockPath := filepath.Join(s.Dir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cfg := filepath.Join(s.Dir(), "cgwd-notify.yaml")
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	// WATCHDOG_PID is not set: exec (ip netns exec) keeps no fixed pid to
	// give; cgwd accepts a watchdog without one.
	p, err := s.StartProcessEnv(sim.Cust, "cgwd-notify", []string{"NOTIFY_SOCKET=" + sockPath, "WATCHDOG_USEC=2000000"},
		filepath.Join(Binaries(t), "cgwd"), "--config", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)

	// next returns the next datagram's lines, failing after timeout.
	next := func(timeout time.Duration) []string {
		t.Helper()
		buf := make([]byte, 4096)
		conn.SetReadDeadline(time.Now().Add(timeout))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no notification within %v: %v\n%s", timeout, err, p.Tail(2000))
		}
		return strings.Split(string(buf[:n]), "\n")
	}
	// await reads until a datagram has a line with prefix, and returns it.
	await := func(prefix string, timeout time.Duration, seen map[string]bool) string {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for {
			for _, l := range next(time.Until(deadline)) {
				seen[strings.SplitN(l, "=", 2)[0]] = true
				if strings.HasPrefix(l, prefix) {
					return l
				}
			}
		}
	}
	seen := map[string]bool{}
	await("READY=1", 30*time.Second, seen)
	await("STATUS=2/2 tunnels up", 90*time.Second, seen)
	await("WATCHDOG=1", 5*time.Second, seen)

	if err := syscall.Kill(p.Pid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	lines := []string{}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(strings.Join(lines, "\n"), "RELOADING=1") {
		lines = next(time.Until(deadline))
	}
	var mono string
	for _, l := range lines {
		if strings.HasPrefix(l, "MONOTONIC_USEC=") {
			mono = l
		}
	}
	if mono == "" || mono == "MONOTONIC_USEC=0" {
		t.Errorf("RELOADING=1 without a MONOTONIC_USEC: %q", lines)
	}
	await("READY=1", 30*time.Second, seen)
	t.Logf("notify: READY, STATUS=2/2 tunnels up, WATCHDOG pets, reload %q then READY", lines)
}
