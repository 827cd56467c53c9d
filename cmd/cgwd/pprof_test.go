package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// --pprof serves profiles on a unix socket or loopback only.
func TestPprofListen(t *testing.T) {
	for _, bad := range []string{"0.0.0.0:6060", "192.0.2.1:6060", "[::]:6060", ":6060", "relative/sock", "localhost:6060"} {
		if ln, err := pprofListen(bad); err == nil {
			ln.Close()
			t.Errorf("--pprof %q accepted; want only loopback addresses and absolute socket paths", bad)
		}
	}
	ln, err := pprofListen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()

	sock := filepath.Join(t.TempDir(), "pprof.sock")
	stop, err := startPprof(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	c := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	resp, err := c.Get("http://cgwd/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "goroutine profile:") {
		t.Fatalf("GET goroutine profile: %s\n%.300s", resp.Status, b)
	}
}
