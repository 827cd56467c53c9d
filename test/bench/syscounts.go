package main

// System calls and CPU per packet of each cgwd during a profiled run
// (issue 18): how many packets one TUN read, one TUN write, one sendmmsg
// and one recvmmsg carry, counted with perf's syscall tracepoints, and
// the process's user and system CPU per packet. With -profile-drop the
// test traffic is dropped in a namespace's PREROUTING right after one
// tunnel end, so that end's system calls no longer carry the kernel's
// forwarding of the packet through the rest of the simulated path.

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cgwproject/cgw/test/sim"
)

var flagProfileDrop = flag.String("profile-drop", "", "profile: drop the test traffic in PREROUTING of this namespace: "+
	"aws1 (decrypted packets right after the AWS-side TUN write) or inet (ESP right after the customer side's send); "+
	"the tunnel end before it is then not charged for forwarding the packet further")

// sysEvent is one perf event counted per process.
type sysEvent struct {
	event, filter, name string
}

// sysEvents: a read or write that moved data on cgwd's busy file
// descriptors is a TUN read or write (its other descriptors are quiet
// under load); sendmmsg and recvmmsg are its ESP socket; poll is the
// readiness checks of the TUN waits (unix.Poll is ppoll(2)).
var sysEvents = []sysEvent{
	{"syscalls:sys_exit_read", "ret > 0", "reads"},
	{"syscalls:sys_enter_read", "", "read calls"},
	{"syscalls:sys_exit_write", "ret > 0", "writes"},
	{"syscalls:sys_exit_sendmmsg", "ret > 0", "sendmmsg"},
	{"syscalls:sys_exit_recvmmsg", "ret > 0", "recvmmsg"},
	{"syscalls:sys_enter_futex", "", "futex"},
	{"syscalls:sys_enter_epoll_pwait", "", "epoll_pwait"},
	{"syscalls:sys_enter_ppoll", "", "poll"},
	{"context-switches", "", "context switches"},
}

// sysCounter counts sysEvents of one process for a bounded time.
type sysCounter struct {
	pid        int
	out        string
	cmd        *exec.Cmd
	user, sys0 float64
}

// startSysCounter starts perf stat on pid for secs seconds, writing to
// dir; nil when perf is not installed.
func startSysCounter(pid int, dir, tag string, secs int) *sysCounter {
	p, err := exec.LookPath("perf")
	if err != nil {
		return nil
	}
	c := &sysCounter{pid: pid, out: filepath.Join(dir, tag+".perfstat")}
	args := []string{"stat", "-x", ",", "-o", c.out, "-p", strconv.Itoa(pid)}
	for _, e := range sysEvents {
		args = append(args, "-e", e.event)
		if e.filter != "" {
			args = append(args, "--filter", e.filter)
		}
	}
	args = append(args, "--", "sleep", strconv.Itoa(secs))
	c.cmd = exec.Command(p, args...)
	c.user, c.sys0 = procTimes(pid)
	if err := c.cmd.Start(); err != nil {
		return nil
	}
	return c
}

// sysCount is the result of one sysCounter.
type sysCount struct {
	counts    map[string]float64
	user, sys float64 // CPU seconds during the count
}

func (c *sysCounter) wait() (sysCount, error) {
	r := sysCount{counts: map[string]float64{}}
	err := c.cmd.Wait()
	u, s := procTimes(c.pid)
	r.user, r.sys = u-c.user, s-c.sys0
	if err != nil {
		return r, fmt.Errorf("perf stat: %w", err)
	}
	b, err := os.ReadFile(c.out)
	if err != nil {
		return r, err
	}
	// CSV: value,unit,event,... in the order of sysEvents.
	i := 0
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Split(l, ",")
		if len(f) < 3 || strings.HasPrefix(l, "#") || i >= len(sysEvents) {
			continue
		}
		if !strings.HasPrefix(f[2], sysEvents[i].event) {
			continue
		}
		v, _ := strconv.ParseFloat(f[0], 64) // "<not counted>" is 0
		r.counts[sysEvents[i].name] = v
		i++
	}
	return r, nil
}

