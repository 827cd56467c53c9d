//go:build e2e

package e2e

// SA lifecycle against the strongSwan AWS simulator (issue 5): rekeys under
// traffic (cgwd's and AWS's schedules), forced rekey collisions, a killed,
// a restarted and a deleting peer. Every measured number is logged with an
// "e2e:" prefix. The 5-minute soak lives in soak_test.go (make soak).

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

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

// lcInNetns runs f on an OS thread switched into network namespace ns, so
// that the sockets f creates live there (they keep working from any thread
// afterwards). The thread is discarded if it cannot be switched back.
func lcInNetns(ns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open("/run/netns/" + ns)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		ferr := f()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err == nil {
			runtime.UnlockOSThread()
		} // else: the goroutine exits locked and Go retires the thread
		errc <- ferr
	}()
	return <-errc
}

// lcUDP is a paced stream of numbered UDP datagrams LAN -> VPC host; the
// receiver records which numbers arrived, so every lost datagram is known
// with its send time (to line up with the cgwd and charon logs).
type lcUDP struct {
	conn     net.Conn
	ln       net.PacketConn
	stop     chan struct{}
	sendDone chan struct{}
	recvDone chan struct{}

	sent   uint32      // datagrams sent (numbers 0..sent-1)
	sentAt []time.Time // by number, written by the sender only
	seen   []bool      // by number, written by the receiver only
	dups   int
	err    error // sender's first error
}

func (l *lifecycle) startUDP() *lcUDP {
	t := l.t
	t.Helper()
	addr := netip.AddrPortFrom(sim.VPCHostAddr, lcUDPPort).String()
	u := &lcUDP{stop: make(chan struct{}), sendDone: make(chan struct{}), recvDone: make(chan struct{})}
	if err := lcInNetns(l.s.NS(sim.VPCHost), func() (err error) {
		u.ln, err = net.ListenPacket("udp4", addr)
		return err
	}); err != nil {
		t.Fatalf("udp stream: listen in vpchost: %v", err)
	}
	if err := lcInNetns(l.s.NS(sim.LAN), func() (err error) {
		u.conn, err = net.Dial("udp4", addr)
		return err
	}); err != nil {
		u.ln.Close()
		t.Fatalf("udp stream: socket in lan: %v", err)
	}
	go u.receive()
	go u.send()
	return u
}

func (u *lcUDP) send() {
	defer close(u.sendDone)
	buf := make([]byte, 1000)
	tk := time.NewTicker(lcUDPInterval)
	defer tk.Stop()
	for {
		select {
		case <-u.stop:
			return
		case <-tk.C:
		}
		binary.BigEndian.PutUint32(buf, u.sent)
		u.sentAt = append(u.sentAt, time.Now())
		if _, err := u.conn.Write(buf); err != nil && u.err == nil {
			u.err = fmt.Errorf("datagram %d: %w", u.sent, err)
		}
		u.sent++
	}
}

func (u *lcUDP) receive() {
	defer close(u.recvDone)
	buf := make([]byte, 2048)
	for {
		n, _, err := u.ln.ReadFrom(buf)
		if err != nil {
			return // closed by finish
		}
		if n < 4 {
			continue
		}
		seq := binary.BigEndian.Uint32(buf)
		for int(seq) >= len(u.seen) {
			u.seen = append(u.seen, make([]bool, 1024)...)
		}
		if u.seen[seq] {
			u.dups++
		}
		u.seen[seq] = true
	}
}

// finish stops the sender, gives stragglers a second and returns the number
// of datagrams that never arrived.
func (u *lcUDP) finish(t testing.TB) int {
	t.Helper()
	close(u.stop)
	<-u.sendDone
	time.Sleep(time.Second)
	u.ln.Close()
	u.conn.Close()
	<-u.recvDone
	if u.err != nil {
		t.Errorf("udp stream sender: %v", u.err)
	}
	var missing []string
	lost := 0
	for seq := range u.sent {
		if int(seq) < len(u.seen) && u.seen[seq] {
			continue
		}
		lost++
		if len(missing) < 40 {
			missing = append(missing, fmt.Sprintf("#%d@%s", seq, u.sentAt[seq].UTC().Format("15:04:05.000")))
		}
	}
	t.Logf("e2e: udp stream LAN->VPC (%v apart, 1000-byte datagrams): %d sent, %d lost, %d duplicated %s",
		lcUDPInterval, u.sent, lost, u.dups, strings.Join(missing, " "))
	return lost
}

