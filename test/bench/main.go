// Command bench measures tunnel throughput and CPU cost on one namespace
// path of the simulator (lan -> cust -> inet -> aws1 -> vpc -> vpchost, one
// tunnel between cust and aws1) for several data planes:
//
//	plain                 routed path, no tunnel (the ceiling)
//	strongswan            strongSwan <-> strongSwan (kernel-libipsec, ESP in UDP)
//	wireguard             wireguard-go <-> wireguard-go (current upstream, built on demand)
//	cgwd-strongswan       cgwd in cust <-> strongSwan in aws1
//	cgwd-cgwd             cgwd in cust <-> cgwd in aws1 (startup_action respond)
//	cgwd-cgwd-ipv6        the same over IPv6 outside addresses (ipv6.go)
//	cgwd-cgwd-ipv6-raw    the same with raw ESP (IP protocol 50, encapsulation: auto)
//
// Each mode runs iperf3 TCP with 1 and 4 streams and UDP at a high offered
// rate with 1400-byte datagrams, every run bounded by -seconds, only between
// the simulator's namespaces. IPsec modes use AES-128-GCM (aes128gcm16).
// CPU is reported as busy cores of the whole host during the run
// (/proc/stat) and as cores used by the tunnel processes themselves.
// With -pps (the default) every mode also gets a loss-free packet-rate
// search with test/tools/pktgen; see pps.go.
//
// A separate row measures cgwd under a spoofed IKE_SA_INIT flood (issue 17):
// 7000 requests forged from the AWS endpoint's address by
// test/tools/ikeattack, once at 500/s with an unusable KE value and once as
// a 0.7 s burst with a valid one, reported as cgwd's CPU-seconds
// (utime+stime) per 7000 requests (-flood=false skips it).
//
//	go run ./test/bench -seconds 10 -cgwd ./bin/cgwd
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/cgwproject/cgw/test/sim"
)

// wireguardVersion is the wireguard-go the benchmark compares against: the
// version go.mod pins, not Debian's old package.
const wireguardVersion = "golang.zx2c4.com/wireguard@v0.0.0-20250521234502-f333402bd9cb"

var (
	flagModes   = flag.String("modes", "plain,strongswan,wireguard,cgwd-strongswan,cgwd-cgwd,cgwd-cgwd-ipv6,cgwd-cgwd-ipv6-raw", "comma-separated modes to run")
	flagSeconds = flag.Int("seconds", 10, "length of each iperf3 run")
	flagCgwd    = flag.String("cgwd", defaultCgwd(), "path of the cgwd binary (modes cgwd-*); default $CGW_BIN/cgwd (set by make) or bin/cgwd")
	flagWG      = flag.String("wireguard-go", "", "wireguard-go binary; default: built with `go install "+wireguardVersion+"` into the user cache")
	flagRate    = flag.String("udp-rate", "10G", "UDP offered rate (iperf3 -b)")
	flagJSON    = flag.String("json", "", "also write the results as JSON to this file")
	flagVerbose = flag.Bool("v", false, "log simulator progress")
	flagFlood   = flag.Bool("flood", true, "also measure cgwd's CPU cost of 7000 spoofed IKE_SA_INIT requests")
)

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// result is one iperf3 run of one mode.
type result struct {
	Mode       string  `json:"mode"`
	Test       string  `json:"test"`
	Gbps       float64 `json:"gbps"`
	SentGbps   float64 `json:"sent_gbps"`
	PPS        float64 `json:"pps,omitempty"`
	LossPct    float64 `json:"loss_pct,omitempty"`
	Retrans    int     `json:"retransmits,omitempty"`
	HostCPUs   float64 `json:"host_busy_cpus"`
	TunnelCPUs float64 `json:"tunnel_cpus"`
	Err        string  `json:"error,omitempty"`
}

// setup is a prepared mode: a simulation with a working path and the pids
// of the processes doing the tunnel work.
type setup struct {
	sim  *sim.Sim
	pids []int
}

type mode struct {
	name  string
	setup func(ctx context.Context) (*setup, error)
}

var errSkip = errors.New("skipped")

