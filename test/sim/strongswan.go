package sim

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// DefaultIKEProposals is AWS's default phase-1 set, lowest value first so a
// strongSwan responder (prefer_configured_proposals) picks like AWS does
// (aws-vpn-facts §2.1, §9.4). AEAD and non-AEAD proposals are separate.
var DefaultIKEProposals = []string{
	"aes128-aes256-sha1-sha256-sha384-sha512-" + ikeDH,
	"aes128gcm16-aes256gcm16-prfsha1-prfsha256-prfsha384-prfsha512-" + ikeDH,
}

// DefaultESPProposals is AWS's default phase-2 set (group 5 is phase 2 only;
// every proposal carries PFS groups).
var DefaultESPProposals = []string{
	"aes128-aes256-sha1-sha256-sha384-sha512-" + espDH,
	"aes128gcm16-aes256gcm16-" + espDH,
}

const (
	ikeDH = "modp1024-modp2048-modp3072-modp4096-modp6144-modp8192-ecp256-ecp384-ecp521-modp1024s160-modp2048s224-modp2048s256"
	espDH = "modp1024-modp1536-modp2048-modp3072-modp4096-modp6144-modp8192-ecp256-ecp384-ecp521-modp1024s160-modp2048s224-modp2048s256"
)

// charonPlugins: kernel-libipsec first so it, not kernel-netlink, provides
// the IPsec backend (the test kernels have no ESP XFRM, §9.1);
// kernel-netlink still provides addresses and routes. openssl comes before
// the software crypto plugins because charon uses the first registered
// implementation of an algorithm: with aes/gcm first, libipsec's AES-GCM
// runs without AES-NI and is several times slower.
const charonPlugins = "kernel-libipsec kernel-netlink openssl random nonce aes sha1 sha2 hmac gcm gmp pem pkcs1 pkcs8 x509 pubkey kdf socket-default vici updown"

// strongswanConf is the private strongswan.conf of one charon instance.
// aws selects the AWS retransmission profile: with dpd_delay = 10s this
// gives AWS's 40 s DPD timeline (aws-vpn-facts §2.3, §9.1).
func strongswanConf(dir string, aws bool, fragmentSize int) string {
	var b strings.Builder
	b.WriteString("charon {\n")
	if fragmentSize > 0 {
		fmt.Fprintf(&b, "  fragment_size = %d\n", fragmentSize)
	}
	fmt.Fprintf(&b, "  load = %s\n", charonPlugins)
	b.WriteString("  install_routes = no\n  install_virtual_ip = no\n  routing_table = " + charonTable + "\n")
	if aws {
		b.WriteString("  retransmit_timeout = 10\n  retransmit_base = 1\n  retransmit_tries = 2\n")
	} else {
		b.WriteString("  retransmit_timeout = 2\n  retransmit_base = 1.4\n  retransmit_tries = 4\n")
	}
	b.WriteString("  filelog {\n    stderr {\n      time_format = %T\n      time_add_ms = yes\n      ike_name = yes\n      flush_line = yes\n      default = 1\n    }\n  }\n")
	b.WriteString("  syslog {\n    daemon {\n      default = -1\n    }\n  }\n")
	fmt.Fprintf(&b, "  plugins {\n    vici {\n      socket = unix://%s\n    }\n  }\n", filepath.Join(dir, "charon.vici"))
	b.WriteString("}\n")
	return b.String()
}

// charonTable is the routing table charon (kernel-netlink) manages.
const charonTable = "220"

func secs(d time.Duration) string { return fmt.Sprintf("%ds", int64(d/time.Second)) }

