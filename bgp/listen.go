package bgp

import (
	"net"
	"net/netip"
	"slices"
)

// listenChangeLocked decides how the running speaker follows a change of
// its listen addresses to want (sorted, deduplicated) from the listeners
// it has open (s.cfg.ListenAddresses), and reports whether it must
// restart. A restart closes every session, so it is avoided wherever the
// listeners can stay as they are:
//
//   - An added address (a BGP tunnel added, or restarted with a new inside
//     CIDR) gets no listener until the speaker next starts. Its session
//     needs none: one side connecting is enough, and the neighbor on that
//     address connects actively (not passive; GoBGP binds it to the address,
//     Transport.LocalAddress, and dials the AWS side). AWS's own attempts
//     to the address are refused by the kernel meanwhile.
//   - A removed address that no interface has any more (its device went
//     with its tunnel) keeps its listener: it accepts nothing, and a
//     listener bound to an address survives the address leaving and
//     coming back (a restarted tunnel's new device carries the same one).
//   - A removed address still on an interface restarts the speaker, so
//     that nothing listens on an address that is no longer a BGP tunnel's
//     (cgwd deletes a tunnel's device, and its address with it, before
//     it gets here: this is a device that could not be deleted, or an
//     address an operator also put elsewhere). So does going from every
//     address (an empty list) to some.
//
// Caller holds s.ctl; s.ctl.started is true.
func (s *Server) listenChangeLocked(want []netip.Addr) bool {
	if slices.Equal(want, s.ctl.listenWant) {
		return false // already decided (each reload passes the whole list)
	}
	s.ctl.listenWant = want
	open := slices.Clone(s.cfg.ListenAddresses)
	slices.SortFunc(open, netip.Addr.Compare)
	open = slices.Compact(open)
	if s.listenPort() < 0 || slices.Equal(want, open) {
		return false
	}
	if len(open) == 0 {
		s.log.Warn("bgp: listening on every address, now restricted to the tunnels' inside addresses; restarting the speaker (every session re-establishes)", "listen", addrList(want))
		return true
	}
	var removed []netip.Addr
	for _, a := range open {
		if !slices.Contains(want, a) {
			removed = append(removed, a)
		}
	}
	if here := stillOnHost(removed); len(here) > 0 {
		s.log.Warn("bgp: an address that is no BGP tunnel's any more is still on an interface; restarting the speaker so that nothing listens there (every session re-establishes)", "addresses", addrList(here), "listen", addrList(want))
		return true
	}
	if len(removed) > 0 {
		s.log.Info("bgp: listen addresses removed with their devices; their listeners stay until the speaker next restarts", "removed", addrList(removed))
	}
	for _, a := range want {
		if !slices.Contains(open, a) {
			s.log.Info("bgp: listener on "+a.String()+" opens at the next restart; the session is established by cgwd's connection", "addr", a)
		}
	}
	return false
}

// stillOnHost returns the addresses of as that an interface of the host
// (network namespace) has; all of them if the host's cannot be read.
func stillOnHost(as []netip.Addr) []netip.Addr {
	if len(as) == 0 {
		return nil
	}
	ifAddrs, err := net.InterfaceAddrs()
	if err != nil {
		return as
	}
	have := make(map[netip.Addr]bool, len(ifAddrs))
	for _, a := range ifAddrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			have[p.Addr().Unmap()] = true
		}
	}
	var out []netip.Addr
	for _, a := range as {
		if have[a] {
			out = append(out, a)
		}
	}
	return out
}

// addrList formats addresses for a log attribute.
func addrList(as []netip.Addr) string {
	b := make([]byte, 0, 16*len(as))
	for i, a := range as {
		if i > 0 {
			b = append(b, ' ')
		}
		b = a.AppendTo(b)
	}
	return string(b)
}
