package diagnose

import (
	"testing"

	"github.com/cgwproject/cgw/control"
)

func TestSamplePairsByName(t *testing.T) {
	// The sample lists the connections in another order than the caller
	// (as after a reload that removed or reordered connections).
	a := &control.Tunnel{Name: "a-t1"}
	st := &control.Status{Connections: []*control.Connection{
		{Name: "b", Tunnels: []*control.Tunnel{{Name: "b-t1"}}, Routes: []control.Route{{Prefix: "10.2.0.0/16"}}},
		{Name: "a", Tunnels: []*control.Tunnel{a}, Routes: []control.Route{{Prefix: "10.1.0.0/16"}}},
	}}
	if r := ConnectionRoutes(st, "a"); len(r) != 1 || r[0].Prefix != "10.1.0.0/16" {
		t.Errorf("routes of a = %+v, want 10.1.0.0/16 only", r)
	}
	if r := ConnectionRoutes(st, "b"); len(r) != 1 || r[0].Prefix != "10.2.0.0/16" {
		t.Errorf("routes of b = %+v, want 10.2.0.0/16 only", r)
	}
	if r := ConnectionRoutes(st, "gone"); r != nil {
		t.Errorf("routes of a connection the sample lacks = %+v, want none", r)
	}
	if FindTunnel(st, "a-t1") != a || FindTunnel(st, "c-t1") != nil || FindTunnel(nil, "a-t1") != nil || ConnectionRoutes(nil, "a") != nil {
		t.Error("FindTunnel/ConnectionRoutes: wrong tunnel or nil handling")
	}
}