// awsSwanctlConf renders the swanctl.conf of AWS endpoint i (0-based) as in
// aws-vpn-facts §9.3/§9.4, with AWS as `local`.
func (s *Sim) awsSwanctlConf(i int) string {
	e, o := Endpoints[i], s.opts.Endpoint[i]
	name := fmt.Sprintf("aws-t%d", i+1)
	m := o.RekeyMargin
	rand := m * time.Duration(o.RekeyFuzz) / 100
	var b strings.Builder
	b.WriteString("connections {\n")
	fmt.Fprintf(&b, "  %s {\n", name)
	fmt.Fprintf(&b, "    version = %d\n", o.Version)
	out, cust := s.AWSOutside(i+1), s.CustPublic()
	remote := cust.String()
	if s.opts.Cert != nil && s.opts.Cert.AnyCustomerAddress {
		remote = "%any"
	}
	fmt.Fprintf(&b, "    local_addrs = %s\n    remote_addrs = %s\n", out, remote)
	fmt.Fprintf(&b, "    proposals = %s\n", strings.Join(o.IKEProposals, ","))
	fmt.Fprintf(&b, "    rekey_time = %s\n    reauth_time = 0s\n    over_time = %s\n    rand_time = %s\n",
		secs(o.IKELifetime-m), secs(m), secs(rand))
	if o.DPDDelay > 0 {
		fmt.Fprintf(&b, "    dpd_delay = %s\n    dpd_timeout = 30s\n", secs(o.DPDDelay))
	} else {
		b.WriteString("    dpd_delay = 0s\n")
	}
	fmt.Fprintf(&b, "    encap = %s\n    mobike = no\n    fragmentation = yes\n", yesNo(!o.NoEncap))
	if o.StartAction == "start" {
		b.WriteString("    keyingtries = 0\n")
	}
	certAuth, certSecrets := "", ""
	if s.opts.Cert != nil {
		certAuth, certSecrets = s.awsCertAuth(i)
		b.WriteString(certAuth)
	} else {
		fmt.Fprintf(&b, "    local {\n      auth = psk\n      id = %s\n    }\n", out)
		fmt.Fprintf(&b, "    remote {\n      auth = psk\n      id = %s\n    }\n", cust)
	}
	b.WriteString("    children {\n")
	ts := "0.0.0.0/0"
	if s.opts.IPv6Inside {
		ts = "::/0" // AWS's default for IPv6-inside connections
	}
	fmt.Fprintf(&b, "      %s {\n        mode = tunnel\n        local_ts = %s\n        remote_ts = %s\n", name, ts, ts)
	fmt.Fprintf(&b, "        esp_proposals = %s\n", strings.Join(o.ESPProposals, ","))
	fmt.Fprintf(&b, "        life_time = %s\n        rekey_time = %s\n        rand_time = %s\n",
		secs(o.ChildLifetime), secs(o.ChildLifetime-m), secs(rand))
	fmt.Fprintf(&b, "        replay_window = %d\n", o.ReplayWindow)
	dpdAction := o.DPDAction
	if dpdAction == "none" {
		dpdAction = "clear" // unused: DPD is off (dpd_delay = 0s)
	}
	fmt.Fprintf(&b, "        dpd_action = %s\n        start_action = %s\n        close_action = none\n", dpdAction, o.StartAction)
	if s.opts.Routing == RoutingStatic {
		fmt.Fprintf(&b, "        updown = %s\n", s.path(string(e.Role), "updown.sh"))
	}
	b.WriteString("      }\n    }\n")
	if o.ExtraSwanctl != "" {
		b.WriteString(o.ExtraSwanctl + "\n")
	}
	b.WriteString("  }\n}\n")
	if certSecrets != "" {
		b.WriteString(certSecrets)
		return b.String()
	}
	fmt.Fprintf(&b, "secrets {\n  ike-%s {\n    id-1 = %s\n    id-2 = %s\n    secret = \"%s\"\n  }\n}\n", name, out, cust, o.PSK)
	return b.String()
}

// custSwanctlConf renders the strongSwan customer: one connection per
// enabled tunnel, initiating. With two tunnels in one libipsec instance two
// 0/0 policies would overlap (one SPD, aws-vpn-facts §9.2 item 1), so each
// tunnel narrows its remote selector to its inside /30 plus the VPC CIDR;
// the AWS side (0/0) narrows to that.
func (s *Sim) custSwanctlConf() string {
	var b strings.Builder
	var secrets strings.Builder
	b.WriteString("connections {\n")
	for i, e := range Endpoints {
		o := s.opts.Endpoint[i]
		if o.Disabled {
			continue
		}
		name := fmt.Sprintf("cust-t%d", i+1)
		remoteTS := "0.0.0.0/0"
		if s.opts.Tunnels == 2 {
			remoteTS = e.Inside.String() + "," + s.opts.VPCPrefix.String()
		}
		fmt.Fprintf(&b, "  %s {\n    version = 2\n", name)
		out, cust, local := s.AWSOutside(i+1), s.CustPublic(), s.CustOutsideAddr()
		if s.opts.IPv6Outside {
			local = cust
		}
		fmt.Fprintf(&b, "    local_addrs = %s\n    remote_addrs = %s\n", local, out)
		fmt.Fprintf(&b, "    proposals = %s\n", strings.Join(s.opts.CustomerIKEProposals, ","))
		b.WriteString("    encap = yes\n    mobike = no\n    keyingtries = 0\n    dpd_delay = 10s\n")
		fmt.Fprintf(&b, "    local {\n      auth = psk\n      id = %s\n    }\n", cust)
		fmt.Fprintf(&b, "    remote {\n      auth = psk\n      id = %s\n    }\n", out)
		fmt.Fprintf(&b, "    children {\n      %s {\n        mode = tunnel\n        local_ts = 0.0.0.0/0\n        remote_ts = %s\n", name, remoteTS)
		fmt.Fprintf(&b, "        esp_proposals = %s\n", strings.Join(s.opts.CustomerESPProposals, ","))
		b.WriteString("        replay_window = 1024\n        dpd_action = restart\n        start_action = start\n        close_action = start\n")
		b.WriteString("      }\n    }\n  }\n")
		fmt.Fprintf(&secrets, "  ike-%s {\n    id-1 = %s\n    id-2 = %s\n    secret = \"%s\"\n  }\n", name, cust, out, o.PSK)
	}
	b.WriteString("}\nsecrets {\n")
	b.WriteString(secrets.String())
	b.WriteString("}\n")
	return b.String()
}