// lcStream is one TCP connection LAN -> VPC host carrying a deterministic
// byte stream at lcStreamRate; both ends hash what they saw.
type lcStream struct {
	stop     chan struct{}
	sendDone chan error
	recvDone chan error
	conn     *net.TCPConn

	sent, recv       int64
	sentSum, recvSum []byte
	maxStall         time.Duration // longest gap between two reads at the receiver
}

func (l *lifecycle) startStream() *lcStream {
	t := l.t
	t.Helper()
	addr := netip.AddrPortFrom(sim.VPCHostAddr, lcStreamPort).String()
	var ln net.Listener
	if err := lcInNetns(l.s.NS(sim.VPCHost), func() (err error) {
		ln, err = net.Listen("tcp4", addr)
		return err
	}); err != nil {
		t.Fatalf("tcp stream: listen in vpchost: %v", err)
	}
	ts := &lcStream{stop: make(chan struct{}), sendDone: make(chan error, 1), recvDone: make(chan error, 1)}
	go func() {
		defer ln.Close()
		ts.recvDone <- ts.receive(ln)
	}()
	var c net.Conn
	if err := lcInNetns(l.s.NS(sim.LAN), func() (err error) {
		c, err = net.DialTimeout("tcp4", addr, 10*time.Second)
		return err
	}); err != nil {
		ln.Close()
		t.Fatalf("tcp stream: connect from lan: %v", err)
	}
	ts.conn = c.(*net.TCPConn)
	go func() { ts.sendDone <- ts.send() }()
	return ts
}

// lcStreamSource is the deterministic content of the stream.
func lcStreamSource() io.Reader {
	return rand.NewChaCha8(sha256.Sum256([]byte("cgw e2e lifecycle stream")))
}

func (ts *lcStream) send() error {
	defer ts.conn.Close()
	src, h := lcStreamSource(), sha256.New()
	const tick = 20 * time.Millisecond
	buf := make([]byte, lcStreamRate/int(time.Second/tick))
	tk := time.NewTicker(tick)
	defer tk.Stop()
	for {
		select {
		case <-ts.stop:
			ts.sentSum = h.Sum(nil)
			if err := ts.conn.CloseWrite(); err != nil {
				return err
			}
			// Wait for the receiver to close: it has read everything.
			_ = ts.conn.SetReadDeadline(time.Now().Add(60 * time.Second))
			if _, err := ts.conn.Read(buf[:1]); !errors.Is(err, io.EOF) {
				return fmt.Errorf("waiting for the receiver to finish: %v", err)
			}
			return nil
		case <-tk.C:
		}
		if _, err := io.ReadFull(src, buf); err != nil {
			return err
		}
		h.Write(buf)
		// A write blocked this long means the connection is dead.
		_ = ts.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := ts.conn.Write(buf); err != nil {
			return fmt.Errorf("write after %d bytes: %w", ts.sent, err)
		}
		ts.sent += int64(len(buf))
	}
}

func (ts *lcStream) receive(ln net.Listener) error {
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(30 * time.Second))
	c, err := ln.Accept()
	if err != nil {
		return fmt.Errorf("accept: %w", err)
	}
	defer c.Close()
	var h hash.Hash = sha256.New()
	buf := make([]byte, 256<<10)
	last := time.Now()
	for {
		_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
		n, err := c.Read(buf)
		now := time.Now()
		if n > 0 {
			ts.maxStall = max(ts.maxStall, now.Sub(last))
			last = now
			h.Write(buf[:n])
			ts.recv += int64(n)
		}
		if errors.Is(err, io.EOF) {
			ts.recvSum = h.Sum(nil)
			return nil
		}
		if err != nil {
			return fmt.Errorf("read after %d bytes: %w", ts.recv, err)
		}
	}
}

// tcpInfo returns the sender's TCP_INFO.
func (ts *lcStream) tcpInfo() (*unix.TCPInfo, error) {
	rc, err := ts.conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	var info *unix.TCPInfo
	var gerr error
	if err := rc.Control(func(fd uintptr) { info, gerr = unix.GetsockoptTCPInfo(int(fd), unix.SOL_TCP, unix.TCP_INFO) }); err != nil {
		return nil, err
	}
	return info, gerr
}

