package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

var (
	pingSummary = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)
	pingReply   = regexp.MustCompile(`icmp_seq=(\d+) ttl=`)
)

// Ping sends count echo requests from the namespace of role to addr, one
// every interval, and returns the loss fraction (0 = none lost, 1 = all).
// An error means ping could not run or printed no summary, not packet loss.
//
// A late reply is not a lost one. Left to itself, ping exits max(2 x the
// largest RTT so far, interval) after its last request and counts every
// reply still on its way as lost: one 120 ms scheduling stall of a tunnel
// end on a loaded machine "loses" the last 3 of 10 pings sent 50 ms apart.
// So for count > 1 ping runs with a deadline (-w) and waits up to 3 s for
// the answers; since it then sends on until count replies have come, the
// loss is computed from the replies to sequence numbers 1..count.
func (s *Sim) Ping(from Role, to netip.Addr, count int, interval time.Duration) (float64, error) {
	if count <= 0 {
		count = 1
	}
	if interval <= 0 {
		interval = 200 * time.Millisecond
	}
	// ping's own intervals stretch on a loaded machine (a 66 s run of
	// 1317 pings at 50 ms took over 76 s): half as much again, so that a
	// slow clock is not reported as every ping lost.
	timeout := time.Duration(count)*interval*3/2 + 10*time.Second
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	args := []string{"ping", "-n", "-c", strconv.Itoa(count),
		"-i", strconv.FormatFloat(interval.Seconds(), 'f', 3, 64), "-W", "1"}
	if count > 1 {
		deadline := time.Duration(count)*interval + 3*time.Second
		args = append(args, "-w", strconv.Itoa(int((deadline+time.Second-1)/time.Second)))
	}
	out, err := ExecContext(ctx, s.nsOf(from), append(args, to.String())...)
	m := pingSummary.FindStringSubmatch(out)
	if m == nil {
		if err == nil {
			err = errors.New("no summary line")
		}
		return 1, fmt.Errorf("sim: ping %s from %s: %w", to, from, err)
	}
	if tx, _ := strconv.Atoi(m[1]); tx == 0 {
		return 1, fmt.Errorf("sim: ping %s from %s: nothing transmitted", to, from)
	}
	answered := map[int]bool{}
	for _, r := range pingReply.FindAllStringSubmatch(out, -1) {
		if n, _ := strconv.Atoi(r[1]); n >= 1 && n <= count {
			answered[n] = true
		}
	}
	return 1 - float64(len(answered))/float64(count), nil
}

