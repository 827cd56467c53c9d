package bgp_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgwproject/cgw/bgp"
	"github.com/cgwproject/cgw/internal/netnstest"
)

const (
	nsListenAdd       = "cgwbgp-la"
	listenAddChildEnv = "CGWBGP_LISTEN_ADD_CHILD"
)

// TestListenAddedSessionDials: a tunnel added to a running speaker gets
// its BGP session without a listener on its address and without
// restarting the speaker (the other session keeps its uptime): our side
// dials from the new address. A listener bound to an address also
// survives the address leaving and coming back, as a restarted tunnel's
// device does.
func TestListenAddedSessionDials(t *testing.T) {
	if netnstest.InChild(listenAddChildEnv) {
		listenAddChild(t)
		return
	}
	netnstest.Run(t, nsListenAdd, "TestListenAddedSessionDials", listenAddChildEnv)
}

func listenAddChild(t *testing.T) {
	ip := func(args ...string) { t.Helper(); runIP(t, args...) }
	ip("link", "set", "lo", "up")
	a1, p1 := netip.MustParseAddr("169.254.15.194"), netip.MustParseAddr("169.254.15.193")
	a2, p2 := netip.MustParseAddr("169.254.13.238"), netip.MustParseAddr("169.254.13.237")
	for _, a := range []netip.Addr{a1, p1, a2, p2} {
		ip("addr", "add", a.String()+"/32", "dev", "lo")
	}
	v6 := netip.MustParseAddr("fd00:1::2") // an IPv6 inside address
	ip("addr", "add", v6.String()+"/128", "dev", "lo", "nodad")
	var logs syncBuffer
	ours, err := bgp.New(bgp.Config{ASN: 65000, RouterID: a1, ListenAddresses: []netip.Addr{a1, v6},
		Logger: slog.New(slog.NewTextHandler(io.MultiWriter(os.Stderr, &logs), nil))})
	if err != nil {
		t.Fatal(err)
	}
	t1 := bgp.Neighbor{Name: "t1", PeerAddr: p1, LocalAddr: a1, PeerASN: 64512}
	if err := ours.SetNeighbors([]bgp.Neighbor{t1}); err != nil {
		t.Fatal(err)
	}
	if err := ours.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer ours.Stop()
	// The AWS side: listens on its own addresses, dials ours too.
	aws, err := bgp.New(bgp.Config{ASN: 64512, RouterID: p1, ListenAddresses: []netip.Addr{p1, p2},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := aws.SetNeighbors([]bgp.Neighbor{
		{Name: "a1", PeerAddr: a1, LocalAddr: p1, PeerASN: 65000},
		{Name: "a2", PeerAddr: a2, LocalAddr: p2, PeerASN: 65000},
	}); err != nil {
		t.Fatal(err)
	}
	if err := aws.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer aws.Stop()

	state := func(name string) bgp.NeighborStatus {
		for _, st := range ours.Status() {
			if st.Name == name {
				return st
			}
		}
		return bgp.NeighborStatus{}
	}
	waitFor(t, 30*time.Second, "t1 Established", func() bool { return state("t1").State == "Established" })
	time.Sleep(time.Second)
	before := state("t1").Uptime

	// Reload adds tunnel t2: its address, then its neighbor.
	if r, err := ours.SetListenAddresses([]netip.Addr{a1, v6, a2}); err != nil || r {
		t.Fatalf("SetListenAddresses with an added address: restarted %v, err %v", r, err)
	}
	if c, err := net.DialTimeout("tcp", net.JoinHostPort(a2.String(), "179"), 2*time.Second); err == nil {
		c.Close()
		t.Errorf("%v:179 accepts before the speaker restarts", a2)
	}
	added := time.Now()
	if err := ours.SetNeighbors([]bgp.Neighbor{t1, {Name: "t2", PeerAddr: p2, LocalAddr: a2, PeerASN: 64512}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "t2 Established (dialed from its address)", func() bool { return state("t2").State == "Established" })
	t.Logf("added neighbor to Established: %v", time.Since(added).Round(time.Millisecond))
	if st := state("t1"); st.State != "Established" || st.Uptime < before {
		t.Errorf("t1 after adding t2: %s, uptime %v (was %v): its session was reset", st.State, st.Uptime, before)
	}
	if strings.Contains(logs.String(), "restarting the speaker") {
		t.Error("adding a tunnel restarted the speaker")
	}

	// A restarted tunnel: its device, and address, go and come back.
	for _, a := range []netip.Addr{a1, v6} {
		pfx, extra := netip.PrefixFrom(a, a.BitLen()).String(), []string(nil)
		if a.Is6() {
			extra = []string{"nodad"}
		}
		ip("addr", "del", pfx, "dev", "lo")
		if c, err := net.DialTimeout("tcp", net.JoinHostPort(a.String(), "179"), 2*time.Second); err == nil {
			c.Close()
			t.Fatalf("TCP %v:179 accepted with the address gone", a)
		}
		ip(append([]string{"addr", "add", pfx, "dev", "lo"}, extra...)...)
		// The kernel may answer "network is unreachable" for a moment
		// after an IPv6 address is added (its local route follows the
		// address); a refusal or a timeout is the failure looked for.
		var c net.Conn
		var err error
		for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			c, err = net.DialTimeout("tcp", net.JoinHostPort(a.String(), "179"), 2*time.Second)
			if err == nil || !errors.Is(err, syscall.ENETUNREACH) || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			t.Fatalf("the listener on %v after its address was removed and added again: %v", a, err)
		}
		c.Close()
	}
}

// runIP runs ip(8) with args, failing t on error.
func runIP(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %v: %v: %s", args, err, out)
	}
}
