//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cgwproject/cgw/test/sim"
)

// TestOversize sends 1500-octet pings with DF set (ping -M do -s 1472) from
// the LAN host to the VPC host through cgwd and the strongSwan AWS
// simulator. The tunnel MTU is below 1500, the TUN device is not, so the
// packets reach the dataplane, which handles them as tunnels[].oversize
// says:
//
//   - fragment (default, AWS's clear_df_bit + fragmentation_before_encryption):
//     the pings succeed; on the outside every ESP packet is a whole datagram
//     of at most 1500 octets (fragmented before encryption, so AWS never has
//     to reassemble ESP), and the VPC host receives the requests as
//     fragments with DF clear;
//   - icmp: the LAN host gets ICMP "fragmentation needed" carrying the
//     tunnel MTU, and a ping of exactly the tunnel MTU with DF still
//     crosses.
func TestOversize(t *testing.T) {
	t.Run("fragment", func(t *testing.T) {
		s, mtu := oversizeSetup(t, "")
		// cgwd sends runs of ESP packets with UDP GSO, and veth carries
		// the superpacket unsegmented, so a capture would show one
		// oversize datagram per run. One segment per GSO packet makes the
		// kernel segment before the wire, as a real NIC does.
		if _, err := s.Exec(sim.Cust, "ip", "link", "set", "wan0", "gso_max_segs", "1"); err != nil {
			t.Fatal(err)
		}
		outer := ovsStartCapture(t, s, sim.Inet, "cust0", fmt.Sprintf("src host %s and udp port 4500", sim.CustPublicAddr))
		inner := ovsStartCapture(t, s, sim.VPCHost, "eth0", fmt.Sprintf("src host %s", sim.LANHostAddr))
		out, err := ovsPing(s, 1472, 3)
		if err != nil {
			t.Fatalf("1500-octet ping with DF LAN->VPC failed; with oversize: fragment cgwd must clear DF and fragment before encryption: %v\n%s", err, out)
		}
		fields := []string{"ip.flags.df", "ip.len", "ip.flags.mf", "ip.frag_offset"}
		big := 0
		for _, r := range outer.rows(t, fields...) {
			n, _ := strconv.Atoi(r[1])
			if n > 1400 {
				big++
			}
			if !ovsClear(r[0]) || !ovsClear(r[2]) || !ovsClear(r[3]) || n > 1500 {
				t.Errorf("outer ESP packet df=%s len=%s mf=%s offset=%s: want whole datagrams of at most 1500 octets with DF clear", r[0], r[1], r[2], r[3])
			}
		}
		if big < 3 {
			t.Errorf("captured %d outer ESP packets above 1400 octets for 3 pings, want at least 3 (the first fragments)", big)
		}
		frags := 0
		for _, r := range inner.rows(t, fields...) {
			if !ovsClear(r[0]) {
				t.Errorf("VPC host received a packet with DF set (len %s): want DF cleared before fragmentation", r[1])
			}
			if !ovsClear(r[2]) || !ovsClear(r[3]) {
				frags++
			}
		}
		if frags < 6 {
			t.Errorf("VPC host received %d fragments for 3 pings of 1500 octets, want at least 6", frags)
		}
		t.Logf("e2e: oversize fragment: tunnel MTU %d, 1500-octet DF pings crossed as %d inner fragments with DF clear; outer ESP packets whole (%d above 1400 octets)", mtu, frags, big)
	})

	t.Run("icmp", func(t *testing.T) {
		s, mtu := oversizeSetup(t, "        oversize: icmp\n")
		out, err := ovsPing(s, 1472, 2)
		if err == nil {
			t.Fatalf("1500-octet ping with DF crossed a tunnel with MTU %d and oversize: icmp:\n%s", mtu, out)
		}
		out += err.Error()
		if !strings.Contains(out, "Frag needed") {
			t.Errorf("want ICMP \"Frag needed\" from cgwd, got:\n%s", out)
		}
		for _, m := range ovsMTURE.FindAllStringSubmatch(out, -1) {
			if m[1] != strconv.Itoa(mtu) {
				t.Errorf("ICMP/ping reports mtu %s, want the tunnel MTU %d:\n%s", m[1], mtu, out)
			}
		}
		if out, err := ovsPing(s, mtu-28, 3); err != nil {
			t.Errorf("ping of exactly the tunnel MTU (%d) with DF failed: %v\n%s", mtu, err, out)
		}
		t.Logf("e2e: oversize icmp: 1500-octet DF ping answered with Frag needed (mtu = %d); tunnel-MTU pings cross", mtu)
	})
}

