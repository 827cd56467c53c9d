//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/test/sim"
)

// editConfigFile rewrites cgwd's configuration file through edit.
func editConfigFile(t testing.TB, d *Cgwd, edit func(doc map[string]any)) {
	t.Helper()
	b, err := os.ReadFile(d.Config)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.Config, []byte(editYAML(t, string(b), edit)), 0o600); err != nil {
		t.Fatal(err)
	}
}

// setDPD sets tunnel i's (0-based) dpd.interval in a decoded configuration.
func setDPD(t testing.TB, i int, interval string) func(doc map[string]any) {
	return func(doc map[string]any) {
		yamlTunnels(t, doc)[i]["dpd"] = map[string]any{"interval": interval}
	}
}

// TestOpsReload changes only tunnel 2's DPD interval, once applied by
// SIGHUP and once by cgwctl reload: tunnel 2 is renegotiated with the new
// setting and tunnel 1 keeps its SAs (same SPIs). An invalid edit is
// refused with the field named, by either path, and changes nothing.
func TestOpsReload(t *testing.T) {
	s := NewSim(t, sim.Options{Routing: sim.RoutingStatic})
	d := StartCgwd(t, s, sim.CgwdOptions{})
	st := d.waitStatus(t, 30*time.Second, childrenUp)
	t1, t2 := tunnelNames(t, d)
	keep := spisOf(t, st, t1)

	// reloaded waits until tunnel 2 runs with interval and checks tunnel 1
	// was left alone.
	reloaded := func(t *testing.T, old spiState, interval time.Duration) spiState {
		t.Helper()
		st := d.waitStatus(t, 20*time.Second, func(st *control.Status) error {
			tn := findTunnel(st, t2)
			if tn == nil || tn.DPD.Interval() != interval || tn.ChildState != "Established" || tn.IKE == nil || tn.IKE.SPIi == old.IKEi {
				return fmt.Errorf("%s not renegotiated with dpd %v yet: %+v", t2, interval, tn)
			}
			return childrenUp(st)
		})
		if got := spisOf(t, st, t1); got != keep {
			t.Errorf("reload disturbed %s, whose config did not change: SPIs %+v -> %+v", t1, keep, got)
		}
		if tn := findTunnel(st, t1); tn.DPD.Interval() != 10*time.Second {
			t.Errorf("%s dpd interval %v, want 10s", t1, tn.DPD.Interval())
		}
		if err := swanUp(s, 2); err != nil {
			t.Error(err)
		}
		pingInside(t, s, 1)
		pingInside(t, s, 2)
		return spisOf(t, st, t2)
	}

	t2spi := spisOf(t, st, t2)
	t.Run("SIGHUP", func(t *testing.T) {
		editConfigFile(t, d, setDPD(t, 1, "15s"))
		if err := d.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		t2spi = reloaded(t, t2spi, 15*time.Second)
		if len(logLines(t, d, "reload done", t2)) == 0 {
			t.Errorf("cgwd's log has no \"reload done\" line naming %s", t2)
		}
	})

	t.Run("cgwctl reload", func(t *testing.T) {
		editConfigFile(t, d, setDPD(t, 1, "20s"))
		out, err := d.Ctl("reload")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("e2e: cgwctl reload:\n%s", out)
		if !strings.Contains(out, t2) || strings.Contains(out, t1+" ") || strings.Contains(out, t1+":") {
			t.Errorf("reload output should name the change to %s only:\n%s", t2, out)
		}
		t2spi = reloaded(t, t2spi, 20*time.Second)

		out, err = d.Ctl("reload")
		if err != nil || !strings.Contains(out, "no changes") {
			t.Errorf("reload of an unchanged file: %q, %v; want \"no changes\"", out, err)
		}
	})

	t.Run("invalid edit", func(t *testing.T) {
		good, err := os.ReadFile(d.Config)
		if err != nil {
			t.Fatal(err)
		}
		editConfigFile(t, d, setDPD(t, 1, "banana"))
		stdout, stderr, code := d.ctlExit("reload")
		t.Logf("e2e: cgwctl reload of an invalid file: exit %d: %s", code, strings.TrimSpace(stderr))
		if code == 0 {
			t.Errorf("cgwctl reload accepted an invalid file: %s", stdout)
		}
		const field = "connections[0].tunnels[1].dpd.interval"
		if !strings.Contains(stderr, field) || !strings.Contains(stderr, "banana") {
			t.Errorf("reload error does not name the field %s and the bad value: %q", field, stderr)
		}
		if err := d.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		Eventually(t, 10*time.Second, func() error {
			if len(logLines(t, d, "reload failed", field)) == 0 {
				return fmt.Errorf("no \"reload failed\" log line naming %s after SIGHUP", field)
			}
			return nil
		})
		time.Sleep(time.Second) // let anything that would (wrongly) restart start
		st, err := d.status()
		if err != nil {
			t.Fatal(err)
		}
		if got := spisOf(t, st, t1); got != keep {
			t.Errorf("invalid reload changed %s: %+v -> %+v", t1, keep, got)
		}
		if got := spisOf(t, st, t2); got != t2spi {
			t.Errorf("invalid reload changed %s: %+v -> %+v", t2, t2spi, got)
		}
		if tn := findTunnel(st, t2); tn.DPD.Interval() != 20*time.Second {
			t.Errorf("invalid reload changed %s's dpd interval to %v", t2, tn.DPD.Interval())
		}
		assertAlive(t, d)
		// Restore the good file: a reload now finds nothing to do.
		if err := os.WriteFile(d.Config, good, 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := d.Ctl("reload"); err != nil || !strings.Contains(out, "no changes") {
			t.Errorf("reload after restoring the file: %q, %v; want \"no changes\"", out, err)
		}
	})
}
