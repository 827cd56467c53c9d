package sim

import (
	"net/netip"
	"testing"
	"time"
)

func TestParseBGPTimeline(t *testing.T) {
	log := `time=2026-12-03T15:01:21.270Z level=INFO msg="tunnel configured" tunnel=c-t1 connection=c peer=192.0.2.1 device=cgw0 inside=169.254.15.194/30
time=2026-12-03T15:01:21.271Z level=INFO msg="tunnel configured" tunnel=c-t2 connection=c peer=192.0.2.2 device=cgw1 inside=169.254.13.238/30
time=2026-12-03T15:01:21.281Z level=INFO msg="tunnel up: CHILD SA installed, traffic can flow" tunnel=c-t1 reason="CHILD SA established using aes128gcm16, 0.0.0.0/0 === 0.0.0.0/0"
time=2026-12-03T15:01:21.284Z level=INFO msg="tunnel up: CHILD SA installed, traffic can flow" tunnel=c-t2 reason="x"
time=2026-12-03T15:01:21.400Z level=INFO msg="bgp: session established" component=bgp neighbor=c-t1 peer=169.254.15.193 from=OpenConfirm to=Established
time=2026-12-03T15:01:21.500Z level=INFO msg="routes updated" routes="10.0.0.0/16 via cgw0, 10.9.0.0/16 via cgw1"
time=2026-12-03T15:01:22.284Z level=INFO msg="bgp: session established" component=bgp neighbor=c-t2 peer=169.254.13.237 from=OpenConfirm to=Established
time=2026-12-03T15:01:22.384Z level=INFO msg="routes updated" routes="10.0.0.0/16 via cgw0+cgw1"
`
	tl := ParseBGPTimeline([]byte(log), []string{"c-t1", "c-t2", "c-t3"}, netip.MustParsePrefix("10.0.0.0/16"))
	want := []struct {
		dev         string
		est, routes time.Duration
	}{
		{"cgw0", 119 * time.Millisecond, 219 * time.Millisecond},
		{"cgw1", time.Second, 1100 * time.Millisecond},
		{"", 0, 0},
	}
	for i, w := range want {
		g := tl[i]
		if g.Device != w.dev || g.Established != w.est || g.Routes != w.routes {
			t.Errorf("%s: got device %q established %v routes %v, want %q %v %v", g.Tunnel, g.Device, g.Established, g.Routes, w.dev, w.est, w.routes)
		}
	}
	if v := logField(`time=x msg="a \"quoted\" b" k=v`, "msg"); v != `a "quoted" b` {
		t.Errorf("quoted field: %q", v)
	}
	if v := logField(`time=x xk=1 k=v`, "k"); v != "v" {
		t.Errorf("field after a longer key: %q", v)
	}
}
