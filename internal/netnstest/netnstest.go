// Package netnstest runs a test inside a fresh network namespace: the
// parent creates the namespace and re-executes the test binary in it with
// `ip netns exec`, so every thread of the child (not just a locked one) is
// in the namespace. The child sees env set and does the checks.
package netnstest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// InChild reports whether this process is the re-executed child of Run
// for env.
func InChild(env string) bool { return os.Getenv(env) == "1" }

// Run creates namespace ns, runs the test named test of this binary in it
// with env=1 and fails t unless the child passes. It skips without root or
// iproute2. The namespace is removed afterwards.
func Run(t *testing.T, ns, test, env string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	exec.Command("ip", "netns", "del", ns).Run() // leftover from a killed run
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	cmd := exec.Command("ip", "netns", "exec", ns, exe, "-test.run=^"+test+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), env+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("child output:\n%s", out)
	if err != nil {
		t.Fatalf("child in netns %s failed: %v", ns, err)
	}
	if !strings.Contains(string(out), "--- PASS: "+test) {
		t.Fatalf("child did not run %s", test)
	}
}
