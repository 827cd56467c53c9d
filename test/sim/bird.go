package sim

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// BGP timers used everywhere (aws-vpn-facts §4): hold 30 s, keepalive 10 s.
// connect/error timers are short so sessions come up seconds after a tunnel.
const birdTimers = "    hold time 30;\n    keepalive time 10;\n    connect retry time 5;\n    connect delay time 1;\n    error wait time 1, 10;\n"

// awsBirdConf renders BIRD for endpoint i (0-based): eBGP to the customer
// per aws-vpn-facts §9.5 plus iBGP to the vpc router.
func (s *Sim) awsBirdConf(i int) string {
	if s.opts.IPv6Inside {
		return s.awsBirdConf6(i)
	}
	e, o := Endpoints[i], s.opts.Endpoint[i]
	asn := s.opts.AWSASN
	var b strings.Builder
	fmt.Fprintf(&b, "log stderr all;\nrouter id %s;\n", e.AWSInside)
	b.WriteString("protocol device {\n  scan time 10;\n}\n")
	fmt.Fprintf(&b, "protocol static vpc_cidrs {\n  ipv4;\n  route %s unreachable;\n}\n", s.opts.VPCPrefix)
	if s.opts.Routing == RoutingStatic {
		// Enabled by the swanctl updown script while the CHILD_SA is up.
		fmt.Fprintf(&b, "protocol static cust_lan {\n  disabled;\n  ipv4;\n  route %s via \"ipsec0\";\n}\n", s.opts.LANPrefix)
	}
	// AWS refuses routes with its own ASN in the path and routes whose
	// next hop is not the customer's inside address (§4).
	fmt.Fprintf(&b, "filter from_cgw {\n  if net.type != NET_IP4 then reject;\n  if bgp_path ~ [= * %d * =] then reject;\n  if bgp_next_hop != %s then reject;\n  accept;\n}\n", asn, e.CustInside)
	exported := `proto = "vpc_cidrs"`
	if o.AdvertiseDefault {
		b.WriteString("protocol static aws_default {\n  ipv4;\n  route 0.0.0.0/0 unreachable;\n}\n")
		exported += ` || proto = "aws_default"`
	}
	fmt.Fprintf(&b, "filter to_cgw {\n  if %s then {\n    bgp_med = %d;\n    accept;\n  }\n  reject;\n}\n", exported, o.MED)
	if s.opts.Routing == RoutingBGP {
		fmt.Fprintf(&b, "protocol bgp cgw {\n  local %s as %d;\n  neighbor %s as %d;\n%s", e.AWSInside, asn, e.CustInside, o.CustomerASN, birdTimers)
		if o.BGPPassword != "" {
			fmt.Fprintf(&b, "  password \"%s\";\n", o.BGPPassword)
		}
		fmt.Fprintf(&b, "  ipv4 {\n    import limit %d action disable;\n    import filter from_cgw;\n    export filter to_cgw;\n  };\n}\n", o.ImportLimit)
		b.WriteString("protocol kernel {\n  ipv4 {\n    import none;\n    export where proto = \"cgw\";\n  };\n}\n")
	}
	// iBGP to the VPC router; a per-protocol router id makes tunnel 1 win
	// ties at the VPC the same way AWS prefers one tunnel.
	ta, tv := s.Transit(i + 1)
	fmt.Fprintf(&b, "protocol bgp vpc {\n  router id 10.255.0.%d;\n  local %s as %d;\n  neighbor %s as %d;\n  direct;\n%s", i+1, ta, asn, tv, asn, birdTimers)
	b.WriteString("  ipv4 {\n    import none;\n    export where proto = \"cgw\" || proto = \"cust_lan\";\n    next hop self;\n  };\n}\n")
	return b.String()
}

// vpcBirdConf: iBGP from both endpoints, best routes into the kernel.
func (s *Sim) vpcBirdConf() string {
	if s.opts.IPv6Inside {
		return s.vpcBirdConf6()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "log stderr all;\nrouter id %s;\n", VPCRouterAddr)
	b.WriteString("protocol device {\n  scan time 10;\n}\n")
	b.WriteString("protocol kernel {\n  ipv4 {\n    import none;\n    export all;\n  };\n}\n")
	for i, e := range Endpoints {
		if s.opts.Endpoint[i].Disabled {
			continue
		}
		ta, tv := s.Transit(i + 1)
		fmt.Fprintf(&b, "protocol bgp %s {\n  local %s as %d;\n  neighbor %s as %d;\n  direct;\n%s", e.Role, tv, s.opts.AWSASN, ta, s.opts.AWSASN, birdTimers)
		b.WriteString("  ipv4 {\n    import all;\n    export none;\n  };\n}\n")
	}
	return b.String()
}

// custBirdConf: the strongSwan customer's BIRD (ASN 65000) advertising the
// LAN prefix on every enabled tunnel and installing learned routes.
func (s *Sim) custBirdConf() string {
	var b strings.Builder
	fmt.Fprintf(&b, "log stderr all;\nrouter id %s;\n", CustLANAddr)
	b.WriteString("protocol device {\n  scan time 10;\n}\n")
	fmt.Fprintf(&b, "protocol static lan {\n  ipv4;\n  route %s unreachable;\n}\n", s.opts.LANPrefix)
	b.WriteString("protocol kernel {\n  ipv4 {\n    import none;\n    export where source = RTS_BGP;\n  };\n}\n")
	for i, e := range Endpoints {
		if s.opts.Endpoint[i].Disabled {
			continue
		}
		fmt.Fprintf(&b, "protocol bgp aws_t%d {\n  local %s as %d;\n  neighbor %s as %d;\n%s", i+1, e.CustInside, s.opts.CustomerASN, e.AWSInside, s.opts.AWSASN, birdTimers)
		b.WriteString("  ipv4 {\n    import all;\n    export where proto = \"lan\";\n  };\n}\n")
	}
	return b.String()
}

