package sim

import (
	"fmt"
	"strings"
)

func (s *Sim) endpoint(i int) (Endpoint, error) {
	if s.opts.AWS != AWSStrongSwan {
		return Endpoint{}, fmt.Errorf("sim: AWS side not simulated (AWS mode %q)", s.opts.AWS)
	}
	if !s.EndpointEnabled(i) {
		return Endpoint{}, fmt.Errorf("sim: endpoint %d not running (want 1 or 2 of %d tunnels)", i, s.opts.Tunnels)
	}
	return Endpoints[i-1], nil
}

// BlockEndpoint drops IKE and NAT-T traffic (UDP 500 and 4500, both
// directions) between the customer and AWS endpoint i in the inet router.
func (s *Sim) BlockEndpoint(i int) error { return s.BlockEndpointPorts(i, 500, 4500) }

// BlockEndpointPorts drops UDP to and from endpoint i on the given ports
// only (the firewall that passes UDP 500 but not 4500, or the reverse);
// UnblockEndpoint undoes it.
func (s *Sim) BlockEndpointPorts(i int, ports ...int) error {
	if i != 1 && i != 2 {
		return fmt.Errorf("sim: BlockEndpoint(%d): want 1 or 2", i)
	}
	if len(ports) == 0 {
		return fmt.Errorf("sim: BlockEndpointPorts(%d): no port", i)
	}
	e := Endpoints[i-1]
	chain := fmt.Sprintf("block%d", i)
	if err := s.UnblockEndpoint(i); err != nil {
		return err
	}
	var ps []string
	for _, p := range ports {
		if p <= 0 || p > 65535 {
			return fmt.Errorf("sim: BlockEndpointPorts(%d): bad port %d", i, p)
		}
		ps = append(ps, fmt.Sprint(p))
	}
	set := "{ " + strings.Join(ps, ", ") + " }"
	rules := fmt.Sprintf("add rule ip cgwsim %[1]s ip daddr %[2]s udp dport %[3]s drop\nadd rule ip cgwsim %[1]s ip saddr %[2]s udp sport %[3]s drop\n", chain, e.Outside, set)
	if s.opts.IPv6Outside {
		rules += blockRules6(chain, s.AWSOutside(i), set)
	}
	if err := s.nft(rules); err != nil {
		return err
	}
	s.logf("blocked UDP %s to endpoint %d", strings.Join(ps, "/"), i)
	return nil
}

// UnblockEndpoint removes what BlockEndpoint added.
func (s *Sim) UnblockEndpoint(i int) error {
	if i != 1 && i != 2 {
		return fmt.Errorf("sim: UnblockEndpoint(%d): want 1 or 2", i)
	}
	flush := fmt.Sprintf("flush chain ip cgwsim block%d\n", i)
	if s.opts.IPv6Outside {
		flush += fmt.Sprintf("flush chain ip6 cgwsim6 block%d\n", i)
	}
	return s.nft(flush)
}

// StopCharon kills the charon of endpoint i: the AWS side loses all IKE and
// CHILD SA state (as in an endpoint replacement) and its ipsec0 disappears.
func (s *Sim) StopCharon(i int) error {
	e, err := s.endpoint(i)
	if err != nil {
		return err
	}
	s.mu.Lock()
	p := s.charons[e.Role]
	delete(s.charons, e.Role)
	s.mu.Unlock()
	if p == nil {
		return fmt.Errorf("sim: charon of endpoint %d is not running", i)
	}
	p.Stop()
	s.logf("charon of endpoint %d stopped", i)
	return nil
}

// StartCharon (re)starts the charon of endpoint i with the current options
// (after StopCharon, SetPSK, SetProposals...). It restores ipsec0's address
// and routes.
func (s *Sim) StartCharon(i int) error {
	e, err := s.endpoint(i)
	if err != nil {
		return err
	}
	s.mu.Lock()
	running := s.charons[e.Role] != nil
	s.mu.Unlock()
	if running {
		if err := s.StopCharon(i); err != nil {
			return err
		}
	}
	return s.startEndpoint(i - 1)
}

// RestartCharon is StopCharon followed by StartCharon.
func (s *Sim) RestartCharon(i int) error {
	if err := s.StopCharon(i); err != nil {
		return err
	}
	return s.StartCharon(i)
}

