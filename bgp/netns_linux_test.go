package bgp_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cgwproject/cgw/bgp"
	"github.com/cgwproject/cgw/dataplane/route"
)

// TestNetnsBIRD peers a bgp.Server with BIRD 2 playing the AWS side.
//
//	netns cgwbgp-a                         netns cgwbgp-b
//	bgp.Server AS65000  va 169.254.15.194/30 <-> vb 169.254.15.193/30  BIRD AS64512
//	advertises 10.1.0.0/24, 10.1.1.0/24                     advertises 10.0.0.0/16
//
// The parent (this process, in the root namespace) builds the namespaces
// and runs BIRD in cgwbgp-b; the Server must run with all of its threads in
// cgwbgp-a, so the test binary re-executes itself there with `ip netns
// exec` and the child does the checks.
const (
	nsA      = "cgwbgp-a"
	nsB      = "cgwbgp-b"
	childEnv = "CGWBGP_CHILD"
	sockEnv  = "CGWBGP_BIRD_SOCK"
	ourAddr  = "169.254.15.194"
	awsAddr  = "169.254.15.193"
)

const birdConf = `
log stderr all;
router id 169.254.15.193;
protocol device {}
protocol static vpc {
	ipv4;
	route 10.0.0.0/16 unreachable;
	route 10.5.0.0/16 unreachable;
}
protocol bgp aws {
	local 169.254.15.193 as 64512;
	neighbor 169.254.15.194 as 65000;
	hold time 30;
	keepalive time 10;
	connect delay time 1;
	connect retry time 2;
	error wait time 1, 3;
	ipv4 {
		import all;
		# 10.5.0.0/16 carries our ASN (65000): the Server must drop it
		# (AS-path loop, RFC 4271 Section 9.1.2).
		export filter {
			if source != RTS_STATIC then reject;
			if net = 10.5.0.0/16 then bgp_path.prepend(65000);
			accept;
		};
	};
}
`

func TestNetnsBIRD(t *testing.T) {
	if os.Getenv(childEnv) == "1" {
		netnsChild(t)
		return
	}
	run := netnsSetup(t, nsA, nsB)
	run("ip", "-n", nsA, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", nsB)
	run("ip", "-n", nsA, "addr", "add", ourAddr+"/30", "dev", "va")
	run("ip", "-n", nsB, "addr", "add", awsAddr+"/30", "dev", "vb")
	run("ip", "-n", nsA, "link", "set", "va", "up")
	run("ip", "-n", nsB, "link", "set", "vb", "up")
	sock := startNetnsBird(t, nsB, birdConf)
	runNetnsChild(t, nsA, "TestNetnsBIRD", childEnv+"=1", sockEnv+"="+sock)
}

// netnsSetup skips t unless it runs as root with ip and BIRD, creates the
// namespaces (deleted at cleanup, leftovers of a killed run first) with
// loopback up, and returns a runner that fails t on error.
func netnsSetup(t *testing.T, nss ...string) func(args ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	for _, bin := range []string{"ip", "/usr/sbin/bird", "birdc"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s", bin)
		}
	}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	delNS := func() {
		for _, ns := range nss {
			exec.Command("ip", "netns", "del", ns).Run()
		}
	}
	delNS()
	t.Cleanup(delNS)
	for _, ns := range nss {
		run("ip", "netns", "add", ns)
		run("ip", "-n", ns, "link", "set", "lo", "up")
	}
	return run
}

