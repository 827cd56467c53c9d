package bgp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"time"

	api "github.com/osrg/gobgp/v3/api"
)

// LANNeighbor is a BGP neighbor on the LAN side (an on-premises router).
// The Server announces it the prefixes learned from AWS, with next hop
// self, and learns from it the on-premises prefixes it announces to AWS.
// PeerASN equal to the Server's ASN makes it iBGP.
type LANNeighbor struct {
	Name      string
	PeerAddr  netip.Addr
	LocalAddr netip.Addr // optional session source
	PeerASN   uint32
	// HoldTime defaults to 9 s; Keepalive to a third of it.
	HoldTime, Keepalive time.Duration
	Password            string // TCP MD5 (RFC 2385); never logged
	// Allow lists the prefixes accepted from the neighbor (a prefix must
	// lie inside one); empty = all. 169.254.0.0/16, fe80::/10, paths
	// through an AWS neighbor's ASN and, without AcceptDefault, the
	// default route are refused whatever Allow says.
	Allow         []netip.Prefix
	AcceptDefault bool
	// MED (eBGP) or LocalPref (iBGP, default 200) go on paths over a
	// preferred tunnel; paths over a Backup tunnel get MED+BackupMEDStep
	// or LocalPref-BackupLocalPrefStep.
	MED, LocalPref uint32
}

// LANConfig is everything SetLAN applies.
type LANConfig struct {
	Neighbors []LANNeighbor
	// Backup names the AWS neighbors (tunnels) that are not their
	// connection's preferred tunnel.
	Backup []string
	// Drained withdraws every AWS prefix from the LAN neighbors (the
	// sessions stay up, and on-premises prefixes are still learned).
	Drained bool
}

// Preference steps between paths over a preferred and a backup tunnel.
const (
	BackupMEDStep       = 100
	BackupLocalPrefStep = 100
	defaultLANHold      = 9 * time.Second
	defaultLANLocalPref = 200

	// Large communities (RFC 8092) <our ASN>:lanTagFn:x tag paths in the
	// RIB by origin; they are stripped on export.
	lanTagFn     = 7
	tagAWSMain   = 1 // learned over a preferred tunnel
	tagAWSBackup = 2 // learned over a backup tunnel
	tagLAN       = 3 // learned from a LAN neighbor, passed the import policy
	tagDrained   = 4 // learned from AWS while drained: exported to no LAN neighbor
	importPolicy = "cgw-import"
)

// lanState is the Server's LAN configuration, under s.ctl.
type lanState struct {
	cfg   LANConfig
	byNm  map[string]LANNeighbor
	added map[string]string // name -> session key applied to GoBGP
}

func (n LANNeighbor) normalize(ourASN uint32) (LANNeighbor, error) {
	if n.Name == "" {
		return n, errors.New("bgp: LANNeighbor.Name is required")
	}
	if !n.PeerAddr.IsValid() || n.PeerAddr.IsUnspecified() {
		return n, fmt.Errorf("bgp: LAN neighbor %q: invalid PeerAddr %v", n.Name, n.PeerAddr)
	}
	n.PeerAddr = n.PeerAddr.Unmap()
	if n.LocalAddr.IsValid() {
		n.LocalAddr = n.LocalAddr.Unmap()
		if n.LocalAddr.Is4() != n.PeerAddr.Is4() {
			return n, fmt.Errorf("bgp: LAN neighbor %q: LocalAddr %v and PeerAddr %v are of different address families", n.Name, n.LocalAddr, n.PeerAddr)
		}
	}
	if n.PeerASN == 0 {
		return n, fmt.Errorf("bgp: LAN neighbor %q: PeerASN is required", n.Name)
	}
	if n.HoldTime == 0 {
		n.HoldTime = defaultLANHold
	}
	if n.Keepalive == 0 {
		n.Keepalive = n.HoldTime / 3
	}
	if n.HoldTime < 3*time.Second || n.Keepalive < time.Second || n.Keepalive >= n.HoldTime {
		return n, fmt.Errorf("bgp: LAN neighbor %q: HoldTime %v / Keepalive %v: want hold >= 3s, 1s <= keepalive < hold", n.Name, n.HoldTime, n.Keepalive)
	}
	if n.LocalPref == 0 {
		n.LocalPref = defaultLANLocalPref
	}
	if n.LocalPref <= BackupLocalPrefStep || n.MED > 1<<32-1-BackupMEDStep {
		return n, fmt.Errorf("bgp: LAN neighbor %q: LocalPref must exceed %d and MED stay below %d", n.Name, BackupLocalPrefStep, uint32(1<<32-1-BackupMEDStep))
	}
	for _, p := range n.Allow {
		if !p.IsValid() {
			return n, fmt.Errorf("bgp: LAN neighbor %q: invalid Allow prefix", n.Name)
		}
	}
	return n, nil
}

