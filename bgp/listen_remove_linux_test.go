package bgp_test

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/cgwproject/cgw/bgp"
	"github.com/cgwproject/cgw/internal/netnstest"
)

const (
	nsListenRemove       = "cgwbgp-lr"
	listenRemoveChildEnv = "CGWBGP_LISTEN_REMOVE_CHILD"
)

// TestListenAddressRemovedWithDevice: when a tunnel leaves with its
// address (its device deleted), the speaker keeps its sessions instead of
// restarting; when the address is still on the host, it restarts to stop
// listening there.
func TestListenAddressRemovedWithDevice(t *testing.T) {
	if netnstest.InChild(listenRemoveChildEnv) {
		listenRemoveChild(t)
		return
	}
	netnstest.Run(t, nsListenRemove, "TestListenAddressRemovedWithDevice", listenRemoveChildEnv)
}

func listenRemoveChild(t *testing.T) {
	ip := func(args ...string) { t.Helper(); runIP(t, args...) }
	ip("link", "set", "lo", "up")
	a1, a2, a3 := netip.MustParseAddr("169.254.15.194"), netip.MustParseAddr("169.254.13.238"), netip.MustParseAddr("169.254.20.2")
	for _, a := range []netip.Addr{a1, a2, a3} {
		ip("addr", "add", a.String()+"/32", "dev", "lo")
	}
	var logs syncBuffer
	s, err := bgp.New(bgp.Config{ASN: 65000, RouterID: a1, ListenPort: 1179, ListenAddresses: []netip.Addr{a1, a2, a3},
		Logger: slog.New(slog.NewTextHandler(io.MultiWriter(os.Stderr, &logs), nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	restarts := func() int { return strings.Count(logs.String(), "restarting the speaker") }

	// a3's device is gone: no restart.
	ip("addr", "del", a3.String()+"/32", "dev", "lo")
	if _, err := s.SetListenAddresses([]netip.Addr{a1, a2}); err != nil {
		t.Fatal(err)
	}
	if n := restarts(); n != 0 {
		t.Errorf("removing an address its device took along restarted the speaker (%d restarts)", n)
	}
	// a2 is still on the host: restart, so nothing listens there.
	if _, err := s.SetListenAddresses([]netip.Addr{a1}); err != nil {
		t.Fatal(err)
	}
	if n := restarts(); n != 1 {
		t.Errorf("removing an address still on the host: %d restarts, want 1", n)
	}
}