// finish ends the stream and checks that every byte arrived intact.
func (ts *lcStream) finish(t testing.TB) {
	t.Helper()
	info, ierr := ts.tcpInfo()
	close(ts.stop)
	if err := <-ts.sendDone; err != nil {
		t.Errorf("tcp stream sender: %v", err)
	}
	if err := <-ts.recvDone; err != nil {
		t.Errorf("tcp stream receiver: %v", err)
	}
	match := ts.sent == ts.recv && ts.sentSum != nil && string(ts.sentSum) == string(ts.recvSum)
	if !match {
		t.Errorf("tcp stream: sent %d bytes sha256 %x, received %d bytes sha256 %x", ts.sent, ts.sentSum, ts.recv, ts.recvSum)
	}
	// Retransmissions the receiver reported as duplicates (DSACK) were
	// spurious: the original segment had arrived (reordering or a delay,
	// not a loss).
	rs := "TCP_INFO unavailable: " + fmt.Sprint(ierr)
	if ierr == nil {
		rs = fmt.Sprintf("%d TCP retransmissions (%d spurious per DSACK), %d reordering events", info.Total_retrans, info.Dsack_dups, info.Reord_seen)
	}
	t.Logf("e2e: tcp stream LAN->VPC: %d bytes sent, %d received, sha256 match %v, %s, longest receive gap %v",
		ts.sent, ts.recv, match, rs, ts.maxStall.Round(time.Millisecond))
}

// lcRekeyCount is one tunnel's rekeys as each side saw them.
type lcRekeyCount struct {
	metricChild, metricIKE int // cgwd's event counters (Prometheus)
	cgwChild, cgwIKE       int // SPI changes seen in cgwd's status
	swanChild, swanIKE     int // SPI changes seen in strongSwan's SA list
	collisions             int // cgwd log lines about collisions
}

func (l *lifecycle) rekeyCounts(i int, metrics map[string]map[string]int, cgw, swan [3]lcSAView) lcRekeyCount {
	var rc lcRekeyCount
	m := metrics[l.tunnel(i)]
	rc.metricChild, rc.metricIKE = m["child"], m["ike"]
	rc.cgwChild, rc.cgwIKE = cgw[i].rekeys()
	rc.swanChild, rc.swanIKE = swan[i].rekeys()
	rc.collisions = l.collisionLines(i)
	l.t.Logf("e2e: tunnel %d rekeys: CHILD %d (cgwd counter) / %d (SPI changes in cgwd's status) / %d (SPI changes in strongSwan's SA list); IKE %d / %d / %d; %d collision lines in cgwd's log",
		i, rc.metricChild, rc.cgwChild, rc.swanChild, rc.metricIKE, rc.cgwIKE, rc.swanIKE, rc.collisions)
	return rc
}

// drops logs and returns cgwd's non-zero drop counters of tunnel i.
func (l *lifecycle) drops(i int) map[string]uint64 {
	tn, err := l.tunnelStatus(i)
	if err != nil {
		l.t.Errorf("drops: %v", err)
		return nil
	}
	nz := map[string]uint64{}
	for k, v := range tn.Traffic.Drops {
		if v > 0 {
			nz[k] = v
		}
	}
	l.t.Logf("e2e: tunnel %d: cgwd dataplane drops %v (inner packets in %d, out %d)", i, nz, tn.Traffic.PacketsIn, tn.Traffic.PacketsOut)
	return nz
}

