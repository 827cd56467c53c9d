package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

func TestPprofSocket(t *testing.T) {
	t.Setenv(pprofEnv, "")
	stop, err := servePprof()
	if err != nil {
		t.Fatalf("unset: %v", err)
	}
	stop()

	dir := t.TempDir()
	path := filepath.Join(dir, "pprof.sock")
	t.Setenv(pprofEnv, path)
	stop, err = servePprof()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket %v, %v; want a socket of mode 0600", fi, err)
	}
	c := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", path)
	}}}
	resp, err := c.Get("http://cgwd/debug/pprof/heap")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("heap profile: %s", resp.Status)
	}

	for _, bad := range []string{"pprof.sock", filepath.Join(dir, "file")} {
		os.WriteFile(filepath.Join(dir, "file"), nil, 0o600)
		t.Setenv(pprofEnv, bad)
		if _, err := servePprof(); err == nil {
			t.Errorf("%s=%s accepted", pprofEnv, bad)
		}
	}
}
