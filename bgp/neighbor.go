package bgp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"

	api "github.com/osrg/gobgp/v3/api"
)

// Neighbor is one eBGP session, normally one per tunnel.
type Neighbor struct {
	Name      string     // unique, e.g. the tunnel name
	PeerAddr  netip.Addr // AWS inside address (.1 of the /30)
	LocalAddr netip.Addr // our inside address (.2); the session is sourced from it; optional
	PeerASN   uint32     // Amazon-side ASN (64512 by default)
	// LocalASN is our ASN on this session (GoBGP's per-neighbor local AS,
	// as each AWS customer gateway has its own); 0 = the server's ASN.
	LocalASN uint32
	// Export, when not nil, limits the locally originated prefixes sent to
	// this neighbor; nil sends all of them.
	Export *ExportFilter
	// HoldTime defaults to 30 s (what AWS uses); it must be 0 (default)
	// or at least 3 s (RFC 4271 Section 4.2). Keepalive defaults to a
	// third of the hold time and must be shorter than it.
	HoldTime, Keepalive time.Duration
	Password            string // TCP MD5 (RFC 2385); empty = none. Never logged.
	// Prepend is how many extra times our ASN is prepended on routes
	// exported to this neighbor (0..10); MED, when non-zero, replaces the
	// MULTI_EXIT_DISC on them. Either makes this the passive tunnel.
	Prepend int
	MED     uint32
	// PrefixLimitWarn is the peer's maximum prefix count (AWS VGW 100,
	// TGW 1000); 0 disables the check. See the package doc.
	PrefixLimitWarn uint32
}

const maxPrepend = 10

// String describes the neighbor without its password.
func (n Neighbor) String() string {
	return fmt.Sprintf("%s(%v AS%d from %v)", n.Name, n.PeerAddr, n.PeerASN, n.LocalAddr)
}

// normalize validates n and fills defaults.
func (n Neighbor) normalize(ourASN uint32) (Neighbor, error) {
	if n.Name == "" {
		return n, errors.New("bgp: Neighbor.Name is required")
	}
	if !n.PeerAddr.IsValid() || n.PeerAddr.IsUnspecified() {
		return n, fmt.Errorf("bgp: neighbor %q: PeerAddr %v must be the AWS inside address", n.Name, n.PeerAddr)
	}
	n.PeerAddr = n.PeerAddr.Unmap()
	if n.LocalAddr.IsValid() {
		n.LocalAddr = n.LocalAddr.Unmap()
		if n.LocalAddr.Is4() != n.PeerAddr.Is4() {
			return n, fmt.Errorf("bgp: neighbor %q: LocalAddr %v and PeerAddr %v are of different address families", n.Name, n.LocalAddr, n.PeerAddr)
		}
		if n.LocalAddr == n.PeerAddr {
			return n, fmt.Errorf("bgp: neighbor %q: LocalAddr equals PeerAddr %v", n.Name, n.PeerAddr)
		}
	}
	if n.PeerASN == 0 {
		return n, fmt.Errorf("bgp: neighbor %q: PeerASN is required (AWS default 64512)", n.Name)
	}
	if n.PeerASN == n.localASN(ourASN) {
		return n, fmt.Errorf("bgp: neighbor %q: PeerASN %d equals our ASN; AWS sessions are eBGP", n.Name, n.PeerASN)
	}
	exp, err := n.Export.normalize(n.Name)
	if err != nil {
		return n, err
	}
	n.Export = exp
	if n.HoldTime == 0 {
		n.HoldTime = defaultHoldTime
	}
	if n.HoldTime < 3*time.Second || n.HoldTime > 65535*time.Second {
		return n, fmt.Errorf("bgp: neighbor %q: HoldTime %v must be between 3s and 65535s (RFC 4271 Section 4.2)", n.Name, n.HoldTime)
	}
	if n.Keepalive == 0 {
		n.Keepalive = n.HoldTime / 3
	}
	if n.Keepalive < time.Second || n.Keepalive >= n.HoldTime {
		return n, fmt.Errorf("bgp: neighbor %q: Keepalive %v must be at least 1s and below HoldTime %v", n.Name, n.Keepalive, n.HoldTime)
	}
	if n.Prepend < 0 || n.Prepend > maxPrepend {
		return n, fmt.Errorf("bgp: neighbor %q: Prepend %d must be between 0 and %d", n.Name, n.Prepend, maxPrepend)
	}
	return n, nil
}

