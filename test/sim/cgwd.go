package sim

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// CgwdOptions describe a cgwd configuration matching the simulation.
type CgwdOptions struct {
	// Name of the connection; default ConnectionID().
	Name string
	// Routing; default the simulation's.
	Routing Routing
	// Endpoints lists the tunnels to configure (1, 2); default every
	// enabled endpoint.
	Endpoints []int
	// IKEProposals/ESPProposals; empty = cgwd's defaults.
	IKEProposals []string
	ESPProposals []string
	// ForceEncap sets force_encap (UDP-encapsulated ESP without NAT).
	ForceEncap bool
	// StartupAction: initiate (default) or respond.
	StartupAction string
	// BGPMode: active-passive (default) or active-active.
	BGPMode string
	// LogLevel: debug, info (default), warn, error.
	LogLevel string
	// AWSSide renders the configuration of a cgwd standing in for AWS in
	// the AWS1/AWS2 namespace (cgwd <-> cgwd): local = the AWS outside
	// address, peer = the customer's public address, static routing to
	// the LAN prefix, responding. Only one endpoint may be given.
	AWSSide bool
	// Extra is appended to every tunnel (YAML lines, 8-space indented).
	Extra string
	// Cert overrides the certificate files in certificate mode.
	Cert *CgwdCert
	// NoLocalAddress leaves local_address out (any address: a gateway
	// without a static IP).
	NoLocalAddress bool
}

// CgwdSocket is the control socket path CgwdConfig uses for role, in a
// directory of its own (cgwd creates it with mode 0700).
func (s *Sim) CgwdSocket(role Role) string { return s.path("cgwd-"+string(role), "cgw.sock") }