// SetPSK changes the PSK endpoint i expects and reloads its credentials;
// established SAs stay up until they are re-authenticated or restarted.
func (s *Sim) SetPSK(i int, psk string) error {
	if _, err := s.endpoint(i); err != nil {
		return err
	}
	if err := checkPSK(psk); err != nil {
		return fmt.Errorf("sim: SetPSK: %w", err)
	}
	s.opts.Endpoint[i-1].PSK = psk
	return s.reload(i)
}

// SetProposals changes endpoint i's IKE and/or ESP proposals (nil = keep)
// and reloads; new negotiations use them.
func (s *Sim) SetProposals(i int, ike, esp []string) error {
	if _, err := s.endpoint(i); err != nil {
		return err
	}
	for _, p := range append(append([]string{}, ike...), esp...) {
		if err := checkToken(p); err != nil {
			return fmt.Errorf("sim: SetProposals %q: %w", p, err)
		}
	}
	if ike != nil {
		s.opts.Endpoint[i-1].IKEProposals = ike
	}
	if esp != nil {
		s.opts.Endpoint[i-1].ESPProposals = esp
	}
	return s.reload(i)
}

func (s *Sim) reload(i int) error {
	e := Endpoints[i-1]
	if err := s.writeEndpointFiles(i - 1); err != nil {
		return err
	}
	return s.loadSwanctl(e.Role)
}

// Initiate makes endpoint i start its connection (AWS startup action
// "start" behaviour on demand).
func (s *Sim) Initiate(i int) error {
	e, err := s.endpoint(i)
	if err != nil {
		return err
	}
	_, err = s.Swanctl(e.Role, "--initiate", "--child", fmt.Sprintf("aws-t%d", i), "--timeout", "20")
	return err
}

// TerminateIKE makes endpoint i delete its IKE_SA (the customer receives a
// DELETE, as when AWS clears a tunnel).
func (s *Sim) TerminateIKE(i int) error {
	e, err := s.endpoint(i)
	if err != nil {
		return err
	}
	_, err = s.Swanctl(e.Role, "--terminate", "--ike", fmt.Sprintf("aws-t%d", i), "--timeout", "10")
	return err
}

// RekeyChild makes endpoint i rekey its CHILD_SA now (AWS-initiated rekey).
func (s *Sim) RekeyChild(i int) error {
	e, err := s.endpoint(i)
	if err != nil {
		return err
	}
	_, err = s.Swanctl(e.Role, "--rekey", "--child", fmt.Sprintf("aws-t%d", i))
	return err
}

// RekeyIKE makes endpoint i rekey its IKE_SA now.
func (s *Sim) RekeyIKE(i int) error {
	e, err := s.endpoint(i)
	if err != nil {
		return err
	}
	_, err = s.Swanctl(e.Role, "--rekey", "--ike", fmt.Sprintf("aws-t%d", i))
	return err
}

// DisableBGP administratively shuts endpoint i's BGP session to the
// customer (BIRD sends a Cease); EnableBGP turns it back on.
func (s *Sim) DisableBGP(i int) error { return s.birdProto(i, "disable") }

// EnableBGP re-enables endpoint i's BGP session.
func (s *Sim) EnableBGP(i int) error { return s.birdProto(i, "enable") }

func (s *Sim) birdProto(i int, verb string) error {
	e, err := s.endpoint(i)
	if err != nil {
		return err
	}
	if s.opts.Routing != RoutingBGP {
		return fmt.Errorf("sim: %s BGP: routing is %s", verb, s.opts.Routing)
	}
	_, err = s.Birdc(e.Role, verb, "cgw")
	return err
}

// StopBird kills endpoint i's BIRD (no Cease: the customer notices by hold
// timer expiry); StartBird starts it again.
func (s *Sim) StopBird(i int) error {
	e, err := s.endpoint(i)
	if err != nil {
		return err
	}
	s.mu.Lock()
	p := s.birds[e.Role]
	delete(s.birds, e.Role)
	s.mu.Unlock()
	if p == nil {
		return fmt.Errorf("sim: BIRD of endpoint %d is not running", i)
	}
	// SIGKILL: a graceful BIRD shutdown would send a Cease.
	_ = killPG(p)
	<-p.Done()
	return nil
}

// StartBird starts endpoint i's BIRD if it is not running.
func (s *Sim) StartBird(i int) error {
	e, err := s.endpoint(i)
	if err != nil {
		return err
	}
	s.mu.Lock()
	running := s.birds[e.Role] != nil
	s.mu.Unlock()
	if running {
		return nil
	}
	return s.startBird(e.Role, s.awsBirdConf(i-1))
}
