package sim

import "fmt"

// SetPathMTU narrows the path between the customer and the internet
// router to mtu octets, both directions (the customer's wan0 and the
// router's cust0), like a PPPoE, LTE or tunnelled uplink. With
// dropFragments the router also drops every IP fragment, as many
// firewalls and carrier NATs do: a UDP datagram larger than the path MTU
// is then lost without a trace (no ICMP), the silent failure IKE
// fragmentation (RFC 7383) exists to avoid.
func (s *Sim) SetPathMTU(mtu int, dropFragments bool) error {
	if mtu < 576 || mtu > 1500 {
		return fmt.Errorf("sim: SetPathMTU(%d): want 576-1500", mtu)
	}
	if err := s.ip(Cust, "link", "set", "dev", "wan0", "mtu", fmt.Sprint(mtu)); err != nil {
		return err
	}
	if err := s.ip(Inet, "link", "set", "dev", "cust0", "mtu", fmt.Sprint(mtu)); err != nil {
		return err
	}
	if dropFragments {
		// More-fragments set or a non-zero offset: every fragment. A
		// chain of its own, which SetUDPLoss and BlockEndpoint leave alone.
		if err := s.nft("add chain ip cgwsim nofrag\nflush chain ip cgwsim nofrag\n" +
			"add rule ip cgwsim nofrag ip frag-off & 0x3fff != 0 counter drop\n" +
			"add rule ip cgwsim sim_forward jump nofrag\n"); err != nil {
			return err
		}
	}
	s.logf("path MTU customer<->internet %d (IP fragments dropped: %v)", mtu, dropFragments)
	return nil
}