// WaitPing pings once per 200 ms until a reply arrives or timeout passes.
func (s *Sim) WaitPing(from Role, to netip.Addr, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		loss, err := s.Ping(from, to, 1, 200*time.Millisecond)
		if err == nil && loss == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sim: no ping reply from %s to %s within %v", from, to, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// IperfOptions describe one bounded iperf3 run between namespaces.
type IperfOptions struct {
	Client  Role       // namespace running the client
	Server  netip.Addr // address of the server (must be in a Sim namespace)
	Seconds int        // test length, default 10
	Streams int        // parallel streams, default 1
	UDP     bool
	Bitrate string // UDP offered rate per stream (iperf3 -b), default "10G"
	Length  int    // UDP datagram payload, default 1400
	Reverse bool   // server sends (-R)
}

// IperfResult is the part of iperf3's JSON report the tests and bench use.
type IperfResult struct {
	Seconds      float64
	SentGbps     float64 // sender side
	Gbps         float64 // receiver side (what arrived)
	Retransmits  int     // TCP
	Packets      int64   // UDP datagrams sent
	LostPackets  int64   // UDP
	LossPercent  float64 // UDP
	PPS          float64 // UDP datagrams received per second
	JitterMs     float64
	CPUClient    float64 // iperf3 client process, % of one CPU summed (host_total)
	CPUServer    float64 // iperf3 server process (remote_total)
	ErrorMessage string  // iperf3's own "error" field
}

// Iperf3 runs iperf3 from client to server for seconds with streams parallel
// streams (TCP, or UDP at 10 Gbit/s offered, 1400-byte datagrams).
func (s *Sim) Iperf3(client Role, server netip.Addr, seconds, streams int, udp bool) (IperfResult, error) {
	return s.Iperf3Opts(IperfOptions{Client: client, Server: server, Seconds: seconds, Streams: streams, UDP: udp})
}

// Iperf3Opts runs one iperf3 test. The server is started on first use in
// the namespace owning the address and stopped by Close. The run is bounded
// by Seconds plus a 30 s grace (a UDP flood through a slow tunnel can
// delay iperf3's control connection by several TCP retransmit timeouts).
func (s *Sim) Iperf3Opts(o IperfOptions) (IperfResult, error) {
	if o.Seconds <= 0 {
		o.Seconds = 10
	}
	if o.Streams <= 0 {
		o.Streams = 1
	}
	if o.Bitrate == "" {
		o.Bitrate = "10G"
	}
	if o.Length == 0 {
		o.Length = 1400
	}
	if err := s.ensureIperfServer(o.Server); err != nil {
		return IperfResult{}, err
	}
	args := []string{"iperf3", "-c", o.Server.String(), "-J", "-t", strconv.Itoa(o.Seconds),
		"-P", strconv.Itoa(o.Streams), "--connect-timeout", "3000"}
	if o.UDP {
		args = append(args, "-u", "-b", o.Bitrate, "-l", strconv.Itoa(o.Length))
	}
	if o.Reverse {
		args = append(args, "-R")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(o.Seconds+30)*time.Second)
	defer cancel()
	out, err := ExecContext(ctx, s.nsOf(o.Client), args...)
	res, perr := parseIperf([]byte(out), o.UDP)
	if perr != nil {
		if err == nil {
			err = perr
		}
		return res, fmt.Errorf("sim: iperf3 %s -> %s: %w", o.Client, o.Server, err)
	}
	if res.ErrorMessage != "" {
		return res, fmt.Errorf("sim: iperf3 %s -> %s: %s", o.Client, o.Server, res.ErrorMessage)
	}
	return res, err
}

type iperfSum struct {
	Seconds       float64 `json:"seconds"`
	BitsPerSecond float64 `json:"bits_per_second"`
	Retransmits   int     `json:"retransmits"`
	JitterMs      float64 `json:"jitter_ms"`
	LostPackets   int64   `json:"lost_packets"`
	Packets       int64   `json:"packets"`
	LostPercent   float64 `json:"lost_percent"`
}

type iperfJSON struct {
	Error string `json:"error"`
	End   struct {
		Sum         *iperfSum `json:"sum"`
		SumSent     *iperfSum `json:"sum_sent"`
		SumReceived *iperfSum `json:"sum_received"`
		CPU         struct {
			HostTotal   float64 `json:"host_total"`
			RemoteTotal float64 `json:"remote_total"`
		} `json:"cpu_utilization_percent"`
	} `json:"end"`
}

func parseIperf(b []byte, udp bool) (IperfResult, error) {
	var r IperfResult
	// iperf3 may print warnings before the JSON object.
	if i := strings.IndexByte(string(b), '{'); i > 0 {
		b = b[i:]
	}
	var j iperfJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return r, fmt.Errorf("parse iperf3 JSON: %w", err)
	}
	r.ErrorMessage = j.Error
	r.CPUClient, r.CPUServer = j.End.CPU.HostTotal, j.End.CPU.RemoteTotal
	if j.End.SumSent != nil {
		r.SentGbps = j.End.SumSent.BitsPerSecond / 1e9
		r.Retransmits = j.End.SumSent.Retransmits
		r.Seconds = j.End.SumSent.Seconds
	}
	if j.End.SumReceived != nil {
		r.Gbps = j.End.SumReceived.BitsPerSecond / 1e9
	}
	if udp {
		// iperf3 >= 3.9 reports the receiver's view in sum_received; older
		// versions only in sum (sender rate + receiver loss counters).
		sum := j.End.SumReceived
		if sum == nil {
			sum = j.End.Sum
		}
		if sum == nil {
			return r, errors.New("iperf3 JSON has no UDP summary")
		}
		r.Packets, r.LostPackets, r.LossPercent, r.JitterMs = sum.Packets, sum.LostPackets, sum.LostPercent, sum.JitterMs
		if r.Seconds == 0 {
			r.Seconds = sum.Seconds
		}
		if r.SentGbps == 0 {
			r.SentGbps = sum.BitsPerSecond / 1e9
		}
		if j.End.SumReceived == nil {
			r.Gbps = r.SentGbps * (1 - r.LossPercent/100)
		}
		if sum.Seconds > 0 {
			r.PPS = float64(r.Packets-r.LostPackets) / sum.Seconds
		}
	}
	return r, nil
}

