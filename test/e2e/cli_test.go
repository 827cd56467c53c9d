//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/test/sim"
)

// eventStream is a running `cgwctl events` whose output is collected.
type eventStream struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	lines  []string
}

// events starts `cgwctl events args...` against d.
func (c *Cgwd) events(t testing.TB, args ...string) *eventStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, "cgwctl"), append([]string{"events"}, args...)...)
	cmd.Env = append(os.Environ(), "CGW_SOCKET="+c.Socket)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	es := &eventStream{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(es.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			es.mu.Lock()
			es.lines = append(es.lines, sc.Text())
			es.mu.Unlock()
		}
		cmd.Wait()
	}()
	t.Cleanup(es.stop)
	return es
}

func (es *eventStream) stop() {
	es.cancel()
	<-es.done
}

func (es *eventStream) text() string {
	es.mu.Lock()
	defer es.mu.Unlock()
	return strings.Join(es.lines, "\n")
}

// wait waits until an event matches want.
func (es *eventStream) wait(t testing.TB, what string, want func(control.Event) bool) {
	t.Helper()
	Eventually(t, 60*time.Second, func() error {
		es.mu.Lock()
		defer es.mu.Unlock()
		for _, l := range es.lines {
			var ev control.Event
			if json.Unmarshal([]byte(l), &ev) == nil && want(ev) {
				return nil
			}
		}
		return fmt.Errorf("no %s event yet; have:\n%s", what, strings.Join(es.lines, "\n"))
	})
}

