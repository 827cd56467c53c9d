package bgp

import (
	"context"
	"log/slog"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
)

// TestEnableSkipsIdleHold: a neighbor enabled again after a tunnel flap
// leaves Idle at once. GoBGP's own EnablePeer would wait out its fixed 5 s
// idle hold first (issue 18: BGP came up ~5.5 s after the CHILD SA). The
// peer is on loopback, so GoBGP's connection attempts stay on this host.
func TestEnableSkipsIdleHold(t *testing.T) {
	const peer = "127.0.0.2"
	s := startedServer(t, peer)
	state := func() (api.PeerState_SessionState, api.PeerState_AdminState) {
		t.Helper()
		var ss api.PeerState_SessionState = -1
		var as api.PeerState_AdminState = -1
		err := s.gobgp().ListPeer(context.Background(), &api.ListPeerRequest{Address: peer}, func(p *api.Peer) {
			ss, as = p.State.SessionState, p.State.AdminState
		})
		if err != nil {
			t.Fatal(err)
		}
		return ss, as
	}
	// wait returns how long the neighbor took to reach session state want.
	wait := func(want api.PeerState_SessionState, within time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		for time.Since(start) < within {
			if ss, _ := state(); ss == want {
				return time.Since(start)
			}
			time.Sleep(10 * time.Millisecond)
		}
		ss, as := state()
		t.Fatalf("neighbor in %v (admin %v) after %v, want %v", ss, as, within, want)
		return 0
	}
	// Up once, so that GoBGP's FSM has armed its 5 s idle hold.
	wait(api.PeerState_ACTIVE, 10*time.Second)
	for flap := 1; flap <= 2; flap++ {
		if err := s.SetPeerUp("t1", false); err != nil {
			t.Fatal(err)
		}
		wait(api.PeerState_IDLE, 10*time.Second)
		if err := s.SetPeerUp("t1", true); err != nil {
			t.Fatal(err)
		}
		// Well below the 5 s idle hold, with room for a loaded machine.
		if took := wait(api.PeerState_ACTIVE, 10*time.Second); took > 3500*time.Millisecond {
			t.Fatalf("flap %d: neighbor left Idle %v after SetPeerUp(true): GoBGP's idle hold was not skipped", flap, took)
		}
		if _, as := state(); as != api.PeerState_UP {
			t.Fatalf("flap %d: admin state %v after SetPeerUp(true)", flap, as)
		}
	}
}

// startedServer starts a Server that does not listen, with one neighbor
// "t1" at peer, and stops it when the test ends.
func startedServer(t *testing.T, peer string) *Server {
	t.Helper()
	s, err := New(Config{ASN: 65000, RouterID: addr("192.0.2.2"), ListenPort: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	if err := s.SetNeighbors([]Neighbor{{Name: "t1", PeerAddr: addr(peer), PeerASN: 64512}}); err != nil {
		t.Fatal(err)
	}
	return s
}
