package sim

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// AttackerAddr is an address of the inet namespace ("the internet") from
// which the hardening tests replay captured packets; AddAttacker configures
// it. It is on the AWS side's segment but belongs to no endpoint.
var AttackerAddr = netip.MustParseAddr("198.51.100.66")

// AddAttacker adds AttackerAddr to the inet namespace, so that a process
// there can send from it and packets to it end in inet (where a capture on
// cust0 sees them).
func (s *Sim) AddAttacker() error {
	return s.ip(Inet, "addr", "replace", AttackerAddr.String()+"/24", "dev", "br0")
}

// SetUDPLoss makes the inet router drop percent % of forwarded UDP
// datagrams, independently at random, in both directions (IKE, ESP in UDP,
// NAT-T keepalives alike); 0 removes the loss.
func (s *Sim) SetUDPLoss(percent int) error {
	if percent < 0 || percent > 100 {
		return fmt.Errorf("sim: SetUDPLoss(%d): want 0..100", percent)
	}
	rules := "flush chain ip cgwsim loss\n"
	if percent > 0 {
		rules += fmt.Sprintf("add rule ip cgwsim loss meta l4proto udp numgen random mod 100 < %d counter drop\n", percent)
	}
	if err := s.nft(rules); err != nil {
		return err
	}
	s.logf("inet drops %d %% of forwarded UDP", percent)
	return nil
}

// UDPLossDrops returns how many datagrams SetUDPLoss's rule dropped.
func (s *Sim) UDPLossDrops() (uint64, error) {
	out, err := s.Exec(Inet, "nft", "list", "chain", "ip", "cgwsim", "loss")
	if err != nil {
		return 0, err
	}
	m := regexp.MustCompile(`counter packets (\d+)`).FindStringSubmatch(out)
	if m == nil {
		return 0, nil
	}
	return strconv.ParseUint(m[1], 10, 64)
}

// BuildTool builds the test program ./test/tools/<name> of the module that
// holds the working directory into dir and returns the binary's path.
func BuildTool(name, dir string) (string, error) {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("sim: go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	if root == "." || root == filepath.Dir(os.DevNull) {
		return "", errors.New("sim: BuildTool: not inside the cgw module")
	}
	// The namespaces' processes run as root from the same mount namespace;
	// the binary just needs to be readable and executable.
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", fmt.Errorf("sim: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+"/", "./test/tools/"+name)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("sim: go build %s: %v\n%s", name, err, out)
	}
	return filepath.Join(dir, name), nil
}

// FloodKind is the KE payload of a spoofed IKE_SA_INIT flood.
type FloodKind string

const (
	FloodBadKE   FloodKind = "badke"   // 64 bytes that are no P-256 point
	FloodValidKE FloodKind = "validke" // one real P-256 public value, reused
)

// FloodResult is what a spoofed IKE_SA_INIT flood cost cgwd.
type FloodResult struct {
	Kind       FloodKind
	Sent       int           // requests the tool sent
	Took       time.Duration // wall time of the flood
	CPUSeconds float64       // utime+stime of the victim during the flood and 2 s after
	Replies    int           // IKE datagrams the victim sent back to the forged source
}

// IKEFlood runs test/tools/ikeattack (built with BuildTool) in the inet
// namespace: count IKE_SA_INIT requests at rate per second, source-forged
// from AWS endpoint i's outside address, to the customer's public address
// on port 500. It measures the CPU time of victimPid (cgwd) from
// /proc/<pid>/stat around the flood (plus 2 s for its queue to drain) and
// counts the victim's UDP replies toward the forged address with an
// nftables counter in inet.
func (s *Sim) IKEFlood(tool string, victimPid, i int, kind FloodKind, count, rate int) (FloodResult, error) {
	r := FloodResult{Kind: kind}
	if i != 1 && i != 2 {
		return r, fmt.Errorf("sim: IKEFlood: endpoint %d, want 1 or 2", i)
	}
	forged := Endpoints[i-1].Outside
	counter := fmt.Sprintf("add rule ip cgwsim flood ip saddr %s ip daddr %s udp sport 500 counter\n", CustPublicAddr, forged)
	if err := s.nft("flush chain ip cgwsim flood\n" + counter); err != nil {
		return r, err
	}
	cpu0, err := ProcCPUSeconds(victimPid)
	if err != nil {
		return r, err
	}
	// 100000 requests at 1/s would be a day; bound the wait by the pace.
	limit := time.Duration(count)*time.Second/time.Duration(max(rate, 1)) + 30*time.Second
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	start := time.Now()
	out, err := ExecContext(ctx, s.NS(Inet), tool, "flood", "-src", forged.String(), "-dst", CustPublicAddr.String(),
		"-kind", string(kind), "-count", strconv.Itoa(count), "-rate", strconv.Itoa(rate))
	r.Took = time.Since(start)
	if err != nil {
		return r, fmt.Errorf("sim: ikeattack flood: %w: %s", err, out)
	}
	if m := regexp.MustCompile(`sent=(\d+)`).FindStringSubmatch(out); m != nil {
		r.Sent, _ = strconv.Atoi(m[1])
	}
	time.Sleep(2 * time.Second)
	cpu1, err := ProcCPUSeconds(victimPid)
	if err != nil {
		return r, err
	}
	r.CPUSeconds = cpu1 - cpu0
	list, err := s.Exec(Inet, "nft", "list", "chain", "ip", "cgwsim", "flood")
	if err != nil {
		return r, err
	}
	if m := regexp.MustCompile(`counter packets (\d+)`).FindStringSubmatch(list); m != nil {
		r.Replies, _ = strconv.Atoi(m[1])
	}
	s.logf("IKE_SA_INIT flood %s: %d sent in %v, victim used %.2f CPU-s, %d replies", kind, r.Sent, r.Took.Round(time.Millisecond), r.CPUSeconds, r.Replies)
	return r, nil
}
