//go:build e2e

package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cgwproject/cgw/test/sim"
)

// metricsAddr is where the tests let cgwd serve Prometheus metrics, inside
// the customer namespace (each simulation has its own loopback).
const metricsAddr = "127.0.0.1:9810"

// withMetrics turns the metrics endpoint on in a configuration rendered by
// sim.CgwdConfig.
func withMetrics(t testing.TB, cfg string) string {
	t.Helper()
	const off = `metrics: {listen: ""}`
	if !strings.Contains(cfg, off) {
		t.Fatalf("cgwd config has no %q line to replace:\n%s", off, cfg)
	}
	return strings.Replace(cfg, off, fmt.Sprintf("metrics: {listen: %q}", metricsAddr), 1)
}

// httpGetIn fetches url from inside network namespace ns. The request runs
// on a goroutine locked to its OS thread, which switches namespace and is
// never unlocked, so the thread ends with the goroutine and no other
// goroutine ever runs in ns. No curl/wget needed.
func httpGetIn(ns, url string) (string, error) {
	type result struct {
		body string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		body, err := func() (string, error) {
			f, err := os.Open("/run/netns/" + ns)
			if err != nil {
				return "", err
			}
			defer f.Close()
			if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
				return "", fmt.Errorf("setns %s: %w", ns, err)
			}
			u, err := neturl.Parse(url)
			if err != nil {
				return "", err
			}
			conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
			if err != nil {
				return "", err
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(15 * time.Second))
			req, err := http.NewRequest(http.MethodGet, url, nil)
			if err != nil {
				return "", err
			}
			req.Close = true
			if err := req.Write(conn); err != nil {
				return "", err
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), req)
			if err != nil {
				return "", err
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("HTTP %s", resp.Status)
			}
			return string(b), err
		}()
		ch <- result{body, err}
	}()
	r := <-ch
	if r.err != nil {
		return r.body, fmt.Errorf("GET %s in %s: %w", url, ns, r.err)
	}
	return r.body, nil
}

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

// readLog returns everything cgwd logged so far.
func readLog(t testing.TB, d *Cgwd) string {
	t.Helper()
	b, err := os.ReadFile(d.Proc.Log)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
