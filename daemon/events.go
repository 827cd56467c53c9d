package daemon

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cgwproject/cgw/bgp"
	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/dataplane/route"
	"github.com/cgwproject/cgw/ike"
)

// eventBuffer is how many events a subscriber may lag behind before it
// loses some (and is told how many).
const eventBuffer = 256

// eventHub fans state changes out to `cgwctl events` subscribers. publish
// never blocks: a subscriber whose buffer is full loses the event and has
// it counted. The zero value is ready.
type eventHub struct {
	mu   sync.Mutex
	subs map[*eventSub]struct{}
}

type eventSub struct {
	ch      chan control.Event
	dropped atomic.Uint64
}

func (h *eventHub) subscribe() *eventSub {
	s := &eventSub{ch: make(chan control.Event, eventBuffer)}
	h.mu.Lock()
	if h.subs == nil {
		h.subs = map[*eventSub]struct{}{}
	}
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return s
}

func (h *eventHub) unsubscribe(s *eventSub) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
}

// publish stamps ev and offers it to every subscriber without waiting.
func (h *eventHub) publish(ev control.Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		select {
		case s.ch <- ev:
		default:
			s.dropped.Add(1)
		}
	}
}

// serve delivers s's events to send until ctx ends or send fails. Once the
// buffer is drained after a loss, an EventDropped says how many were lost.
func (s *eventSub) serve(ctx context.Context, send func(control.Event) error) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-s.ch:
			if err := send(ev); err != nil {
				return err
			}
			if len(s.ch) > 0 {
				continue
			}
			if n := s.dropped.Swap(0); n > 0 {
				err := send(control.Event{Time: time.Now(), Type: control.EventDropped, Event: "dropped", Dropped: n,
					Detail: "this subscriber fell behind; events were dropped rather than slow down cgwd"})
				if err != nil {
					return err
				}
			}
		}
	}
}

// Events implements control.Backend.
func (d *Daemon) Events(ctx context.Context, send func(control.Event) error) error {
	s := d.hub.subscribe()
	defer d.hub.unsubscribe(s)
	return s.serve(ctx, send)
}

// ikeEvents names each IKE event for subscribers: its type and what
// happened.
var ikeEvents = map[ike.EventKind][2]string{
	ike.EventIKEUp:             {control.EventIKE, "up"},
	ike.EventIKEDown:           {control.EventIKE, "down"},
	ike.EventIKERekeyed:        {control.EventIKE, "rekeyed"},
	ike.EventPeerDead:          {control.EventIKE, "peer_dead"},
	ike.EventNegotiationFailed: {control.EventIKE, "failed"},
	ike.EventDPDMiss:           {control.EventIKE, "dpd_miss"},
	ike.EventNATDetected:       {control.EventIKE, "nat_detected"},
	ike.EventChildUp:           {control.EventChild, "up"},
	ike.EventChildDown:         {control.EventChild, "down"},
	ike.EventChildRekeyed:      {control.EventChild, "rekeyed"},
}

func ikeEvent(k ike.EventKind) (typ, what string) {
	if n, ok := ikeEvents[k]; ok {
		return n[0], n[1]
	}
	return control.EventIKE, "unknown"
}

// observeBGP publishes each neighbor whose FSM state changed since the
// last call. Daemon loop only (bgpStates is not locked).
func (d *Daemon) observeBGP() {
	if d.bgp == nil {
		return
	}
	d.publishBGP(d.bgp.Status())
}

// observeReconcileBGP is observeBGP and bgp.ReconcileAdmin from one
// listing of GoBGP's peers (the periodic reconciliation).
func (d *Daemon) observeReconcileBGP() {
	if d.bgp == nil {
		return
	}
	st, err := d.bgp.StatusReconciled()
	if err != nil {
		d.log.Warn("reconciling BGP neighbor admin states", "err", err)
	}
	d.publishBGP(st)
}

// publishBGP publishes the neighbors' state changes since the last call.
func (d *Daemon) publishBGP(st []bgp.NeighborStatus) {
	now := map[string]string{}
	for _, n := range append(st, lanSessions(d.bgp)...) {
		now[n.Name] = strings.ToLower(n.State)
		if prev, ok := d.bgpStates[n.Name]; (ok || now[n.Name] != "idle") && prev != now[n.Name] {
			d.hub.publish(bgpEvent(n))
		}
	}
	d.bgpStates = now
}

func bgpEvent(n bgp.NeighborStatus) control.Event {
	ev := control.Event{Type: control.EventBGP, Tunnel: n.Name, Event: strings.ToLower(n.State)}
	switch {
	case n.State == "Established":
		ev.Detail = "session with " + n.PeerAddr.String() + " established"
	case n.AdminDown:
		ev.Detail = "neighbor disabled while the tunnel is down"
	case n.LastError != "":
		ev.Detail = n.LastError
	}
	return ev
}

// routeEvents publishes the difference between two kernel route sets,
// naming next hops by tunnel (devs maps device to tunnel name).
func (d *Daemon) routeEvents(old, now []route.Route, devs map[string]string) {
	via := func(rs []route.Route) map[string]string {
		m := make(map[string]string, len(rs))
		for _, r := range rs {
			var names []string
			for _, nh := range r.NextHops {
				if n, ok := devs[nh.Dev]; ok {
					names = append(names, n)
				} else {
					names = append(names, nh.Dev)
				}
			}
			m[r.Prefix.String()] = "via " + strings.Join(names, "+")
		}
		return m
	}
	a, b := via(old), via(now)
	for _, r := range old {
		p := r.Prefix.String()
		if _, ok := b[p]; !ok {
			d.hub.publish(control.Event{Type: control.EventRoute, Prefix: p, Event: "removed", Detail: a[p]})
		}
	}
	for _, r := range now {
		p := r.Prefix.String()
		switch prev, ok := a[p]; {
		case !ok:
			d.hub.publish(control.Event{Type: control.EventRoute, Prefix: p, Event: "added", Detail: b[p]})
		case prev != b[p]:
			d.hub.publish(control.Event{Type: control.EventRoute, Prefix: p, Event: "changed", Detail: prev + " -> " + b[p]})
		}
	}
}