func (n LANNeighbor) sessionKey() string {
	return fmt.Sprintf("%v|%v|%d|%d|%d|%s", n.PeerAddr, n.LocalAddr, n.PeerASN, secs(n.HoldTime), secs(n.Keepalive), n.Password)
}

// SetLAN makes the LAN neighbors, the backup tunnels and the drain state
// exactly c. Unchanged neighbors keep their sessions; policy changes are
// re-applied to every session (soft reset in and out). c is validated as
// a whole first: on a validation error nothing changes. It may be called
// before Start.
func (s *Server) SetLAN(c LANConfig) error {
	c.Neighbors = slices.Clone(c.Neighbors)
	c.Backup = slices.Clone(c.Backup)
	byNm := make(map[string]LANNeighbor, len(c.Neighbors))
	for i, n := range c.Neighbors {
		n, err := n.normalize(s.cfg.ASN)
		if err != nil {
			return err
		}
		if _, dup := byNm[n.Name]; dup {
			return fmt.Errorf("bgp: LAN neighbor name %q used twice", n.Name)
		}
		c.Neighbors[i] = n
		byNm[n.Name] = n
	}

	s.ctl.Lock()
	defer s.ctl.Unlock()
	if s.ctl.stopped {
		return errStopped
	}
	for _, n := range c.Neighbors {
		for _, a := range s.ctl.neighbors {
			if a.PeerAddr == n.PeerAddr {
				return fmt.Errorf("bgp: LAN neighbor %q has the address of tunnel neighbor %q", n.Name, a.Name)
			}
		}
	}
	if s.ctl.started && reflect.DeepEqual(c, s.ctl.lan.cfg) && len(s.ctl.lan.added) == len(c.Neighbors) {
		return nil // nothing to apply: keep every session's routes as they are
	}
	wasDrained := s.ctl.lan.cfg.Drained
	s.ctl.lan.cfg, s.ctl.lan.byNm = c, byNm
	s.syncRuntimeLocked()
	if !s.ctl.started {
		return nil
	}
	err := s.applyLANLocked(context.Background())
	if wasDrained != c.Drained {
		s.log.Info("bgp: LAN drain state", "drained", c.Drained)
	}
	return err
}

