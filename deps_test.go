package cgw_test

// Dependency-direction rules (Tailscale deps_test style): arrows point down
// only, so the architecture stays visible from the import graph.

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/cgwproject/cgw/"

// badDeps maps a package to import-path prefixes it must never depend on
// (directly or transitively).
var badDeps = map[string][]string{
	"ipsec":           {mod},
	"esp/replay":      {mod},
	"esp":             {mod + "ike", mod + "dataplane", mod + "bgp", mod + "config", mod + "control", mod + "daemon"},
	"ike/message":     {mod + "ike/crypto", mod + "esp", mod + "dataplane", mod + "bgp", mod + "config"},
	"ike/crypto":      {mod + "esp", mod + "dataplane", mod + "bgp", mod + "config"},
	"ike":             {mod + "esp", mod + "dataplane", mod + "bgp", mod + "config", mod + "control", mod + "daemon", "github.com/osrg/gobgp", "github.com/vishvananda/netlink"},
	"dataplane":       {mod + "ike", mod + "bgp", mod + "config", mod + "control", mod + "daemon", "github.com/osrg/gobgp"},
	"dataplane/route": {mod + "ike", mod + "esp", mod + "bgp", mod + "config", mod + "control", mod + "daemon"},
	"bgp":             {mod + "ike", mod + "esp", mod + "dataplane", mod + "config", mod + "control", mod + "daemon"},
	"config":          {mod + "ike", mod + "esp", mod + "dataplane", mod + "bgp", mod + "control", mod + "daemon", "github.com/osrg/gobgp"},
	"control":         {mod + "daemon", mod + "ike", mod + "esp", mod + "dataplane", mod + "bgp"},
	"control/client":  {mod + "daemon", mod + "ike", mod + "esp", mod + "dataplane", mod + "bgp", mod + "config"},
	"cmd/cgwctl":      {mod + "daemon", mod + "ike", mod + "esp", mod + "dataplane", mod + "bgp", "github.com/osrg/gobgp"},
	"daemon":          {mod + "cmd", mod + "control/client"},
}

// badImports maps a package (and its subpackages) to packages it must not
// import directly. The standard library reaches syscall anyway (os, time),
// and daemon reaches ike/message through ike, so these are checked on
// direct imports: ike never opens a socket or makes
// a system call itself; it talks to the OS only through its Sender and
// SAInstaller interfaces.
var badImports = map[string][]string{
	"ike": {"net", "syscall", "golang.org/x/sys/unix"},
	// daemon speaks ike's API (ike.Identity, ike.Notify), not its codec.
	"daemon": {mod + "ike/message"},
}

func TestDirectImports(t *testing.T) {
	for pkg, bad := range badImports {
		out, err := exec.Command("go", "list", "-json=ImportPath,Imports", "./"+pkg+"/...").Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		dec := json.NewDecoder(strings.NewReader(string(out)))
		for dec.More() {
			var p struct {
				ImportPath string
				Imports    []string
			}
			if err := dec.Decode(&p); err != nil {
				t.Fatal(err)
			}
			for _, imp := range p.Imports {
				for _, b := range bad {
					if imp == b {
						t.Errorf("%s must not import %s", p.ImportPath, b)
					}
				}
			}
		}
	}
}

func TestDependencyDirection(t *testing.T) {
	for pkg, bad := range badDeps {
		out, err := exec.Command("go", "list", "-deps", "-json=ImportPath", "./"+pkg).Output()
		if err != nil {
			// A package that does not exist yet has nothing to check.
			if strings.Contains(string(err.(*exec.ExitError).Stderr), "no Go files") || strings.Contains(string(err.(*exec.ExitError).Stderr), "directory not found") || strings.Contains(string(err.(*exec.ExitError).Stderr), "cannot find") {
				continue
			}
			t.Fatalf("go list %s: %v: %s", pkg, err, err.(*exec.ExitError).Stderr)
		}
		dec := json.NewDecoder(strings.NewReader(string(out)))
		for dec.More() {
			var p struct{ ImportPath string }
			if err := dec.Decode(&p); err != nil {
				t.Fatal(err)
			}
			if p.ImportPath == mod+pkg || strings.HasPrefix(p.ImportPath, mod+pkg+"/") {
				continue
			}
			for _, b := range bad {
				if p.ImportPath == b || strings.HasPrefix(p.ImportPath, b+"/") || (strings.HasSuffix(b, "/") && strings.HasPrefix(p.ImportPath, b)) {
					t.Errorf("%s must not depend on %s (it does, via the import graph)", pkg, p.ImportPath)
				}
			}
		}
	}
}

func TestGofmt(t *testing.T) {
	out, err := exec.Command("gofmt", "-l", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("gofmt: %v: %s", err, out)
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		t.Errorf("files not formatted with gofmt (run gofmt -w):\n%s", s)
	}
}

// onlyDeps maps a package to the only project packages it may depend on
// (directly or transitively), its own subpackages included.
var onlyDeps = map[string][]string{
	"esp":             {"ipsec", "esp/replay"},
	"daemon/diagnose": {"config", "control", "ipsec", "internal"},
}

func TestOnlyDeps(t *testing.T) {
	for pkg, allowed := range onlyDeps {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "./"+pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
	next:
		for _, p := range strings.Fields(string(out)) {
			if !strings.HasPrefix(p, mod) || p == mod+pkg {
				continue
			}
			for _, a := range allowed {
				if p == mod+a || strings.HasPrefix(p, mod+a+"/") {
					continue next
				}
			}
			t.Errorf("%s may depend only on %v of cgw's packages, but depends on %s", pkg, allowed, p)
		}
	}
}

// TestGoBGPOnlyInBGP: GoBGP is embedded by package bgp alone; every other
// package (tests included) talks to it through bgp's API.
func TestGoBGPOnlyInBGP(t *testing.T) {
	out, err := exec.Command("go", "list", "-e", "-tags", "e2e", "-f", `{{.ImportPath}} {{join .Imports " "}} {{join .TestImports " "}} {{join .XTestImports " "}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] == mod+"bgp" || strings.HasPrefix(f[0], mod+"bgp/") {
			continue
		}
		for _, imp := range f[1:] {
			if strings.HasPrefix(imp, "github.com/osrg/gobgp") {
				t.Errorf("%s imports %s; only package bgp may import GoBGP", f[0], imp)
			}
		}
	}
}