// sessionKey is what requires re-creating the GoBGP peer (and so resetting
// the session) when it changes. The password is included but the key is
// never printed.
func (n Neighbor) sessionKey() string {
	return fmt.Sprintf("%v|%v|%d|%d|%d|%d|%s", n.PeerAddr, n.LocalAddr, n.PeerASN, n.LocalASN, secs(n.HoldTime), secs(n.Keepalive), n.Password)
}

// exportKey is what the export policy statement for n depends on.
func (n Neighbor) exportKey() string {
	return fmt.Sprintf("%v|%d|%d|%s", n.PeerAddr, n.Prepend, n.MED, n.Export.key())
}

func secs(d time.Duration) uint64 { return uint64((d + time.Second/2) / time.Second) }

// SetNeighbors makes the configured neighbors exactly ns. Unchanged
// neighbors keep their sessions; a neighbor whose address, ASN, timers or
// password changed is re-created (its session resets); a change of Prepend
// or MED only re-sends our routes to it. ns is validated as a whole first:
// on a validation error nothing changes.
func (s *Server) SetNeighbors(ns []Neighbor) error {
	want := make(map[string]Neighbor, len(ns))
	order := make([]string, 0, len(ns))
	addrs := make(map[netip.Addr]string, len(ns))
	for _, n := range ns {
		n, err := n.normalize(s.cfg.ASN)
		if err != nil {
			return err
		}
		if _, dup := want[n.Name]; dup {
			return fmt.Errorf("bgp: neighbor name %q used twice", n.Name)
		}
		if other, dup := addrs[n.PeerAddr]; dup {
			return fmt.Errorf("bgp: neighbors %q and %q have the same PeerAddr %v", other, n.Name, n.PeerAddr)
		}
		want[n.Name] = n
		order = append(order, n.Name)
		addrs[n.PeerAddr] = n.Name
	}

	s.ctl.Lock()
	defer s.ctl.Unlock()
	if s.ctl.stopped {
		return errStopped
	}
	old := s.ctl.neighbors
	s.ctl.neighbors = want
	s.ctl.order = order
	for name := range s.ctl.up {
		if _, ok := want[name]; !ok {
			delete(s.ctl.up, name)
		}
	}
	if !s.ctl.started {
		s.syncRuntimeLocked()
		return nil
	}
	return s.applyNeighborsLocked(context.Background(), old)
}

// syncRuntimeLocked makes the runtime peer table match the desired
// neighbors, keeping the state of peers whose address is unchanged.
// Caller must hold s.ctl.
func (s *Server) syncRuntimeLocked() {
	s.rt.Lock()
	defer s.rt.Unlock()
	keep := make(map[string]bool, len(s.ctl.neighbors))
	for _, n := range s.ctl.neighbors {
		a := n.PeerAddr.String()
		keep[a] = true
		p, ok := s.rt.peers[a]
		if !ok {
			p = &peerRuntime{state: "Idle"}
			s.rt.peers[a] = p
		}
		p.name = n.Name
	}
	for _, n := range s.ctl.lan.cfg.Neighbors {
		a := n.PeerAddr.String()
		keep[a] = true
		if _, ok := s.rt.peers[a]; !ok {
			s.rt.peers[a] = &peerRuntime{state: "Idle"}
		}
		s.rt.peers[a].name = n.Name
	}
	for a := range s.rt.peers {
		if !keep[a] {
			delete(s.rt.peers, a)
		}
	}
}