// TestCLIVerbs runs the issue 12 verbs against a two-tunnel BGP connection
// to the simulator: bgp routes (all three tables), config show (no PSK),
// reload --dry-run (changes nothing) and events (a tunnel taken down and
// up, and a reload that filters the VPC prefix).
func TestCLIVerbs(t *testing.T) {
	s := NewSim(t, sim.Options{})
	d := StartCgwd(t, s, sim.CgwdOptions{})
	jsonEvents := d.events(t, "--json")
	textEvents := d.events(t)
	st := d.waitStatus(t, 90*time.Second, tunnelsUp)
	t1, t2 := tunnelNames(t, d)
	vpc := "10.0.0.0/16"

	t.Run("bgp routes", func(t *testing.T) {
		var recv control.BGPRoutes
		Eventually(t, 60*time.Second, func() error {
			recv = control.BGPRoutes{} // decode into a fresh value: no field of an older poll survives
			if err := d.CtlJSON(&recv, "bgp", "routes"); err != nil {
				return err
			}
			if len(recv.Routes) != 2 || !recv.Routes[0].Installed {
				return fmt.Errorf("want the VPC prefix from both tunnels, one installed: %+v", recv.Routes)
			}
			return nil
		})
		out, err := d.Ctl("bgp", "routes")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("e2e: cgwctl bgp routes:\n%s", out)
		byTunnel := map[string]control.BGPRoute{}
		for _, r := range recv.Routes {
			byTunnel[r.Tunnel] = r
		}
		// AWS sends MED 100 on tunnel 1 and 200 on tunnel 2: tunnel 1's
		// path is best and installed, tunnel 2's is the backup.
		if r := byTunnel[t1]; r.Prefix != vpc || r.MED != 100 || !r.Best || !r.Installed || r.Reason != "" || fmt.Sprint(r.ASPath) != "[64512]" {
			t.Errorf("%s: %+v, want %s best and installed with MED 100, AS path 64512", t1, r, vpc)
		}
		if r := byTunnel[t2]; r.Prefix != vpc || r.MED != 200 || r.Best || r.Installed || r.Reason != "not_best" {
			t.Errorf("%s: %+v, want %s not installed (not_best) with MED 200", t2, r, vpc)
		}

		var adv control.BGPRoutes
		Eventually(t, 30*time.Second, func() error {
			if err := d.CtlJSON(&adv, "bgp", "routes", "advertised"); err != nil {
				return err
			}
			if len(adv.Routes) != 2 {
				return fmt.Errorf("want the LAN prefix on both tunnels: %+v", adv.Routes)
			}
			return nil
		})
		out, _ = d.Ctl("bgp", "routes", "advertised")
		t.Logf("e2e: cgwctl bgp routes advertised:\n%s", out)
		for _, r := range adv.Routes {
			want := "[65000]"
			if r.Tunnel == t2 { // active-passive: the backup tunnel's routes are prepended
				want = "[65000 65000 65000]"
			}
			if r.Prefix != "10.1.0.0/24" || fmt.Sprint(r.ASPath) != want {
				t.Errorf("advertised on %s: %+v, want 10.1.0.0/24 with AS path %s", r.Tunnel, r, want)
			}
		}

		var inst control.BGPRoutes
		if err := d.CtlJSON(&inst, "bgp", "routes", "installed", t1); err != nil {
			t.Fatal(err)
		}
		out, _ = d.Ctl("bgp", "routes", "installed")
		t.Logf("e2e: cgwctl bgp routes installed:\n%s", out)
		if len(inst.Routes) != 1 || inst.Routes[0].Prefix != vpc || !inst.Routes[0].Installed {
			t.Errorf("installed on %s: %+v", t1, inst.Routes)
		}
		if _, stderr, code := d.ctlExit("bgp", "routes", "installed", "nope"); code != 1 || !strings.Contains(stderr, "not found") {
			t.Errorf("unknown tunnel: exit %d, %q", code, stderr)
		}
	})

	t.Run("config show", func(t *testing.T) {
		out, err := d.Ctl("config", "show")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("e2e: cgwctl config show:\n%s", out)
		js, err := d.Ctl("config", "show", "--json")
		if err != nil {
			t.Fatal(err)
		}
		psks := []string{sim.Endpoints[0].DefaultPSK, sim.Endpoints[1].DefaultPSK}
		assertNoSecrets(t, "config show", out, psks...)
		assertNoSecrets(t, "config show --json", js, psks...)
		if strings.Count(out, "psk: "+control.Redacted) != 2 || !strings.Contains(out, "name: "+t2) {
			t.Errorf("config show: want both tunnels with redacted PSKs:\n%s", out)
		}
		if tn := findTunnel(mustStatus(t, d), t1); tn.DPD.IntervalSeconds != 10 || tn.DPD.Interval() != 10*time.Second {
			t.Errorf("status dpd: interval_seconds %v, interval %v; want 10 and 10s", tn.DPD.IntervalSeconds, tn.DPD.Interval())
		}
		var doc control.ConfigDoc
		if err := json.Unmarshal([]byte(js), &doc); err != nil {
			t.Fatal(err)
		}
		if doc.File != d.Config || doc.Connections[0].Tunnels[0].IKELifetime != 28800 || doc.Connections[0].BGP.HoldTime != 30 {
			t.Errorf("config show --json: file %q, ike_lifetime %v, hold_time %v; want %s, 28800 and 30 (seconds)",
				doc.File, doc.Connections[0].Tunnels[0].IKELifetime, doc.Connections[0].BGP.HoldTime, d.Config)
		}
	})

	t.Run("tunnel down and up, seen as events", func(t *testing.T) {
		if _, err := d.Ctl("tunnel", "down", t2); err != nil {
			t.Fatal(err)
		}
		jsonEvents.wait(t, t2+" tunnel down", func(ev control.Event) bool {
			return ev.Type == control.EventTunnel && ev.Tunnel == t2 && ev.Event == "down"
		})
		if _, err := d.Ctl("tunnel", "up", t2); err != nil {
			t.Fatal(err)
		}
		jsonEvents.wait(t, t2+" BGP established again", func(ev control.Event) bool {
			return ev.Type == control.EventBGP && ev.Tunnel == t2 && ev.Event == "established" && ev.Time.After(st.Started)
		})
		for _, w := range []struct{ typ, tunnel, event string }{
			{control.EventChild, t2, "down"}, {control.EventChild, t2, "up"}, {control.EventTunnel, t2, "up"},
			{control.EventIKE, t2, "up"},
		} {
			jsonEvents.wait(t, w.typ+" "+w.tunnel+" "+w.event, func(ev control.Event) bool {
				return ev.Type == w.typ && ev.Tunnel == w.tunnel && ev.Event == w.event
			})
		}
	})

	t.Run("reload --dry-run, then reload", func(t *testing.T) {
		editConfigFile(t, d, func(doc map[string]any) {
			conn := doc["connections"].([]any)[0].(map[string]any)
			conn["bgp"].(map[string]any)["import"] = map[string]any{"deny": []any{vpc}}
		})
		editConfigFile(t, d, setDPD(t, 1, "15s"))
		before := spisOf(t, mustStatus(t, d), t2)
		out, err := d.Ctl("reload", "--dry-run")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("e2e: cgwctl reload --dry-run:\n%s", out)
		var res control.ReloadResult
		if err := d.CtlJSON(&res, "reload", "--dry-run"); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range res.Details {
			got = append(got, c.Section+" "+c.Tunnel+" "+strings.Join(c.Fields, ",")+" "+c.Effect)
		}
		want := []string{"connection  bgp.import.deny in_place", "tunnel " + t2 + " dpd.interval restart"}
		if !res.DryRun || strings.Join(got, "; ") != strings.Join(want, "; ") {
			t.Errorf("dry run: %v (dry_run %v), want %v", got, res.DryRun, want)
		}
		// Restarting a BGP tunnel restarts its session only.
		if w := strings.Join(res.Warnings, "\n"); strings.Contains(w, "speaker") {
			t.Errorf("dry run warnings %q: restarting one BGP tunnel must not restart the BGP speaker", res.Warnings)
		}
		// Nothing was applied: same SAs, the VPC prefix still installed.
		time.Sleep(2 * time.Second)
		if after := spisOf(t, mustStatus(t, d), t2); after != before {
			t.Errorf("dry run renegotiated %s: %+v -> %+v", t2, before, after)
		}
		var recv control.BGPRoutes
		if err := d.CtlJSON(&recv, "bgp", "routes", t1); err != nil || len(recv.Routes) != 1 || !recv.Routes[0].Installed {
			t.Fatalf("after the dry run the VPC prefix should still be installed: %+v %v", recv, err)
		}

		// Tunnel 1's BGP session must outlive tunnel 2's restart.
		bird1, err := s.BGPState(1)
		if err != nil || !bird1.Established() {
			t.Fatalf("BIRD endpoint 1 before the reload: %+v %v", bird1, err)
		}
		reloaded := time.Now()
		if _, err := d.Ctl("reload"); err != nil {
			t.Fatal(err)
		}
		d.waitStatus(t, 60*time.Second, tunnelsUp)
		if b, err := s.BGPState(1); err != nil || !b.Established() || birdSinceMoved(t, bird1.Since, b.Since) {
			t.Errorf("BIRD endpoint 1: %s since %s (was since %s), err %v: restarting tunnel 2 reset tunnel 1's BGP session", b.BGPState, b.Since, bird1.Since, err)
		}
		if tn := d.mustTunnel(t, 1); tn.BGP == nil || tn.BGP.Since.After(reloaded) {
			t.Errorf("cgwd: %s's BGP session %+v is younger than the reload: restarting tunnel 2 reset it", t1, tn.BGP)
		}
		Eventually(t, 30*time.Second, func() error {
			recv = control.BGPRoutes{} // decode into a fresh value: no field of an older poll survives
			if err := d.CtlJSON(&recv, "bgp", "routes"); err != nil {
				return err
			}
			for _, r := range recv.Routes {
				if r.Prefix == vpc && (r.Installed || r.Reason != "deny") {
					return fmt.Errorf("%s on %s: %+v, want not installed (deny)", vpc, r.Tunnel, r)
				}
			}
			if len(recv.Routes) == 0 {
				return fmt.Errorf("no received routes")
			}
			return nil
		})
		out, _ = d.Ctl("bgp", "routes")
		t.Logf("e2e: cgwctl bgp routes after bgp.import.deny [%s]:\n%s", vpc, out)
		jsonEvents.wait(t, "route removed", func(ev control.Event) bool {
			return ev.Type == control.EventRoute && ev.Prefix == vpc && ev.Event == "removed"
		})
	})
	t.Logf("e2e: cgwctl events (text):\n%s", textEvents.text())
	t.Logf("e2e: cgwctl events --json (first lines):\n%s", firstLines(jsonEvents.text(), 4))
}

func firstLines(s string, n int) string {
	ls := strings.SplitN(s, "\n", n+1)
	return strings.Join(ls[:min(n, len(ls))], "\n")
}
