package control

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

type statusOnly struct{ Backend }

func (statusOnly) Status(context.Context) (*Status, error) { return &Status{Version: "t"}, nil }

// TestPeerCred: root and the socket's owner may use the API; any other uid
// gets 403, even when the directory and socket let it connect.
func TestPeerCred(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a client as another uid")
	}
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("needs curl")
	}
	dir, err := os.MkdirTemp("", "cgw-peercred")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "ctl", "cgw.sock")
	s, err := Listen(sock, statusOnly{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	defer s.Close()
	s.owner = 4242 // pretend cgwd runs as uid 4242
	// Open the way so that only SO_PEERCRED stands between the caller
	// and the API.
	for _, p := range []string{dir, filepath.Dir(sock)} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	get := func(uid uint32) string {
		cmd := exec.Command(curl, "-s", "-w", " %{http_code}", "--unix-socket", sock, "http://cgwd/v1/status")
		if uid != 0 {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("curl as uid %d: %v: %s", uid, err, out)
		}
		return string(out)
	}
	if out := get(0); !strings.HasSuffix(out, " 200") {
		t.Errorf("root: %s", out)
	}
	if out := get(4242); !strings.HasSuffix(out, " 200") {
		t.Errorf("the socket's owner: %s", out)
	}
	if out := get(4343); !strings.HasSuffix(out, " 403") || !strings.Contains(out, "permission denied: uid 4343") {
		t.Errorf("another uid: %s, want 403 naming the uid", out)
	}
}

func TestPrivateDir(t *testing.T) {
	base := t.TempDir()
	mode := func(dir string, want os.FileMode) {
		t.Helper()
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", dir, fi.Mode().Perm(), want)
		}
	}
	// Created 0700.
	d := filepath.Join(base, "new", "run")
	if err := privateDir(d, "cgw.sock"); err != nil {
		t.Fatal(err)
	}
	mode(d, 0o700)
	// Ours, empty but for a stale socket, too open: tightened.
	own := filepath.Join(base, "own")
	os.Mkdir(own, 0o755)
	os.WriteFile(filepath.Join(own, "cgw.sock"), nil, 0o600)
	if err := privateDir(own, "cgw.sock"); err != nil {
		t.Fatal(err)
	}
	mode(own, 0o700)
	// Shared with other files and too open: refused, untouched.
	shared := filepath.Join(base, "shared")
	os.Mkdir(shared, 0o755)
	os.WriteFile(filepath.Join(shared, "bird.conf"), nil, 0o644)
	err := privateDir(shared, "cgw.sock")
	if err == nil || !strings.Contains(err.Error(), "bird.conf") || !strings.Contains(err.Error(), "control.socket") {
		t.Errorf("shared directory: %v", err)
	}
	mode(shared, 0o755)
	// Listen never changes the process umask any more.
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	s, err := Listen(filepath.Join(base, "l", "cgw.sock"), statusOnly{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if m := syscall.Umask(0o022); m != 0o022 {
		t.Errorf("umask changed to %#o", m)
	}
}
