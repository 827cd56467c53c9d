//go:build e2e

// Package e2e runs the real cgwd and cgwctl binaries against the simulated
// AWS side of package test/sim inside network namespaces (root required).
//
//	make e2e                              # builds ./bin, runs with -tags e2e
//	go test -tags e2e ./test/e2e/ -run X  # builds the binaries itself if $CGW_BIN is unset
//
// This file holds the shared helpers; tests live in their own files.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cgwproject/cgw/test/sim"
)

// NeedRoot skips the test unless it runs as root with the simulator's
// tools installed (`make deps`).
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("e2e tests need root (network namespaces)")
	}
	if err := sim.CheckTools(sim.Options{}); err != nil {
		t.Skip(err)
	}
}

var (
	helpersBinOnce sync.Once
	helpersBinDir  string
	helpersBinErr  error
)

// Binaries returns a directory holding cgwd and cgwctl: $CGW_BIN when set
// (make exports it), else the binaries built once per test process from
// this checkout into the user cache directory.
func Binaries(t testing.TB) string {
	t.Helper()
	helpersBinOnce.Do(func() {
		if d := os.Getenv("CGW_BIN"); d != "" {
			helpersBinDir = d
			for _, b := range []string{"cgwd", "cgwctl"} {
				if _, err := os.Stat(filepath.Join(d, b)); err != nil {
					helpersBinErr = fmt.Errorf("CGW_BIN=%s: %w (run make build)", d, err)
				}
			}
			return
		}
		root, err := moduleRoot()
		if err != nil {
			helpersBinErr = err
			return
		}
		// A fixed cache path (rebuilt every run) instead of a temp dir that
		// nothing would remove.
		cache, err := os.UserCacheDir()
		if err != nil {
			helpersBinErr = err
			return
		}
		helpersBinDir = filepath.Join(cache, "cgw", "e2e-bin")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", helpersBinDir+"/", "./cmd/cgwd", "./cmd/cgwctl")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			helpersBinErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if helpersBinErr != nil {
		t.Fatal(helpersBinErr)
	}
	return helpersBinDir
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside the cgw module")
	}
	return filepath.Dir(gomod), nil
}

// NewSim starts a simulation for t, logging through t.Logf, and registers
// teardown. On failure the tails of every daemon log are written to the
// test log before the namespaces go away. Set CGW_E2E_KEEP=1 to keep the
// simulation's directory (configs, logs) for inspection.
func NewSim(t testing.TB, o sim.Options) *sim.Sim {
	t.Helper()
	NeedRoot(t)
	if o.Logf == nil {
		o.Logf = t.Logf
	}
	o.KeepDir = o.KeepDir || os.Getenv("CGW_E2E_KEEP") != ""
	s, err := sim.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			DumpLogs(t, s)
		}
		if err := s.Close(); err != nil {
			t.Errorf("sim teardown: %v", err)
		}
		if o.KeepDir {
			t.Logf("simulation files kept in %s", s.Dir())
		}
	})
	return s
}

// DumpLogs writes the last 4 KiB of every process log of s to the test log.
func DumpLogs(t testing.TB, s *sim.Sim) {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(s.Dir(), "logs", "*.log"))
	for _, l := range logs {
		b, err := os.ReadFile(l)
		if err != nil || len(b) == 0 {
			continue
		}
		if len(b) > 4096 {
			b = b[len(b)-4096:]
		}
		t.Logf("--- %s (tail):\n%s", filepath.Base(l), b)
	}
}

// Cgwd is a running cgwd inside a simulation namespace.
type Cgwd struct {
	Proc   *sim.Process
	Role   sim.Role
	Config string // path of the YAML file
	Socket string // control socket
	bin    string
	s      *sim.Sim
}

// StartCgwd renders a configuration with s.CgwdConfig(o), starts cgwd in
// the customer namespace (or, with o.AWSSide, in the endpoint's) and waits
// until its control socket answers `cgwctl status`.
func StartCgwd(t testing.TB, s *sim.Sim, o sim.CgwdOptions) *Cgwd {
	t.Helper()
	cfg, err := s.CgwdConfig(o)
	if err != nil {
		t.Fatal(err)
	}
	role := sim.Cust
	if o.AWSSide {
		role = sim.Endpoints[o.Endpoints[0]-1].Role
	}
	return StartCgwdYAML(t, s, role, cfg)
}

// StartCgwdYAML starts cgwd in role with a hand-written configuration. The
// YAML's control socket must be s.CgwdSocket(role).
func StartCgwdYAML(t testing.TB, s *sim.Sim, role sim.Role, yaml string) *Cgwd {
	t.Helper()
	bin := Binaries(t)
	p, err := s.StartCgwd(role, filepath.Join(bin, "cgwd"), yaml)
	if err != nil {
		t.Fatal(err)
	}
	c := &Cgwd{Proc: p, Role: role, Config: filepath.Join(s.Dir(), "cgwd-"+string(role)+".yaml"), Socket: s.CgwdSocket(role), bin: bin, s: s}
	Eventually(t, 15*time.Second, func() error {
		if ok, err := p.Exited(); ok {
			return fmt.Errorf("cgwd exited: %v\n%s", err, p.Tail(3000))
		}
		_, err := c.Ctl("status")
		return err
	})
	return c
}

// Ctl runs cgwctl against this cgwd (from the host: the socket is a path
// in the simulation's directory) and returns stdout.
func (c *Cgwd) Ctl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, "cgwctl"), args...)
	cmd.Env = append(os.Environ(), "CGW_SOCKET="+c.Socket)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("cgwctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// CtlJSON runs cgwctl with --json (appended) and decodes stdout into v.
func (c *Cgwd) CtlJSON(v any, args ...string) error {
	out, err := c.Ctl(append(args, "--json")...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("cgwctl %s --json: %w: %q", strings.Join(args, " "), err, out)
	}
	return nil
}

// Signal sends sig to cgwd (SIGHUP = reload).
func (c *Cgwd) Signal(sig syscall.Signal) error { return syscall.Kill(c.Proc.Pid(), sig) }

// Stop terminates cgwd (SIGTERM, then SIGKILL after 5 s) and waits.
func (c *Cgwd) Stop() { c.Proc.Stop() }

// Eventually calls f every 200 ms until it returns nil or timeout passes,
// then fails the test with f's last error.
func Eventually(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %v", timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
