//go:build e2e

package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/cgwproject/cgw/test/sim"
)

// metricSample is one line of the Prometheus text format.
type metricSample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// parseMetrics parses the Prometheus text exposition format (comments
// skipped, no timestamps expected).
func parseMetrics(text string) ([]metricSample, error) {
	var out []metricSample
	for _, l := range strings.Split(text, "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		m := metricSample{Labels: map[string]string{}}
		rest := l
		if i := strings.IndexAny(l, "{ "); i >= 0 && l[i] == '{' {
			m.Name = l[:i]
			rest = l[i+1:]
			for !strings.HasPrefix(rest, "}") {
				k, after, ok := strings.Cut(rest, `="`)
				if !ok {
					return nil, fmt.Errorf("metrics: bad labels in %q", l)
				}
				var v strings.Builder
				j := 0
				for ; j < len(after) && after[j] != '"'; j++ {
					if after[j] == '\\' && j+1 < len(after) {
						j++
					}
					v.WriteByte(after[j])
				}
				if j == len(after) {
					return nil, fmt.Errorf("metrics: unterminated label value in %q", l)
				}
				m.Labels[strings.TrimPrefix(k, ",")] = v.String()
				rest = strings.TrimPrefix(after[j+1:], ",")
			}
			rest = strings.TrimSpace(rest[1:])
		} else {
			name, v, ok := strings.Cut(l, " ")
			if !ok {
				return nil, fmt.Errorf("metrics: no value in %q", l)
			}
			m.Name, rest = name, v
		}
		f, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics: value in %q: %w", l, err)
		}
		m.Value = f
		out = append(out, m)
	}
	return out, nil
}

// metric returns the value of the one series of name whose labels include
// the given key/value pairs, and whether it exists.
func metric(ms []metricSample, name string, kv ...string) (float64, bool) {
	for _, m := range ms {
		if m.Name != name {
			continue
		}
		match := true
		for i := 0; i+1 < len(kv); i += 2 {
			if m.Labels[kv[i]] != kv[i+1] {
				match = false
				break
			}
		}
		if match {
			return m.Value, true
		}
	}
	return 0, false
}

// scrape fetches and parses cgwd's metrics page (and returns its text).
func scrape(t testing.TB, s *sim.Sim) ([]metricSample, string) {
	t.Helper()
	body, err := httpGetIn(s.NS(sim.Cust), "http://"+metricsAddr+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := parseMetrics(body)
	if err != nil {
		t.Fatal(err)
	}
	return ms, body
}