// applyNeighborsLocked pushes the desired neighbors to GoBGP, given the
// previously applied set (nil at Start). Caller must hold s.ctl.
func (s *Server) applyNeighborsLocked(ctx context.Context, old map[string]Neighbor) error {
	var errs []error
	// Delete first: a re-created neighbor may reuse an address.
	for name, o := range old {
		n, ok := s.ctl.neighbors[name]
		if ok && n.sessionKey() == o.sessionKey() {
			continue
		}
		if err := s.gobgp().DeletePeer(ctx, &api.DeletePeerRequest{Address: o.PeerAddr.String()}); err != nil {
			errs = append(errs, fmt.Errorf("bgp: delete neighbor %q (%v): %w", name, o.PeerAddr, err))
		}
		delete(s.ctl.exportKey, o.PeerAddr.String())
		if ok {
			s.log.Info("bgp: neighbor changed, session resets", "neighbor", name, "peer", n.PeerAddr)
		} else {
			s.log.Info("bgp: neighbor removed", "neighbor", name, "peer", o.PeerAddr)
		}
	}
	s.syncRuntimeLocked()

	// The export policy must exist before a new peer can come up, or it
	// would be sent routes under the default action.
	if err := s.applyExportPolicyLocked(ctx); err != nil {
		errs = append(errs, err)
	}

	for _, name := range s.ctl.order {
		n := s.ctl.neighbors[name]
		if o, ok := old[name]; ok && o.sessionKey() == n.sessionKey() {
			continue
		}
		if err := s.gobgp().AddPeer(ctx, &api.AddPeerRequest{Peer: s.apiPeer(n)}); err != nil {
			errs = append(errs, fmt.Errorf("bgp: add neighbor %q (%v): %w", name, n.PeerAddr, err))
			continue
		}
		s.ctl.exportKey[n.PeerAddr.String()] = n.exportKey()
		s.log.Info("bgp: neighbor added", "neighbor", name, "peer", n.PeerAddr, "peer_asn", n.PeerASN,
			"local", n.LocalAddr, "hold", n.HoldTime, "keepalive", n.Keepalive, "md5", n.Password != "",
			"prepend", n.Prepend, "med", n.MED, "admin_up", s.adminUpLocked(name))
	}

	// Existing sessions whose export attributes changed get our routes
	// again under the new policy (soft reset out, RFC 4271 Section 9.1.3).
	for _, name := range s.ctl.order {
		n := s.ctl.neighbors[name]
		a := n.PeerAddr.String()
		if k, ok := s.ctl.exportKey[a]; !ok || k == n.exportKey() {
			continue
		}
		s.ctl.exportKey[a] = n.exportKey()
		err := s.gobgp().ResetPeer(ctx, &api.ResetPeerRequest{Address: a, Soft: true, Direction: api.ResetPeerRequest_OUT})
		if err != nil {
			s.log.Debug("bgp: soft reset out skipped", "neighbor", name, "err", err)
		}
		s.log.Info("bgp: neighbor export changed", "neighbor", name, "prepend", n.Prepend, "med", n.MED)
	}
	s.checkPrefixLimitsLocked()
	s.changed()
	return errors.Join(errs...)
}

func (s *Server) adminUpLocked(name string) bool {
	up, ok := s.ctl.up[name]
	return !ok || up
}

// apiPeer builds GoBGP's peer configuration for n. Caller must hold s.ctl.
func (s *Server) apiPeer(n Neighbor) *api.Peer {
	fam := &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	if n.PeerAddr.Is6() {
		fam = &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
	}
	p := &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: n.PeerAddr.String(),
			PeerAsn:         n.PeerASN,
			LocalAsn:        n.LocalASN,
			AuthPassword:    n.Password,
			Description:     n.Name,
			AdminDown:       !s.adminUpLocked(n.Name),
		},
		Timers: &api.Timers{Config: &api.TimersConfig{
			HoldTime:          secs(n.HoldTime),
			KeepaliveInterval: secs(n.Keepalive),
			ConnectRetry:      connectRetrySeconds,
		}},
		// Both active and passive (PassiveMode false; the listener
		// accepts too): AWS may open the session (aws-vpn-facts §4).
		Transport: &api.Transport{PassiveMode: false},
		AfiSafis:  []*api.AfiSafi{{Config: &api.AfiSafiConfig{Family: fam, Enabled: true}}},
	}
	if n.LocalAddr.IsValid() {
		p.Transport.LocalAddress = n.LocalAddr.String()
	}
	return p
}

