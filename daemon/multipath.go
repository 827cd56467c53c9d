package daemon

import (
	"os"
	"strings"

	"github.com/cgwproject/cgw/bgp"
)

// multipathPeer reports whether a path learned on connection c may share a
// multipath route with the best path, learned on connection best: the same
// connection in active-active mode (its two tunnels), or two connections
// both in active-active mode, as several VPN connections to one Transit
// Gateway with ECMP. AWS hashes its own traffic across them likewise; the
// kernel spreads ours by flow (fib_multipath_hash_policy, see
// multipathHashPolicy).
func multipathPeer(c, best *routeConn) bool {
	return c != nil && best != nil && c.ECMP && best.ECMP
}

// firstAS is the neighboring AS of a path (0 for an empty AS path): BGP
// multipath only combines paths from the same neighboring AS, so a path
// from another Amazon-side ASN (another TGW or VGW) never joins.
func firstAS(p bgp.Path) uint32 {
	if len(p.ASPath) == 0 {
		return 0
	}
	return p.ASPath[0]
}

// hashPolicyFiles are the sysctls that choose how the kernel hashes a flow
// onto one next hop of a multipath route: 0 = L3 (addresses only, the
// default), 1 = L4 (addresses, protocol and ports).
var hashPolicyFiles = []string{
	"/proc/sys/net/ipv4/fib_multipath_hash_policy",
	"/proc/sys/net/ipv6/fib_multipath_hash_policy",
}

// multipathHashPolicy runs once, when cgwd first installs a route over
// several tunnels: with the kernel's default L3 hash every flow between
// two hosts takes the same tunnel, so cgwd sets the L4 hash (1) in its
// network namespace where the policy is still the default 0. A value an
// operator chose (1, 2, 3) is left alone. Where /proc/sys is read-only
// (systemd's ProtectKernelTunables, no root) it logs the fix instead.
func (d *Daemon) multipathHashPolicy() {
	for _, f := range hashPolicyFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // no IPv6, or no such kernel knob
		}
		if strings.TrimSpace(string(b)) != "0" {
			d.log.Info("multipath routes: keeping the kernel's flow hash policy", "sysctl", sysctlName(f), "value", strings.TrimSpace(string(b)))
			continue
		}
		if err := os.WriteFile(f, []byte("1\n"), 0o644); err != nil {
			d.log.Warn("multipath routes: the kernel hashes flows by addresses only, so all flows between two hosts take one tunnel; set the L4 hash",
				"fix", "sysctl -w "+sysctlName(f)+"=1 (and in /etc/sysctl.d)", "err", err)
			continue
		}
		d.log.Info("multipath routes: set the kernel's flow hash to L4 (addresses, protocol, ports)", "sysctl", sysctlName(f), "value", 1)
	}
}

// sysctlName turns a /proc/sys path into sysctl's dotted name.
func sysctlName(path string) string {
	return strings.ReplaceAll(strings.TrimPrefix(path, "/proc/sys/"), "/", ".")
}
