//go:build e2e

package e2e

// SA lifecycle against the strongSwan AWS simulator (issue 5): rekeys under
// traffic (cgwd's and AWS's schedules), forced rekey collisions, a killed,
// a restarted and a deleting peer. Every measured number is logged with an
// "e2e:" prefix. The 5-minute soak lives in soak_test.go (make soak).

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/test/sim"
)

const (
	// lcPingInterval is the continuous ping's rate: 5 per second.
	lcPingInterval = 200 * time.Millisecond
	// lifecycleMetrics is where cgwd serves Prometheus metrics inside the
	// customer namespace (each simulation has its own namespace).
	lifecycleMetrics = "127.0.0.1:9810"
	// lcStreamRate is the TCP stream's paced rate: enough to keep packets on
	// every SA at every instant without saturating the two shared CPUs
	// (which would turn queue drops into false ping losses).
	lcStreamRate = 1 << 20 // bytes per second
	lcStreamPort = 7001
	// lcUDPInterval paces the UDP stream: 250 datagrams per second.
	lcUDPInterval = 4 * time.Millisecond
	lcUDPPort     = 7002
)

// lcLifetimes returns both sides' lifetime settings: the simulator's
// endpoint options and the matching cgwd tunnel keys (sim.CgwdOptions.Extra).
// fuzz < 0 means no fuzz on both sides.
func lcLifetimes(ike, child, margin time.Duration, fuzz int) (sim.EndpointOptions, string) {
	eo := sim.EndpointOptions{IKELifetime: ike, ChildLifetime: child, RekeyMargin: margin, RekeyFuzz: fuzz}
	cf := max(fuzz, 0)
	extra := fmt.Sprintf("        ike_lifetime: %ds\n        child_lifetime: %ds\n        rekey_margin: %ds\n        rekey_fuzz: %d\n",
		int(ike.Seconds()), int(child.Seconds()), int(margin.Seconds()), cf)
	return eo, extra
}

// lifecycle is one simulation with cgwd running in the customer namespace.
type lifecycle struct {
	t    *testing.T
	s    *sim.Sim
	d    *Cgwd
	conn string
}

// startLifecycle starts the simulation and cgwd (with metrics on and extra
// appended to both tunnels) and waits until both tunnels are up from both
// sides, BGP included, and the LAN reaches the VPC.
func startLifecycle(t *testing.T, o sim.Options, extra string) *lifecycle {
	t.Helper()
	return startLifecycleOpts(t, o, sim.CgwdOptions{Extra: extra})
}

