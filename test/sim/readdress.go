package sim

import (
	"fmt"
	"net/netip"
)

// ChangeCustomerAddress renumbers the customer's outside interface (wan0
// in cust), as a DHCP renew with a new lease or an LTE reconnect does: the
// new address is added, the old one removed, and the default route
// restored. Without NAT only; the AWS side must accept any customer
// address (CertOptions.AnyCustomerAddress). It returns the old address.
func (s *Sim) ChangeCustomerAddress(to netip.Addr) (netip.Addr, error) {
	if s.opts.NAT {
		return netip.Addr{}, fmt.Errorf("sim: ChangeCustomerAddress: not with NAT")
	}
	s.mu.Lock()
	from := s.custAddr
	s.mu.Unlock()
	if !from.IsValid() {
		from = CustPublicAddr
	}
	if !netip.PrefixFrom(from, 24).Masked().Contains(to) || to == from {
		return from, fmt.Errorf("sim: ChangeCustomerAddress: %v is not another address of %v/24", to, from)
	}
	// Keep the new (secondary) address when the old primary goes.
	if _, err := s.Exec(Cust, "sysctl", "-q", "-w", "net.ipv4.conf.wan0.promote_secondaries=1"); err != nil {
		return from, err
	}
	steps := [][]string{
		{"addr", "add", to.String() + "/24", "dev", "wan0"},
		{"addr", "del", from.String() + "/24", "dev", "wan0"},
		{"route", "replace", "default", "via", InetCustAddr.String()},
	}
	for _, st := range steps {
		if err := s.ip(Cust, st...); err != nil {
			return from, err
		}
	}
	s.mu.Lock()
	s.custAddr = to
	s.mu.Unlock()
	s.logf("customer outside address changed: %v -> %v", from, to)
	return from, nil
}