// ovsMTURE matches ping's "Frag needed and DF set (mtu = 1435)" and, once
// the path MTU is cached, "local error: message too long, mtu=1435".
var ovsMTURE = regexp.MustCompile(`mtu ?= ?(\d+)`)

// oversizeSetup starts a simulation and cgwd with extra tunnel YAML, waits
// until both tunnels are up and the LAN reaches the VPC host, checks that
// the TUN device is larger than the tunnel MTU, and returns the tunnel MTU.
func oversizeSetup(t *testing.T, extra string) (*sim.Sim, int) {
	t.Helper()
	s := NewSim(t, sim.Options{})
	d := StartCgwd(t, s, sim.CgwdOptions{Extra: extra})
	st := d.waitStatus(t, 60*time.Second, tunnelsUp)
	if err := s.WaitPing(sim.LAN, sim.VPCHostAddr, 20*time.Second); err != nil {
		t.Fatalf("LAN host cannot reach the VPC host through cgwd: %v", err)
	}
	mtu := 0
	for _, tn := range st.Connections[0].Tunnels {
		if mtu != 0 && tn.MTU != mtu {
			t.Fatalf("tunnels have MTUs %d and %d; the test needs one", mtu, tn.MTU)
		}
		mtu = tn.MTU
		out, err := s.Exec(sim.Cust, "cat", filepath.Join("/sys/class/net", tn.Device, "mtu"))
		if err != nil {
			t.Fatal(err)
		}
		if dev, _ := strconv.Atoi(strings.TrimSpace(out)); dev != 1500 {
			t.Errorf("TUN %s has MTU %q, want 1500 (dataplane.DeviceMTU)", tn.Device, strings.TrimSpace(out))
		}
	}
	if mtu <= 0 || mtu >= 1500 {
		t.Fatalf("tunnel MTU %d: the test needs one below 1500", mtu)
	}
	return s, mtu
}

// ovsPing pings the VPC host from the LAN host with DF set and payload
// octets; it fails unless all count replies arrive.
func ovsPing(s *sim.Sim, payload, count int) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := sim.ExecContext(ctx, s.NS(sim.LAN), "ping", "-n", "-c", strconv.Itoa(count), "-i", "0.2", "-W", "2",
		"-M", "do", "-s", strconv.Itoa(payload), sim.VPCHostAddr.String())
	if err == nil && !strings.Contains(out, fmt.Sprintf("%d received", count)) {
		err = fmt.Errorf("lost replies")
	}
	return out, err
}

func ovsClear(v string) bool { return v == "0" || v == "False" || v == "" }

// ovsCapture is a tcpdump writing a pcap file in the test's directory.
type ovsCapture struct {
	p    *sim.Process
	file string
}

func ovsStartCapture(t *testing.T, s *sim.Sim, role sim.Role, dev, filter string) *ovsCapture {
	t.Helper()
	file := filepath.Join(t.TempDir(), "cap.pcap")
	p, err := s.StartProcess(role, fmt.Sprintf("tcpdump-oversize-%s-%d", role, time.Now().UnixNano()),
		"tcpdump", "-Z", "root", "--immediate-mode", "-i", dev, "-n", "-U", "-s", "128", "-w", file, filter)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.Tail(500), "listening on") {
		if time.Now().After(deadline) {
			p.Stop()
			t.Fatalf("tcpdump on %s in %s did not start:\n%s", dev, role, p.Tail(500))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(p.Stop)
	return &ovsCapture{p: p, file: file}
}

// rows stops the capture and returns tshark's fields of every packet.
func (c *ovsCapture) rows(t *testing.T, fields ...string) [][]string {
	t.Helper()
	time.Sleep(500 * time.Millisecond) // let the last packets reach the file
	c.p.Stop()
	args := []string{"tshark", "-n", "-r", c.file, "-T", "fields", "-E", "separator=/t"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	out, err := sim.Exec("", args...)
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	var rows [][]string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		r := strings.Split(l, "\t")
		if len(r) != len(fields) {
			t.Fatalf("tshark row %q: want %d fields", l, len(fields))
		}
		rows = append(rows, r)
	}
	return rows
}