func (s *Sim) birdSock(role Role) string { return s.path(string(role), "bird.ctl") }

// startBird writes <dir>/bird.conf, checks it with `bird -p` and starts
// BIRD in the namespace of role with its own control socket.
func (s *Sim) startBird(role Role, conf string) error {
	dir := s.path(string(role))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	cf := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	if _, err := run("bird", "-p", "-c", cf); err != nil {
		return fmt.Errorf("sim: bird config for %s rejected: %w", role, err)
	}
	sock := s.birdSock(role)
	_ = os.Remove(sock)
	p, err := s.StartProcess(role, "bird-"+string(role), "bird", "-f", "-c", cf, "-s", sock, "-P", filepath.Join(dir, "bird.pid"))
	if err != nil {
		return err
	}
	if err := s.waitFor("bird in "+string(role), p, func() error {
		_, err := run("birdc", "-s", sock, "show", "status")
		return err
	}); err != nil {
		return err
	}
	s.mu.Lock()
	s.birds[role] = p
	s.mu.Unlock()
	return nil
}

func (s *Sim) startVPCBird() error { return s.startBird(VPC, s.vpcBirdConf()) }

// Birdc runs a birdc command against the BIRD of role (AWS1, AWS2, VPC, Cust).
func (s *Sim) Birdc(role Role, args ...string) (string, error) {
	return run(append([]string{"birdc", "-s", s.birdSock(role)}, args...)...)
}

// BGPStatus is what `show protocols all` says about one BGP session.
type BGPStatus struct {
	Protocol   string
	State      string // BIRD protocol state: up, down, start, ...
	Since      string // the Since column: when State last changed (BIRD's time format)
	BGPState   string // Idle, Connect, Active, OpenSent, OpenConfirm, Established
	Info       string // the Info column (e.g. "Established", "Active Socket: Connection refused")
	Neighbor   string
	NeighborAS uint32
	Imported   int
	Exported   int
	Preferred  int
	LastError  string
}

// Established reports whether the session is in Established.
func (b BGPStatus) Established() bool { return b.BGPState == "Established" }

// BGPState returns the AWS-side session of endpoint i (1 or 2) toward the
// customer, from `birdc show protocols all cgw`.
func (s *Sim) BGPState(endpoint int) (BGPStatus, error) {
	if !s.EndpointEnabled(endpoint) {
		return BGPStatus{}, fmt.Errorf("sim: endpoint %d not running", endpoint)
	}
	return s.BGPProtocol(Endpoints[endpoint-1].Role, "cgw")
}

// BGPProtocol returns the state of BGP protocol proto in the BIRD of role.
func (s *Sim) BGPProtocol(role Role, proto string) (BGPStatus, error) {
	out, err := s.Birdc(role, "show", "protocols", "all", proto)
	if err != nil {
		return BGPStatus{}, err
	}
	return parseBirdProtocol(out)
}

func parseBirdProtocol(out string) (BGPStatus, error) {
	var st BGPStatus
	lines := strings.Split(out, "\n")
	header := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "Name ") {
			header = i
			break
		}
	}
	if header < 0 || header+1 >= len(lines) {
		return st, fmt.Errorf("sim: unexpected birdc output: %q", lastLines(out, 5))
	}
	f := strings.Fields(lines[header+1])
	if len(f) < 4 {
		return st, fmt.Errorf("sim: unexpected birdc protocol line %q", lines[header+1])
	}
	st.Protocol, st.State = f[0], f[3]
	if len(f) > 4 {
		st.Since = f[4]
	}
	if len(f) > 5 {
		st.Info = strings.Join(f[5:], " ")
	}
	for _, l := range lines[header+2:] {
		k, v, ok := strings.Cut(strings.TrimSpace(l), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "BGP state":
			st.BGPState = v
		case "Neighbor address":
			st.Neighbor = v
		case "Neighbor AS":
			n, _ := strconv.ParseUint(v, 10, 32)
			st.NeighborAS = uint32(n)
		case "Last error":
			st.LastError = v
		case "Routes":
			// "1 imported, 1 exported, 1 preferred"
			for _, part := range strings.Split(v, ",") {
				pf := strings.Fields(part)
				if len(pf) != 2 {
					continue
				}
				n, _ := strconv.Atoi(pf[0])
				switch pf[1] {
				case "imported":
					st.Imported = n
				case "exported":
					st.Exported = n
				case "preferred":
					st.Preferred = n
				}
			}
		}
	}
	return st, nil
}

// WaitBGP waits until endpoint i's session to the customer is Established.
func (s *Sim) WaitBGP(endpoint int, timeout time.Duration) (BGPStatus, error) {
	return s.WaitBGPRoutes(endpoint, 0, timeout)
}

// WaitBGPRoutes waits until endpoint i's session is Established and has
// imported at least n routes from the customer.
func (s *Sim) WaitBGPRoutes(endpoint, n int, timeout time.Duration) (BGPStatus, error) {
	deadline := time.Now().Add(timeout)
	for {
		st, err := s.BGPState(endpoint)
		if err == nil && st.Established() && st.Imported >= n {
			return st, nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("state %s (%s), %d routes imported, last error %q", st.BGPState, st.Info, st.Imported, st.LastError)
			}
			return st, fmt.Errorf("sim: endpoint %d: BGP not Established within %v: %w", endpoint, timeout, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