func run() error {
	if os.Geteuid() != 0 {
		return errors.New("must run as root (network namespaces)")
	}
	if err := sim.CheckTools(sim.Options{}); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	all := map[string]mode{
		"plain":              {"plain", setupPlain},
		"strongswan":         {"strongswan", setupStrongSwan},
		"wireguard":          {"wireguard", setupWireGuard},
		"cgwd-strongswan":    {"cgwd-strongswan", setupCgwdStrongSwan},
		"cgwd-cgwd":          {"cgwd-cgwd", setupCgwdCgwd},
		"cgwd-cgwd-ipv6":     {"cgwd-cgwd-ipv6", setupCgwdCgwd6},
		"cgwd-cgwd-ipv6-raw": {"cgwd-cgwd-ipv6-raw", setupCgwdCgwd6Raw},
	}
	var modes []mode
	for _, n := range strings.Split(*flagModes, ",") {
		if strings.TrimSpace(n) == "" {
			continue // -modes= runs only the flood row
		}
		m, ok := all[strings.TrimSpace(n)]
		if !ok {
			return fmt.Errorf("unknown mode %q", n)
		}
		modes = append(modes, m)
	}
	if *flagPPS {
		if _, err := parsePPSPlan(); err != nil {
			return err
		}
	}
	restoreRmem, err := raiseRmemDefault(modes)
	if err != nil {
		return err
	}
	defer restoreRmem()
	fmt.Printf("bench: %d CPUs, %s, %d s per run, UDP offered %s with 1400-byte datagrams, IPsec AES-128-GCM\n",
		runtime.NumCPU(), kernel(), *flagSeconds, *flagRate)

	var results []result
	skipped := map[string]string{}
	for _, m := range modes {
		if ctx.Err() != nil {
			break
		}
		fmt.Printf("== %s\n", m.name)
		rs, err := runMode(ctx, m)
		if errors.Is(err, errSkip) {
			skipped[m.name] = err.Error()
			fmt.Printf("   %v\n", err)
			continue
		}
		if err != nil {
			skipped[m.name] = err.Error()
			fmt.Printf("   FAILED: %v\n", err)
			continue
		}
		results = append(results, rs...)
	}
	printTable(results)
	if *flagIperf {
		printRatios(results)
	}
	printPPS(ppsRows)
	var bgpLat []bgpLatRow
	if *flagBGPLat && ctx.Err() == nil {
		fmt.Println("== bgp-latency")
		bgpLat = measureBGPLatency()
		printBGPLatency(bgpLat)
	}
	var floods []sim.FloodResult
	if *flagFlood && ctx.Err() == nil {
		var err error
		if floods, err = measureFlood(); err != nil {
			skipped["ike-flood"] = err.Error()
			fmt.Printf("\nike-flood FAILED: %v\n", err)
		}
		printFlood(floods)
	}
	if *flagJSON != "" {
		b, _ := json.MarshalIndent(map[string]any{"results": results, "pps": ppsRows, "bgp_latency": bgpLat, "flood": floods, "skipped": skipped}, "", "  ")
		if err := os.WriteFile(*flagJSON, b, 0o644); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func runMode(ctx context.Context, m mode) ([]result, error) {
	st, err := m.setup(ctx)
	if err != nil {
		return nil, err
	}
	defer st.sim.Close()
	if err := applyLANGRO(st.sim); err != nil {
		return nil, fmt.Errorf("-lan-gro: %w", err)
	}
	if err := st.sim.WaitPing(sim.LAN, sim.VPCHostAddr, 30*time.Second); err != nil {
		return nil, fmt.Errorf("path lan -> vpchost not working: %w", err)
	}
	tests := []struct {
		name string
		o    sim.IperfOptions
	}{
		{"tcp-1", sim.IperfOptions{Streams: 1}},
		{"tcp-4", sim.IperfOptions{Streams: 4}},
		{"udp-1400", sim.IperfOptions{Streams: 1, UDP: true, Bitrate: *flagRate, Length: 1400}},
	}
	var out []result
	for _, t := range tests {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		if !*flagIperf {
			break
		}
		o := t.o
		o.Client, o.Server, o.Seconds = sim.LAN, sim.VPCHostAddr, *flagSeconds
		r := measure(st, o)
		r.Mode, r.Test = m.name, t.name
		if r.Err != "" {
			fmt.Printf("   %-9s error: %s\n", t.name, r.Err)
		} else {
			fmt.Printf("   %-9s %7.3f Gbit/s  host %.2f CPUs  tunnel %.2f CPUs\n", t.name, r.Gbps, r.HostCPUs, r.TunnelCPUs)
		}
		out = append(out, r)
	}
	if *flagPPS {
		runPPS(ctx, st, m.name)
	}
	roles := []sim.Role{sim.Cust}
	if m.name == "cgwd-cgwd" {
		roles = append(roles, sim.AWS1)
	}
	profileMode(ctx, st, m.name, roles)
	return out, ctx.Err()
}

// measure runs one iperf3 test and the CPU accounting around it.
func measure(st *setup, o sim.IperfOptions) result {
	cpu0, _ := sim.ReadCPU()
	proc0 := procCPU(st.pids)
	t0 := time.Now()
	res, err := st.sim.Iperf3Opts(o)
	wall := time.Since(t0).Seconds()
	cpu1, _ := sim.ReadCPU()
	proc1 := procCPU(st.pids)
	r := result{
		Gbps: res.Gbps, SentGbps: res.SentGbps, PPS: res.PPS, LossPct: res.LossPercent, Retrans: res.Retransmits,
		HostCPUs: sim.BusyCPUs(cpu0, cpu1, runtime.NumCPU()),
	}
	if wall > 0 {
		r.TunnelCPUs = (proc1 - proc0) / wall
	}
	if err != nil {
		r.Err = err.Error()
	}
	return r
}

func procCPU(pids []int) float64 {
	var sum float64
	for _, p := range pids {
		if s, err := sim.ProcCPUSeconds(p); err == nil {
			sum += s
		}
	}
	return sum
}

func newSim(o sim.Options) (*sim.Sim, error) {
	if *flagVerbose {
		o.Logf = func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }
	}
	return sim.New(o)
}

// headline IPsec algorithms: AES-128-GCM for ESP (and IKE).
var (
	ikeGCM = []string{"aes128gcm16-prfsha256-ecp256"}
	espGCM = []string{"aes128gcm16-ecp256"}
)

func setupPlain(ctx context.Context) (*setup, error) {
	s, err := newSim(sim.Options{AWS: sim.AWSNone, Tunnels: 1})
	if err != nil {
		return nil, err
	}
	ta, _ := s.Transit(1)
	o := s.Options()
	errs := []error{
		s.AddStaticRoute(sim.Inet, o.VPCPrefix, "via", sim.Endpoints[0].Outside.String()),
		s.AddStaticRoute(sim.Inet, o.LANPrefix, "via", sim.CustPublicAddr.String()),
		s.AddStaticRoute(sim.VPC, o.LANPrefix, "via", ta.String()),
	}
	if err := errors.Join(errs...); err != nil {
		s.Close()
		return nil, err
	}
	return &setup{sim: s}, nil
}

func setupStrongSwan(ctx context.Context) (*setup, error) {
	o := sim.Options{
		Tunnels: 1, Routing: sim.RoutingStatic, Customer: sim.CustomerStrongSwan,
		CustomerIKEProposals: ikeGCM, CustomerESPProposals: espGCM,
	}
	o.Endpoint[0].IKEProposals, o.Endpoint[0].ESPProposals = ikeGCM, espGCM
	s, err := newSim(o)
	if err != nil {
		return nil, err
	}
	if _, err := s.WaitTunnel(1, 20*time.Second); err != nil {
		s.Close()
		return nil, err
	}
	return &setup{sim: s, pids: s.CharonPids()}, nil
}

func setupWireGuard(ctx context.Context) (*setup, error) {
	wg, err := wireguardGo(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := exec.LookPath("wg"); err != nil {
		return nil, fmt.Errorf("wg (wireguard-tools) not found; run test/deps.sh: %w", errSkip)
	}
	s, err := newSim(sim.Options{AWS: sim.AWSNone, Tunnels: 1})
	if err != nil {
		return nil, err
	}
	st, err := wireguardPath(s, wg)
	if err != nil {
		s.Close()
		return nil, err
	}
	return st, nil
}

// wireguardPath runs wireguard-go in cust and aws1 with a tunnel between
// the outside addresses, using tunnel 1's inside /30 for the interfaces.
func wireguardPath(s *sim.Sim, wg string) (*setup, error) {
	e := sim.Endpoints[0]
	o := s.Options()
	// Interface names include the sim id: the UAPI sockets live in the
	// shared /var/run/wireguard.
	names := map[sim.Role]string{sim.Cust: "wg" + s.ID() + "c", sim.AWS1: "wg" + s.ID() + "a"}
	keys := map[sim.Role][2]string{}
	var pids []int
	for _, r := range []sim.Role{sim.Cust, sim.AWS1} {
		priv, err := s.Exec(r, "wg", "genkey")
		if err != nil {
			return nil, err
		}
		priv = strings.TrimSpace(priv)
		pub, err := execStdin(priv, "wg", "pubkey")
		if err != nil {
			return nil, err
		}
		keys[r] = [2]string{priv, strings.TrimSpace(pub)}
		p, err := s.StartProcessEnv(r, "wireguard-go-"+string(r), []string{"LOG_LEVEL=error"}, wg, "-f", names[r])
		if err != nil {
			return nil, err
		}
		pids = append(pids, p.Pid())
	}
	for _, r := range []sim.Role{sim.Cust, sim.AWS1} {
		dev := names[r]
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, err := s.Exec(r, "wg", "show", dev); err == nil {
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("wireguard-go %s did not come up in %s", dev, r)
			}
			time.Sleep(100 * time.Millisecond)
		}
		kf := filepath.Join(s.Dir(), dev+".key")
		if err := os.WriteFile(kf, []byte(keys[r][0]+"\n"), 0o600); err != nil {
			return nil, err
		}
		var args []string
		var addr netip.Addr
		if r == sim.Cust {
			addr = e.CustInside
			args = []string{"wg", "set", dev, "private-key", kf, "peer", keys[sim.AWS1][1],
				"endpoint", e.Outside.String() + ":51820", "allowed-ips", o.VPCPrefix.String() + "," + e.Inside.String(),
				"persistent-keepalive", "25"}
		} else {
			addr = e.AWSInside
			args = []string{"wg", "set", dev, "listen-port", "51820", "private-key", kf, "peer", keys[sim.Cust][1],
				"allowed-ips", o.LANPrefix.String() + "," + e.Inside.String()}
		}
		if _, err := s.Exec(r, args...); err != nil {
			return nil, err
		}
		if _, err := s.Exec(r, "ip", "addr", "add", netip.PrefixFrom(addr, 30).String(), "dev", dev); err != nil {
			return nil, err
		}
		if _, err := s.Exec(r, "ip", "link", "set", dev, "up"); err != nil {
			return nil, err
		}
	}
	ta, _ := s.Transit(1)
	errs := []error{
		s.AddStaticRoute(sim.Cust, o.VPCPrefix, "dev", names[sim.Cust]),
		s.AddStaticRoute(sim.AWS1, o.LANPrefix, "dev", names[sim.AWS1]),
		s.AddStaticRoute(sim.VPC, o.LANPrefix, "via", ta.String()),
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &setup{sim: s, pids: pids}, nil
}

func execStdin(stdin string, args ...string) (string, error) {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %w", strings.Join(args, " "), err)
	}
	return string(out), nil
}

// wireguardGo returns the wireguard-go binary, building the pinned version
// into the user cache directory on first use.
func wireguardGo(ctx context.Context) (string, error) {
	if *flagWG != "" {
		return *flagWG, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(cache, "cgw", "bench", strings.ReplaceAll(strings.TrimPrefix(wireguardVersion, "golang.zx2c4.com/"), "@", "-"))
	exe := filepath.Join(bin, "wireguard")
	if _, err := os.Stat(exe); err == nil {
		return exe, nil
	}
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return "", err
	}
	fmt.Printf("   building %s\n", wireguardVersion)
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, "go", "install", wireguardVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+bin, "GOFLAGS=", "CGO_ENABLED=0")
	cmd.Dir = os.TempDir() // outside any module
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s: %v: %s", wireguardVersion, err, out)
	}
	return exe, nil
}

