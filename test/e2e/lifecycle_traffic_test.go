//go:build e2e

package e2e

import (
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
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cgwproject/cgw/test/sim"
)

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
	logChild, logIKE := l.charonRekeys(i)
	l.t.Logf("e2e: tunnel %d rekeys: CHILD %d (cgwd counter) / %d (SPI changes in cgwd's status) / %d (SPI changes in strongSwan's SA list) / %d (completed in charon's log); IKE %d / %d / %d / %d; %d collision lines in cgwd's log",
		i, rc.metricChild, rc.cgwChild, rc.swanChild, logChild, rc.metricIKE, rc.cgwIKE, rc.swanIKE, logIKE, rc.collisions)
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

// kernelDrops reads the kernel's drop counters on the tunnel path, to
// attribute a loss that cgwd's own counters do not show: UDP receive and
// send buffer overflows of the customer and AWS namespaces (ESP-in-UDP and
// IKE sockets) and drops of the TUN devices (cgwd's cgwN, charon's ipsec0).
// It logs them and returns how many the simulated AWS side dropped itself
// (its UDP buffer overflows and ipsec0 drops, counted since its namespace
// was made).
func (l *lifecycle) kernelDrops(log bool) (awsSide int) {
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
				if n != "InErrors" && (role == sim.AWS1 || role == sim.AWS2) {
					v, _ := strconv.Atoi(vals[k])
					awsSide += v
				}
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
		if role == sim.AWS1 || role == sim.AWS2 {
			for _, x := range f {
				v, _ := strconv.Atoi(x)
				awsSide += v
			}
		}
		return fmt.Sprintf("%s rx_dropped=%s tx_dropped=%s", name, f[0], f[1])
	}
	line := fmt.Sprintf("e2e: kernel drops: cust UDP %s, %s, %s; aws1 UDP %s, %s; aws2 UDP %s, %s",
		udp(sim.Cust), dev(sim.Cust, "cgw0"), dev(sim.Cust, "cgw1"),
		udp(sim.AWS1), dev(sim.AWS1, "ipsec0"), udp(sim.AWS2), dev(sim.AWS2, "ipsec0"))
	if log {
		l.t.Log(line)
	}
	return awsSide
}

// checkLoss fails the test when traffic was lost, unless every lost packet
// is accounted for by drops the simulated AWS side made itself since
// awsBefore (kernelDrops(false) before the traffic started). charon's
// libipsec decrypts on one thread, and when the machine is loaded a bulk
// TCP stream overflows its UDP receive buffer; those drops are the
// simulator's, not cgwd's, and a real AWS endpoint does not have them. Any
// loss beyond them, or any loss with no such drops, fails.
func (l *lifecycle) checkLoss(lost, awsBefore int, what string) {
	l.t.Helper()
	awsDrops := l.kernelDrops(true) - awsBefore
	switch {
	case lost == 0:
	case lost <= awsDrops:
		l.t.Logf("e2e: %d packets lost %s, all within the %d packets the simulated AWS side dropped in its own socket buffers (loaded machine)", lost, what, awsDrops)
	default:
		l.t.Errorf("%d packets lost %s (the simulated AWS side dropped %d itself)", lost, what, awsDrops)
	}
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