// applyLANLocked adds, re-creates and deletes LAN peers in GoBGP, then
// re-installs the policies and re-sends every session's routes under them.
// Caller must hold s.ctl.
func (s *Server) applyLANLocked(ctx context.Context) error {
	var errs []error
	if s.ctl.lan.added == nil {
		s.ctl.lan.added = map[string]string{}
	}
	addrOf := map[string]string{}
	for name, key := range s.ctl.lan.added {
		addrOf[name] = key[:indexByte(key, '|')]
		if n, ok := s.ctl.lan.byNm[name]; ok && n.sessionKey() == key {
			continue
		}
		if err := s.gobgp().DeletePeer(ctx, &api.DeletePeerRequest{Address: addrOf[name]}); err != nil {
			errs = append(errs, fmt.Errorf("bgp: delete LAN neighbor %q: %w", name, err))
		}
		delete(s.ctl.lan.added, name)
		s.log.Info("bgp: LAN neighbor removed or changed", "neighbor", name, "peer", addrOf[name])
	}
	// Policies first, so that a new peer never sees the default action.
	if err := s.applyExportPolicyLocked(ctx); err != nil {
		errs = append(errs, err)
	}
	for _, n := range s.ctl.lan.cfg.Neighbors {
		if _, ok := s.ctl.lan.added[n.Name]; ok {
			continue
		}
		p := s.apiPeer(Neighbor{Name: n.Name, PeerAddr: n.PeerAddr, LocalAddr: n.LocalAddr, PeerASN: n.PeerASN,
			HoldTime: n.HoldTime, Keepalive: n.Keepalive, Password: n.Password})
		if err := s.gobgp().AddPeer(ctx, &api.AddPeerRequest{Peer: p}); err != nil {
			errs = append(errs, fmt.Errorf("bgp: add LAN neighbor %q (%v): %w", n.Name, n.PeerAddr, err))
			continue
		}
		s.ctl.lan.added[n.Name] = n.sessionKey()
		kind := "eBGP"
		if n.PeerASN == s.cfg.ASN {
			kind = "iBGP"
		}
		s.log.Info("bgp: LAN neighbor added", "neighbor", n.Name, "peer", n.PeerAddr, "peer_asn", n.PeerASN, "type", kind,
			"hold", n.HoldTime, "keepalive", n.Keepalive, "md5", n.Password != "", "allow", len(n.Allow))
	}
	s.softResetAllLocked(ctx)
	s.changed()
	return errors.Join(errs...)
}

func indexByte(s string, b byte) int {
	for i := range len(s) {
		if s[i] == b {
			return i
		}
	}
	return len(s)
}

// softResetAllLocked re-evaluates every session's routes under the
// current policies: in (the import tags and LAN filters) and out. Caller
// must hold s.ctl.
func (s *Server) softResetAllLocked(ctx context.Context) {
	err := s.gobgp().ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		if p.State == nil || p.State.SessionState != api.PeerState_ESTABLISHED {
			return
		}
		a := p.State.NeighborAddress
		go func() {
			// Outside the lock's critical path: GoBGP serializes it.
			if err := s.gobgp().ResetPeer(context.Background(), &api.ResetPeerRequest{Address: a, Soft: true, Direction: api.ResetPeerRequest_BOTH}); err != nil {
				s.log.Debug("bgp: soft reset", "peer", a, "err", err)
			}
		}()
	})
	if err != nil {
		s.log.Debug("bgp: list peers for soft reset", "err", err)
	}
}