func defaultCgwd() string {
	if d := os.Getenv("CGW_BIN"); d != "" {
		return filepath.Join(d, "cgwd")
	}
	return "bin/cgwd"
}

func cgwdBinary() (string, error) {
	p := *flagCgwd
	if _, err := os.Stat(p); err != nil {
		if lp, lerr := exec.LookPath("cgwd"); lerr == nil && !strings.Contains(p, "/") {
			return lp, nil
		}
		return "", fmt.Errorf("cgwd binary not found at %q (build it with `make build` or pass -cgwd): %w", p, errSkip)
	}
	return filepath.Abs(p)
}

func setupCgwdStrongSwan(ctx context.Context) (*setup, error) {
	bin, err := cgwdBinary()
	if err != nil {
		return nil, err
	}
	o := sim.Options{Tunnels: 1, Routing: sim.RoutingStatic}
	o.Endpoint[0].IKEProposals, o.Endpoint[0].ESPProposals = ikeGCM, espGCM
	s, err := newSim(o)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*setup, error) { s.Close(); return nil, err }
	cfg, err := s.CgwdConfig(sim.CgwdOptions{IKEProposals: ikeGCM, ESPProposals: espGCM, ForceEncap: true, LogLevel: "warn"})
	if err != nil {
		return fail(err)
	}
	p, err := startCgwd(s, sim.Cust, bin, cfg)
	if err != nil {
		return fail(err)
	}
	if _, err := s.WaitTunnel(1, 30*time.Second); err != nil {
		return fail(fmt.Errorf("%w; cgwd log:\n%s", err, p.Tail(2000)))
	}
	return &setup{sim: s, pids: append(s.CharonPids(), p.Pid())}, nil
}

