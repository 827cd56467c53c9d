//go:build e2e && benchscale

package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/cgwproject/cgw/test/sim"
)

// memRows adds where cgwd's memory is, from its Go runtime metrics (one
// scrape): the heap in use, heap the runtime keeps but has not given back
// to the OS (counted in RSS), goroutine stacks, and the heap size at which
// the next GC runs (GOGC's headroom over the live heap).
func memRows(t *testing.T, s *sim.Sim, when string, row func(what, figure, target string)) {
	t.Helper()
	out, err := s.Exec(sim.Cust, "curl", "-sf", metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	v := map[string]float64{}
	for _, l := range strings.Split(out, "\n") {
		name, val, ok := strings.Cut(l, " ")
		if ok && strings.HasPrefix(name, "go_memstats_") {
			f, _ := strconv.ParseFloat(strings.TrimSpace(val), 64)
			v[strings.TrimPrefix(name, "go_memstats_")] = f
		}
	}
	mib := func(k string) string {
		f, ok := v[k]
		if !ok {
			t.Fatalf("no go_memstats_%s in the metrics", k)
		}
		return fmt.Sprintf("%.1f", f/(1<<20))
	}
	retained := fmt.Sprintf("%.1f", (v["heap_idle_bytes"]-v["heap_released_bytes"])/(1<<20))
	row("heap in use / idle not released / stacks / next GC"+when, fmt.Sprintf("%s / %s / %s / %s MiB", mib("heap_inuse_bytes"), retained, mib("stack_inuse_bytes"), mib("next_gc_bytes")), "")
}