// logKernelDrops logs the kernel's drop counters on the tunnel path, to
// attribute a loss that cgwd's own counters do not show: UDP receive and
// send buffer overflows of the customer and AWS namespaces (ESP-in-UDP and
// IKE sockets) and drops of the TUN devices (cgwd's cgwN, charon's ipsec0).
func (l *lifecycle) logKernelDrops() {
	udp := func(role sim.Role) string {
		out, err := l.s.Exec(role, "cat", "/proc/net/snmp")
		if err != nil {
			return err.Error()
		}
		var names, vals []string
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) > 1 && f[0] == "Udp:" {
				if names == nil {
					names = f[1:]
				} else {
					vals = f[1:]
				}
			}
		}
		var parts []string
		for k, n := range names {
			if k < len(vals) && (n == "InErrors" || n == "RcvbufErrors" || n == "SndbufErrors") {
				parts = append(parts, n+"="+vals[k])
			}
		}
		return strings.Join(parts, " ")
	}
	dev := func(role sim.Role, name string) string {
		out, err := l.s.Exec(role, "sh", "-c", fmt.Sprintf("cat /sys/class/net/%[1]s/statistics/rx_dropped /sys/class/net/%[1]s/statistics/tx_dropped", name))
		if err != nil {
			return name + " ?"
		}
		f := strings.Fields(out)
		if len(f) != 2 {
			return name + " ?"
		}
		return fmt.Sprintf("%s rx_dropped=%s tx_dropped=%s", name, f[0], f[1])
	}
	l.t.Logf("e2e: kernel drops: cust UDP %s, %s, %s; aws1 UDP %s, %s; aws2 UDP %s, %s",
		udp(sim.Cust), dev(sim.Cust, "cgw0"), dev(sim.Cust, "cgw1"),
		udp(sim.AWS1), dev(sim.AWS1, "ipsec0"), udp(sim.AWS2), dev(sim.AWS2, "ipsec0"))
}

// checkNoFailures fails the test on log lines that mean a rekey went wrong
// even if traffic survived it.
func (l *lifecycle) checkNoFailures() {
	for _, bad := range []string{
		"reached its hard lifetime without a rekey",
		"rekey failed",
		`msg="peer is dead"`,
		"installing the rekeyed CHILD SA failed",
		"adopting the rekeyed IKE SA failed",
	} {
		for _, ll := range l.cgwdLog(bad) {
			l.t.Errorf("cgwd: %s", ll.Text)
		}
	}
}

// settle waits until every tunnel is back to exactly one CHILD SA pair on
// both sides (an in-flight rekey may be finishing).
func (l *lifecycle) settle(timeout time.Duration) {
	l.t.Helper()
	Eventually(l.t, timeout, func() error {
		return errors.Join(l.oneChildPair(1), l.oneChildPair(2))
	})
}

// lcSoak runs traffic for d while both sides rekey on short lifetimes
// and checks zero loss, the stream's checksum and at least minChild CHILD
// and minIKE IKE rekeys per tunnel as counted by cgwd and seen by
// strongSwan.
func lcSoak(t *testing.T, d time.Duration, ike, child, margin time.Duration, minChild, minIKE int) {
	eo, extra := lcLifetimes(ike, child, margin, 100)
	l := startLifecycle(t, sim.Options{Endpoint: [2]sim.EndpointOptions{eo, eo}}, extra)
	sp := l.sampleSAs()
	start := time.Now()
	tr := l.startTraffic(d, true)
	lost := tr.finish(t)
	l.logKernelDrops()
	t.Logf("e2e: soak ran %v: %d packets (pings, UDP datagrams) lost in all", time.Since(start).Round(time.Second), lost)
	if lost > 0 {
		t.Errorf("%d packets lost during rekeys", lost)
	}
	l.settle(20 * time.Second)
	cgw, swan := sp.finish()
	metrics, err := l.metricRekeys()
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		rc := l.rekeyCounts(i, metrics, cgw, swan)
		l.drops(i)
		for _, c := range []struct {
			what    string
			got     int
			min     int
			ikeKind bool
		}{
			{"cgwd's CHILD rekey counter", rc.metricChild, minChild, false},
			{"CHILD SPI changes strongSwan showed", rc.swanChild, minChild, false},
			{"CHILD SPI changes cgwd showed", rc.cgwChild, minChild, false},
			{"cgwd's IKE rekey counter", rc.metricIKE, minIKE, true},
			{"IKE SPI changes strongSwan showed", rc.swanIKE, minIKE, true},
			{"IKE SPI changes cgwd showed", rc.cgwIKE, minIKE, true},
		} {
			if c.got < c.min {
				t.Errorf("tunnel %d: %s: %d, want at least %d", i, c.what, c.got, c.min)
			}
		}
	}
	l.checkNoFailures()
}

