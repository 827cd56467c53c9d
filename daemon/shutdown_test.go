package daemon

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"golang.zx2c4.com/wireguard/tun/tuntest"

	"github.com/cgwproject/cgw/dataplane"
	dptun "github.com/cgwproject/cgw/dataplane/tun"
	"github.com/cgwproject/cgw/ike"
)

// TestShutdownQuiescesIKE: once the loop sees the shutdown, the IKE
// peers, still there until the tunnels are removed one by one, start no
// rekey: a rekey (the dataplane's soft lifetime asks for one the same
// way) is refused as cgwd shutting down.
func TestShutdownQuiescesIKE(t *testing.T) {
	d, _, _ := reloadDaemon(t)
	withIKE(t, d)
	d.createTUN = func(string, int, netip.Prefix) (dptun.Device, error) { return tuntest.NewChannelTUN().TUN(), nil }
	c, err := d.addConn(&d.Config().Connections[0])
	if err != nil {
		t.Fatal(err)
	}
	d.conns = append(d.conns, c)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := d.loop(ctx); err != nil {
		t.Fatal(err)
	}
	err = d.ikm.Rekey("vpn-1-t1", false)
	if err == nil || !strings.Contains(err.Error(), "shutting down") {
		t.Errorf("rekey after the loop saw the shutdown: %v; want it refused as shutting down", err)
	}
}

// withIKE gives d a dataplane and an IKE manager that sends nothing,
// closed when the test ends.
func withIKE(t *testing.T, d *Daemon) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	d.dp = dataplane.New(dataplane.Config{Logger: log})
	d.ikm = ike.NewManager(ike.Config{Sender: dropSender{}, Installer: d.dp, Listener: d, Logger: log})
	t.Cleanup(func() {
		d.ikm.Close()
		d.dp.Close()
	})
}
