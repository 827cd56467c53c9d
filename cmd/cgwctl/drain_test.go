package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/cgwproject/cgw/control"
)

func TestHealthProblems(t *testing.T) {
	conn := func(name string, states ...string) *control.Connection {
		c := &control.Connection{Name: name}
		for _, s := range states {
			c.Tunnels = append(c.Tunnels, &control.Tunnel{State: s})
		}
		return c
	}
	tests := []struct {
		name string
		st   *control.Status
		want []string
	}{
		{"healthy", &control.Status{Connections: []*control.Connection{conn("a", "up", "down")}}, nil},
		{"no tunnel up", &control.Status{Connections: []*control.Connection{conn("a", "up"), conn("b", "negotiating", "down")}},
			[]string{"connection b has no tunnel up"}},
		{"drained", &control.Status{LAN: &control.LAN{Drained: true}, Connections: []*control.Connection{conn("a", "up")}},
			[]string{"drained (cgwctl undrain)"}},
		{"nothing configured", &control.Status{}, []string{"no connections configured"}},
	}
	for _, tt := range tests {
		if got := healthProblems(tt.st); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestRenderLAN(t *testing.T) {
	var b bytes.Buffer
	renderLAN(&b, &control.LAN{Drained: true, Neighbors: []control.LANNeighbor{{Name: "core", Address: "10.1.100.1", ASN: 65100,
		Type: "ebgp", State: "Established", UptimeSeconds: 65, Received: 3, Accepted: 1, Advertised: 1}}})
	out := b.String()
	for _, want := range []string{"LAN: DRAINED", "NEIGHBOR", "core", "10.1.100.1", "65100", "ebgp", "Established", "1m5s"} {
		if !strings.Contains(out, want) {
			t.Errorf("LAN section lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	renderLAN(&b, nil)
	if b.Len() != 0 {
		t.Errorf("no LAN section without LAN neighbors, got %q", b.String())
	}
}