// lanPolicyLocked returns the defined sets, the export statements for LAN
// neighbors and for AWS neighbors' on-premises routes, and the import
// policy. Caller must hold s.ctl.
func (s *Server) lanPolicyLocked(awsExport func(Neighbor) *api.Actions) ([]*api.DefinedSet, []*api.Statement, *api.Policy) {
	if len(s.ctl.lan.cfg.Neighbors) == 0 {
		return nil, nil, &api.Policy{Name: importPolicy}
	}
	asn := s.cfg.ASN
	tag := func(x int) string { return fmt.Sprintf("%d:%d:%d", asn, lanTagFn, x) }
	var sets []*api.DefinedSet
	var exp, imp []*api.Statement
	nset := func(name string, addrs ...netip.Addr) string {
		l := make([]string, 0, len(addrs))
		for _, a := range addrs {
			l = append(l, netip.PrefixFrom(a, a.BitLen()).String())
		}
		sets = append(sets, &api.DefinedSet{DefinedType: api.DefinedType_NEIGHBOR, Name: name, List: l})
		return name
	}
	lset := func(name string, x int) string {
		sets = append(sets, &api.DefinedSet{DefinedType: api.DefinedType_LARGE_COMMUNITY, Name: name, List: []string{"^" + tag(x) + "$"}})
		return name
	}
	match := func(name string) *api.MatchSet { return &api.MatchSet{Type: api.MatchSet_ANY, Name: name} }
	strip := &api.CommunityAction{Type: api.CommunityAction_REMOVE, Communities: []string{tag(tagAWSMain), tag(tagAWSBackup), tag(tagLAN), tag(tagDrained)}}
	addTag := func(x int) *api.Actions {
		return &api.Actions{RouteAction: api.RouteAction_ACCEPT,
			LargeCommunity: &api.CommunityAction{Type: api.CommunityAction_ADD, Communities: []string{tag(x)}}}
	}
	stmt := func(list *[]*api.Statement, c *api.Conditions, a *api.Actions) {
		*list = append(*list, &api.Statement{Name: fmt.Sprintf("cgw-lan-%d-%d", len(exp), len(imp)), Conditions: c, Actions: a})
	}
	lsMain, lsBackup, lsLAN := lset("cgw-tag-aws-main", tagAWSMain), lset("cgw-tag-aws-backup", tagAWSBackup), lset("cgw-tag-lan", tagLAN)

	// Import: tag AWS paths by tunnel rank.
	backup := map[string]bool{}
	for _, b := range s.ctl.lan.cfg.Backup {
		backup[b] = true
	}
	var mains, backups []netip.Addr
	awsASNs := map[uint32]bool{}
	for _, name := range s.ctl.order {
		n := s.ctl.neighbors[name]
		awsASNs[n.PeerASN] = true
		if backup[name] {
			backups = append(backups, n.PeerAddr)
		} else {
			mains = append(mains, n.PeerAddr)
		}
	}
	// Drain re-tags the AWS paths rather than changing the export
	// statements: GoBGP's soft reset out sends no withdrawal for a path
	// the export policy newly rejects, but a path re-imported (soft reset
	// in) with attributes that no export statement accepts is withdrawn
	// from every peer it was sent to.
	mainTag, backupTag := tagAWSMain, tagAWSBackup
	if s.ctl.lan.cfg.Drained {
		mainTag, backupTag = tagDrained, tagDrained
	}
	if len(mains) > 0 {
		stmt(&imp, &api.Conditions{NeighborSet: match(nset("cgw-aws-main", mains...))}, addTag(mainTag))
	}
	if len(backups) > 0 {
		stmt(&imp, &api.Conditions{NeighborSet: match(nset("cgw-aws-backup", backups...))}, addTag(backupTag))
	}
	// AWS's own prefixes never go back to AWS: a LAN path through an
	// Amazon-side ASN is refused.
	awsPath := ""
	if len(awsASNs) > 0 {
		var l []string
		for a := range awsASNs {
			l = append(l, fmt.Sprintf("_%d_", a))
		}
		slices.Sort(l)
		awsPath = "cgw-aws-asns"
		sets = append(sets, &api.DefinedSet{DefinedType: api.DefinedType_AS_PATH, Name: awsPath, List: l})
	}
	reject := &api.Actions{RouteAction: api.RouteAction_REJECT}
	for i, n := range s.ctl.lan.cfg.Neighbors {
		ns := nset(fmt.Sprintf("cgw-lan-%d", i), n.PeerAddr)
		never := []*api.Prefix{
			{IpPrefix: "169.254.0.0/16", MaskLengthMin: 16, MaskLengthMax: 32},
			{IpPrefix: "fe80::/10", MaskLengthMin: 10, MaskLengthMax: 128},
		}
		if !n.AcceptDefault {
			never = append(never, &api.Prefix{IpPrefix: "0.0.0.0/0"}, &api.Prefix{IpPrefix: "::/0"})
		}
		for j, p := range never {
			// GoBGP prefix sets hold one family each.
			name := fmt.Sprintf("cgw-lan-%d-never-%d", i, j)
			sets = append(sets, &api.DefinedSet{DefinedType: api.DefinedType_PREFIX, Name: name, Prefixes: []*api.Prefix{p}})
			stmt(&imp, &api.Conditions{NeighborSet: match(ns), PrefixSet: match(name)}, reject)
		}
		if awsPath != "" {
			stmt(&imp, &api.Conditions{NeighborSet: match(ns), AsPathSet: match(awsPath)}, reject)
		}
		if len(n.Allow) == 0 {
			stmt(&imp, &api.Conditions{NeighborSet: match(ns)}, addTag(tagLAN))
		} else {
			for j, p := range n.Allow {
				name := fmt.Sprintf("cgw-lan-%d-allow-%d", i, j)
				sets = append(sets, &api.DefinedSet{DefinedType: api.DefinedType_PREFIX, Name: name,
					Prefixes: []*api.Prefix{{IpPrefix: p.Masked().String(), MaskLengthMin: uint32(p.Bits()), MaskLengthMax: uint32(p.Addr().BitLen())}}})
				stmt(&imp, &api.Conditions{NeighborSet: match(ns), PrefixSet: match(name)}, addTag(tagLAN))
			}
			stmt(&imp, &api.Conditions{NeighborSet: match(ns)}, reject)
		}

		// Export toward this LAN neighbor: AWS paths, next hop self,
		// preference by tunnel rank.
		ibgp := n.PeerASN == asn
		for _, rank := range []struct {
			set    string
			backup bool
		}{{lsMain, false}, {lsBackup, true}} {
			a := &api.Actions{RouteAction: api.RouteAction_ACCEPT, Nexthop: &api.NexthopAction{Self: true}, LargeCommunity: strip}
			med, lp := n.MED, n.LocalPref
			if rank.backup {
				med, lp = med+BackupMEDStep, lp-BackupLocalPrefStep
			}
			if ibgp {
				a.LocalPref = &api.LocalPrefAction{Value: lp}
			} else {
				a.Med = &api.MedAction{Type: api.MedAction_REPLACE, Value: int64(med)}
			}
			stmt(&exp, &api.Conditions{NeighborSet: match(ns), LargeCommunitySet: match(rank.set)}, a)
		}
	}
	// Export toward AWS: on-premises paths learned from the LAN, with the
	// tunnel's own prepend and MED, tags stripped.
	for i, name := range s.ctl.order {
		n := s.ctl.neighbors[name]
		a := awsExport(n)
		a.LargeCommunity = strip
		stmt(&exp, &api.Conditions{NeighborSet: match(nset(fmt.Sprintf("cgw-aws-%d", i), n.PeerAddr)), LargeCommunitySet: match(lsLAN)}, a)
	}
	return sets, exp, &api.Policy{Name: importPolicy, Statements: imp}
}