// startNetnsBird runs BIRD with conf in ns until the test ends and returns
// its control socket.
func startNetnsBird(t *testing.T, ns, conf string) string {
	t.Helper()
	dir := t.TempDir()
	cf := filepath.Join(dir, "bird.conf")
	sock := filepath.Join(dir, "bird.ctl")
	if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	var birdLog syncBuffer
	bird := exec.Command("ip", "netns", "exec", ns, "/usr/sbin/bird", "-f", "-c", cf, "-s", sock, "-P", filepath.Join(dir, "bird.pid"))
	bird.Stdout, bird.Stderr = &birdLog, &birdLog
	if err := bird.Start(); err != nil {
		t.Fatal(err)
	}
	// Registered after the namespaces' cleanup, so it runs first: BIRD
	// stops before its namespace goes away.
	t.Cleanup(func() {
		bird.Process.Kill()
		bird.Wait()
		if t.Failed() {
			t.Logf("BIRD log (%s):\n%s", ns, birdLog.String())
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for exec.Command("birdc", "-s", sock, "show", "status").Run() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("BIRD in %s did not come up:\n%s", ns, birdLog.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return sock
}

// runNetnsChild re-runs the test binary's test name inside ns with env
// added (the Server must run with all of its threads there) and fails t
// unless the child passes.
func runNetnsChild(t *testing.T, ns, name string, env ...string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	child := exec.CommandContext(ctx, "ip", "netns", "exec", ns, exe, "-test.run=^"+name+"$", "-test.v", "-test.count=1")
	child.Env = append(os.Environ(), env...)
	out, err := child.CombinedOutput()
	t.Logf("child in %s:\n%s", ns, out)
	if err != nil {
		t.Fatalf("child failed: %v", err)
	}
	if !bytes.Contains(out, []byte("--- PASS: "+name)) {
		t.Fatal("child did not pass")
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func birdc(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("birdc", append([]string{"-s", os.Getenv(sockEnv)}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("birdc %v: %v: %s", args, err, out)
	}
	return string(out)
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
	el := time.Since(start)
	t.Logf("%s after %v", what, el.Round(time.Millisecond))
	return el
}

func status(t *testing.T, s *bgp.Server) bgp.NeighborStatus {
	t.Helper()
	st := s.Status()
	if len(st) != 1 {
		t.Fatalf("Status() has %d entries, want 1", len(st))
	}
	return st[0]
}

func learned(s *bgp.Server, p netip.Prefix) (bgp.Path, bool) {
	for _, lp := range s.Learned() {
		if lp.Prefix == p && lp.Best {
			return lp, true
		}
	}
	return bgp.Path{}, false
}

func netnsChild(t *testing.T) {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	vpc := netip.MustParsePrefix("10.0.0.0/16")
	ours := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/24"), netip.MustParsePrefix("10.1.1.0/24")}

	rtr, err := route.New(route.Config{Metric: 100, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer rtr.Close()

	srv, err := bgp.New(bgp.Config{ASN: 65000, RouterID: netip.MustParseAddr(ourAddr), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	var updates atomic.Int32
	srv.OnUpdate(func() { updates.Add(1) })
	err = srv.SetNeighbors([]bgp.Neighbor{{
		Name:            "t1",
		PeerAddr:        netip.MustParseAddr(awsAddr),
		LocalAddr:       netip.MustParseAddr(ourAddr),
		PeerASN:         64512,
		Prepend:         2,
		MED:             50,
		PrefixLimitWarn: 2,
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.SetAdvertised(ours); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}

	// Session and routes, both directions.
	waitFor(t, 25*time.Second, "session Established", func() bool { return status(t, srv).State == "Established" })
	waitFor(t, 5*time.Second, "10.0.0.0/16 learned", func() bool { _, ok := learned(srv, vpc); return ok })
	p, _ := learned(srv, vpc)
	if p.Neighbor != "t1" || p.NextHop != netip.MustParseAddr(awsAddr) || !slices.Equal(p.ASPath, []uint32{64512}) {
		t.Fatalf("learned path %+v: want neighbor t1, next hop %s, AS path [64512]", p, awsAddr)
	}
	waitFor(t, 5*time.Second, "BIRD has our prefixes with the prepend", func() bool {
		out := birdc(t, "show", "route", "protocol", "aws", "all")
		return strings.Contains(out, "10.1.0.0/24") && strings.Contains(out, "10.1.1.0/24") &&
			strings.Contains(out, "BGP.as_path: 65000 65000 65000") && strings.Contains(out, "BGP.next_hop: "+ourAddr) &&
			strings.Contains(out, "BGP.med: 50")
	})
	st := status(t, srv)
	if st.Advertised != 2 || st.Accepted != 1 || st.Warning == "" || st.AdminDown || st.Uptime <= 0 || st.Uptime > time.Minute {
		t.Fatalf("status %+v: want 2 advertised, 1 accepted, a prefix-limit warning", st)
	}
	for _, lp := range srv.Learned() {
		if lp.Prefix == netip.MustParsePrefix("10.5.0.0/16") {
			t.Fatalf("learned %+v although its AS path holds our ASN", lp)
		}
	}
	t.Logf("status: %+v", st)
	if n := updates.Load(); n == 0 {
		t.Fatal("OnUpdate was never called")
	}

	// Program the learned best path into the kernel.
	var rs []route.Route
	for _, lp := range srv.Learned() {
		if lp.Best {
			rs = append(rs, route.Route{Prefix: lp.Prefix, NextHops: []route.NextHop{{Dev: "va", Gateway: lp.NextHop}}})
		}
	}
	if err := rtr.Set(rs); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("ip", "route", "show", "proto", "199").CombinedOutput()
	if !strings.Contains(string(out), "10.0.0.0/16 via "+awsAddr+" dev va") {
		t.Fatalf("kernel routes with proto 199:\n%s", out)
	}

	// Tunnel down: the session drops at once and BIRD withdraws.
	if err := srv.SetPeerUp("t1", false); err != nil {
		t.Fatal(err)
	}
	if el := waitFor(t, 3*time.Second, "session down and routes gone", func() bool {
		_, ok := learned(srv, vpc)
		return status(t, srv).State != "Established" && !ok
	}); el > time.Second {
		t.Errorf("SetPeerUp(false) took %v to drop the session; want well under a second", el)
	}
	waitFor(t, 3*time.Second, "BIRD withdrew our prefixes", func() bool {
		return !strings.Contains(birdc(t, "show", "route", "protocol", "aws"), "10.1.0.0/24")
	})
	if st := status(t, srv); !st.AdminDown {
		t.Fatalf("status %+v: want AdminDown", st)
	}
	t.Logf("BIRD after tunnel down:\n%s", birdc(t, "show", "protocols", "all", "aws"))

	// Tunnel up again.
	if err := srv.SetPeerUp("t1", true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 25*time.Second, "session re-established with routes", func() bool {
		_, ok := learned(srv, vpc)
		return status(t, srv).State == "Established" && ok
	})

	// The AWS side shuts the session: LastError names the NOTIFICATION.
	birdc(t, "disable", "aws")
	waitFor(t, 5*time.Second, "NOTIFICATION in LastError", func() bool {
		st := status(t, srv)
		return st.State != "Established" && strings.Contains(st.LastError, "received NOTIFICATION Cease / Administrative Shutdown")
	})
	t.Logf("status after BIRD disable: %+v", status(t, srv))

	if err := rtr.Close(); err != nil {
		t.Fatal(err)
	}
	out, _ = exec.Command("ip", "route", "show", "proto", "199").CombinedOutput()
	if len(bytes.TrimSpace(out)) != 0 {
		t.Fatalf("routes left after Close:\n%s", out)
	}
	fmt.Fprintln(os.Stderr, "child done")
}