// applyExportPolicyLocked installs the global export policy: one statement
// per neighbor that accepts locally originated routes toward it, with its
// prepend and MED; everything else (routes learned from AWS) is rejected by
// the default action, so one tunnel's routes never leak to the other.
// GoBGP v3 only has per-peer policies for route-server clients, so
// neighbor-specific export is a global policy matched on neighbor sets.
// Caller must hold s.ctl.
func (s *Server) applyExportPolicyLocked(ctx context.Context) error {
	var sets []*api.DefinedSet
	var stmts []*api.Statement
	for _, name := range s.ctl.order {
		n := s.ctl.neighbors[name]
		set := "cgw-nbr-" + strconv.Itoa(len(sets))
		sets = append(sets, &api.DefinedSet{
			DefinedType: api.DefinedType_NEIGHBOR,
			Name:        set,
			List:        []string{netip.PrefixFrom(n.PeerAddr, n.PeerAddr.BitLen()).String()},
		})
		cond := &api.Conditions{
			NeighborSet: &api.MatchSet{Type: api.MatchSet_ANY, Name: set},
			RouteType:   api.Conditions_ROUTE_TYPE_LOCAL,
		}
		if n.Export != nil {
			ps := n.Export.prefixSet("cgw-pfx-"+strconv.Itoa(len(stmts)), n.PeerAddr.Is4())
			if ps == nil {
				continue // nothing to send: the default action rejects
			}
			sets = append(sets, ps)
			cond.PrefixSet = &api.MatchSet{Type: api.MatchSet_ANY, Name: ps.Name}
		}
		act := s.exportActions(n)
		stmts = append(stmts, &api.Statement{
			Name:       "cgw-export-" + strconv.Itoa(len(stmts)),
			Conditions: cond,
			Actions:    act,
		})
	}
	lanSets, lanStmts, imp := s.lanPolicyLocked(s.exportActions)
	sets, stmts = append(sets, lanSets...), append(stmts, lanStmts...)
	pol := &api.Policy{Name: exportPolicyName, Statements: stmts}
	if err := s.gobgp().SetPolicies(ctx, &api.SetPoliciesRequest{DefinedSets: sets, Policies: []*api.Policy{pol, imp}}); err != nil {
		return fmt.Errorf("bgp: install export policy: %w", err)
	}
	err := s.gobgp().SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name:          globalRIBName,
		Direction:     api.PolicyDirection_EXPORT,
		Policies:      []*api.Policy{{Name: exportPolicyName}},
		DefaultAction: api.RouteAction_REJECT,
	}})
	if err != nil {
		return fmt.Errorf("bgp: assign export policy: %w", err)
	}
	return s.assignImportLocked(ctx)
}

// exportActions accepts a route toward AWS neighbor n with its prepend and
// MED.
func (s *Server) exportActions(n Neighbor) *api.Actions {
	act := &api.Actions{RouteAction: api.RouteAction_ACCEPT}
	if n.Prepend > 0 {
		act.AsPrepend = &api.AsPrependAction{Asn: n.localASN(s.cfg.ASN), Repeat: uint32(n.Prepend)}
	}
	if n.MED > 0 {
		act.Med = &api.MedAction{Type: api.MedAction_REPLACE, Value: int64(n.MED)}
	}
	return act
}

