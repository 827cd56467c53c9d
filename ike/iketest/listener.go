package iketest

import (
	"sync"

	"github.com/cgwproject/cgw/ike"
)

// FakeListener records events.
type FakeListener struct {
	mu     sync.Mutex
	events []ike.Event
}

func (l *FakeListener) OnEvent(e ike.Event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

// Events returns the recorded events and clears the record if reset is set.
func (l *FakeListener) Events(reset bool) []ike.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := append([]ike.Event(nil), l.events...)
	if reset {
		l.events = nil
	}
	return out
}

// Kinds returns the kinds of the recorded events, in order.
func (l *FakeListener) Kinds() []ike.EventKind {
	var k []ike.EventKind
	for _, e := range l.Events(false) {
		k = append(k, e.Kind)
	}
	return k
}

// Has reports whether an event of kind k was recorded.
func (l *FakeListener) Has(k ike.EventKind) bool {
	for _, e := range l.Events(false) {
		if e.Kind == k {
			return true
		}
	}
	return false
}

// Last returns the last event of kind k.
func (l *FakeListener) Last(k ike.EventKind) (ike.Event, bool) {
	ev := l.Events(false)
	for i := len(ev) - 1; i >= 0; i-- {
		if ev[i].Kind == k {
			return ev[i], true
		}
	}
	return ike.Event{}, false
}