// TestLifecycleRekeysUnderTraffic is the short soak of make test: both
// sides on short lifetimes (CHILD 30 s, IKE 90 s, margin 10 s, 100 % fuzz)
// for 90 s under continuous pings and a TCP stream.
func TestLifecycleRekeysUnderTraffic(t *testing.T) {
	lcSoak(t, 90*time.Second, 90*time.Second, 30*time.Second, 10*time.Second, 4, 1)
}

// TestLifecycleAWSRekeysFirst: only the AWS side has short lifetimes (cgwd
// keeps 8 h / 1 h), so every rekey is AWS's CREATE_CHILD_SA for cgwd to
// answer, CHILD and IKE alike, without loss.
func TestLifecycleAWSRekeysFirst(t *testing.T) {
	eo, _ := lcLifetimes(60*time.Second, 30*time.Second, 10*time.Second, 100)
	l := startLifecycle(t, sim.Options{Endpoint: [2]sim.EndpointOptions{eo, eo}}, "")
	sp := l.sampleSAs()
	// AWS's IKE rekey comes 40-50 s after the IKE SA (set up a few seconds
	// before) was established.
	tr := l.startTraffic(50*time.Second, true)
	lost := tr.finish(t)
	l.logKernelDrops()
	if lost > 0 {
		t.Errorf("%d packets lost while AWS rekeyed", lost)
	}
	l.settle(20 * time.Second)
	cgw, swan := sp.finish()
	metrics, err := l.metricRekeys()
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		rc := l.rekeyCounts(i, metrics, cgw, swan)
		l.drops(i)
		if rc.metricChild < 2 || rc.swanChild < 2 || rc.metricIKE < 1 || rc.swanIKE < 1 {
			t.Errorf("tunnel %d: want at least 2 CHILD and 1 IKE rekeys from AWS, counted by cgwd and seen by strongSwan", i)
		}
		// cgwd answered; it never started an exchange of its own.
		for _, line := range l.charonRequests(i) {
			t.Errorf("AWS endpoint %d received a CREATE_CHILD_SA request although cgwd's lifetimes are 8h/1h: %s", i, line)
		}
		// After AWS's IKE rekey, AWS is the original initiator of the IKE SA.
		tn, err := l.tunnelStatus(i)
		if err != nil {
			t.Fatal(err)
		}
		if tn.IKE == nil || tn.IKE.Initiator {
			t.Errorf("tunnel %d: cgwd's current IKE SA %+v: want one AWS initiated (its rekey)", i, tn.IKE)
		}
	}
	l.checkNoFailures()
}

