package sim

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The two source-port ranges RebindNAT alternates between. The topology
// starts with the first (inetRuleset).
var natPortRanges = [2][2]uint16{{40000, 49999}, {50000, 59999}}

var snatRangeRE = regexp.MustCompile(`snat to [0-9.]+:(\d+)-(\d+)`)

// NATPortRange returns the source-port range the customer's NAT
// (Options.NAT) currently maps UDP and TCP flows to, read from the inet
// namespace's nftables chain sim_postrouting.
func (s *Sim) NATPortRange() (lo, hi uint16, err error) {
	if !s.opts.NAT {
		return 0, 0, errors.New("sim: NATPortRange: the simulation has no NAT (Options.NAT)")
	}
	out, err := s.Exec(Inet, "nft", "list", "chain", "ip", "cgwsim", "sim_postrouting")
	if err != nil {
		return 0, 0, err
	}
	m := snatRangeRE.FindStringSubmatch(out)
	if m == nil {
		return 0, 0, fmt.Errorf("sim: NATPortRange: no port-range snat rule in chain sim_postrouting:\n%s", out)
	}
	l, _ := strconv.ParseUint(m[1], 10, 16)
	h, _ := strconv.ParseUint(m[2], 10, 16)
	return uint16(l), uint16(h), nil
}

// RebindNAT makes the customer's NAT hand out new public ports, as a NAT
// that reboots, or whose mappings time out while the tunnel is quiet on
// one side, does: it moves the snat port range of chain sim_postrouting to
// the other of 40000-49999 and 50000-59999 and deletes the UDP conntrack
// entries in the inet namespace, so the customer's next packet to each
// endpoint (IKE and ESP on UDP 4500) leaves from a port the AWS side has
// not seen. Packets the AWS side sends to the old ports until then are
// lost. It needs conntrack(8) (conntrack-tools; test/deps.sh installs it).
func (s *Sim) RebindNAT() error {
	if _, err := exec.LookPath("conntrack"); err != nil {
		return fmt.Errorf("sim: RebindNAT: conntrack not found (run test/deps.sh): %w", err)
	}
	lo, _, err := s.NATPortRange()
	if err != nil {
		return fmt.Errorf("sim: RebindNAT: %w", err)
	}
	next := natPortRanges[0]
	if lo == natPortRanges[0][0] {
		next = natPortRanges[1]
	}
	// One nft transaction, so no packet sees the chain empty; the rules
	// are inetRuleset's with the other port range.
	priv := netip.PrefixFrom(CustNATAddr, 24).Masked()
	rules := fmt.Sprintf("flush chain ip cgwsim sim_postrouting\n"+
		"add rule ip cgwsim sim_postrouting ip saddr %[1]s oifname \"br0\" meta l4proto { tcp, udp } snat to %[2]s:%[3]d-%[4]d\n"+
		"add rule ip cgwsim sim_postrouting ip saddr %[1]s oifname \"br0\" snat to %[2]s\n",
		priv, CustPublicAddr, next[0], next[1])
	if err := s.nft(rules); err != nil {
		return fmt.Errorf("sim: RebindNAT: %w", err)
	}
	// conntrack -D exits 1 when there was nothing to delete.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := ExecContext(ctx, s.NS(Inet), "conntrack", "-D", "-p", "udp")
	if err != nil && !strings.Contains(out+err.Error(), "0 flow entries") {
		return fmt.Errorf("sim: RebindNAT: flushing UDP conntrack entries: %w", err)
	}
	s.logf("NAT rebound: new source ports %d-%d, UDP conntrack entries flushed", next[0], next[1])
	return nil
}
