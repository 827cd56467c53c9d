package route

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// netlinkKernel is the Linux routing table via rtnetlink.
type netlinkKernel struct{}

func (netlinkKernel) linkIndex(name string) (int, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return 0, errNoDevice
		}
		return 0, err
	}
	return l.Attrs().Index, nil
}

func (netlinkKernel) linkName(index int) string {
	l, err := netlink.LinkByIndex(index)
	if err != nil {
		return fmt.Sprintf("if%d", index)
	}
	return l.Attrs().Name
}

func (netlinkKernel) list(table, proto int) ([]kroute, error) {
	var out []kroute
	filter := &netlink.Route{Table: table, Protocol: netlink.RouteProtocol(proto)}
	mask := uint64(netlink.RT_FILTER_TABLE | netlink.RT_FILTER_PROTOCOL)
	if proto < 0 {
		filter.Protocol, mask = 0, netlink.RT_FILTER_TABLE
	}
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rs, err := netlink.RouteListFiltered(fam, filter, mask)
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			if r.Type != unix.RTN_UNICAST {
				continue
			}
			kr, ok := fromNetlink(fam, r)
			if ok {
				out = append(out, kr)
			}
		}
	}
	return out, nil
}

func fromNetlink(fam int, r netlink.Route) (kroute, bool) {
	kr := kroute{table: r.Table, proto: int(r.Protocol), metric: r.Priority}
	if r.Dst == nil {
		if fam == netlink.FAMILY_V4 {
			kr.dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		} else {
			kr.dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		}
	} else {
		a, ok := netip.AddrFromSlice(r.Dst.IP)
		if !ok {
			return kr, false
		}
		ones, _ := r.Dst.Mask.Size()
		kr.dst = netip.PrefixFrom(a.Unmap(), ones)
	}
	if len(r.MultiPath) > 0 {
		for _, nh := range r.MultiPath {
			kr.hops = append(kr.hops, khop{link: nh.LinkIndex, gw: addrOf(nh.Gw), weight: nh.Hops + 1})
		}
	} else {
		kr.hops = []khop{{link: r.LinkIndex, gw: addrOf(r.Gw), weight: 1}}
	}
	slices.SortFunc(kr.hops, compareHop)
	return kr, true
}

func addrOf(ip net.IP) netip.Addr {
	if ip == nil {
		return netip.Addr{}
	}
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}

func ipOf(a netip.Addr) net.IP {
	if !a.IsValid() {
		return nil
	}
	return net.IP(a.AsSlice())
}

func toNetlink(kr kroute) *netlink.Route {
	r := &netlink.Route{
		Dst:      &net.IPNet{IP: ipOf(kr.dst.Addr()), Mask: net.CIDRMask(kr.dst.Bits(), kr.dst.Addr().BitLen())},
		Table:    kr.table,
		Protocol: netlink.RouteProtocol(kr.proto),
		Priority: kr.metric,
		Type:     unix.RTN_UNICAST,
	}
	if kr.dst.Addr().Is4() {
		r.Family = netlink.FAMILY_V4
	} else {
		r.Family = netlink.FAMILY_V6
	}
	if len(kr.hops) == 1 {
		h := kr.hops[0]
		r.LinkIndex = h.link
		r.Gw = ipOf(h.gw)
		if !h.gw.IsValid() {
			r.Scope = netlink.SCOPE_LINK // directly reachable, as `ip route add ... dev X`
		}
		return r
	}
	for _, h := range kr.hops {
		r.MultiPath = append(r.MultiPath, &netlink.NexthopInfo{LinkIndex: h.link, Gw: ipOf(h.gw), Hops: h.weight - 1})
	}
	return r
}

func (netlinkKernel) replace(kr kroute) error { return netlink.RouteReplace(toNetlink(kr)) }

// add uses NLM_F_CREATE|NLM_F_EXCL: it never replaces an existing route.
func (netlinkKernel) add(kr kroute) error { return netlink.RouteAdd(toNetlink(kr)) }

func (netlinkKernel) listRules(proto int) ([]krule, error) {
	var out []krule
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rs, err := netlink.RuleList(fam)
		if err != nil {
			if fam == netlink.FAMILY_V6 && errors.Is(err, unix.EAFNOSUPPORT) {
				continue
			}
			return nil, err
		}
		for _, r := range rs {
			if int(r.Protocol) != proto {
				continue
			}
			kr := krule{v6: fam == netlink.FAMILY_V6, priority: r.Priority, table: r.Table,
				suppress: r.SuppressPrefixlen == 0, mark: r.Mark, invert: r.Invert, proto: int(r.Protocol)}
			if r.Dst != nil {
				if a, ok := netip.AddrFromSlice(r.Dst.IP); ok {
					ones, _ := r.Dst.Mask.Size()
					kr.to = netip.PrefixFrom(a.Unmap(), ones)
				}
			}
			out = append(out, kr)
		}
	}
	return out, nil
}

func toNetlinkRule(kr krule) *netlink.Rule {
	r := netlink.NewRule()
	r.Family = netlink.FAMILY_V4
	if kr.v6 {
		r.Family = netlink.FAMILY_V6
	}
	r.Priority = kr.priority
	r.Table = kr.table
	r.Protocol = uint8(kr.proto)
	r.Invert = kr.invert
	if kr.suppress {
		r.SuppressPrefixlen = 0
	}
	if kr.to.IsValid() {
		r.Dst = &net.IPNet{IP: ipOf(kr.to.Addr()), Mask: net.CIDRMask(kr.to.Bits(), kr.to.Addr().BitLen())}
	}
	if kr.mark != 0 {
		mask := uint32(0xffffffff)
		r.Mark, r.Mask = kr.mark, &mask
	}
	return r
}

func (netlinkKernel) addRule(kr krule) error {
	err := netlink.RuleAdd(toNetlinkRule(kr))
	if errors.Is(err, unix.EAFNOSUPPORT) {
		return errFamily
	}
	return err
}

func (netlinkKernel) delRule(kr krule) error { return netlink.RuleDel(toNetlinkRule(kr)) }

// del names the protocol too, so the kernel only deletes our route
// (fib_table_delete matches rtm_protocol when it is set). Scope "nowhere"
// matches any scope, as iproute2 does for deletes.
func (netlinkKernel) del(kr kroute) error {
	r := toNetlink(kr)
	r.LinkIndex, r.Gw, r.MultiPath, r.Scope = 0, nil, nil, netlink.SCOPE_NOWHERE
	return netlink.RouteDel(r)
}