func setupCgwdCgwd(ctx context.Context) (*setup, error) {
	return setupCgwdPair(sim.Options{AWS: sim.AWSNone, Tunnels: 1, Routing: sim.RoutingStatic})
}

// setupCgwdPair runs cgwd in cust and in aws1 on the simulation o, with
// ESP in UDP (or raw ESP, setupCgwdPairEncap).
func setupCgwdPair(o sim.Options) (*setup, error) { return setupCgwdPairEncap(o, false) }

func setupCgwdPairEncap(o sim.Options, raw bool) (*setup, error) {
	bin, err := cgwdBinary()
	if err != nil {
		return nil, err
	}
	s, err := newSim(o)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*setup, error) { s.Close(); return nil, err }
	extra := ""
	if raw {
		extra = "        encapsulation: auto\n"
	}
	awsCfg, err := s.CgwdConfig(sim.CgwdOptions{AWSSide: true, Endpoints: []int{1}, IKEProposals: ikeGCM, ESPProposals: espGCM, ForceEncap: !raw, LogLevel: "warn", Extra: extra})
	if err != nil {
		return fail(err)
	}
	custCfg, err := s.CgwdConfig(sim.CgwdOptions{IKEProposals: ikeGCM, ESPProposals: espGCM, ForceEncap: !raw, LogLevel: "warn", Extra: extra})
	if err != nil {
		return fail(err)
	}
	pa, err := startCgwd(s, sim.AWS1, bin, awsCfg)
	if err != nil {
		return fail(err)
	}
	pc, err := startCgwd(s, sim.Cust, bin, custCfg)
	if err != nil {
		return fail(err)
	}
	ta, _ := s.Transit(1)
	if err := s.AddStaticRoute(sim.VPC, s.Options().LANPrefix, "via", ta.String()); err != nil {
		return fail(err)
	}
	if err := s.WaitPing(sim.LAN, sim.VPCHostAddr, 30*time.Second); err != nil {
		return fail(fmt.Errorf("%w; cgwd (cust) log:\n%s\ncgwd (aws1) log:\n%s", err, pc.Tail(1500), pa.Tail(1500)))
	}
	return &setup{sim: s, pids: []int{pc.Pid(), pa.Pid()}}, nil
}

func kernel() string {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return "linux"
	}
	b := make([]byte, 0, len(u.Release))
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return "linux " + string(b)
}