// TestLifecycleRekeyCollisions forces simultaneous rekeys: equal lifetimes
// without fuzz on both sides (so both start every CHILD and IKE rekey at the
// same moment), then operator-triggered rekeys on both sides at the same
// instant. Every tunnel must end with exactly one CHILD SA pair on both
// sides, and traffic must still flow.
func TestLifecycleRekeyCollisions(t *testing.T) {
	// CHILD rekeys at 15 s, 30 s, 45 s; the IKE rekey at 40 s.
	eo, extra := lcLifetimes(45*time.Second, 20*time.Second, 5*time.Second, -1)
	l := startLifecycle(t, sim.Options{Endpoint: [2]sim.EndpointOptions{eo, eo}}, extra)
	sp := l.sampleSAs()

	// Phase 1: lifetimes expire on both sides at once.
	tr := l.startTraffic(45*time.Second, true)
	lost := tr.finish(t)
	l.logKernelDrops()
	t.Logf("e2e: collisions by equal lifetimes: %d packets lost, %d collision lines in cgwd's log", lost, l.collisionLines(1)+l.collisionLines(2))
	if lost > 0 {
		t.Errorf("%d packets lost during colliding lifetime rekeys", lost)
	}

	// Phase 2: both sides rekey on command at the same instant.
	type round struct {
		what             string
		cgwdIKE, swanIKE bool
	}
	rounds := []round{
		{"CHILD vs CHILD", false, false},
		{"CHILD vs CHILD", false, false},
		{"CHILD vs CHILD", false, false},
		{"IKE vs IKE", true, true},
		{"CHILD (cgwd) vs IKE (AWS)", false, true},
		{"IKE (cgwd) vs CHILD (AWS)", true, false},
	}
	tr = l.startTraffic(time.Duration(len(rounds))*4*time.Second+4*time.Second, false)
	for _, r := range rounds {
		before := l.collisionLines(1) + l.collisionLines(2)
		var wg sync.WaitGroup
		errs := make([]error, 4)
		gate := make(chan struct{})
		for i := 1; i <= 2; i++ {
			wg.Add(2)
			go func() {
				defer wg.Done()
				<-gate
				args := []string{"tunnel", "rekey", l.tunnel(i)}
				if r.cgwdIKE {
					args = []string{"tunnel", "rekey", "--ike", l.tunnel(i)}
				}
				_, errs[2*(i-1)] = l.d.Ctl(args...)
			}()
			go func() {
				defer wg.Done()
				<-gate
				if r.swanIKE {
					errs[2*(i-1)+1] = l.s.RekeyIKE(i)
				} else {
					errs[2*(i-1)+1] = l.s.RekeyChild(i)
				}
			}()
		}
		close(gate)
		wg.Wait()
		for k, err := range errs {
			switch {
			case err == nil:
			case k%2 == 0:
				t.Errorf("%s: cgwctl: %v", r.what, err)
			default:
				// charon refuses a rekey while another exchange of the
				// IKE SA is under way: then there was nothing to collide.
				t.Logf("%s: AWS's rekey was not started: %v", r.what, err)
			}
		}
		time.Sleep(4 * time.Second)
		t.Logf("e2e: simultaneous %s on both tunnels: %d collision lines in cgwd's log", r.what, l.collisionLines(1)+l.collisionLines(2)-before)
	}
	lost = tr.finish(t)
	t.Logf("e2e: collisions on command: %d pings lost", lost)
	if lost > 0 {
		t.Errorf("%d pings lost during simultaneous rekeys on command", lost)
	}

	start := time.Now()
	l.settle(30 * time.Second)
	t.Logf("e2e: one CHILD SA pair per tunnel on both sides %v after the last rekey round", time.Since(start).Round(time.Millisecond))
	cgw, swan := sp.finish()
	metrics, err := l.metricRekeys()
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		rc := l.rekeyCounts(i, metrics, cgw, swan)
		l.drops(i)
		if rc.collisions == 0 {
			t.Logf("tunnel %d: no collision was logged; the timing did not produce one", i)
		}
		if sp.maxSwanIKE[i] > 2 {
			t.Errorf("tunnel %d: strongSwan held %d established IKE SAs at once", i, sp.maxSwanIKE[i])
		}
	}
	// Traffic flows through both tunnels.
	for i := 1; i <= 2; i++ {
		if loss, err := l.s.Ping(sim.Cust, sim.Endpoints[i-1].AWSInside, 10, lcPingInterval); err != nil || loss > 0 {
			t.Errorf("tunnel %d after the collisions: ping loss %.0f%%, err %v", i, loss*100, err)
		}
	}
	if loss, err := l.s.Ping(sim.LAN, sim.VPCHostAddr, 10, lcPingInterval); err != nil || loss > 0 {
		t.Errorf("LAN->VPC after the collisions: ping loss %.0f%%, err %v", loss*100, err)
	}
	for _, bad := range []string{"reached its hard lifetime without a rekey", `msg="peer is dead"`} {
		for _, ll := range l.cgwdLog(bad) {
			t.Errorf("cgwd: %s", ll.Text)
		}
	}
}

// lcVPCRouteVia returns the tunnels cgwd's kernel route to the VPC uses.
func lcVPCRouteVia(st *control.Status) []string {
	for _, c := range st.Connections {
		for _, r := range c.Routes {
			if r.Prefix == sim.DefaultVPC.String() {
				return r.Via
			}
		}
	}
	return nil
}

// killCharon SIGKILLs the charon of AWS endpoint i: the AWS side vanishes
// without a DELETE (sim.StopCharon stops charon with SIGTERM, and charon
// then deletes its IKE SAs first). The charon is found by its network
// namespace; StopCharon afterwards only updates the simulation's records so
// that StartCharon works.
func (l *lifecycle) killCharon(i int) {
	l.t.Helper()
	var st unix.Stat_t
	if err := unix.Stat("/run/netns/"+l.s.NS(sim.Endpoints[i-1].Role), &st); err != nil {
		l.t.Fatal(err)
	}
	want := fmt.Sprintf("net:[%d]", st.Ino)
	killed := 0
	for _, pid := range l.s.CharonPids() {
		ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil || ns != want || strings.TrimSpace(string(comm)) != "charon" {
			continue
		}
		if err := unix.Kill(pid, unix.SIGKILL); err != nil {
			l.t.Fatalf("kill charon %d: %v", pid, err)
		}
		killed++
	}
	if killed != 1 {
		l.t.Fatalf("found %d charon processes of endpoint %d to kill, want 1", killed, i)
	}
	if err := l.s.StopCharon(i); err != nil {
		l.t.Fatal(err)
	}
}

