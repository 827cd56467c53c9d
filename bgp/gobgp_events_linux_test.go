package bgp_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	gobgp "github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/server"

	"github.com/cgwproject/cgw/bgp"
)

// TestGoBGPSessionFacts pins how the Server learns why a session dropped.
//
// GoBGP v3.37.0's API does not say why: its WatchEvent peer events carry
// the session and admin state, and ListPeer the message counters, but
// neither the NOTIFICATION (code, subcode, shutdown communication) nor the
// hold timer expiry (GoBGP keeps them in an unexported fsmStateReason).
// bgp.Server therefore reads them from GoBGP's log messages and fields
// (log.go, Server.observe). This test runs real sessions into each case so
// that a GoBGP upgrade that renames a message or a field fails here instead
// of silently emptying LastError and the session-down reason:
//
//   - t1 peers with a second in-process GoBGP server (AWS's role), which
//     shuts the session with a communication (Cease / Administrative
//     Shutdown), and later we take it down ourselves (SetPeerUp false);
//   - t2 peers with a raw speaker that completes OPEN and goes silent, so
//     the 3 s hold timer expires.
//
// Everything runs on loopback in a private network namespace (unshare -n),
// so no port 179 is shared with the host or other tests.
func TestGoBGPSessionFacts(t *testing.T) {
	const env = "CGWBGP_EVENTS_CHILD"
	if os.Getenv(env) == "" {
		if os.Geteuid() != 0 {
			t.Skip("needs root for a private network namespace (unshare -n)")
		}
		cmd := exec.Command("unshare", "-n", "--", os.Args[0], "-test.run=^TestGoBGPSessionFacts$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), env+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestGoBGPSessionFacts") {
			t.Fatalf("child in a private netns: %v\n%s", err, out)
		}
		return
	}
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up: %v: %s", err, out)
	}
	ctx := context.Background()
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(io.MultiWriter(&logs, testWriter{t}), &slog.HandlerOptions{Level: slog.LevelInfo}))

	// AWS's side of t1: a plain GoBGP server on 127.0.0.1:179.
	aws := server.NewBgpServer()
	go aws.Serve()
	defer aws.Stop()
	if err := aws.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: 64512, RouterId: "127.0.0.1", ListenPort: 179, ListenAddresses: []string{"127.0.0.1"},
	}}); err != nil {
		t.Fatal(err)
	}
	if err := aws.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: "127.0.0.2", PeerAsn: 65000},
		Transport: &api.Transport{PassiveMode: true, LocalAddress: "127.0.0.1"},
	}}); err != nil {
		t.Fatal(err)
	}

	// The silent speaker of t2 on 127.0.0.3:179: OPEN (hold time 3 s) and
	// one KEEPALIVE, then nothing. It accepts one connection only.
	ln, err := net.Listen("tcp", "127.0.0.3:179")
	if err != nil {
		t.Fatal(err)
	}
	silent := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		ln.Close()
		if err != nil {
			return
		}
		open, _ := gobgp.NewBGPOpenMessage(64512, 3, "127.0.0.3", nil).Serialize()
		ka, _ := gobgp.NewBGPKeepAliveMessage().Serialize()
		c.Write(append(open, ka...))
		silent <- c
		io.Copy(io.Discard, c)
	}()
	defer func() {
		select {
		case c := <-silent:
			c.Close()
		default:
		}
	}()

	srv, err := bgp.New(bgp.Config{ASN: 65000, RouterID: netip.MustParseAddr("127.0.0.2"), ListenPort: -1, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	local := netip.MustParseAddr("127.0.0.2")
	if err := srv.SetNeighbors([]bgp.Neighbor{
		{Name: "t1", PeerAddr: netip.MustParseAddr("127.0.0.1"), LocalAddr: local, PeerASN: 64512, Prepend: 1, MED: 50},
		{Name: "t2", PeerAddr: netip.MustParseAddr("127.0.0.3"), LocalAddr: local, PeerASN: 64512, HoldTime: 30 * time.Second},
	}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"t1", "t2"} {
		if err := srv.SetPeerUp(n, true); err != nil {
			t.Fatal(err)
		}
	}
	neighbor := func(name string) bgp.NeighborStatus {
		for _, n := range srv.Status() {
			if n.Name == name {
				return n
			}
		}
		t.Fatalf("no neighbor %s", name)
		return bgp.NeighborStatus{}
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			if cond() {
				return
			}
		}
		t.Fatalf("timed out waiting for %s; status %+v\nlog:\n%s", what, srv.Status(), logs.String())
	}
	wait("t1 and t2 Established", func() bool {
		return neighbor("t1").State == "Established" && neighbor("t2").State == "Established"
	})

	// Advertised is the Adj-RIB-Out: our prefix with t1's prepend and MED
	// applied, as AWS receives it.
	if err := srv.SetAdvertised([]netip.Prefix{netip.MustParsePrefix("192.168.0.0/16")}); err != nil {
		t.Fatal(err)
	}
	wait("192.168.0.0/16 in t1's Adj-RIB-Out", func() bool { return len(srv.Advertised("t1")) == 1 })
	if got := fmt.Sprintf("%+v", srv.Advertised("t1")[0]); got != "{Prefix:192.168.0.0/16 Neighbor:t1 NextHop:127.0.0.2 ASPath:[65000 65000] MED:50 LocalPref:0 Best:true}" {
		t.Errorf("Advertised(t1) = %s, want the prefix with one prepend and MED 50", got)
	}
	if got := srv.Advertised("nope"); got != nil {
		t.Errorf("Advertised(unknown neighbor) = %v, want nil", got)
	}

	// Hold timer expiry: GoBGP logs "hold timer expired", then sends
	// NOTIFICATION 4 (Hold Timer Expired); the session-down line says so.
	wait("t2's hold timer to expire", func() bool {
		return neighbor("t2").State != "Established" && strings.Contains(logs.String(), "neighbor=t2")
	})
	wait("t2's LastError", func() bool { return neighbor("t2").LastError != "" })
	if got, want := neighbor("t2").LastError, "sent NOTIFICATION Hold Timer Expired"; got != want {
		t.Errorf("t2 LastError after the hold timer expired = %q, want %q", got, want)
	}
	if line := logLine(logs.String(), `msg="bgp: session down" neighbor=t2`); !strings.Contains(line, `reason=hold-timer-expired`) || !strings.Contains(line, `error="sent NOTIFICATION Hold Timer Expired"`) {
		t.Errorf("t2 session-down line %q lacks the hold timer reason and error", line)
	}

	// A NOTIFICATION received with a subcode and a shutdown communication
	// (RFC 9003): AWS's side shuts the session down.
	if err := aws.ShutdownPeer(ctx, &api.ShutdownPeerRequest{Address: "127.0.0.2", Communication: "maintenance"}); err != nil {
		t.Fatal(err)
	}
	want := `received NOTIFICATION Cease / Administrative Shutdown ("maintenance")`
	wait("t1's NOTIFICATION in LastError", func() bool { return neighbor("t1").LastError == want })
	wait("t1 session-down line", func() bool {
		return strings.Contains(logs.String(), `msg="bgp: session down" neighbor=t1`)
	})
	if line := logLine(logs.String(), `msg="bgp: session down" neighbor=t1`); !strings.Contains(line, `reason="notification-received code 6(cease) subcode 2(administrative shutdown)"`) || !strings.Contains(line, `error="`+strings.ReplaceAll(want, `"`, `\"`)+`"`) {
		t.Errorf("t1 session-down line %q lacks the NOTIFICATION reason and error", line)
	}

	// Administrative shutdown on our side: the peer is re-enabled on AWS's
	// side, the session comes back, and SetPeerUp(false) takes it down
	// with our own Cease / Administrative Shutdown ("tunnel down").
	if err := aws.EnablePeer(ctx, &api.EnablePeerRequest{Address: "127.0.0.2"}); err != nil {
		t.Fatal(err)
	}
	wait("t1 Established again", func() bool { return neighbor("t1").State == "Established" })
	before := strings.Count(logs.String(), `msg="bgp: session down" neighbor=t1`)
	if err := srv.SetPeerUp("t1", false); err != nil {
		t.Fatal(err)
	}
	wait("t1 down by our admin shutdown", func() bool {
		return neighbor("t1").State != "Established" && strings.Count(logs.String(), `msg="bgp: session down" neighbor=t1`) > before
	})
	st := neighbor("t1")
	if !st.AdminDown || st.LastError != `sent NOTIFICATION Cease / Administrative Shutdown ("tunnel down")` {
		t.Errorf("t1 after SetPeerUp(false): %+v, want AdminDown and our Cease / Administrative Shutdown in LastError", st)
	}
	var last string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, `msg="bgp: session down" neighbor=t1`) {
			last = l
		}
	}
	// GoBGP races its own reader against the NOTIFICATION it sends: the
	// Peer Down reason is notification-sent or, when the peer closes first,
	// read-failed (seen under load). The error text above is the fact cgw
	// relies on; the reason must still be one of those two.
	if !strings.Contains(last, `reason="notification-sent code 6(cease) subcode 2(administrative shutdown)"`) &&
		!strings.Contains(last, `reason=read-failed`) {
		t.Errorf("t1 session-down line after SetPeerUp(false) = %q, want GoBGP's notification-sent (or read-failed) reason", last)
	}
	if !strings.Contains(last, `error="sent NOTIFICATION Cease / Administrative Shutdown (\"tunnel down\")"`) {
		t.Errorf("t1 session-down line after SetPeerUp(false) = %q, want our Cease / Administrative Shutdown as the error", last)
	}
}

// logLine returns the first log line containing s, or "".
func logLine(logs, s string) string {
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
