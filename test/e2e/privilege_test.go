//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/test/sim"
)

// Least privilege (issue 12): cgwd runs as a non-root user with only the
// capabilities README lists, natively (setpriv, as systemd's
// AmbientCapabilities= does) and from the container image (podman).

// unprivUID is the user cgwd runs as here: nobody, which exists on every
// Debian system, so the test creates no account.
const unprivUID = 65534

// tunnelCaps are the capabilities README and the systemd unit grant for the
// tunnels, BGP and routes (CAP_NET_RAW only serves ICMP probes).
var tunnelCaps = []string{"net_admin", "net_bind_service"}

// capMask is CapEff for names: CAP_NET_BIND_SERVICE = 10, CAP_NET_ADMIN = 12.
func capMask(names []string) uint64 {
	bits := map[string]uint{"net_bind_service": 10, "net_admin": 12, "net_raw": 13}
	var m uint64
	for _, n := range names {
		m |= 1 << bits[n]
	}
	return m
}

// ownedDir makes a directory for uid holding cgwd's configuration and
// control socket (the simulation's own directory is root's, mode 0700).
func ownedDir(t *testing.T, uid int, yaml string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cgw-priv")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.WriteFile(filepath.Join(dir, "cgw.yaml"), []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, filepath.Join(dir, "cgw.yaml")} {
		if err := os.Chown(p, uid, uid); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

// tunNode makes a /dev/net/tun device node (10, 200) in dir owned by uid,
// mode 0600. Debian's udev makes /dev/net/tun 0666 (opening it is harmless:
// creating an interface needs CAP_NET_ADMIN); hosts without udev, like the
// CI machine, leave it root's 0600. Binding this node over /dev/net/tun in
// cgwd's private mount namespace gives the unprivileged user access without
// changing the host.
func tunNode(t *testing.T, dir string, uid int) string {
	t.Helper()
	p := filepath.Join(dir, "tun")
	if err := syscall.Mknod(p, syscall.S_IFCHR|0o600, int(unix.Mkdev(10, 200))); err != nil {
		t.Fatalf("mknod %s: %v", p, err)
	}
	if err := os.Chown(p, uid, uid); err != nil {
		t.Fatal(err)
	}
	return p
}

// withSocket replaces the control socket of a sim.CgwdConfig rendering.
func withSocket(t *testing.T, yaml, socket string) string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^control: \{socket: [^}]*\}$`)
	if !re.MatchString(yaml) {
		t.Fatalf("no control line in the rendered configuration:\n%s", yaml)
	}
	return re.ReplaceAllString(yaml, "control: {socket: "+socket+"}")
}

// procStatus reads the Uid and CapEff lines of /proc/PID/status.
func procStatus(pid int) (uid string, capEff uint64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "", 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 {
			switch f[0] {
			case "Uid:":
				uid = f[1]
			case "CapEff:":
				_, err = fmt.Sscanf(f[1], "%x", &capEff)
			}
		}
	}
	return uid, capEff, err
}

// procCapBnd reads the CapBnd line of /proc/PID/status.
func procCapBnd(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "CapBnd:" {
			var v uint64
			_, err = fmt.Sscanf(f[1], "%x", &v)
			return v, err
		}
	}
	return 0, fmt.Errorf("no CapBnd in /proc/%d/status", pid)
}

// startUnprivileged runs cgwd in the customer namespace as unprivUID with
// exactly caps (inheritable, ambient and bounding set; no_new_privs).
func startUnprivileged(t *testing.T, s *sim.Sim, name, dir string, caps []string) *sim.Process {
	t.Helper()
	set := "-all"
	for _, c := range caps {
		set += ",+" + c
	}
	p, err := s.StartProcess(sim.Cust, name, "unshare", "--mount", "--propagation", "private",
		"sh", "-c", `mount --bind "$0" /dev/net/tun && exec "$@"`, tunNode(t, dir, unprivUID), "setpriv",
		fmt.Sprintf("--reuid=%d", unprivUID), fmt.Sprintf("--regid=%d", unprivUID), "--clear-groups",
		"--inh-caps="+set, "--ambient-caps="+set, "--bounding-set="+set, "--no-new-privs",
		filepath.Join(Binaries(t), "cgwd"), "--config", filepath.Join(dir, "cgw.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestNonRootCapabilities: cgwd as nobody with only CAP_NET_ADMIN and
// CAP_NET_BIND_SERVICE brings both tunnels and BGP up and carries a
// LAN->VPC ping; without either capability it refuses to start with an
// error naming what failed, so the list is not longer than needed.
func TestNonRootCapabilities(t *testing.T) {
	s := NewSim(t, sim.Options{})
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatal("setpriv (util-linux) is missing: run make deps")
	}
	base, err := s.CgwdConfig(sim.CgwdOptions{})
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		drop, want string
	}{
		// The first privileged step without NET_ADMIN is the firewall mark
		// on the IKE/ESP sockets (routes.fwmark), before any TUN device.
		{"net_admin", "set so_mark 0xc7 on port 500: operation not permitted (cgwd needs cap_net_bind_service for udp 500/4500 and cap_net_admin"},
		{"net_bind_service", "listen udp4 0.0.0.0:500: bind: permission denied"},
	} {
		var caps []string
		for _, c := range tunnelCaps {
			if c != tc.drop {
				caps = append(caps, c)
			}
		}
		dir := ownedDir(t, unprivUID, "")
		if err := os.WriteFile(filepath.Join(dir, "cgw.yaml"), []byte(withSocket(t, base, filepath.Join(dir, "cgw.sock"))), 0o600); err != nil {
			t.Fatal(err)
		}
		p := startUnprivileged(t, s, "cgwd-without-"+tc.drop, dir, caps)
		select {
		case <-p.Done():
			if log := strings.ToLower(p.Tail(2000)); !strings.Contains(log, tc.want) {
				t.Errorf("without CAP_%s: cgwd exited, but its log does not say %q:\n%s", strings.ToUpper(tc.drop), tc.want, p.Tail(2000))
			}
		case <-time.After(20 * time.Second):
			p.Stop()
			t.Fatalf("without CAP_%s cgwd kept running: the capability is not needed, or the test does not drop it:\n%s", strings.ToUpper(tc.drop), p.Tail(2000))
		}
	}

	dir := ownedDir(t, unprivUID, "")
	sock := filepath.Join(dir, "cgw.sock")
	if err := os.WriteFile(filepath.Join(dir, "cgw.yaml"), []byte(withSocket(t, base, sock)), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startUnprivileged(t, s, "cgwd-nonroot", dir, tunnelCaps)
	d := &Cgwd{Proc: p, Role: sim.Cust, Config: filepath.Join(dir, "cgw.yaml"), Socket: sock, bin: Binaries(t), s: s}
	t.Cleanup(d.Stop)
	start := time.Now()
	d.waitStatus(t, 90*time.Second, tunnelsUp)
	t.Logf("non-root cgwd: both tunnels and BGP up after %v", time.Since(start).Round(time.Millisecond))

	uid, capEff, err := procStatus(p.Pid())
	if err != nil {
		t.Fatal(err)
	}
	if uid != fmt.Sprint(unprivUID) || capEff != capMask(tunnelCaps) {
		t.Fatalf("cgwd runs as uid %s with CapEff %#x, want uid %d with exactly %#x (%v)", uid, capEff, unprivUID, capMask(tunnelCaps), tunnelCaps)
	}
	if err := s.WaitPing(sim.LAN, sim.VPCHostAddr, 20*time.Second); err != nil {
		t.Fatalf("LAN host cannot reach the VPC host through the non-root cgwd: %v", err)
	}
	if loss, err := s.Ping(sim.LAN, sim.VPCHostAddr, 10, 100*time.Millisecond); err != nil || loss > 0 {
		t.Errorf("ping LAN->VPC: loss %.0f%%, err %v", loss, err)
	}
}

// imageRef is the image `make image` built ($CGW_IMAGE, exported by the
// Makefile); without it the test builds one from Binaries() with the same
// script.
func imageRef(t *testing.T) string {
	t.Helper()
	if ref := os.Getenv("CGW_IMAGE"); ref != "" {
		if out, err := exec.Command("podman", "image", "exists", ref).CombinedOutput(); err != nil {
			t.Fatalf("CGW_IMAGE=%s: %v %s (run make image)", ref, err, out)
		}
		return ref
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	ref := "localhost/cgw:e2e"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "bash", filepath.Join(root, "deploy/container/build-image.sh"), Binaries(t), "e2e", ref).CombinedOutput()
	if err != nil {
		t.Fatalf("build-image.sh: %v\n%s", err, out)
	}
	return ref
}

// readmeRun is the part of README's `podman run` example the container
// test runs verbatim; the test fails if README stops showing it.
const readmeRun = "--network host --cap-drop ALL --cap-add NET_ADMIN,NET_BIND_SERVICE --device /dev/net/tun"

// engineQuirks returns podman flags this host needs beyond README's
// invocation, found by running `cgwd --version` from the image: none on a
// usual host. In a sandbox without CAP_SYS_RESOURCE podman's default
// rlimits cannot be set (limits within the current ones are passed), and
// with hybrid cgroups (v1 controllers + v2) crun refuses to run where runc
// does. want is the version the image must print.
func engineQuirks(t *testing.T, ref, want string) []string {
	t.Helper()
	var nofile syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &nofile)
	limits := []string{"--ulimit", fmt.Sprintf("nofile=%d:%d", nofile.Cur, nofile.Cur), "--ulimit", "nproc=4096:4096"}
	var tried []string
	for _, extra := range [][]string{nil, limits, append([]string{"--runtime", "runc"}, limits...)} {
		// The capabilities are needed even for --version: the file
		// capabilities make exec fail without them.
		args := append(append([]string{"run", "--rm", "--network", "host", "--cap-add", "NET_ADMIN,NET_BIND_SERVICE"}, extra...), ref, "--version")
		out, err := exec.Command("podman", args...).CombinedOutput()
		if err == nil {
			if !strings.HasPrefix(string(out), "cgwd "+want+" ") {
				t.Fatalf("the image's cgwd --version prints %q, want cgwd %s", out, want)
			}
			return extra
		}
		tried = append(tried, fmt.Sprintf("podman %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out))))
	}
	t.Fatalf("podman cannot run the image here:\n%s", strings.Join(tried, "\n"))
	return nil
}

// TestContainerImage runs cgwd from the runtime image with README's
// invocation (podman, host network, NET_ADMIN + NET_BIND_SERVICE,
// /dev/net/tun, the configuration directory mounted read-only) on the
// simulated customer host: podman starts inside the customer's network
// namespace (nsenter --net: `ip netns exec` would remount /sys, hiding the
// cgroup filesystem the OCI runtime needs), so --network host is that
// namespace. Both tunnels and BGP come up, a LAN->VPC ping passes, and the
// daemon runs as the image's user cgw with exactly those capabilities.
func TestContainerImage(t *testing.T) {
	s := NewSim(t, sim.Options{})
	if _, err := exec.LookPath("podman"); err != nil {
		t.Fatal("podman is missing: run make deps")
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), readmeRun) {
		t.Errorf("README's podman run example no longer shows %q, which this test runs", readmeRun)
	}
	ref := imageRef(t)
	bin := Binaries(t)
	v, err := exec.Command(filepath.Join(bin, "cgwd"), "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	quirks := engineQuirks(t, ref, strings.Fields(string(v))[1])
	// The image's cgwd carries the file capabilities that engines without
	// ambient capabilities for non-root users (Docker, containerd) need.
	if mnt, err := exec.Command("podman", "image", "mount", ref).Output(); err != nil {
		t.Errorf("podman image mount %s: %v", ref, err)
	} else {
		caps, err := exec.Command("getcap", filepath.Join(strings.TrimSpace(string(mnt)), "usr/local/bin/cgwd")).Output()
		exec.Command("podman", "image", "unmount", ref).Run()
		if err != nil || !strings.Contains(string(caps), "cap_net_bind_service,cap_net_admin=ep") {
			t.Errorf("the image's cgwd has file capabilities %q (%v), want cap_net_bind_service,cap_net_admin=ep", caps, err)
		}
	}

	base, err := s.CgwdConfig(sim.CgwdOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The image's user cgw is 65532; the default control socket
	// /run/cgw/cgw.sock lives inside the container.
	const imageUID = 65532
	dir := ownedDir(t, imageUID, withSocket(t, base, "/run/cgw/cgw.sock"))
	name := regexp.MustCompile(`[^a-zA-Z0-9_.-]`).ReplaceAllString("cgw-e2e-"+filepath.Base(s.Dir()), "-")
	args := []string{"--net=/run/netns/" + s.NS(sim.Cust), "podman", "run", "--rm", "--name", name}
	args = append(args, strings.Fields(readmeRun)...)
	args = args[:len(args)-1] // README's /dev/net/tun: this host's may be root-only (see tunNode)
	args = append(args, tunNode(t, dir, imageUID)+":/dev/net/tun", "-v", dir+":/etc/cgw:ro")
	args = append(append(args, quirks...), ref)
	logf, err := os.Create(filepath.Join(s.Dir(), "logs", "podman-cgwd.log"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(logf, "=== nsenter %s\n", strings.Join(args, " "))
	cmd := exec.Command("nsenter", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logf.Close() }()
	t.Cleanup(func() {
		exec.Command("podman", "stop", "-t", "10", name).Run()
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
		}
		exec.Command("podman", "rm", "-f", name).Run()
	})
	ctl := func(args ...string) ([]byte, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return exec.CommandContext(ctx, "podman", append([]string{"exec", name, "cgwctl"}, args...)...).Output()
	}
	start := time.Now()
	Eventually(t, 120*time.Second, func() error {
		select {
		case err := <-exited:
			b, _ := os.ReadFile(filepath.Join(s.Dir(), "logs", "podman-cgwd.log"))
			t.Fatalf("podman run exited: %v\n%s", err, b)
		default:
		}
		out, err := ctl("status", "--json")
		if err != nil {
			return fmt.Errorf("podman exec %s cgwctl status: %v", name, err)
		}
		var st control.Status
		if err := json.Unmarshal(out, &st); err != nil {
			return err
		}
		return tunnelsUp(&st)
	})
	t.Logf("container cgwd: both tunnels and BGP up after %v", time.Since(start).Round(time.Millisecond))

	out, err := exec.Command("podman", "inspect", "-f", "{{.State.Pid}}", name).Output()
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	fmt.Sscan(strings.TrimSpace(string(out)), &pid)
	uid, capEff, err := procStatus(pid)
	if err != nil {
		t.Fatal(err)
	}
	if uid != fmt.Sprint(imageUID) || capEff != capMask(tunnelCaps) {
		t.Errorf("containerized cgwd runs as uid %s with CapEff %#x, want uid %d with exactly %#x", uid, capEff, imageUID, capMask(tunnelCaps))
	}
	// The file capabilities need no_new_privs off (Kubernetes:
	// allowPrivilegeEscalation: true); what keeps that safe is the
	// bounding set, which README's --cap-drop ALL --cap-add (Kubernetes:
	// drop ALL, add the two) limits to the two capabilities cgwd already
	// has. (--cap-add alone leaves the engine's defaults in it: SETUID,
	// DAC_OVERRIDE, CHOWN and more.)
	if bnd, err := procCapBnd(pid); err != nil || bnd != capMask(tunnelCaps) {
		t.Errorf("containerized cgwd's CapBnd %#x (%v), want exactly %#x: nothing beyond its own capabilities may be gained", bnd, err, capMask(tunnelCaps))
	}
	if v, err := ctl("version"); err != nil || !strings.Contains(string(v), "cgwd ") {
		t.Errorf("podman exec cgwctl version: %q, %v", v, err)
	}
	if err := s.WaitPing(sim.LAN, sim.VPCHostAddr, 20*time.Second); err != nil {
		t.Fatalf("LAN host cannot reach the VPC host through the containerized cgwd: %v", err)
	}
	if loss, err := s.Ping(sim.LAN, sim.VPCHostAddr, 10, 100*time.Millisecond); err != nil || loss > 0 {
		t.Errorf("ping LAN->VPC: loss %.0f%%, err %v", loss, err)
	}
}
