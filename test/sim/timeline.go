package sim

import (
	"bufio"
	"bytes"
	"net/netip"
	"strings"
	"time"
)

// TunnelTimeline is how long one tunnel took, after its CHILD SA was
// installed, to get its BGP session Established and a route to the
// watched prefix through its device into the kernel, read from a cgwd log
// in text format (ParseBGPTimeline). Zero durations: not (yet) seen.
type TunnelTimeline struct {
	Tunnel      string        `json:"tunnel"`
	Device      string        `json:"device"`
	ChildUp     time.Time     `json:"child_up"`
	Established time.Duration `json:"established_after_child"`
	Routes      time.Duration `json:"routes_after_child"`
}

// ParseBGPTimeline reads cgwd's text log (slog: time=… msg=… key=value)
// and returns, for each tunnel name, the first CHILD SA installation
// ("tunnel up"), the first "bgp: session established" after it and the
// first "routes updated" after it whose routes send prefix through the
// tunnel's device ("tunnel configured" names the device).
func ParseBGPTimeline(log []byte, tunnels []string, prefix netip.Prefix) []TunnelTimeline {
	out := make([]TunnelTimeline, len(tunnels))
	idx := map[string]int{}
	for i, n := range tunnels {
		out[i].Tunnel = n
		idx[n] = i
	}
	sc := bufio.NewScanner(bytes.NewReader(log))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		ts, ok := logTime(line)
		if !ok {
			continue
		}
		msg := logField(line, "msg")
		switch msg {
		case "tunnel configured":
			if i, ok := idx[logField(line, "tunnel")]; ok {
				out[i].Device = logField(line, "device")
			}
		case "tunnel up: CHILD SA installed, traffic can flow":
			if i, ok := idx[logField(line, "tunnel")]; ok && out[i].ChildUp.IsZero() {
				out[i].ChildUp = ts
			}
		case "bgp: session established":
			if i, ok := idx[logField(line, "neighbor")]; ok && !out[i].ChildUp.IsZero() && out[i].Established == 0 {
				out[i].Established = max(ts.Sub(out[i].ChildUp), time.Millisecond)
			}
		case "routes updated":
			routes := logField(line, "routes")
			for i := range out {
				t := &out[i]
				if t.ChildUp.IsZero() || t.Routes != 0 || t.Device == "" {
					continue
				}
				if routeVia(routes, prefix.String(), t.Device) {
					t.Routes = max(ts.Sub(t.ChildUp), time.Millisecond)
				}
			}
		}
	}
	return out
}

// routeVia reports whether a "routes updated" value ("P via dev1+dev2, …")
// routes prefix through dev.
func routeVia(routes, prefix, dev string) bool {
	for _, r := range strings.Split(routes, ", ") {
		p, via, ok := strings.Cut(r, " via ")
		if !ok || p != prefix {
			continue
		}
		for _, d := range strings.Split(via, "+") {
			if d == dev {
				return true
			}
		}
	}
	return false
}

func logTime(line string) (time.Time, bool) {
	v := logField(line, "time")
	if v == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	return t, err == nil
}

// logField returns the value of key in a slog text line, unquoted.
func logField(line, key string) string {
	i := 0
	for i < len(line) {
		j := strings.Index(line[i:], key+"=")
		if j < 0 {
			return ""
		}
		j += i
		if j > 0 && line[j-1] != ' ' {
			i = j + len(key) + 1
			continue
		}
		v := line[j+len(key)+1:]
		if strings.HasPrefix(v, `"`) {
			// A quoted value: up to the next unescaped quote.
			var b strings.Builder
			for k := 1; k < len(v); k++ {
				switch v[k] {
				case '\\':
					if k+1 < len(v) {
						k++
						b.WriteByte(v[k])
					}
				case '"':
					return b.String()
				default:
					b.WriteByte(v[k])
				}
			}
			return b.String()
		}
		if k := strings.IndexByte(v, ' '); k >= 0 {
			return v[:k]
		}
		return v
	}
	return ""
}