func yesNo(v bool) string {
	if v {
		return "yes"
	}
	return "no"
}

// startCharon starts a charon for role in its own network and mount
// namespace (private tmpfs on /run so pid files do not collide) with the
// config files in dir, and waits until vici answers and ipsec0 exists.
// extra is appended to strongswan.conf (a later section of the same name
// adds to and overrides an earlier one).
func (s *Sim) startCharon(role Role, dir string, aws bool, extra ...string) (*Process, error) {
	conf := filepath.Join(dir, "strongswan.conf")
	text := strongswanConf(dir, aws, s.opts.CharonFragmentSize) + s.certCharonConf(aws) + strings.Join(extra, "")
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	_ = os.Remove(filepath.Join(dir, "charon.vici"))
	p, err := s.StartProcessEnv(role, "charon-"+string(role), []string{"STRONGSWAN_CONF=" + conf},
		"unshare", "--mount", "--propagation", "private", "sh", "-c",
		`mount -t tmpfs -o mode=0755 cgwsim-run /run && exec "$0" "$@"`, Charon)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.charons[role] = p
	s.mu.Unlock()
	uri := "unix://" + filepath.Join(dir, "charon.vici")
	if err := s.waitFor(fmt.Sprintf("charon vici in %s", role), p, func() error {
		_, err := run("swanctl", "--stats", "--uri", uri)
		return err
	}); err != nil {
		return nil, err
	}
	if err := s.waitFor(fmt.Sprintf("ipsec0 in %s", role), p, func() error {
		_, err := s.Exec(role, "ip", "link", "show", "ipsec0")
		return err
	}); err != nil {
		return nil, err
	}
	// kernel-libipsec installs a route per outbound policy (0/0 for AWS's
	// selectors) into charon's table 220 whatever install_routes says.
	// Drop the rule that consults that table so those routes stay inert
	// and the simulator's own routes in the main table decide.
	for range 5 {
		if err := s.ip(role, "rule", "del", "table", charonTable); err != nil {
			break
		}
	}
	if s.opts.IPv6Outside || s.opts.IPv6Inside {
		for range 5 { // the same for IPv6 (::/0 selectors)
			if err := s.ip(role, "-6", "rule", "del", "table", charonTable); err != nil {
				break
			}
		}
	}
	return p, nil
}

