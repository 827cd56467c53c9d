package control_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/control/client"
)

type fakeBackend struct {
	calls []string
}

func (f *fakeBackend) Status(context.Context) (*control.Status, error) {
	f.calls = append(f.calls, "status")
	return &control.Status{Version: "test", Connections: []*control.Connection{{Name: "vpn", Tunnels: []*control.Tunnel{{Name: "t1", State: "up"}}}}}, nil
}
func (f *fakeBackend) TunnelUp(_ context.Context, n string) error {
	f.calls = append(f.calls, "up "+n)
	if n != "t1" {
		return fmt.Errorf("tunnel %q: %w", n, control.ErrNotFound)
	}
	return nil
}
func (f *fakeBackend) TunnelDown(_ context.Context, n string) error {
	f.calls = append(f.calls, "down "+n)
	return nil
}
func (f *fakeBackend) Rekey(_ context.Context, n string, ike bool) error {
	f.calls = append(f.calls, fmt.Sprintf("rekey %s %v", n, ike))
	return nil
}
func (f *fakeBackend) Reload(context.Context) (*control.ReloadResult, error) {
	f.calls = append(f.calls, "reload")
	return nil, errors.New("config.yaml:3: bad")
}
func (f *fakeBackend) Diagnose(_ context.Context, t string) (*control.Diagnosis, error) {
	f.calls = append(f.calls, "diagnose "+t)
	return &control.Diagnosis{Findings: []control.Finding{{Tunnel: t, Check: "udp", Severity: control.SeverityError}}}, nil
}
func (f *fakeBackend) BGPRoutes(_ context.Context, table, tunnel string) (*control.BGPRoutes, error) {
	f.calls = append(f.calls, "routes "+table+" "+tunnel)
	return &control.BGPRoutes{Table: table, Routes: []control.BGPRoute{{Tunnel: tunnel, Prefix: "10.0.0.0/16"}}}, nil
}
func (f *fakeBackend) ReloadDryRun(context.Context) (*control.ReloadResult, error) {
	f.calls = append(f.calls, "reload dry-run")
	return &control.ReloadResult{DryRun: true, Changes: []string{"routes changed: metric"}}, nil
}
func (f *fakeBackend) EffectiveConfig(context.Context) (*control.ConfigDoc, error) {
	f.calls = append(f.calls, "config")
	return &control.ConfigDoc{File: "/etc/cgw/cgw.yaml", Version: 1}, nil
}
func (f *fakeBackend) Events(ctx context.Context, send func(control.Event) error) error {
	if err := send(control.Event{Type: control.EventTunnel, Tunnel: "t1", Event: "up"}); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0s", 30 * time.Second: "30s", 5 * time.Minute: "5m",
		10 * time.Minute: "10m", 90 * time.Minute: "1h30m", 8 * time.Hour: "8h", 1500 * time.Millisecond: "1.5s", time.Hour + time.Second: "1h0m1s"} {
		if got := control.ShortDuration(d); got != want {
			t.Errorf("ShortDuration(%v) = %q, want %q", d, got, want)
		}
		if got := control.SecondsOf(d).Duration(); got != d {
			t.Errorf("SecondsOf(%v).Duration() = %v", d, got)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "sub", "cgw.sock")
	fb := &fakeBackend{}
	srv, err := control.Listen(sock, fb, nil)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	defer srv.Close()

	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := control.Listen(sock, fb, nil); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second Listen on a live socket: %v, want 'in use'", err)
	}

	c := client.New(sock)
	ctx := context.Background()
	st, err := c.Status(ctx)
	if err != nil || st.Connections[0].Tunnels[0].State != "up" {
		t.Fatalf("status = %+v, %v", st, err)
	}
	if err := c.TunnelUp(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	if err := c.TunnelUp(ctx, "nope"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("unknown tunnel: %v", err)
	}
	if err := c.Rekey(ctx, "t1", true); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Reload(ctx); err == nil || err.Error() != "config.yaml:3: bad" {
		t.Errorf("reload error not passed through: %v", err)
	}
	d, err := c.Diagnose(ctx, "t2")
	if err != nil || d.Findings[0].Tunnel != "t2" {
		t.Fatalf("diagnose = %+v, %v", d, err)
	}
	r, err := c.BGPRoutes(ctx, "", "t1")
	if err != nil || r.Table != control.TableReceived || r.Routes[0].Tunnel != "t1" {
		t.Fatalf("bgp routes = %+v, %v (want the received table by default)", r, err)
	}
	if _, err := c.BGPRoutes(ctx, "adj-in", ""); err == nil || !strings.Contains(err.Error(), "use received, advertised, installed") {
		t.Errorf("unknown table: %v", err)
	}
	if r, err := c.ReloadDryRun(ctx); err != nil || !r.DryRun {
		t.Errorf("reload dry run = %+v, %v", r, err)
	}
	if doc, err := c.EffectiveConfig(ctx); err != nil || doc.File != "/etc/cgw/cgw.yaml" {
		t.Errorf("config = %+v, %v", doc, err)
	}
	want := []string{"status", "up t1", "up nope", "rekey t1 true", "reload", "diagnose t2", "routes received t1", "reload dry-run", "config"}
	if fmt.Sprint(fb.calls) != fmt.Sprint(want) {
		t.Errorf("calls = %v, want %v", fb.calls, want)
	}
}

func TestStaleSocketReplaced(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "cgw.sock")
	// Simulate a crash: a socket file with nobody listening.
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Stat(sock); err != nil {
		t.Fatal("stale socket not left behind")
	}
	srv2, err := control.Listen(sock, &fakeBackend{}, nil)
	if err != nil {
		t.Fatalf("listen after stale socket: %v", err)
	}
	srv2.Close()

	notSock := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notSock, []byte("x"), 0o600)
	if _, err := control.Listen(notSock, &fakeBackend{}, nil); err == nil {
		t.Error("Listen over a regular file succeeded")
	}
	c := client.New(filepath.Join(t.TempDir(), "none.sock"))
	if _, err := c.Status(context.Background()); err == nil || !strings.Contains(err.Error(), "is cgwd running") {
		t.Errorf("status without daemon: %v", err)
	}
}

// Close ends event streams at once instead of waiting for Shutdown's
// timeout, and the subscriber learns the stream ended.
func TestCloseEndsEventStreams(t *testing.T) {
	dir, err := os.MkdirTemp("", "cgwctl")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "cgw.sock")
	srv, err := control.Listen(sock, &fakeBackend{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	got := make(chan control.Event, 1)
	done := make(chan error, 1)
	go func() {
		done <- client.New(sock).Events(context.Background(), func(ev control.Event) error {
			got <- ev
			return nil
		})
	}()
	select {
	case ev := <-got:
		if ev.Type != control.EventTunnel || ev.Tunnel != "t1" {
			t.Errorf("event %+v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
	}
	start := time.Now()
	if err := srv.Close(); err != nil {
		t.Errorf("Close with a subscriber: %v", err)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("Close took %v: it waited for the event stream", d)
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "closed the event stream") {
			t.Errorf("Events after Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Events did not return after Close")
	}
}
