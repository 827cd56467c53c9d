package bgp_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cgwproject/cgw/bgp"
	"github.com/cgwproject/cgw/internal/netnstest"
)

const (
	nsListen       = "cgwbgp-l"
	listenChildEnv = "CGWBGP_LISTEN_CHILD"
)

// TestListenAddresses: the speaker listens on the given inside addresses
// only, not on 0.0.0.0:179. While running, an added address (a tunnel
// added on reload) restarts nothing and gets its listener at the next
// restart; an address removed but still on the host restarts it.
func TestListenAddresses(t *testing.T) {
	if netnstest.InChild(listenChildEnv) {
		listenChild(t)
		return
	}
	netnstest.Run(t, nsListen, "TestListenAddresses", listenChildEnv)
}

func listenChild(t *testing.T) {
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"addr", "add", "169.254.15.194/32", "dev", "lo"},
		{"addr", "add", "169.254.13.238/32", "dev", "lo"},
		{"addr", "add", "192.0.2.10/32", "dev", "lo"}, // stands for the outside address
	} {
		runIP(t, args...)
	}
	a1, a2 := netip.MustParseAddr("169.254.15.194"), netip.MustParseAddr("169.254.13.238")
	var logs syncBuffer
	s, err := bgp.New(bgp.Config{ASN: 65000, RouterID: a1, ListenAddresses: []netip.Addr{a1},
		Logger: slog.New(slog.NewTextHandler(io.MultiWriter(os.Stderr, &logs), nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetNeighbors([]bgp.Neighbor{{Name: "t1", PeerAddr: netip.MustParseAddr("169.254.15.193"), LocalAddr: a1, PeerASN: 64512}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	accepts := func(a string) bool {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(a, "179"), 2*time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
	check := func(want map[string]bool) {
		t.Helper()
		for a, w := range want {
			if got := accepts(a); got != w {
				t.Errorf("TCP %s:179 accepts = %v, want %v", a, got, w)
			}
		}
	}
	check(map[string]bool{"169.254.15.194": true, "169.254.13.238": false, "192.0.2.10": false, "127.0.0.1": false})

	restarts := func() int { return strings.Count(logs.String(), "restarting the speaker") }
	// A second tunnel appears (reload): no restart, which would reset t1;
	// its listener opens at the next restart (its session is dialed).
	if r, err := s.SetListenAddresses([]netip.Addr{a2, a1}); err != nil || r {
		t.Fatalf("adding an address: restarted %v, err %v; want no restart", r, err)
	}
	if n := restarts(); n != 0 {
		t.Errorf("adding an address restarted the speaker")
	}
	if !strings.Contains(logs.String(), "listener on 169.254.13.238 opens at the next restart") {
		t.Errorf("no log line about the deferred listener on %v", a2)
	}
	check(map[string]bool{"169.254.15.194": true, "169.254.13.238": false, "192.0.2.10": false})
	// Unchanged, in another order: nothing again (logged once).
	if _, err := s.SetListenAddresses([]netip.Addr{a1, a2}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "opens at the next restart"); n != 1 {
		t.Errorf("the same listen addresses in another order: %d deferred-listener lines, want 1", n)
	}
	// The first tunnel goes away but its address stays on the host: the
	// speaker restarts so nothing listens there, and opens a2's listener.
	if r, err := s.SetListenAddresses([]netip.Addr{a2}); err != nil || !r {
		t.Fatalf("removing an address still on the host: restarted %v, err %v; want a restart", r, err)
	}
	check(map[string]bool{"169.254.15.194": false, "169.254.13.238": true})
	if got := s.Status(); len(got) != 1 || got[0].Name != "t1" {
		t.Errorf("neighbors after the restart: %+v", got)
	}

	// The daemon configures the addresses in the tunnels' order, which
	// need not be sorted; a reload that gives the same set must not
	// restart the speaker.
	var logs2 syncBuffer
	s2, err := bgp.New(bgp.Config{ASN: 65000, RouterID: a1, ListenPort: 1179, ListenAddresses: []netip.Addr{a1, a2},
		Logger: slog.New(slog.NewTextHandler(io.MultiWriter(os.Stderr, &logs2), nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s2.Stop()
	if _, err := s2.SetListenAddresses([]netip.Addr{a2, a1}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs2.String(), "restarting the speaker") {
		t.Errorf("the configured listen addresses in another order restarted the speaker")
	}
}