// CgwdConfig renders a cgwd YAML configuration (schema version 1, see
// config/example.yaml) for the customer namespace, or with AWSSide for an
// AWS endpoint namespace, using the simulation's addresses and PSKs.
func (s *Sim) CgwdConfig(o CgwdOptions) (string, error) {
	if o.Name == "" {
		o.Name = s.ConnectionID()
	}
	if o.Routing == "" {
		o.Routing = s.opts.Routing
	}
	if o.StartupAction == "" {
		o.StartupAction = "initiate"
	}
	if o.BGPMode == "" {
		o.BGPMode = "active-passive"
	}
	if o.LogLevel == "" {
		o.LogLevel = "info"
	}
	if len(o.Endpoints) == 0 {
		for i := 1; i <= 2; i++ {
			if s.EndpointEnabled(i) {
				o.Endpoints = append(o.Endpoints, i)
			}
		}
	}
	if len(o.Endpoints) == 0 || len(o.Endpoints) > 2 {
		return "", fmt.Errorf("sim: CgwdConfig: %d endpoints, want 1 or 2", len(o.Endpoints))
	}
	for _, p := range append(append([]string{}, o.IKEProposals...), o.ESPProposals...) {
		if err := checkToken(p); err != nil {
			return "", fmt.Errorf("sim: CgwdConfig: proposal %q: %w", p, err)
		}
	}
	role := Cust
	if o.AWSSide {
		if len(o.Endpoints) != 1 {
			return "", errors.New("sim: CgwdConfig: AWSSide takes exactly one endpoint")
		}
		role = Endpoints[o.Endpoints[0]-1].Role
		o.Routing = RoutingStatic
	}
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\nlog: {format: text, level: %s}\n", o.LogLevel)
	fmt.Fprintf(&b, "control: {socket: %s}\nmetrics: {listen: \"\"}\n", s.CgwdSocket(role))
	b.WriteString("routes: {table: 199, protocol: 199, metric: 100, fwmark: 0xc7}\nconnections:\n")
	fmt.Fprintf(&b, "  - name: %s\n", o.Name)
	if o.AWSSide {
		out := s.AWSOutside(o.Endpoints[0])
		fmt.Fprintf(&b, "    local_address: %s\n    local_id: %s\n", out, out)
	} else if s.opts.Cert != nil {
		if !o.NoLocalAddress {
			fmt.Fprintf(&b, "    local_address: %s\n", s.CustOutsideAddr())
		}
		b.WriteString(s.cgwdCertYAML(o.Cert))
	} else if s.opts.IPv6Outside {
		fmt.Fprintf(&b, "    local_address: %s\n    local_id: %s\n", s.CustPublic(), s.CustPublic())
	} else {
		fmt.Fprintf(&b, "    local_address: %s\n    local_id: %s\n", s.CustOutsideAddr(), CustPublicAddr)
	}
	fmt.Fprintf(&b, "    routing: %s\n", o.Routing)
	switch {
	case o.AWSSide:
		fmt.Fprintf(&b, "    static:\n      remote_prefixes: [%s]\n", s.opts.LANPrefix)
	case o.Routing == RoutingBGP:
		adv := s.opts.LANPrefix
		if s.opts.IPv6Inside {
			adv = LANPrefix6
		}
		fmt.Fprintf(&b, "    bgp:\n      asn: %d\n      peer_asn: %d\n      hold_time: 30s\n      keepalive: 10s\n      advertise: [%s]\n      mode: %s\n",
			s.opts.CustomerASN, s.opts.AWSASN, adv, o.BGPMode)
	default:
		fmt.Fprintf(&b, "    static:\n      remote_prefixes: [%s]\n", s.opts.VPCPrefix)
	}
	b.WriteString("    tunnels:\n")
	for _, i := range o.Endpoints {
		if i != 1 && i != 2 {
			return "", fmt.Errorf("sim: CgwdConfig: endpoint %d, want 1 or 2", i)
		}
		e, eo := Endpoints[i-1], s.opts.Endpoint[i-1]
		peer, peerID := s.AWSOutside(i), s.AWSOutside(i)
		if o.AWSSide {
			peer, peerID = s.CustPublic(), s.CustPublic()
		}
		if s.opts.Cert != nil && !o.AWSSide {
			fmt.Fprintf(&b, "      - name: %s-t%d\n        peer_address: %s\n", o.Name, i, peer)
			fmt.Fprintf(&b, "%s        inside_cidr: %s\n", s.cgwdPeerID(o.Cert, i), e.Inside)
		} else {
			fmt.Fprintf(&b, "      - name: %s-t%d\n        peer_address: %s\n        peer_id: %s\n", o.Name, i, peer, peerID)
			fmt.Fprintf(&b, "        psk: \"%s\"\n        inside_cidr: %s\n", eo.PSK, e.Inside)
		}
		if s.opts.IPv6Inside {
			fmt.Fprintf(&b, "        inside_ipv6_cidr: %s\n", EndpointInside6[i-1])
		}
		if len(o.IKEProposals) > 0 {
			fmt.Fprintf(&b, "        ike_proposals: [%s]\n", strings.Join(o.IKEProposals, ", "))
		}
		if len(o.ESPProposals) > 0 {
			fmt.Fprintf(&b, "        esp_proposals: [%s]\n", strings.Join(o.ESPProposals, ", "))
		}
		action := o.StartupAction
		if o.AWSSide {
			action = "respond"
		}
		fmt.Fprintf(&b, "        startup_action: %s\n        force_encap: %v\n", action, o.ForceEncap)
		if o.Extra != "" {
			b.WriteString(strings.TrimRight(o.Extra, "\n") + "\n")
		}
	}
	return b.String(), nil
}

// StartCgwd writes yaml to <Dir>/cgwd-<role>.yaml and starts
// `binary --config FILE` in role's namespace. The caller waits for what it
// needs (WaitTunnel, WaitPing, the control socket).
func (s *Sim) StartCgwd(role Role, binary, yaml string) (*Process, error) {
	if _, err := os.Stat(binary); err != nil {
		return nil, fmt.Errorf("sim: cgwd binary: %w", err)
	}
	cf := s.path("cgwd-" + string(role) + ".yaml")
	if err := os.WriteFile(cf, []byte(yaml), 0o600); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	return s.StartProcess(role, "cgwd-"+string(role), binary, "--config", cf)
}

// AddStaticRoute adds (replaces) a route in role's namespace, e.g. the VPC
// route back to the LAN when the AWS side is not the strongSwan simulator.
func (s *Sim) AddStaticRoute(role Role, dst netip.Prefix, args ...string) error {
	return s.ip(role, append([]string{"route", "replace", dst.String()}, args...)...)
}
