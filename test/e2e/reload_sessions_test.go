//go:build e2e

package e2e

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/test/sim"
)

// sessionMarks records, for the BGP sessions of connections conns, when
// each last changed state on both sides: BIRD's Since column (to the
// millisecond) and cgwd's established time.
type sessionMarks struct {
	bird map[string]string    // tunnel name -> BIRD's "since"
	cgwd map[string]time.Time // tunnel name -> cgwd's bgp.since
}

func markSessions(t *testing.T, m *sim.Multi, st *control.Status, conns []int) sessionMarks {
	t.Helper()
	sm := sessionMarks{bird: map[string]string{}, cgwd: map[string]time.Time{}}
	for _, k := range conns {
		for i, tn := range m.Conns[k-1].Tunnels {
			b, err := m.BGP(k, i)
			if err != nil {
				t.Fatal(err)
			}
			if !b.Established() {
				t.Fatalf("BIRD: %s is %s, want Established", tn.Name, b.BGPState)
			}
			sm.bird[tn.Name] = b.Since
		}
	}
	for _, c := range st.Connections {
		for _, tn := range c.Tunnels {
			if tn.BGP != nil && tn.BGP.State == "Established" {
				sm.cgwd[tn.Name] = tn.BGP.Since
			}
		}
	}
	return sm
}

// checkSessionsKept fails t for each session of before that changed state
// since it was marked, on either side: a reload that did not touch its
// tunnel must not have reset it. reloaded is when the reload started.
func checkSessionsKept(t *testing.T, m *sim.Multi, st *control.Status, conns []int, before sessionMarks, reloaded time.Time) {
	t.Helper()
	after := markSessions(t, m, st, conns)
	reset := 0
	for name, since := range before.bird {
		if birdSinceMoved(t, since, after.bird[name]) {
			reset++
			t.Errorf("BIRD: the session of %s changed state at %s (was up since %s): a reload that did not touch its tunnel reset it", name, after.bird[name], since)
		}
	}
	for name := range before.bird {
		since, ok := after.cgwd[name]
		if !ok {
			t.Errorf("cgwd: %s has no established BGP session after the reload", name)
			continue
		}
		if since.After(reloaded) {
			t.Errorf("cgwd: the session of %s is established since %s, after the reload started (%s): it was reset", name, since.Format(time.StampMilli), reloaded.Format(time.StampMilli))
		}
	}
	t.Logf("e2e: %d untouched BGP sessions compared on both sides across the reload, %d reset", len(before.bird), reset)
}

// birdSinceMoved reports whether BIRD's Since column for a session moved
// from before to after: the session changed state in between. BIRD prints
// the time of a state change from its monotonic clock, so the same instant
// may differ by a millisecond or two between two calls; a reset moves it
// by seconds.
func birdSinceMoved(t *testing.T, before, after string) bool {
	t.Helper()
	b, errB := time.Parse("15:04:05.000", before)
	a, errA := time.Parse("15:04:05.000", after)
	if errA != nil || errB != nil {
		t.Fatalf("BIRD's since column %q, %q: not hh:mm:ss.mmm", before, after)
	}
	d := a.Sub(b)
	return d < -100*time.Millisecond || d > 100*time.Millisecond
}

// childToBGP returns, from cgwd's log, how long tunnel's BGP session took
// to reach Established after its CHILD SA was installed (the last such
// pair in the log).
func childToBGP(path, tunnel string) (time.Duration, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var child, est time.Time
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		l := sc.Text()
		named := strings.Contains(l, " tunnel="+tunnel+" ") || strings.Contains(l, " neighbor="+tunnel+" ")
		if !named {
			continue
		}
		ts, ok := strings.CutPrefix(strings.Fields(l)[0], "time=")
		if !ok {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			continue
		}
		switch {
		case strings.Contains(l, "tunnel up: CHILD SA installed"):
			child, est = at, time.Time{}
		case strings.Contains(l, "bgp: session established") && !child.IsZero() && est.IsZero():
			est = at
		}
	}
	if child.IsZero() || est.IsZero() {
		return 0, fmt.Errorf("no CHILD SA installed then BGP established for %s in %s", tunnel, path)
	}
	return est.Sub(child), nil
}
