package main

import (
	"strings"
	"testing"
	"time"

	"github.com/cgwproject/cgw/control"
)

// fixtureEvents is t2 failing over to t1: the order cgwd reports it in.
func fixtureEvents() []control.Event {
	at := func(ms int) time.Time { return fixtureNow.Add(time.Duration(ms) * time.Millisecond) }
	return []control.Event{
		{Time: at(0), Type: control.EventIKE, Tunnel: "t1", Event: "up", Detail: "IKE SA established"},
		{Time: at(40), Type: control.EventChild, Tunnel: "t1", Event: "up", Detail: "CHILD SA established"},
		{Time: at(40), Type: control.EventTunnel, Tunnel: "t1", Event: "up", Detail: "CHILD SA installed, traffic can flow"},
		{Time: at(2100), Type: control.EventBGP, Tunnel: "t1", Event: "established", Detail: "session with 169.254.10.1 established"},
		{Time: at(2300), Type: control.EventRoute, Prefix: "10.0.0.0/16", Event: "changed", Detail: "via t2 -> via t1"},
		{Time: at(9000), Type: control.EventDropped, Event: "dropped", Dropped: 12, Detail: "this subscriber fell behind; events were dropped rather than slow down cgwd"},
	}
}

func TestEventsGolden(t *testing.T) {
	sock, fb := startServer(t)
	for _, tc := range []struct{ args, golden string }{
		{"events --count 6", "events.golden"},
		{"events --json --count 6", "events.json.golden"},
	} {
		r := cgwctl(t, "", append([]string{"--socket", sock}, strings.Fields(tc.args)...)...)
		if r.code != 0 || fb.lastCall() != "events" {
			t.Fatalf("%s: exit %d, call %q: %s", tc.args, r.code, fb.lastCall(), r.stderr)
		}
		golden(t, tc.golden, []byte(r.stdout))
	}
	r := cgwctl(t, "", "--socket", sock, "events", "--count", "2", "t1")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 2 || strings.Contains(r.stdout, "route") {
		t.Errorf("events t1: exit %d, stdout %q", r.code, r.stdout)
	}
	for _, tc := range []struct {
		args, stderr string
	}{
		{"events --count -1", "--count must be 0 or more"},
		{"events t1 t2", `unexpected argument "t2"`},
		{"events --count x", "invalid value"},
	} {
		r := cgwctl(t, "", append([]string{"--socket", sock}, strings.Fields(tc.args)...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.stderr) {
			t.Errorf("%s: exit %d, stderr %q", tc.args, r.code, r.stderr)
		}
	}
}