// assignImportLocked assigns the import policy to the global RIB; paths no
// statement decides on are accepted. Caller must hold s.ctl.
func (s *Server) assignImportLocked(ctx context.Context) error {
	err := s.gobgp().SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name:          globalRIBName,
		Direction:     api.PolicyDirection_IMPORT,
		Policies:      []*api.Policy{{Name: importPolicy}},
		DefaultAction: api.RouteAction_ACCEPT,
	}})
	if err != nil {
		return fmt.Errorf("bgp: assign import policy: %w", err)
	}
	return nil
}

// LANStatus returns one entry per LAN neighbor, in SetLAN order.
func (s *Server) LANStatus() []NeighborStatus {
	out := s.LANSessions()
	s.fillStatus(out)
	// GoBGP counts paths its import policy rejected as accepted too;
	// count what is in the RIB instead.
	idx := make(map[string]int, len(out))
	for i := range out {
		out[i].Accepted = 0
		idx[out[i].Name] = i
	}
	for _, p := range s.Learned() {
		if i, ok := idx[p.Neighbor]; ok {
			out[i].Accepted++
		}
	}
	return out
}

// LANDrained reports whether the AWS prefixes are withdrawn from the LAN.
func (s *Server) LANDrained() bool {
	s.ctl.Lock()
	defer s.ctl.Unlock()
	return s.ctl.lan.cfg.Drained
}

// LANSessions returns each LAN neighbor's FSM state and last error as the
// Server's event watcher last saw them: cheaper than LANStatus (no RIB
// walk), for change notifications.
func (s *Server) LANSessions() []NeighborStatus {
	s.ctl.Lock()
	out := make([]NeighborStatus, 0, len(s.ctl.lan.cfg.Neighbors))
	for _, n := range s.ctl.lan.cfg.Neighbors {
		out = append(out, NeighborStatus{Name: n.Name, PeerAddr: n.PeerAddr, PeerASN: n.PeerASN, State: "Idle"})
	}
	s.ctl.Unlock()
	s.rt.Lock()
	defer s.rt.Unlock()
	for i := range out {
		if p, ok := s.rt.peers[out[i].PeerAddr.String()]; ok {
			out[i].State, out[i].LastError = p.state, p.lastError
		}
	}
	return out
}
