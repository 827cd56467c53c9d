package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Charon is the strongSwan IKE daemon binary.
var Charon = "/usr/lib/ipsec/charon"

// requiredTools lists the binaries the simulator runs (besides charon).
var requiredTools = []string{"ip", "unshare", "mount", "nft", "swanctl", "bird", "birdc", "ping", "iperf3"}

// CheckTools reports the first missing binary the options need. Tests use it
// to skip cleanly; `make deps` (test/deps.sh) installs everything.
func CheckTools(opts Options) error {
	for _, t := range requiredTools {
		if _, err := exec.LookPath(t); err != nil {
			return fmt.Errorf("sim: %s not found (run test/deps.sh): %w", t, err)
		}
	}
	if _, err := os.Stat(Charon); err != nil {
		return fmt.Errorf("sim: charon not found at %s (run test/deps.sh): %w", Charon, err)
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return fmt.Errorf("sim: /dev/net/tun missing: %w", err)
	}
	return nil
}

// Process is a long-running command inside a namespace with its output
// captured to a log file.
type Process struct {
	Name string
	NS   string
	Log  string // path of the combined stdout/stderr log

	cmd  *exec.Cmd
	done chan struct{}
	err  error // valid after done is closed
	once sync.Once
}

// Pid returns the process id (the command itself: `ip netns exec` and
// `unshare` exec into it).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited, and its wait error.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Stop sends SIGTERM to the process group, waits up to 5 s, then SIGKILLs.
func (p *Process) Stop() {
	p.once.Do(func() {
		if ok, _ := p.Exited(); ok {
			return
		}
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-p.done:
			return
		case <-time.After(5 * time.Second):
		}
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	})
}

// killPG SIGKILLs the process group of p.
func killPG(p *Process) error { return syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL) }

// Tail returns up to n bytes from the end of the process log.
func (p *Process) Tail(n int) string { return tailFile(p.Log, n) }

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// StartProcess runs args in the namespace of role (a Role or a full
// namespace name) with output in <Dir>/logs/<name>.log. The process is
// stopped by Close (or earlier by p.Stop).
func (s *Sim) StartProcess(role Role, name string, args ...string) (*Process, error) {
	return s.startProcess(s.nsOf(role), name, nil, args...)
}

// StartProcessEnv is StartProcess with extra environment variables.
func (s *Sim) StartProcessEnv(role Role, name string, env []string, args ...string) (*Process, error) {
	return s.startProcess(s.nsOf(role), name, env, args...)
}

func (s *Sim) nsOf(r Role) string {
	for _, x := range append(Roles[:len(Roles):len(Roles)], HARoles...) {
		if r == x {
			return s.NS(r)
		}
	}
	return string(r)
}

func (s *Sim) startProcess(ns, name string, env []string, args ...string) (*Process, error) {
	if len(args) == 0 {
		return nil, errors.New("sim: StartProcess: no command")
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, errors.New("sim: StartProcess after Close")
	}
	if err := os.MkdirAll(s.path("logs"), 0o700); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	logPath := s.path("logs", name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	fmt.Fprintf(f, "=== %s: %s\n", time.Now().Format(time.RFC3339), strings.Join(args, " "))
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	// No Pdeathsig: it fires when the forking OS thread exits, not the
	// process, and `simctl up` wants the processes to outlive it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("sim: start %s in %s: %w", name, ns, err)
	}
	p := &Process{Name: name, NS: ns, Log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	s.logf("started %s (pid %d) in %s", name, p.Pid(), ns)
	return p, nil
}

// Exec runs args inside network namespace ns (a full name) and returns the
// combined output. It is bounded by a 60 s timeout.
func Exec(ns string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return ExecContext(ctx, ns, args...)
}

// ExecContext is Exec with a caller-supplied context. ns == "" runs in the
// current namespace. The output is stdout only; stderr goes into the error.
func ExecContext(ctx context.Context, ns string, args ...string) (string, error) {
	if len(args) == 0 {
		return "", errors.New("sim: Exec: no command")
	}
	var cmd *exec.Cmd
	if ns == "" {
		cmd = exec.CommandContext(ctx, args[0], args[1:]...)
	} else {
		cmd = exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, args...)...)
	}
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	if err != nil {
		where := ns
		if where == "" {
			where = "host"
		}
		return out.String(), fmt.Errorf("sim: %s (in %s): %w: %s", strings.Join(args, " "), where, err,
			strings.TrimSpace(lastLines(out.String()+stderr.String(), 5)))
	}
	return out.String(), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Exec runs args in the namespace of role and returns the combined output.
func (s *Sim) Exec(role Role, args ...string) (string, error) {
	return Exec(s.nsOf(role), args...)
}

// run executes a host command (ip, nft, swanctl, birdc) with a timeout.
func run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return ExecContext(ctx, "", args...)
}

// Teardown kills every process running in the namespaces of simulation id,
// deletes the namespaces and their nftables state. It is what Close does
// and what `simctl down` uses for a simulation started by another process.
func Teardown(id string) error {
	var errs []error
	for _, r := range append(Roles[:len(Roles):len(Roles)], HARoles...) {
		ns := NSName(id, r)
		if _, err := os.Stat(filepath.Join("/run/netns", ns)); err != nil {
			continue
		}
		killNamespace(ns)
		if out, err := run("ip", "netns", "del", ns); err != nil {
			errs = append(errs, fmt.Errorf("sim: delete netns %s: %v: %s", ns, err, out))
		}
	}
	return errors.Join(errs...)
}

// killNamespace kills what still runs inside ns (only processes inside a
// namespace this package created): TERM, then KILL after 3 s.
func killNamespace(ns string) {
	pids := nsPids(ns)
	if len(pids) == 0 {
		return
	}
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGTERM)
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if len(nsPids(ns)) == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, p := range nsPids(ns) {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	for i := 0; i < 20 && len(nsPids(ns)) > 0; i++ {
		time.Sleep(50 * time.Millisecond)
	}
}

func nsPids(ns string) []int {
	out, err := run("ip", "netns", "pids", ns)
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(out) {
		if p, err := strconv.Atoi(f); err == nil && p != os.Getpid() {
			pids = append(pids, p)
		}
	}
	return pids
}

// List returns the ids of simulations whose namespaces exist on this host.
func List() []string {
	ents, _ := os.ReadDir("/run/netns")
	seen := map[string]bool{}
	var ids []string
	for _, e := range ents {
		n := e.Name()
		if !strings.HasPrefix(n, "cgw-") {
			continue
		}
		rest := strings.TrimPrefix(n, "cgw-")
		i := strings.LastIndexByte(rest, '-')
		if i <= 0 {
			continue
		}
		role := Role(rest[i+1:])
		known := false
		for _, r := range Roles {
			known = known || r == role
		}
		if known && !seen[rest[:i]] {
			seen[rest[:i]] = true
			ids = append(ids, rest[:i])
		}
	}
	return ids
}