// waitFor polls check every 100 ms until it succeeds, p exits or the
// start-up timeout passes.
func (s *Sim) waitFor(what string, p *Process, check func() error) error {
	deadline := time.Now().Add(s.opts.Timeout)
	var last error
	for time.Now().Before(deadline) {
		if last = check(); last == nil {
			return nil
		}
		if p != nil {
			if ok, err := p.Exited(); ok {
				return fmt.Errorf("sim: waiting for %s: %s exited (%v); log %s:\n%s", what, p.Name, err, p.Log, p.Tail(2000))
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	msg := ""
	if p != nil {
		msg = fmt.Sprintf("; log %s:\n%s", p.Log, p.Tail(2000))
	}
	return fmt.Errorf("sim: timed out after %v waiting for %s: %v%s", s.opts.Timeout, what, last, msg)
}

func (s *Sim) viciURI(role Role) string {
	return "unix://" + s.path(string(role), "charon.vici")
}

// Swanctl runs swanctl against the charon of role (AWS1, AWS2 or Cust).
func (s *Sim) Swanctl(role Role, args ...string) (string, error) {
	return run(append([]string{"swanctl"}, append(args, "--uri", s.viciURI(role))...)...)
}

func (s *Sim) loadSwanctl(role Role) error {
	_, err := s.Swanctl(role, "--load-all", "--noprompt", "--file", s.path(string(role), "swanctl.conf"))
	return err
}

// startAWS starts charon and BIRD for every enabled endpoint, then BIRD in vpc.
func (s *Sim) startAWS() error {
	for i := range Endpoints {
		if s.opts.Endpoint[i].Disabled {
			continue
		}
		if err := s.startEndpoint(i); err != nil {
			return fmt.Errorf("%w (endpoint %s)", err, s.AWSOutside(i+1))
		}
	}
	return s.startVPCBird()
}

// startEndpoint (re)starts charon and BIRD of endpoint i (0-based).
func (s *Sim) startEndpoint(i int) error {
	e := Endpoints[i]
	dir := s.path(string(e.Role))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	if err := s.writeEndpointFiles(i); err != nil {
		return err
	}
	if _, err := s.startCharon(e.Role, dir, true); err != nil {
		return err
	}
	// libipsec routes only what the kernel sends into its TUN
	// (install_routes = no): the inside /30 (AWS .1 lives on ipsec0) and
	// the customer LAN.
	if err := s.ip(e.Role, "addr", "replace", netip.PrefixFrom(e.AWSInside, 30).String(), "dev", "ipsec0"); err != nil {
		return err
	}
	if err := s.ip(e.Role, "route", "replace", s.opts.LANPrefix.String(), "dev", "ipsec0"); err != nil {
		return err
	}
	if s.opts.IPv6Inside {
		if err := s.ipsec0IPv6Inside(i); err != nil {
			return err
		}
	}
	if err := s.loadSwanctl(e.Role); err != nil {
		return err
	}
	s.mu.Lock()
	haveBird := s.birds[e.Role] != nil
	s.mu.Unlock()
	if !haveBird {
		if err := s.startBird(e.Role, s.awsBirdConf(i)); err != nil {
			return err
		}
	}
	s.logf("AWS endpoint %d up (%s)", i+1, s.AWSOutside(i+1))
	return nil
}

func (s *Sim) writeEndpointFiles(i int) error {
	e := Endpoints[i]
	dir := s.path(string(e.Role))
	if err := os.WriteFile(filepath.Join(dir, "swanctl.conf"), []byte(s.awsSwanctlConf(i)), 0o600); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	if s.opts.Routing == RoutingStatic {
		birdc, err := exec.LookPath("birdc")
		if err != nil {
			return fmt.Errorf("sim: %w", err)
		}
		// Static routing: announce the customer LAN to the VPC while the
		// CHILD_SA is up, withdraw it when it goes down.
		script := fmt.Sprintf("#!/bin/sh\ncase \"$PLUTO_VERB\" in\nup-client) exec %[1]s -s %[2]s enable cust_lan >/dev/null ;;\ndown-client) exec %[1]s -s %[2]s disable cust_lan >/dev/null ;;\nesac\n",
			birdc, filepath.Join(dir, "bird.ctl"))
		if err := os.WriteFile(filepath.Join(dir, "updown.sh"), []byte(script), 0o700); err != nil {
			return fmt.Errorf("sim: %w", err)
		}
	}
	return nil
}

// startCustomer runs the strongSwan customer in cust (charon + libipsec,
// BIRD ASN 65000 in BGP mode).
func (s *Sim) startCustomer() error {
	dir := s.path(string(Cust))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "swanctl.conf"), []byte(s.custSwanctlConf()), 0o600); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	if _, err := s.startCharon(Cust, dir, false); err != nil {
		return err
	}
	for i, e := range Endpoints {
		if s.opts.Endpoint[i].Disabled {
			continue
		}
		if err := s.ip(Cust, "addr", "replace", netip.PrefixFrom(e.CustInside, 30).String(), "dev", "ipsec0"); err != nil {
			return err
		}
	}
	if s.opts.Routing == RoutingStatic {
		if err := s.ip(Cust, "route", "replace", s.opts.VPCPrefix.String(), "dev", "ipsec0"); err != nil {
			return err
		}
	} else if err := s.startBird(Cust, s.custBirdConf()); err != nil {
		return err
	}
	if err := s.loadSwanctl(Cust); err != nil {
		return err
	}
	s.logf("strongSwan customer started")
	return nil
}

// CharonPids returns the pids of the running charon instances (AWS
// endpoints and the strongSwan customer), for CPU accounting.
func (s *Sim) CharonPids() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var pids []int
	for _, r := range Roles {
		if p := s.charons[r]; p != nil {
			if ok, _ := p.Exited(); !ok {
				pids = append(pids, p.Pid())
			}
		}
	}
	return pids
}
