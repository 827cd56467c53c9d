//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/test/sim"
)

// lcSoak runs traffic for d while both sides rekey on short lifetimes
// and checks zero loss, the stream's checksum and at least minChild CHILD
// and minIKE IKE rekeys per tunnel as counted by cgwd and seen by
// strongSwan.
func lcSoak(t *testing.T, d time.Duration, ike, child, margin time.Duration, minChild, minIKE int) {
	eo, extra := lcLifetimes(ike, child, margin, 100)
	l := startLifecycle(t, sim.Options{Endpoint: [2]sim.EndpointOptions{eo, eo}}, extra)
	sp := l.sampleSAs()
	start := time.Now()
	awsDrops := l.kernelDrops(false)
	tr := l.startTraffic(d, true)
	lost := tr.finish(t)
	t.Logf("e2e: soak ran %v: %d packets (pings, UDP datagrams) lost in all", time.Since(start).Round(time.Second), lost)
	l.checkLoss(lost, awsDrops, "during rekeys")
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
	awsDrops := l.kernelDrops(false)
	tr := l.startTraffic(50*time.Second, true)
	lost := tr.finish(t)
	l.checkLoss(lost, awsDrops, "while AWS rekeyed")
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
	// CHILD rekeys at 15 s, 30 s, 45 s; the IKE rekey at 40 s. The margin
	// (time from rekey to hard expiry) is longer than the AWS profile's
	// 10 s retransmission timeout, as AWS's 270 s margin is: a message
	// lost in a collision must be recoverable before the old SA expires.
	// charon drops a response that arrives while it processes a request
	// with the same message ID (ike_sa_manager keys "already processing" on
	// the ID alone), which happens when both sides send ID 0 on a fresh IKE
	// SA; with a 5 s margin its retransmission came 5 s after the old SA
	// died, and both tunnels lost ~5 s of traffic.
	eo, extra := lcLifetimes(55*time.Second, 30*time.Second, 15*time.Second, -1)
	l := startLifecycle(t, sim.Options{Endpoint: [2]sim.EndpointOptions{eo, eo}}, extra)
	sp := l.sampleSAs()

	// Phase 1: lifetimes expire on both sides at once.
	awsDrops := l.kernelDrops(false)
	tr := l.startTraffic(45*time.Second, true)
	lost := tr.finish(t)
	t.Logf("e2e: collisions by equal lifetimes: %d packets lost, %d collision lines in cgwd's log", lost, l.collisionLines(1)+l.collisionLines(2))
	l.checkLoss(lost, awsDrops, "during colliding lifetime rekeys")

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
