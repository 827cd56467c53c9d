// Package human formats durations and byte counts for people, the same way
// in cgwctl's output and in the daemon's diagnose findings.
package human

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Duration prints d with at most two adjacent units: "250ms", "3.2s", "42s",
// "4m30s", "8h", "2h3m", "2d2h". Negative durations print their magnitude.
func Duration(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	switch {
	case d < time.Second:
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	case d < 10*time.Second:
		return strings.TrimSuffix(strconv.FormatFloat(d.Seconds(), 'f', 1, 64), ".0") + "s"
	}
	d = d.Round(time.Second)
	units := []struct {
		n time.Duration
		s string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}}
	var b strings.Builder
	parts := 0
	for _, u := range units {
		if d >= u.n && parts < 2 {
			fmt.Fprintf(&b, "%d%s", d/u.n, u.s)
			d %= u.n
			parts++
		} else if parts > 0 {
			parts = 2 // only adjacent units: "1h5s" would read as more precise than it is
		}
	}
	return b.String()
}

// Bytes prints a byte count with a binary unit: "900 B", "87.9 KiB".
func Bytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
