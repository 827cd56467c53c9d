package daemon

import (
	"context"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/tun/tuntest"

	"github.com/cgwproject/cgw/control"
	dptun "github.com/cgwproject/cgw/dataplane/tun"
)

// reloadConn is one static connection of two respond-only tunnels (no IKE
// packet is ever sent); n makes its name, addresses and inside CIDRs unique.
func reloadConn(n string) string {
	return `
  - name: vpn-` + n + `
    local_address: 192.0.2.1
    routing: static
    static:
      remote_prefixes: [10.` + n + `.0.0/16]
    tunnels:
      - peer_address: 198.51.100.` + n + `
        psk: "EXAMPLEpsk1_abcdefghij.klmnopqrs"
        inside_cidr: 169.254.1` + n + `.0/30
        startup_action: respond
      - peer_address: 198.51.100.1` + n + `
        psk: "EXAMPLEpsk2_zyxwvutsrq.ponmlkjih"
        inside_cidr: 169.254.1` + n + `.4/30
        startup_action: respond
`
}

// reloadDaemon returns a daemon (not running) over a file in a temporary
// directory holding reloadConn("1"), the file's path, and the head of the
// file to write connections after.
func reloadDaemon(t *testing.T) (d *Daemon, path, head string) {
	t.Helper()
	dir := t.TempDir()
	path = filepath.Join(dir, "cgw.yaml")
	head = "version: 1\ncontrol:\n  socket: " + filepath.Join(dir, "cgw.sock") + "\nconnections:"
	if err := os.WriteFile(path, []byte(head+reloadConn("1")), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := New(Options{ConfigPath: path, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	return d, path, head
}

type dropSender struct{}

func (dropSender) SendIKE(netip.AddrPort, netip.AddrPort, []byte) error { return nil }

// TestStatusAnswersDuringReload blocks a reload while it creates a TUN
// device (the slow step) and checks that Status still answers, showing the
// running configuration; the reload then completes.
func TestStatusAnswersDuringReload(t *testing.T) {
	d, path, head := reloadDaemon(t)
	withIKE(t, d)

	entered := make(chan string, 4)
	release := make(chan struct{})
	blocking := false
	d.createTUN = func(name string, mtu int, addr netip.Prefix) (dptun.Device, error) {
		if blocking {
			entered <- name
			<-release
		}
		return tuntest.NewChannelTUN().TUN(), nil
	}
	c, err := d.addConn(&d.Config().Connections[0])
	if err != nil {
		t.Fatal(err)
	}
	d.conns = append(d.conns, c)

	// Add a second connection; its first TUN device blocks.
	if err := os.WriteFile(path, []byte(head+reloadConn("1")+reloadConn("2")), 0o600); err != nil {
		t.Fatal(err)
	}
	blocking = true
	type result struct {
		res *control.ReloadResult
		err error
	}
	reloaded := make(chan result, 1)
	go func() {
		res, err := d.reload()
		reloaded <- result{res, err}
	}()
	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		t.Fatal("reload never reached the TUN device step")
	}

	answered := make(chan *control.Status, 1)
	go func() {
		st, _ := d.Status(context.Background())
		answered <- st
	}()
	select {
	case st := <-answered:
		if len(st.Connections) != 1 || st.Connections[0].Name != "vpn-1" || len(st.Connections[0].Tunnels) != 2 {
			t.Errorf("status during the reload = %+v, want the running connection vpn-1 with its 2 tunnels", st.Connections)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Status did not answer while the reload was creating a TUN device: the reload holds the daemon's lock")
	}

	close(release)
	select {
	case r := <-reloaded:
		if r.err != nil {
			t.Fatalf("reload: %v", r.err)
		}
		if len(r.res.Changes) == 0 {
			t.Error("reload reported no change")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("reload did not finish after the TUN step was released")
	}
	st := d.snapshot()
	if len(st.Connections) != 2 || st.Connections[1].Name != "vpn-2" || len(st.Connections[1].Tunnels) != 2 {
		t.Fatalf("status after the reload = %+v, want vpn-1 and vpn-2 with 2 tunnels each", st.Connections)
	}
	for _, n := range []string{"vpn-1-t1", "vpn-1-t2", "vpn-2-t1", "vpn-2-t2"} {
		if _, err := d.tunnelByName(n); err != nil {
			t.Errorf("tunnel %s not registered after the reload: %v", n, err)
		}
	}
}