// SetPeerUp administratively enables or disables the named neighbor. Down
// closes an established session at once with Cease / Administrative
// Shutdown "tunnel down" (RFC 4486, RFC 9003) and drops its routes; the
// neighbor then stays Idle and refuses connections until set up again. Up
// lets it connect and accept again. Repeating the current state is a no-op.
// Before Start the state is remembered and applied when the peer is added.
func (s *Server) SetPeerUp(name string, up bool) error {
	s.ctl.Lock()
	defer s.ctl.Unlock()
	if s.ctl.stopped {
		return errStopped
	}
	n, ok := s.ctl.neighbors[name]
	if !ok {
		return fmt.Errorf("bgp: SetPeerUp: no neighbor named %q", name)
	}
	if s.adminUpLocked(name) == up {
		return nil
	}
	s.ctl.up[name] = up
	if !s.ctl.started {
		return nil
	}
	a := n.PeerAddr.String()
	var err error
	if up {
		err = s.enableNowLocked(context.Background(), n)
	} else {
		err = s.gobgp().DisablePeer(context.Background(), &api.DisablePeerRequest{Address: a, Communication: tunnelDownComm})
	}
	if err != nil {
		s.ctl.up[name] = !up
		return fmt.Errorf("bgp: SetPeerUp(%q, %v): %w", name, up, err)
	}
	s.log.Info("bgp: neighbor admin state", "neighbor", name, "peer", n.PeerAddr, "up", up)
	s.changed()
	return nil
}

// neighborByAddr maps GoBGP's neighbor address to our name.
func (s *Server) neighborByAddr(addr string) (string, bool) {
	s.rt.Lock()
	defer s.rt.Unlock()
	p, ok := s.rt.peers[addr]
	if !ok {
		return "", false
	}
	return p.name, true
}

// sortedPrefixes returns the masked, deduplicated, sorted prefixes.
func sortedPrefixes(ps []netip.Prefix) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(ps))
	for _, p := range ps {
		if !p.IsValid() {
			return nil, fmt.Errorf("bgp: invalid prefix %v", p)
		}
		out = append(out, p.Masked())
	}
	slices.SortFunc(out, comparePrefix)
	return slices.Compact(out), nil
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// ReconcileAdmin re-applies each neighbor's wanted admin state where
// GoBGP's differs. GoBGP's EnablePeer and DisablePeer drop a request
// (returning no error, logging "previous setting admin state request is
// still remaining") while an earlier one is still queued for the peer's
// FSM, as happens when a tunnel comes up right after the neighbor was
// added: the neighbor would then stay disabled, and BGP Idle, until the
// tunnel next went down and up. The daemon does it every few seconds,
// with its status poll (StatusReconciled).
func (s *Server) ReconcileAdmin() error {
	_, err := s.StatusReconciled()
	return err
}

// adminFix is a neighbor whose GoBGP admin state must be set to up.
type adminFix struct {
	name, addr string
	up         bool
}

// adminFixLocked compares GoBGP's admin state of neighbor name with cgw's.
// Caller must hold s.ctl.
func (s *Server) adminFixLocked(name, addr string, gobgp api.PeerState_AdminState) (adminFix, bool) {
	want := s.adminUpLocked(name)
	switch {
	case want && gobgp == api.PeerState_DOWN:
		return adminFix{name, addr, true}, true
	case !want && gobgp == api.PeerState_UP:
		return adminFix{name, addr, false}, true
	}
	return adminFix{}, false
}

// applyAdminFixesLocked applies cgw's admin state again. Caller must hold
// s.ctl.
func (s *Server) applyAdminFixesLocked(fixes []adminFix) error {
	var err error
	var errs []error
	for _, f := range fixes {
		s.log.Warn("bgp: neighbor admin state differs from the tunnel's; applying it again", "neighbor", f.name, "peer", f.addr, "up", f.up)
		if f.up {
			err = s.gobgp().EnablePeer(context.Background(), &api.EnablePeerRequest{Address: f.addr})
		} else {
			err = s.gobgp().DisablePeer(context.Background(), &api.DisablePeerRequest{Address: f.addr, Communication: tunnelDownComm})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("bgp: neighbor %s admin up=%v: %w", f.name, f.up, err))
		}
	}
	return errors.Join(errs...)
}