// format says what one packet costs this process: packets per call of
// each kind and CPU per packet.
func (r sysCount) format(pkts float64) string {
	if pkts <= 0 {
		return "no packets"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%.1f µs/pkt (user %.1f, sys %.1f)", (r.user+r.sys)/pkts*1e6, r.user/pkts*1e6, r.sys/pkts*1e6)
	for _, n := range []string{"reads", "writes", "sendmmsg", "recvmmsg"} {
		if v := r.counts[n]; v >= pkts/1000 {
			fmt.Fprintf(&b, "; %s %.0f (%.2f pkts each)", n, v, pkts/v)
		}
	}
	for _, n := range []string{"read calls", "poll", "futex", "epoll_pwait", "context switches"} {
		fmt.Fprintf(&b, "; %s %.2f/pkt", n, r.counts[n]/pkts)
	}
	return b.String()
}

// procTimes returns a process's user and system CPU seconds (0 when it
// is gone).
func procTimes(pid int) (user, sys float64) {
	user, sys, _ = sim.ProcUserSystem(pid)
	return user, sys
}

// trafficDrop is an iptables rule dropping the test traffic in one
// namespace's PREROUTING (raw table, before routing).
type trafficDrop struct {
	s    *sim.Sim
	role sim.Role
	rule []string
}

// installDrop installs the -profile-drop rule, if any.
func installDrop(s *sim.Sim) (*trafficDrop, error) {
	d := &trafficDrop{s: s}
	switch *flagProfileDrop {
	case "":
		return nil, nil
	case "aws1":
		d.role = sim.AWS1
		d.rule = []string{"PREROUTING", "-p", "udp", "-d", sim.VPCHostAddr.String(), "--dport", strconv.Itoa(sinkPort), "-j", "DROP"}
	case "inet":
		// ESP in UDP of test packets; IKE and keepalives are short.
		d.role = sim.Inet
		d.rule = []string{"PREROUTING", "-p", "udp", "--dport", "4500", "-m", "length", "--length", "200:65535", "-j", "DROP"}
	default:
		return nil, fmt.Errorf("-profile-drop %q: want aws1 or inet", *flagProfileDrop)
	}
	if _, err := s.Exec(d.role, append([]string{"iptables", "-t", "raw", "-I"}, d.rule...)...); err != nil {
		return nil, err
	}
	return d, nil
}

// remove deletes the rule and returns the packets it dropped.
func (d *trafficDrop) remove() (uint64, error) {
	out, err := d.s.Exec(d.role, "iptables", "-t", "raw", "-L", "PREROUTING", "1", "-v", "-x", "-n")
	var n uint64
	if err == nil {
		if f := strings.Fields(out); len(f) > 0 {
			n, _ = strconv.ParseUint(f[0], 10, 64)
		}
	}
	_, derr := d.s.Exec(d.role, append([]string{"iptables", "-t", "raw", "-D"}, d.rule...)...)
	if err == nil {
		err = derr
	}
	return n, err
}

var flagLANGRO = flag.Bool("lan-gro", false, "turn on GRO with UDP GRO forwarding on the customer gateway's LAN-facing veth (cust lan0) in every mode, "+
	"as a real gateway's NIC has it: the kernel may then hand the tunnel forwarded UDP as GSO superpackets")

// applyLANGRO applies -lan-gro to a prepared mode.
func applyLANGRO(s *sim.Sim) error {
	if !*flagLANGRO {
		return nil
	}
	// veth does GRO only with its NAPI, which "gro on" enables.
	_, err := s.Exec(sim.Cust, "ethtool", "-K", "lan0", "gro", "on", "rx-udp-gro-forwarding", "on")
	return err
}