// startLifecycleOpts is startLifecycle with cgwd's configuration rendered
// from co (log level, routing, ...).
func startLifecycleOpts(t *testing.T, o sim.Options, co sim.CgwdOptions) *lifecycle {
	t.Helper()
	s := NewSim(t, o)
	cfg, err := s.CgwdConfig(co)
	if err != nil {
		t.Fatal(err)
	}
	const off = `metrics: {listen: ""}`
	if !strings.Contains(cfg, off) {
		t.Fatalf("sim.CgwdConfig no longer writes %q; update startLifecycle:\n%s", off, cfg)
	}
	cfg = strings.Replace(cfg, off, `metrics: {listen: "`+lifecycleMetrics+`"}`, 1)
	start := time.Now()
	d := StartCgwdYAML(t, s, sim.Cust, cfg)
	l := &lifecycle{t: t, s: s, d: d, conn: s.ConnectionID()}
	t.Cleanup(l.dumpRekeyWindows) // runs before the simulation's teardown
	d.waitStatus(t, 60*time.Second, childrenUp)
	d.waitStatus(t, 60*time.Second, tunnelsUp)
	for i := 1; i <= 2; i++ {
		if err := swanUp(s, i); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.WaitPing(sim.LAN, sim.VPCHostAddr, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("e2e: both tunnels up (IKE, CHILD, BGP, LAN->VPC ping) %v after cgwd start", time.Since(start).Round(time.Millisecond))
	return l
}

// tunnel returns the name of the cgwd tunnel to AWS endpoint i.
func (l *lifecycle) tunnel(i int) string { return fmt.Sprintf("%s-t%d", l.conn, i) }

// lcTunnel returns the named tunnel of a status, or nil.
func lcTunnel(st *control.Status, name string) *control.Tunnel {
	for _, c := range st.Connections {
		for _, t := range c.Tunnels {
			if t.Name == name {
				return t
			}
		}
	}
	return nil
}

// tunnelStatus returns the current status of cgwd's tunnel to endpoint i.
func (l *lifecycle) tunnelStatus(i int) (*control.Tunnel, error) {
	st, err := l.d.status()
	if err != nil {
		return nil, err
	}
	tn := lcTunnel(st, l.tunnel(i))
	if tn == nil {
		return nil, fmt.Errorf("tunnel %s not in cgwd's status", l.tunnel(i))
	}
	return tn, nil
}

// lcSPI makes cgwd's and swanctl's SPI spellings comparable.
func lcSPI(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimPrefix(s, "0x")
	return strings.TrimLeft(s, "0")
}

func lcIKEKey(spii, spir string) string      { return lcSPI(spii) + "_i/" + lcSPI(spir) + "_r" }
func lcChildKey(cgwIn, cgwOut string) string { return lcSPI(cgwIn) + "/" + lcSPI(cgwOut) }

// lcCgwdSAs returns the IKE SA and CHILD SA keys cgwd reports for a tunnel
// (CHILD keys are "our inbound/our outbound").
func lcCgwdSAs(tn *control.Tunnel) (ike string, children []string) {
	if tn.IKE != nil {
		ike = lcIKEKey(tn.IKE.SPIi, tn.IKE.SPIr)
	}
	for _, c := range tn.Children {
		children = append(children, lcChildKey(c.InSPI, c.OutSPI))
	}
	return ike, children
}

// lcSwanSAs returns the established IKE SAs and installed CHILD SAs of
// endpoint i, with CHILD keys in cgwd's orientation (strongSwan's outbound
// SPI is cgwd's inbound one).
func lcSwanSAs(s *sim.Sim, i int) (ikes, children []string, err error) {
	sas, err := s.ListSAs(i)
	if err != nil {
		return nil, nil, err
	}
	for _, sa := range sas {
		if !sa.Established() {
			continue
		}
		ikes = append(ikes, lcIKEKey(sa.SPIInit, sa.SPIResp))
		for _, c := range sa.Installed() {
			children = append(children, lcChildKey(c.SPIOut, c.SPIIn))
		}
	}
	return ikes, children, nil
}

// oneChildPair checks that tunnel i has exactly one IKE SA and one CHILD SA
// pair on both sides and that both sides agree on their SPIs.
func (l *lifecycle) oneChildPair(i int) error {
	tn, err := l.tunnelStatus(i)
	if err != nil {
		return err
	}
	cIKE, cChildren := lcCgwdSAs(tn)
	sIKEs, sChildren, err := lcSwanSAs(l.s, i)
	if err != nil {
		return err
	}
	sas, _ := l.s.ListSAs(i)
	nChildren := 0 // every CHILD SA strongSwan holds, installed or not
	for _, sa := range sas {
		nChildren += len(sa.Children)
	}
	switch {
	case tn.ChildState != "Established":
		return fmt.Errorf("tunnel %d: cgwd CHILD state %s", i, tn.ChildState)
	case len(cChildren) != 1:
		return fmt.Errorf("tunnel %d: cgwd has %d CHILD SAs %v", i, len(cChildren), cChildren)
	case len(sas) != 1 || len(sIKEs) != 1:
		return fmt.Errorf("tunnel %d: strongSwan has %d IKE SAs (%d established) %+v", i, len(sas), len(sIKEs), sas)
	case nChildren != 1 || len(sChildren) != 1:
		return fmt.Errorf("tunnel %d: strongSwan has %d CHILD SAs, %d installed: %+v", i, nChildren, len(sChildren), sas[0].Children)
	case cIKE != sIKEs[0]:
		return fmt.Errorf("tunnel %d: IKE SA differs: cgwd %s, strongSwan %s", i, cIKE, sIKEs[0])
	case cChildren[0] != sChildren[0]:
		return fmt.Errorf("tunnel %d: CHILD SA differs: cgwd %s, strongSwan %s (cgwd in/out)", i, cChildren[0], sChildren[0])
	}
	return nil
}

// lcSAView is the sequence of distinct SAs one side showed for one tunnel.
type lcSAView struct {
	ikes, children []string
}

func (v *lcSAView) add(ike string, children []string) {
	if ike != "" && !slices.Contains(v.ikes, ike) {
		v.ikes = append(v.ikes, ike)
	}
	for _, c := range children {
		if !slices.Contains(v.children, c) {
			v.children = append(v.children, c)
		}
	}
}

// rekeys is the number of SA changes the view saw (distinct SAs minus one).
func (v *lcSAView) rekeys() (child, ike int) { return max(len(v.children)-1, 0), max(len(v.ikes)-1, 0) }

// lcSampler records, once a second, the SAs cgwd and strongSwan report for
// both tunnels: each side's own view of how many times the SPIs changed.
type lcSampler struct {
	l    *lifecycle
	stop chan struct{}
	done chan struct{}

	mu         sync.Mutex
	cgw, swan  [3]lcSAView // by endpoint index
	samples    int
	errs       int
	lastErr    error
	maxSwanIKE [3]int // most established IKE SAs strongSwan held at once
}

func (l *lifecycle) sampleSAs() *lcSampler {
	sp := &lcSampler{l: l, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(sp.done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			sp.sample()
			select {
			case <-sp.stop:
				sp.sample()
				return
			case <-tick.C:
			}
		}
	}()
	return sp
}

func (sp *lcSampler) sample() {
	st, err := sp.l.d.status()
	var swan [3]struct {
		ikes, children []string
		err            error
	}
	for i := 1; i <= 2; i++ {
		swan[i].ikes, swan[i].children, swan[i].err = lcSwanSAs(sp.l.s, i)
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	sp.samples++
	if err != nil {
		sp.errs++
		sp.lastErr = err
	} else {
		for i := 1; i <= 2; i++ {
			if tn := lcTunnel(st, sp.l.tunnel(i)); tn != nil {
				sp.cgw[i].add(lcCgwdSAs(tn))
			}
		}
	}
	for i := 1; i <= 2; i++ {
		if swan[i].err != nil {
			sp.errs++
			sp.lastErr = swan[i].err
			continue
		}
		for _, ike := range swan[i].ikes {
			sp.swan[i].add(ike, nil)
		}
		sp.swan[i].add("", swan[i].children)
		sp.maxSwanIKE[i] = max(sp.maxSwanIKE[i], len(swan[i].ikes))
	}
}

// finish stops sampling and returns the views.
func (sp *lcSampler) finish() (cgw, swan [3]lcSAView) {
	close(sp.stop)
	<-sp.done
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.errs > 0 {
		sp.l.t.Logf("SA sampler: %d of %d samples failed, last: %v", sp.errs, sp.samples, sp.lastErr)
	}
	return sp.cgw, sp.swan
}

// metricRekeys scrapes cgwd's cgw_tunnel_rekeys_total counters: tunnel ->
// kind (child, ike) -> count.
func (l *lifecycle) metricRekeys() (map[string]map[string]int, error) {
	out, err := l.s.Exec(sim.Cust, "curl", "-sf", "--max-time", "10", "http://"+lifecycleMetrics+"/metrics")
	if err != nil {
		return nil, err
	}
	re := regexp.MustCompile(`^cgw_tunnel_rekeys_total\{(.*)\} (\S+)$`)
	label := func(labels, k string) string {
		m := regexp.MustCompile(k + `="([^"]*)"`).FindStringSubmatch(labels)
		if m == nil {
			return ""
		}
		return m[1]
	}
	res := map[string]map[string]int{}
	for _, line := range strings.Split(out, "\n") {
		m := re.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			return nil, fmt.Errorf("metric line %q: %v", line, err)
		}
		tn, kind := label(m[1], "tunnel"), label(m[1], "kind")
		if res[tn] == nil {
			res[tn] = map[string]int{}
		}
		res[tn][kind] = int(v)
	}
	if len(res) == 0 {
		return nil, fmt.Errorf("no cgw_tunnel_rekeys_total in cgwd's metrics:\n%s", lcLastLines(out, 20))
	}
	return res, nil
}

func lcLastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// lcLogLine is one line of cgwd's text log.
type lcLogLine struct {
	At   time.Time
	Text string
}

// cgwdLog returns the lines of cgwd's log that contain every one of subs.
func (l *lifecycle) cgwdLog(subs ...string) []lcLogLine {
	f, err := os.Open(l.d.Proc.Log)
	if err != nil {
		l.t.Fatalf("cgwd log: %v", err)
	}
	defer f.Close()
	var out []lcLogLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
next:
	for sc.Scan() {
		line := sc.Text()
		for _, s := range subs {
			if !strings.Contains(line, s) {
				continue next
			}
		}
		ll := lcLogLine{Text: line}
		if ts, ok := strings.CutPrefix(line, "time="); ok {
			if sp := strings.IndexByte(ts, ' '); sp > 0 {
				ll.At, _ = time.Parse(time.RFC3339Nano, ts[:sp])
			}
		}
		out = append(out, ll)
	}
	return out
}

// lcPeerAttr is the log attribute naming a tunnel in the IKE engine's lines.
func lcPeerAttr(name string) string { return "peer=" + name + " " }

// collisionLines counts cgwd's log lines about rekey collisions on tunnel i
// (informational: the wording is the IKE engine's).
func (l *lifecycle) collisionLines(i int) int {
	n := 0
	for _, ll := range l.cgwdLog(lcPeerAttr(l.tunnel(i))) {
		if strings.Contains(strings.ToLower(ll.Text), "collision") {
			n++
		}
	}
	return n
}

// charonRequests returns the CREATE_CHILD_SA requests AWS endpoint i's
// charon received (each one a CHILD or IKE rekey, or a new CHILD SA, that
// cgwd started), from its log.
func (l *lifecycle) charonRequests(i int) []string {
	b, err := os.ReadFile(fmt.Sprintf("%s/logs/charon-aws%d.log", l.s.Dir(), i))
	if err != nil {
		l.t.Fatalf("charon log: %v", err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "parsed CREATE_CHILD_SA request") {
			out = append(out, line)
		}
	}
	return out
}

// lcPinger is one bounded ping run (5 per second) in the background.
type lcPinger struct {
	what  string
	start time.Time
	count int
	done  chan struct{}
	out   string
	err   error
}

// lcPingResult is what an lcPinger saw.
type lcPingResult struct {
	What           string
	Sent, Received int
	Missing        []int // icmp_seq values without a reply
	Start          time.Time
}

// Lost is the number of echo requests without a reply.
func (r lcPingResult) Lost() int { return r.Sent - r.Received }

// String describes the result, with the wall-clock time of each lost probe
// (to line up with the cgwd and charon logs).
func (r lcPingResult) String() string {
	s := fmt.Sprintf("%s: %d sent, %d received, %d lost", r.What, r.Sent, r.Received, r.Lost())
	if len(r.Missing) > 0 {
		var at []string
		for i, seq := range r.Missing {
			if i == 20 {
				at = append(at, "...")
				break
			}
			at = append(at, fmt.Sprintf("#%d@%s", seq, r.Start.Add(time.Duration(seq-1)*lcPingInterval).UTC().Format("15:04:05.0")))
		}
		s += " (" + strings.Join(at, " ") + ")"
	}
	return s
}

// startPing pings to from the namespace of from for d at 5 per second.
func (l *lifecycle) startPing(from sim.Role, to netip.Addr, d time.Duration) *lcPinger {
	p := &lcPinger{what: fmt.Sprintf("ping %s->%s", from, to), count: int(d / lcPingInterval), done: make(chan struct{}), start: time.Now()}
	go func() {
		defer close(p.done)
		ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
		defer cancel()
		p.out, p.err = sim.ExecContext(ctx, l.s.NS(from), "ping", "-n", "-i", strconv.FormatFloat(lcPingInterval.Seconds(), 'f', 3, 64),
			"-c", strconv.Itoa(p.count), "-W", "2", to.String())
	}()
	return p
}

var (
	lcPingReply = regexp.MustCompile(`icmp_seq=(\d+) `)
	lcPingStats = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)
)

// wait waits for the run to end and parses ping's output.
func (p *lcPinger) wait(t testing.TB) lcPingResult {
	t.Helper()
	<-p.done
	r := lcPingResult{What: p.what, Start: p.start}
	m := lcPingStats.FindStringSubmatch(p.out)
	if m == nil {
		t.Errorf("%s: no summary (err %v):\n%s", p.what, p.err, lcLastLines(p.out, 10))
		r.Sent = p.count
		return r
	}
	r.Sent, _ = strconv.Atoi(m[1])
	r.Received, _ = strconv.Atoi(m[2])
	got := map[int]bool{}
	for _, m := range lcPingReply.FindAllStringSubmatch(p.out, -1) {
		n, _ := strconv.Atoi(m[1])
		got[n] = true
	}
	for seq := 1; seq <= r.Sent; seq++ {
		if !got[seq] {
			r.Missing = append(r.Missing, seq)
		}
	}
	return r
}

// lcTraffic is the continuous load of a lifecycle test: a ping through each
// tunnel to the AWS inside address, a LAN->VPC ping (through the preferred
// tunnel) and a paced TCP stream LAN->VPC with a checksum.
type lcTraffic struct {
	pings  []*lcPinger
	stream *lcStream
	udp    *lcUDP
}

func (l *lifecycle) startTraffic(d time.Duration, stream bool) *lcTraffic {
	tr := &lcTraffic{}
	tr.pings = append(tr.pings, l.startPing(sim.LAN, sim.VPCHostAddr, d))
	for _, e := range sim.Endpoints {
		tr.pings = append(tr.pings, l.startPing(sim.Cust, e.AWSInside, d))
	}
	if stream {
		tr.stream = l.startStream()
		// A paced UDP stream counts single lost datagrams, which a 5/s
		// ping can miss and TCP hides by retransmitting.
		tr.udp = l.startUDP()
	}
	return tr
}

// finish waits for the pings and the UDP stream, stops the TCP stream and
// reports; it returns the number of lost packets (pings and datagrams).
func (tr *lcTraffic) finish(t testing.TB) (lost int) {
	t.Helper()
	for _, p := range tr.pings {
		r := p.wait(t)
		lost += r.Lost()
		t.Logf("e2e: %s", r)
	}
	if tr.stream != nil {
		tr.stream.finish(t)
	}
	if tr.udp != nil {
		lost += tr.udp.finish(t)
	}
	return lost
}
