package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/cgwproject/cgw/config"
	"github.com/cgwproject/cgw/ike"
)

const bgpStartConfig = `version: 1
connections:
  - name: vpn-1
    local_address: 192.0.2.1
    routing: bgp
    bgp:
      asn: 65001
      advertise: [10.1.0.0/16]
    tunnels:
      - name: vpn-1-t1
        peer_address: 198.51.100.1
        psk: "EXAMPLEpsk1_abcdefghij.klmnopqrs"
        inside_cidr: 169.254.11.0/30
      - name: vpn-1-t2
        peer_address: 198.51.100.2
        psk: "EXAMPLEpsk2_zyxwvutsrq.ponmlkjih"
        inside_cidr: 169.254.11.4/30
`

// TestStartBGPQueuedChildUp: a CHILD SA that came up while the tunnels
// were being created has its event still queued for the loop when BGP
// starts. Its neighbor must start enabled, and the other tunnel's (no CHILD
// SA) disabled, instead of every neighbor being added enabled and then
// disabled by the stale tunnel state (a Cease to sessions just up).
func TestStartBGPQueuedChildUp(t *testing.T) {
	cfg, _, err := config.Parse([]byte(bgpStartConfig), "cgw.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{log: slog.New(slog.NewTextHandler(io.Discard, nil)), cfg: cfg, tunnels: map[string]*tunnelRT{}}
	c := &connRT{cfg: &cfg.Connections[0]}
	for i := range c.cfg.Tunnels {
		tn := &tunnelRT{conn: c, cfg: &c.cfg.Tunnels[i], rank: i, dev: fmt.Sprintf("cgw%d", i), ikeState: ike.StateNegotiating}
		c.tunnels = append(c.tunnels, tn)
		d.tunnels[tn.cfg.Name] = tn
	}
	d.conns = []*connRT{c}

	d.OnEvent(ike.Event{Peer: "vpn-1-t1", Kind: ike.EventIKEUp, Reason: "IKE SA established"})
	d.OnEvent(ike.Event{Peer: "vpn-1-t1", Kind: ike.EventChildUp, Reason: "CHILD SA established"})
	bc := bgpConfig(cfg)
	bc.ListenPort = -1 // no listener in a unit test
	if err := d.startBGP(context.Background(), bc); err != nil {
		t.Fatal(err)
	}
	defer d.bgp.Stop()
	got := map[string]bool{}
	for _, n := range d.bgp.Status() {
		got[n.Name] = n.AdminDown
	}
	if down, ok := got["vpn-1-t1"]; !ok || down {
		t.Errorf("vpn-1-t1 (CHILD SA up, event queued): admin down %v (present %v), want enabled", down, ok)
	}
	if down, ok := got["vpn-1-t2"]; !ok || !down {
		t.Errorf("vpn-1-t2 (no CHILD SA): admin down %v (present %v), want disabled", down, ok)
	}
	if !d.tunnels["vpn-1-t1"].childUp() {
		t.Error("the queued CHILD SA event was not applied to the tunnel")
	}

	// Without BGP, startBGP starts nothing.
	d2 := &Daemon{log: d.log, cfg: cfg}
	if err := d2.startBGP(context.Background(), nil); err != nil || d2.bgp != nil {
		t.Errorf("startBGP(nil) = %v, bgp %v", err, d2.bgp)
	}
}
