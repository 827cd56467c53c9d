package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cgwproject/cgw/config"
	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/control/client"
	"github.com/cgwproject/cgw/dataplane/route"
	"github.com/cgwproject/cgw/ike"
)

// A subscriber on the real control socket sees IKE, CHILD, tunnel and
// route changes as the daemon applies them.
func TestEventsSubscriber(t *testing.T) {
	conn := &connRT{cfg: &config.Connection{Name: "vpn"}}
	tun := &tunnelRT{conn: conn, cfg: &config.Tunnel{Name: "t1"}, dev: "cgw0"}
	conn.tunnels = []*tunnelRT{tun}
	d := &Daemon{log: slog.New(slog.NewTextHandler(io.Discard, nil)), tunnels: map[string]*tunnelRT{"t1": tun}, conns: []*connRT{conn}}

	dir, err := os.MkdirTemp("", "cgwev")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	srv, err := control.Listen(filepath.Join(dir, "cgw.sock"), d, nil)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan control.Event, 16)
	done := make(chan error, 1)
	go func() {
		done <- client.New(filepath.Join(dir, "cgw.sock")).Events(ctx, func(ev control.Event) error {
			got <- ev
			return nil
		})
	}()
	// The subscription exists once the daemon has a subscriber.
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		d.hub.mu.Lock()
		n := len(d.hub.subs)
		d.hub.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(end) {
			t.Fatal("subscriber never registered")
		}
	}

	d.applyEvent(ike.Event{Peer: "t1", Kind: ike.EventIKEUp, Reason: "IKE SA established"})
	d.applyEvent(ike.Event{Peer: "t1", Kind: ike.EventChildUp, Reason: "CHILD SA established"})
	r := []route.Route{{Prefix: netip.MustParsePrefix("10.0.0.0/16"), NextHops: []route.NextHop{{Dev: "cgw0"}}}}
	d.routeEvents(nil, r, map[string]string{"cgw0": "t1"})
	d.applyEvent(ike.Event{Peer: "t1", Kind: ike.EventChildDown, Reason: "deleted by AWS"})
	d.routeEvents(r, nil, map[string]string{"cgw0": "t1"})

	want := []string{
		"ike t1 up IKE SA established",
		"child t1 up CHILD SA established",
		"tunnel t1 up CHILD SA installed, traffic can flow",
		"route 10.0.0.0/16 added via t1",
		"child t1 down deleted by AWS",
		"tunnel t1 down no CHILD SA, routes through it withdrawn",
		"route 10.0.0.0/16 removed via t1",
	}
	for i, w := range want {
		select {
		case ev := <-got:
			s := strings.Join(strings.Fields(fmt.Sprintf("%s %s %s %s %s", ev.Type, ev.Tunnel, ev.Prefix, ev.Event, ev.Detail)), " ")
			if s != w || ev.Time.IsZero() {
				t.Errorf("event %d = %q (time %v), want %q", i, s, ev.Time, w)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("event %d (%q) never arrived", i, w)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Events after cancel: %v", err)
	}
}

// A subscriber that does not read never blocks the daemon: it loses events
// and is told how many.
func TestEventsSlowSubscriberDrops(t *testing.T) {
	var h eventHub
	s := h.subscribe()
	published := make(chan struct{})
	go func() {
		for i := range eventBuffer + 44 {
			h.publish(control.Event{Type: control.EventRoute, Event: "added", Prefix: fmt.Sprint(i)})
		}
		close(published)
	}()
	select {
	case <-published:
	case <-time.After(10 * time.Second):
		t.Fatal("publish blocked on a subscriber that does not read")
	}
	ctx, cancel := context.WithCancel(context.Background())
	var evs []control.Event
	s.serve(ctx, func(ev control.Event) error {
		evs = append(evs, ev)
		if ev.Type == control.EventDropped {
			cancel()
		}
		return nil
	})
	if len(evs) != eventBuffer+1 {
		t.Fatalf("%d events delivered, want %d and the drop notice", len(evs), eventBuffer)
	}
	if last := evs[len(evs)-1]; last.Dropped != 44 || evs[eventBuffer-1].Prefix != fmt.Sprint(eventBuffer-1) {
		t.Errorf("drop notice %+v, want 44 dropped after the first %d events", last, eventBuffer)
	}
	h.unsubscribe(s)
	h.publish(control.Event{Type: control.EventRoute})
	if len(s.ch) != 0 {
		t.Error("unsubscribed subscriber still gets events")
	}
}