// TestLifecyclePeerFailures: AWS deletes the IKE SA; AWS's charon is
// killed (no DELETE) and later started again; AWS's charon crashes and
// comes straight back (all state lost, new SPIs, no DELETE). cgwd notices
// each and recovers on its own.
func TestLifecyclePeerFailures(t *testing.T) {
	const (
		dpdInterval = 10 * time.Second
		dpdRetries  = 3
	)
	l := startLifecycle(t, sim.Options{}, fmt.Sprintf("        dpd: {interval: %ds, retries: %d, action: restart}\n", int(dpdInterval.Seconds()), dpdRetries))
	t1 := l.tunnel(1)

	ikeOf := func() string {
		tn, err := l.tunnelStatus(1)
		if err != nil || tn.IKE == nil {
			return ""
		}
		return lcIKEKey(tn.IKE.SPIi, tn.IKE.SPIr)
	}
	// backUp waits until tunnel 1 has an IKE SA other than old with a CHILD
	// SA that strongSwan also has, and returns when that happened.
	backUp := func(old string, timeout time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		Eventually(t, timeout, func() error {
			tn, err := l.tunnelStatus(1)
			if err != nil {
				return err
			}
			ike, children := lcCgwdSAs(tn)
			if ike == "" || ike == old || len(children) == 0 || tn.ChildState != "Established" {
				return fmt.Errorf("tunnel 1: IKE %s (%s), CHILD %s %v, last error %q", tn.IKEState, ike, tn.ChildState, children, tn.LastError)
			}
			_, swanChildren, err := lcSwanSAs(l.s, 1)
			if err != nil {
				return err
			}
			if !slices.Contains(swanChildren, children[0]) {
				return fmt.Errorf("strongSwan does not have cgwd's CHILD SA %s yet: %v", children[0], swanChildren)
			}
			return nil
		})
		return time.Since(start)
	}
	bgpUp := func(timeout time.Duration) {
		t.Helper()
		l.d.waitStatus(t, timeout, func(st *control.Status) error {
			if via := lcVPCRouteVia(st); !slices.Contains(via, t1) {
				return fmt.Errorf("route to the VPC via %v, want %s back", via, t1)
			}
			return tunnelsUp(st)
		})
	}

	t.Run("delete", func(t *testing.T) {
		old := ikeOf()
		start := time.Now()
		if err := l.s.TerminateIKE(1); err != nil {
			t.Fatal(err)
		}
		backUp(old, 30*time.Second)
		t.Logf("e2e: recovery after AWS's DELETE: IKE and CHILD SA re-established %v after the DELETE", time.Since(start).Round(time.Millisecond))
		logged := false
		for _, ll := range l.cgwdLog(lcPeerAttr(t1)) {
			logged = logged || ll.At.After(start.Add(-time.Second)) && strings.Contains(strings.ToLower(ll.Text), "deleted the ike sa")
		}
		if !logged {
			t.Errorf("cgwd did not log the peer's DELETE of the IKE SA")
		}
		bgpUp(60 * time.Second)
		t.Logf("e2e: recovery after AWS's DELETE: BGP established and routes back %v after the DELETE", time.Since(start).Round(time.Millisecond))
	})

	t.Run("killed", func(t *testing.T) {
		start := time.Now()
		l.killCharon(1)
		// Detection: the tunnel leaves Established. Polled, and taken
		// exactly from cgwd's "peer is dead" line.
		bound := dpdInterval*dpdRetries + dpdInterval
		l.d.waitStatus(t, bound+20*time.Second, func(st *control.Status) error {
			tn := lcTunnel(st, t1)
			if tn == nil {
				return fmt.Errorf("tunnel %s not in cgwd's status", t1)
			}
			if tn.IKEState == "Established" || tn.IKEState == "Rekeying" {
				return fmt.Errorf("tunnel 1 IKE %s, DPD misses %d", tn.IKEState, tn.DPD.Misses)
			}
			return nil
		})
		polled := time.Since(start)
		detect, how := polled, "polled status"
		if dead := l.cgwdLog(lcPeerAttr(t1), `msg="peer is dead"`); len(dead) > 0 && !dead[len(dead)-1].At.IsZero() {
			detect, how = dead[len(dead)-1].At.Sub(start), `cgwd's "peer is dead" line; status showed it after `+polled.Round(time.Millisecond).String()
		}
		t.Logf("e2e: DPD detection: peer declared dead %v after the kill (%s; bound interval x retries + interval = %v)",
			detect.Round(time.Millisecond), how, bound)
		// The log's timestamp and the kill are on one clock; allow for the
		// timer firing late on a loaded machine.
		if detect > bound+time.Second {
			t.Errorf("DPD took %v, want at most %v", detect, bound)
		}
		if detect < dpdInterval*dpdRetries-dpdInterval {
			t.Errorf("peer declared dead %v after the kill: too early for DPD (%v x %d)", detect, dpdInterval, dpdRetries)
		}
		// BGP for the tunnel goes down at once and the VPC route moves
		// to tunnel 2.
		l.d.waitStatus(t, 5*time.Second, func(st *control.Status) error {
			tn := lcTunnel(st, t1)
			if tn == nil {
				return fmt.Errorf("tunnel %s not in cgwd's status", t1)
			}
			if tn.State == "up" || tn.BGP == nil || tn.BGP.State == "Established" {
				return fmt.Errorf("tunnel 1 %s, BGP %+v", tn.State, tn.BGP)
			}
			if via := lcVPCRouteVia(st); !slices.Equal(via, []string{l.tunnel(2)}) {
				return fmt.Errorf("route to the VPC via %v, want [%s]", via, l.tunnel(2))
			}
			return nil
		})
		t.Logf("e2e: failover: tunnel 1 BGP down and the VPC route via tunnel 2 %v after the kill", time.Since(start).Round(time.Millisecond))
		if err := l.s.WaitPing(sim.LAN, sim.VPCHostAddr, 40*time.Second); err != nil {
			t.Errorf("LAN->VPC through tunnel 2: %v", err)
		}
		t.Logf("e2e: failover: LAN->VPC ping through tunnel 2 %v after the kill", time.Since(start).Round(time.Millisecond))

		restart := time.Now()
		if err := l.s.StartCharon(1); err != nil {
			t.Fatal(err)
		}
		rec := backUp("", 150*time.Second)
		t.Logf("e2e: recovery after peer restart: tunnel 1 IKE and CHILD SA back %v after AWS's charon started again", rec.Round(time.Millisecond))
		bgpUp(60 * time.Second)
		t.Logf("e2e: recovery after peer restart: BGP established and VPC route back on tunnel 1 %v after AWS's charon started again", time.Since(restart).Round(time.Millisecond))
	})

	t.Run("restarted", func(t *testing.T) {
		old := ikeOf()
		deadBefore := len(l.cgwdLog(lcPeerAttr(t1), `msg="peer is dead"`))
		start := time.Now()
		l.killCharon(1)
		if err := l.s.StartCharon(1); err != nil {
			t.Fatal(err)
		}
		backUp(old, dpdInterval*(dpdRetries+1)+60*time.Second)
		t.Logf("e2e: recovery after peer restart (state lost, new SPIs): IKE and CHILD SA re-established %v after the restart", time.Since(start).Round(time.Millisecond))
		how := "a new IKE_SA_INIT or INITIAL_CONTACT"
		if len(l.cgwdLog(lcPeerAttr(t1), `msg="peer is dead"`)) > deadBefore {
			how = "DPD"
		}
		t.Logf("e2e: cgwd noticed the restarted peer by %s", how)
		bgpUp(60 * time.Second)
		t.Logf("e2e: recovery after peer restart (state lost): BGP established and routes back %v after the restart", time.Since(start).Round(time.Millisecond))
		if err := l.s.WaitPing(sim.LAN, sim.VPCHostAddr, 20*time.Second); err != nil {
			t.Error(err)
		}
	})
}
