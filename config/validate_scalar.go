package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Scalar helpers. Each reports its own error and returns the zero value (or
// the default) on failure so validation can go on.

func (c *checker) enum(path string, r *string, def string, allowed ...string) string {
	if r == nil {
		return def
	}
	v := *r
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	if v == "warning" && path == "log.level" {
		return "warn"
	}
	c.errorf(path, "use one of: "+strings.Join(allowed, ", "), "invalid value %q", v)
	return def
}

func (c *checker) intRange(path string, r *int64, def, lo, hi int64, fix string) int64 {
	if r == nil {
		return def
	}
	if *r < lo || *r > hi {
		c.errorf(path, fix, "%d is out of range", *r)
		return def
	}
	return *r
}

// duration parses "30s", "1h30m" or a bare number of seconds ("28800").
func (c *checker) duration(path string, r *string, def time.Duration) time.Duration {
	if r == nil {
		return def
	}
	s := strings.TrimSpace(*r)
	var d time.Duration
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		d = time.Duration(n) * time.Second
	} else if d, err = time.ParseDuration(s); err != nil {
		c.errorf(path, `write a duration such as "30s", "15m" or "8h", or a number of seconds`, "invalid duration %q", s)
		return def
	}
	if d < 0 {
		c.errorf(path, "use a positive duration", "negative duration %v", d)
		return def
	}
	return d
}

func (c *checker) durationRange(path string, r *string, def, lo, hi time.Duration, fix string) time.Duration {
	if r == nil {
		return def
	}
	d := c.duration(path, r, def)
	if d < lo || d > hi {
		c.errorf(path, fix, "%v is out of range", d)
		return def
	}
	return d
}

func (c *checker) addr(path, s, fix string) netip.Addr {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil || a.Zone() != "" {
		c.errorf(path, fix, "invalid IP address %q", s)
		return netip.Addr{}
	}
	return a.Unmap()
}

func (c *checker) optAddr(path string, r *string, fix string) netip.Addr {
	if r == nil || *r == "" {
		return netip.Addr{}
	}
	return c.addr(path, *r, fix)
}

func (c *checker) prefix(path, s, fix string) (netip.Prefix, bool) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		c.errorf(path, fix, "invalid prefix %q (want address/length, e.g. 10.1.0.0/16)", s)
		return netip.Prefix{}, false
	}
	if p.Masked() != p {
		c.errorf(path, fmt.Sprintf("write %v", p.Masked()), "%v has bits set after the prefix length", p)
		return netip.Prefix{}, false
	}
	return p, true
}

func (c *checker) prefixList(path string, r *[]string, def []netip.Prefix, fix string) []netip.Prefix {
	if r == nil {
		return def
	}
	var out []netip.Prefix
	seen := map[netip.Prefix]bool{}
	for i, s := range *r {
		p, ok := c.prefix(indexPath(path, i), s, fix)
		if !ok {
			continue
		}
		if seen[p] {
			c.errorf(indexPath(path, i), "remove the duplicate", "%v is listed twice", p)
			continue
		}
		seen[p] = true
		out = append(out, p)
	}
	return out
}