// ensureIperfServer starts `iperf3 -s` bound to addr in the namespace that
// owns addr, once, and waits until it accepts connections.
func (s *Sim) ensureIperfServer(addr netip.Addr) error {
	s.mu.Lock()
	p := s.iperfOn[addr]
	s.mu.Unlock()
	if p != nil {
		if ok, _ := p.Exited(); !ok {
			return nil
		}
	}
	role, err := s.RoleOf(addr)
	if err != nil {
		return err
	}
	p, err = s.StartProcess(role, "iperf3-server-"+addr.String(), "iperf3", "-s", "-B", addr.String())
	if err != nil {
		return err
	}
	if err := s.waitFor("iperf3 server on "+addr.String(), p, func() error {
		out, err := s.Exec(role, "ss", "-Hltn", "sport", "= :5201")
		if err == nil && !strings.Contains(out, "5201") {
			err = errors.New("not listening yet")
		}
		return err
	}); err != nil {
		return err
	}
	s.mu.Lock()
	s.iperfOn[addr] = p
	s.mu.Unlock()
	return nil
}

// RoleOf returns the namespace role that has addr configured.
func (s *Sim) RoleOf(addr netip.Addr) (Role, error) {
	for _, r := range Roles {
		out, err := run("ip", "-n", s.NS(r), "-4", "-o", "addr", "show")
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(out) {
			if p, err := netip.ParsePrefix(f); err == nil && p.Addr() == addr {
				return r, nil
			}
		}
	}
	return "", fmt.Errorf("sim: no namespace of %s has address %s", s.id, addr)
}

// CPUTimes is a snapshot of /proc/stat's aggregate line (in clock ticks).
type CPUTimes struct {
	Busy, Total uint64
	At          time.Time
}

// ReadCPU reads the aggregate CPU counters of the host (all namespaces
// share the CPUs, so this covers every process of the simulation).
func ReadCPU() (CPUTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return CPUTimes{}, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return CPUTimes{}, errors.New("sim: unexpected /proc/stat")
	}
	var t CPUTimes
	for i, v := range f[1:] {
		n, _ := strconv.ParseUint(v, 10, 64)
		if i >= 8 { // guest, guest_nice are already in user/nice
			break
		}
		t.Total += n
		if i != 3 && i != 4 { // idle, iowait
			t.Busy += n
		}
	}
	t.At = time.Now()
	return t, nil
}

// BusyCPUs returns how many CPUs were busy on average between a and b
// (e.g. 1.5 = one and a half cores).
func BusyCPUs(a, b CPUTimes, ncpu int) float64 {
	if b.Total <= a.Total {
		return 0
	}
	return float64(b.Busy-a.Busy) / float64(b.Total-a.Total) * float64(ncpu)
}

// ProcCPUSeconds returns utime+stime of pid and all its threads, in seconds.
func ProcCPUSeconds(pid int) (float64, error) {
	u, st, err := ProcUserSystem(pid)
	return u + st, err
}

// ProcUserSystem returns utime and stime of pid and all its threads, in
// seconds.
func ProcUserSystem(pid int) (user, system float64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, errors.New("sim: bad /proc/pid/stat")
	}
	f := strings.Fields(s[i+1:])
	// fields after ")" start at state (field 3); utime = 14, stime = 15.
	if len(f) < 13 {
		return 0, 0, errors.New("sim: short /proc/pid/stat")
	}
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return float64(ut) / clockTicks, float64(st) / clockTicks, nil
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100
