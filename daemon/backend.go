package daemon

// The verbs of the control socket (control.Backend): what cgwctl can ask.

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cgwproject/cgw/control"
)

// Status implements control.Backend.
func (d *Daemon) Status(context.Context) (*control.Status, error) {
	return d.snapshot(), nil
}

func (d *Daemon) tunnelByName(name string) (*tunnelRT, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.tunnels[name]
	if t == nil {
		names := make([]string, 0, len(d.tunnels))
		for n := range d.tunnels {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("tunnel %q: %w (configured tunnels: %v)", name, control.ErrNotFound, names)
	}
	return t, nil
}

// TunnelUp implements control.Backend: it (re)starts IKE for the tunnel.
func (d *Daemon) TunnelUp(_ context.Context, name string) error {
	t, err := d.tunnelByName(name)
	if err != nil {
		return err
	}
	d.mu.Lock()
	t.adminDown = false
	d.mu.Unlock()
	d.log.Info("tunnel up requested by operator", "tunnel", name)
	return d.ikm.Initiate(name)
}

// TunnelDown implements control.Backend: it deletes the tunnel's SAs and
// keeps it down until TunnelUp.
func (d *Daemon) TunnelDown(_ context.Context, name string) error {
	t, err := d.tunnelByName(name)
	if err != nil {
		return err
	}
	d.mu.Lock()
	t.adminDown = true
	t.bgpGraceUntil = time.Time{} // no reconnect grace for a tunnel taken down
	d.mu.Unlock()
	d.log.Info("tunnel down requested by operator", "tunnel", name)
	d.bgpGoodbye(name)
	return d.ikm.Terminate(name)
}

// Rekey implements control.Backend.
func (d *Daemon) Rekey(_ context.Context, name string, ikeSA bool) error {
	if _, err := d.tunnelByName(name); err != nil {
		return err
	}
	what := "CHILD SA"
	if ikeSA {
		what = "IKE SA"
	}
	d.log.Info("rekey requested by operator", "tunnel", name, "sa", what)
	return d.ikm.Rekey(name, ikeSA)
}

// ReloadFromSignal reloads on SIGHUP and logs the outcome.
func (d *Daemon) ReloadFromSignal() {
	res, err := d.Reload(context.Background())
	if err != nil {
		d.log.Error("reload failed; the running configuration is unchanged", "err", err)
		return
	}
	d.log.Info("reload done", "changes", strings.Join(res.Changes, "; "))
}

// Reload implements control.Backend: it re-reads the file and applies the
// difference in the daemon loop.
func (d *Daemon) Reload(ctx context.Context) (*control.ReloadResult, error) {
	ch := make(chan reloadReply, 1)
	select {
	case d.reloadCh <- ch:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case r := <-ch:
		return r.res, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Diagnose implements control.Backend.
func (d *Daemon) Diagnose(ctx context.Context, tunnel string) (*control.Diagnosis, error) {
	return d.diagnose(ctx, tunnel)
}
